"""`python -m legacy_rnn.imdb_data`: writes an offline imdb.npz of generated reviews. The command
lives in `legacy_rnn/data/imdb.py`."""
if __name__ == "__main__":
    from legacy_rnn.data import imdb
    raise SystemExit(imdb.main())
