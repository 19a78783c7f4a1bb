"""The command-line layer: how every entry point starts and exits, signals, and the flags the
programs share.
"""
