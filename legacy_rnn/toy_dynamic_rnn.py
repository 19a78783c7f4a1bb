"""Variable-length toy sequences: static_rnn with sequence_length + last relevant output.

    python -m legacy_rnn.toy_dynamic_rnn [--flagfile=flags/toy_dynamic_rnn.cfg] [flags]
"""
from legacy_rnn import cli

if __name__ == "__main__":
    cli.program("toy_dynamic_rnn")
