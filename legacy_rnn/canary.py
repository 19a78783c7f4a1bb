"""`python -m legacy_rnn.canary`: the TensorFlow-upgrade canary. The command lives in
`legacy_rnn/regression/canary.py`.
"""
if __name__ == "__main__":
    from legacy_rnn.cli import entry
    entry.tool("legacy_rnn.regression.canary", "canary")
