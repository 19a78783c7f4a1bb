"""Sequence-to-sequence with attention: tf.contrib.seq2seq on today's TF and its Keras 3 twin.

- `tf1`: contrib's BahdanauAttention, LuongAttention, AttentionWrapper, TrainingHelper,
  GreedyEmbeddingHelper, BasicDecoder, BeamSearchDecoder (tile_batch, gather_tree),
  dynamic_decode and sequence_loss, written from TF 1.15's sources, in graph mode, with its
  variable names.
- `keras_decoder`: the Keras 3 twin (`keras.ops` only: TF, JAX and PyTorch backends).
- `decoder`: `DecoderSpec`, one attention decoder's TF1 construction, Keras twin and variables
  both ways.
- `parity`: one problem run through both (the tests and `./run.sh backends`).

Not built yet (issue 25): legacy_seq2seq, the experiment program, checkpoint conversion through
the generic converter, serving, multiple mechanisms, alignment_history with beam search.
"""
