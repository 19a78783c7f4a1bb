"""IMDB sentiment: an embedding and two dropout-wrapped BasicRNNCells unrolled over 80 words.

    python -m legacy_rnn.imdb_rnn [--flagfile=flags/imdb_rnn.cfg] [--data_path=imdb.npz] [flags]
"""
if __name__ == "__main__":
    from legacy_rnn.cli import entry
    entry.program("imdb_rnn")
