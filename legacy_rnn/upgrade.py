"""`python -m legacy_rnn.upgrade`: writes a copy of a checkpoint saved before TF 1.2 under today's
variable names. The command lives in `legacy_rnn/conversion/upgrade.py`.
"""
if __name__ == "__main__":
    from legacy_rnn.cli import entry
    entry.tool("legacy_rnn.conversion.upgrade", "upgrade")
