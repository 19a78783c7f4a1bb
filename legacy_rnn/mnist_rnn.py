"""MNIST row-by-row LSTM classifier: BasicLSTMCell + static_rnn over 28 rows of 28 pixels.

    python -m legacy_rnn.mnist_rnn [--flagfile=flags/mnist_rnn.cfg] [flags]
"""
from legacy_rnn import cli

if __name__ == "__main__":
    cli.program("mnist_rnn")
