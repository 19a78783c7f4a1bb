"""`python -m legacy_rnn.convert`: converts TF1 RNN checkpoints to Keras 3, and Keras 3 recurrent
models back to TF1. The command lives in `legacy_rnn/conversion/convert.py`.
"""
if __name__ == "__main__":
    from legacy_rnn.cli import entry
    entry.tool("legacy_rnn.conversion.convert", "convert")
