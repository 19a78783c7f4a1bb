"""MNIST row-by-row BiLSTM classifier: two BasicLSTMCells + static_bidirectional_rnn.

    python -m legacy_rnn.mnist_birnn [--flagfile=flags/mnist_birnn.cfg] [flags]
"""
from legacy_rnn import cli

if __name__ == "__main__":
    cli.program("mnist_birnn")
