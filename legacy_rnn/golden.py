"""`python -m legacy_rnn.golden`: records or checks the golden numbers of the experiments. The
command lives in `legacy_rnn/regression/golden.py`.
"""
if __name__ == "__main__":
    from legacy_rnn.cli import entry
    entry.tool("legacy_rnn.regression.golden", "golden")
