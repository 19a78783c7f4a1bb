"""MNIST row-by-row LSTM classifier: BasicLSTMCell + static_rnn over 28 rows of 28 pixels.

    python -m legacy_rnn.mnist_rnn [--flagfile=flags/mnist_rnn.cfg] [flags]
"""
if __name__ == "__main__":
    from legacy_rnn.cli import entry
    entry.program("mnist_rnn")
