"""`python -m legacy_rnn.inspect`: lists what a TF1 checkpoint holds: its recurrent blocks and a
guess for every other variable. The command lives in `legacy_rnn/conversion/inspection.py`.
"""
if __name__ == "__main__":
    from legacy_rnn.cli import entry
    entry.tool("legacy_rnn.conversion.inspection", "inspect")
