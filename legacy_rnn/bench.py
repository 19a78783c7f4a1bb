"""`python -m legacy_rnn.bench`: benchmarks: legacy TF1 graphs against their Keras 3 twins. The
command lives in `legacy_rnn/tools/bench.py`.
"""
if __name__ == "__main__":
    from legacy_rnn.cli import entry
    entry.tool("legacy_rnn.tools.bench", "bench")
