"""Sequence-to-sequence with attention: tf.contrib.seq2seq on today's TF and its Keras 3 twin.

- `tf1`: contrib's BahdanauAttention, LuongAttention, AttentionWrapper, TrainingHelper,
  GreedyEmbeddingHelper, BasicDecoder, BeamSearchDecoder (tile_batch, gather_tree),
  dynamic_decode and sequence_loss, written from TF 1.15's sources, in graph mode, with its
  variable names.
- `keras_decoder`: the Keras 3 twin (`keras.ops` only: TF, JAX and PyTorch backends).
- `decoder`: `DecoderSpec`, one attention decoder's TF1 construction, Keras twin and variables
  both ways.
- `parity`: one problem run through both (the tests and `./run.sh backends`); `ties`: where
  beam search may rightly differ between backends (a near-tie in TF1's scores).
- `legacy`: legacy_seq2seq's rnn_decoder, attention_decoder and embedding_attention_seq2seq.
- `checkpoint`: a contrib decoder found in a user's checkpoint, converted and checked against
  the user's graph; `legacy_checkpoint`: the same for legacy_seq2seq's
  embedding_attention_seq2seq; `experiment`: `python -m legacy_rnn.seq2seq_attention`; `serving`: the
  SavedModels that decode.

Not built yet (issue 25): checking greedy or beam-search graphs (only a teacher-forced decoder
is checked against the user's graph), legacy_seq2seq's other models (embedding_rnn_seq2seq,
embedding_tied_rnn_seq2seq, one2many) and a MultiRNNCell under either decoder, multiple
mechanisms, alignment_history with beam search.
"""
