"""Time-series forecasting with the RNN family (Geron, ch. 15): simple, deep, deep_dense, ln,
lstm and gru, beside the naive and linear baselines; fully offline.

    python -m legacy_rnn.series_rnn [--flagfile=flags/series_rnn.cfg] [--model=lstm] [flags]
"""
if __name__ == "__main__":
    from legacy_rnn.cli import entry
    entry.program("series_rnn")
