"""Variable-length toy sequences: BasicLSTMCell + static_rnn with sequence_length, the last
relevant output gathered; fully offline.

    python -m legacy_rnn.toy_dynamic_rnn [--flagfile=flags/toy_dynamic_rnn.cfg] [flags]
"""
if __name__ == "__main__":
    from legacy_rnn.cli import entry
    entry.program("toy_dynamic_rnn")
