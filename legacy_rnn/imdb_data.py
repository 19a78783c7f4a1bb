"""`python -m legacy_rnn.imdb_data OUT.npz [N_TRAIN N_TEST]`: writes an offline imdb.npz of
generated reviews. The command lives in `legacy_rnn/data/imdb.py`.
"""
if __name__ == "__main__":
    import sys

    from legacy_rnn.cli import entry, interrupts
    interrupts.install()
    from legacy_rnn.data import imdb
    sys.exit(entry.guarded("imdb_data", imdb.main))
