"""`python -m legacy_rnn.backends`: checks converted models and Keras twins on Keras 3's JAX /
PyTorch backends. The command lives in `legacy_rnn/tools/backends.py`.
"""
if __name__ == "__main__":
    from legacy_rnn.cli import entry
    entry.tool("legacy_rnn.tools.backends", "backends")
