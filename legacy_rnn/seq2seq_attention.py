"""Attention seq2seq (tf.contrib.seq2seq's AttentionWrapper, BasicDecoder, BeamSearchDecoder) on
an offline task: reversing digit strings. The program lives in `legacy_rnn/seq2seq/experiment.py`.

    python -m legacy_rnn.seq2seq_attention [--flagfile=flags/seq2seq_attention_smoke.cfg] [flags]
"""
if __name__ == "__main__":
    from legacy_rnn.cli import entry
    entry.tool("legacy_rnn.seq2seq.experiment", "seq2seq_attention")
