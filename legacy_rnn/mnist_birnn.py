"""MNIST row-by-row BiLSTM classifier: two BasicLSTMCells + static_bidirectional_rnn.

    python -m legacy_rnn.mnist_birnn [--flagfile=flags/mnist_birnn.cfg] [flags]
"""
if __name__ == "__main__":
    from legacy_rnn.cli import entry
    entry.program("mnist_birnn")
