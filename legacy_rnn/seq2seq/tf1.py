"""tf.contrib.seq2seq as TF 1.15 wrote it, in graph mode on today's TensorFlow.

Written from TF 1.15's `contrib/seq2seq/python/ops/{attention_wrapper, basic_decoder, helper,
beam_search_decoder, decoder, loss}.py`: the same math, the same variable names, the same
defaults, on `tf.compat.v1` ops that TF 2.21 still has (`tf.compat.v1.layers.Dense` for the
layers, so a layer takes its scope where TF 1.x gave it one). Nothing here is imported by the
Keras twin (`legacy_rnn.seq2seq.keras_decoder`).

Variables, for a decoder built under `dynamic_decode` (scope `decoder`) with one mechanism:

    memory_layer/kernel                                  [memory depth, units]  (where built)
    decoder/attention_wrapper/<cell scope>/...           the wrapped cell
    decoder/attention_wrapper/bahdanau_attention/query_layer/kernel   [cell output, units]
    decoder/attention_wrapper/bahdanau_attention/attention_v          [units]
        normalize=True: .../attention_g [] (sqrt(1/units)), .../attention_b [units]
    decoder/attention_wrapper/luong_attention/attention_g             []  (scale=True only)
    decoder/attention_wrapper/attention_layer/kernel     [cell output + memory depth, size]
    decoder/<output layer>/kernel, bias                  e.g. `dense`, or nmt's `output_projection`

The math (B batch, T memory time; `values` = memory with rows past each length zeroed,
`keys = values @ memory_layer`):

    Bahdanau: score_t = sum(v * tanh(keys_t + q @ query_layer))
              normalize: v -> g * v / |v|, and + b inside the tanh
    Luong:    score_t = q . keys_t; scale: g * score
    alignments = softmax(score, past-length scores = -inf)
    context = alignments @ values
    attention = concat([cell_output, context]) @ attention_layer   (or context, no layer)

AttentionWrapper's step: the cell reads `concat([inputs, previous attention])`, its output is the
query, and the step's output is `attention` (`output_attention=True`) or the cell's output.
"""
import collections

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1


def sequence_mask(lengths, maxlen, dtype=tf.bool):
    return tf.sequence_mask(lengths, maxlen=maxlen, dtype=dtype)


class _Mechanism:
    """Values, keys and the masked softmax that both of contrib's mechanisms share."""
    scope = ""

    def __init__(self, num_units, memory, memory_sequence_length, query_layer, name):
        self.num_units = num_units
        self.query_layer = query_layer
        self.memory_layer = v1.layers.Dense(num_units, name="memory_layer", use_bias=False)
        self.lengths = memory_sequence_length
        with tf.name_scope(name):
            memory = tf.convert_to_tensor(memory)
            if memory_sequence_length is None:
                self.values = memory
            else:
                mask = sequence_mask(memory_sequence_length, tf.shape(memory)[1], memory.dtype)
                self.values = memory * mask[:, :, None]
            self.keys = self.memory_layer(self.values)
        self.alignments_size = self.keys.shape[1] or tf.shape(self.keys)[1]

    def initial_alignments(self, batch_size, dtype):
        return tf.zeros(tf.stack([batch_size, tf.shape(self.keys)[1]]), dtype)

    def _probabilities(self, score):
        if self.lengths is not None:
            mask = sequence_mask(self.lengths, tf.shape(score)[1])
            score = tf.where(mask, score, tf.fill(tf.shape(score), np.float32(-np.inf)))
        return tf.nn.softmax(score)

    def __call__(self, query, state):
        with v1.variable_scope(None, self.scope, [query]):
            score = self._score(query)
        alignments = self._probabilities(score)
        return alignments, alignments


class BahdanauAttention(_Mechanism):
    scope = "bahdanau_attention"

    def __init__(self, num_units, memory, memory_sequence_length=None, normalize=False,
                 name="BahdanauAttention"):
        super().__init__(num_units, memory, memory_sequence_length,
                         v1.layers.Dense(num_units, name="query_layer", use_bias=False), name)
        self.normalize = normalize

    def _score(self, query):
        processed = self.query_layer(query)[:, None, :]
        units = self.num_units
        v = v1.get_variable("attention_v", [units], dtype=query.dtype)
        if not self.normalize:
            return tf.reduce_sum(v * tf.tanh(self.keys + processed), [2])
        g = v1.get_variable("attention_g", shape=(), dtype=query.dtype,
                            initializer=v1.constant_initializer(np.sqrt(1.0 / units)))
        b = v1.get_variable("attention_b", [units], dtype=query.dtype,
                            initializer=v1.zeros_initializer())
        normed_v = g * v * tf.math.rsqrt(tf.reduce_sum(tf.square(v)))
        return tf.reduce_sum(normed_v * tf.tanh(self.keys + processed + b), [2])


class LuongAttention(_Mechanism):
    scope = "luong_attention"

    def __init__(self, num_units, memory, memory_sequence_length=None, scale=False,
                 name="LuongAttention"):
        super().__init__(num_units, memory, memory_sequence_length, None, name)
        self.scale = scale

    def _score(self, query):
        if query.shape[-1] != self.keys.shape[-1]:
            raise ValueError(f"LuongAttention needs the query's depth ({query.shape[-1]}) to "
                             f"equal num_units ({self.keys.shape[-1]}).")
        score = tf.squeeze(tf.matmul(query[:, None, :], self.keys, transpose_b=True), [1])
        if self.scale:
            g = v1.get_variable("attention_g", dtype=query.dtype, initializer=1.0)
            score = g * score
        return score


AttentionWrapperState = collections.namedtuple(
    "AttentionWrapperState",
    ("cell_state", "attention", "time", "alignments", "alignment_history", "attention_state"))


class AttentionWrapper(v1.nn.rnn_cell.RNNCell):
    """contrib's AttentionWrapper with one mechanism (the multi-mechanism form is not built)."""

    def __init__(self, cell, attention_mechanism, attention_layer_size=None,
                 alignment_history=False, output_attention=True, initial_cell_state=None,
                 name=None):
        super().__init__(name=name)
        self._cell = cell
        self._mechanism = attention_mechanism
        self._attention_layer = (
            v1.layers.Dense(attention_layer_size, name="attention_layer", use_bias=False)
            if attention_layer_size is not None else None)
        self._attention_size = attention_layer_size or int(attention_mechanism.values.shape[-1])
        self._alignment_history = alignment_history
        self._output_attention = output_attention
        self._initial_cell_state = initial_cell_state

    @property
    def output_size(self):
        return self._attention_size if self._output_attention else self._cell.output_size

    @property
    def state_size(self):
        alignments = self._mechanism.alignments_size
        return AttentionWrapperState(
            cell_state=self._cell.state_size, attention=self._attention_size,
            time=tf.TensorShape([]), alignments=alignments,
            alignment_history=alignments if self._alignment_history else (),
            attention_state=alignments)

    def zero_state(self, batch_size, dtype):
        with tf.name_scope("AttentionWrapperZeroState"):
            cell_state = (self._initial_cell_state if self._initial_cell_state is not None
                          else self._cell.zero_state(batch_size, dtype))
            alignments = self._mechanism.initial_alignments(batch_size, dtype)
            history = (tf.TensorArray(dtype, size=0, dynamic_size=True,
                                      element_shape=alignments.shape)
                       if self._alignment_history else ())
            return AttentionWrapperState(
                cell_state=cell_state, attention=tf.zeros(
                    tf.stack([batch_size, self._attention_size]), dtype),
                time=tf.zeros([], tf.int32), alignments=alignments,
                alignment_history=history, attention_state=alignments)

    def call(self, inputs, state):
        cell_output, next_cell_state = self._cell(
            tf.concat([inputs, state.attention], -1), state.cell_state)
        alignments, next_attention_state = self._mechanism(cell_output, state.attention_state)
        context = tf.squeeze(tf.matmul(alignments[:, None, :], self._mechanism.values), [1])
        attention = (self._attention_layer(tf.concat([cell_output, context], 1))
                     if self._attention_layer is not None else context)
        history = (state.alignment_history.write(state.time, alignments)
                   if self._alignment_history else ())
        next_state = AttentionWrapperState(
            cell_state=next_cell_state, attention=attention, time=state.time + 1,
            alignments=alignments, alignment_history=history,
            attention_state=next_attention_state)
        return (attention if self._output_attention else cell_output), next_state


# --- Helpers and the basic decoder ------------------------------------------------------------
def _sample(outputs):
    return tf.cast(tf.argmax(outputs, axis=-1), tf.int32)


class TrainingHelper:
    """Teacher forcing: step t reads inputs[:, t]; a row is finished after its length."""

    def __init__(self, inputs, sequence_length, time_major=False):
        inputs = tf.convert_to_tensor(inputs)
        if not time_major:
            inputs = tf.transpose(inputs, [1, 0, 2])
        self._inputs = tf.TensorArray(inputs.dtype, size=tf.shape(inputs)[0],
                                      element_shape=inputs.shape[1:]).unstack(inputs)
        self._lengths = tf.convert_to_tensor(sequence_length)
        self._zero_inputs = tf.zeros_like(inputs[0])
        self.batch_size = tf.size(self._lengths)

    def _read(self, time, finished):
        return tf.cond(tf.reduce_all(finished), lambda: self._zero_inputs,
                       lambda: self._inputs.read(time))

    def initialize(self):
        finished = tf.equal(0, self._lengths)
        return finished, self._read(0, finished)

    def sample(self, time, outputs):
        return _sample(outputs)

    def next_inputs(self, time, outputs, state, sample_ids):
        finished = time + 1 >= self._lengths
        return finished, self._read(time + 1, finished), state


class GreedyEmbeddingHelper:
    """Greedy decoding: the next input is the embedding of the argmax; a row is finished when it
    emits `end_token`."""

    def __init__(self, embedding, start_tokens, end_token):
        self._embedding = (embedding if callable(embedding)
                           else lambda ids: tf.nn.embedding_lookup(embedding, ids))
        self._start_tokens = tf.convert_to_tensor(start_tokens, tf.int32)
        self._end_token = tf.convert_to_tensor(end_token, tf.int32)
        self._start_inputs = self._embedding(self._start_tokens)
        self.batch_size = tf.size(self._start_tokens)

    def initialize(self):
        return tf.zeros([self.batch_size], tf.bool), self._start_inputs

    def sample(self, time, outputs):
        return _sample(outputs)

    def next_inputs(self, time, outputs, state, sample_ids):
        finished = tf.equal(sample_ids, self._end_token)
        next_inputs = tf.cond(tf.reduce_all(finished), lambda: self._start_inputs,
                              lambda: self._embedding(sample_ids))
        return finished, next_inputs, state


BasicDecoderOutput = collections.namedtuple("BasicDecoderOutput", ("rnn_output", "sample_id"))


class BasicDecoder:
    tracks_own_finished = False

    def __init__(self, cell, helper, initial_state, output_layer=None):
        self._cell, self._helper = cell, helper
        self._initial_state, self._output_layer = initial_state, output_layer
        self.batch_size = helper.batch_size

    def initialize(self):
        finished, inputs = self._helper.initialize()
        return finished, inputs, self._initial_state

    def step(self, time, inputs, state):
        with tf.name_scope("BasicDecoderStep"):
            outputs, cell_state = self._cell(inputs, state)
            if self._output_layer is not None:
                outputs = self._output_layer(outputs)
            sample_ids = self._helper.sample(time, outputs)
            finished, next_inputs, next_state = self._helper.next_inputs(
                time, outputs, cell_state, sample_ids)
        return BasicDecoderOutput(outputs, sample_ids), next_state, next_inputs, finished

    def output_specs(self):
        size = (self._output_layer.units if self._output_layer is not None
                else self._cell.output_size)
        return BasicDecoderOutput(tf.TensorSpec([None, size], tf.float32),
                                  tf.TensorSpec([None], tf.int32))

    def finalize(self, outputs, state, lengths):
        return outputs, state


# --- dynamic_decode ---------------------------------------------------------------------------
def _is_array(x):
    return isinstance(x, tf.TensorArray)


def dynamic_decode(decoder, output_time_major=False, impute_finished=False,
                   maximum_iterations=None, scope=None):
    """contrib's dynamic_decode: steps until every row is finished (or `maximum_iterations`);
    returns (final_outputs, final_state, final_sequence_lengths)."""
    with v1.variable_scope(scope, "decoder"):
        finished, inputs, state = decoder.initialize()
        if maximum_iterations is not None:
            maximum_iterations = tf.convert_to_tensor(maximum_iterations, tf.int32)
            finished = tf.logical_or(finished, 0 >= maximum_iterations)
        lengths = tf.zeros_like(finished, tf.int32)
        def body(time, outputs_ta, state, inputs, finished, lengths):
            outputs, next_state, next_inputs, decoder_finished = decoder.step(
                time, inputs, state)
            next_finished = (decoder_finished if decoder.tracks_own_finished
                             else tf.logical_or(decoder_finished, finished))
            if maximum_iterations is not None:
                next_finished = tf.logical_or(next_finished, time + 1 >= maximum_iterations)
            next_lengths = tf.where(tf.logical_not(finished),
                                    tf.fill(tf.shape(lengths), time + 1), lengths)
            if impute_finished:
                outputs = tf.nest.map_structure(
                    lambda out: tf.where(_expand_to(finished, out), tf.zeros_like(out), out),
                    outputs)
                next_state = tf.nest.map_structure(
                    lambda new, cur: new if _is_array(new) or new.shape.rank == 0 else
                    tf.where(_expand_to(finished, new), cur, new), next_state, state)
            # The static shapes the loop entered with (a reshape by a dynamic batch size
            # loses them; the values have them).
            for new_value, old_value in zip(tf.nest.flatten((next_state, next_inputs)),
                                            tf.nest.flatten((state, inputs))):
                if not _is_array(new_value):
                    new_value.set_shape(old_value.shape)
            outputs_ta = [ta.write(time, out)
                          for ta, out in zip(outputs_ta, tf.nest.flatten(outputs))]
            return time + 1, outputs_ta, next_state, next_inputs, next_finished, next_lengths

        structure = decoder.output_specs()
        outputs_ta = [tf.TensorArray(spec.dtype, size=0, dynamic_size=True,
                                     element_shape=spec.shape)
                      for spec in tf.nest.flatten(structure)]
        _, outputs_ta, state, _, _, lengths = tf.while_loop(
            lambda time, _o, _s, _i, finished, _l: tf.logical_not(tf.reduce_all(finished)),
            body, (tf.constant(0), outputs_ta, state, inputs, finished, lengths),
            maximum_iterations=maximum_iterations)
        outputs = tf.nest.pack_sequence_as(structure, [ta.stack() for ta in outputs_ta])
        outputs, state = decoder.finalize(outputs, state, lengths)
        if not output_time_major:
            outputs = tf.nest.map_structure(
                lambda x: tf.transpose(x, [1, 0] + list(range(2, x.shape.rank))), outputs)
        return outputs, state, lengths


def _expand_to(mask, like):
    return tf.reshape(mask, tf.concat([tf.shape(mask), tf.ones(like.shape.rank - mask.shape.rank,
                                                               tf.int32)], 0))


# --- Beam search ------------------------------------------------------------------------------
def tile_batch(t, multiplier, name=None):
    """[b0, b1] -> [b0, b0, ..., b1, b1, ...]: each row `multiplier` times, side by side."""
    with tf.name_scope(name or "tile_batch"):
        t = tf.convert_to_tensor(t)
        tiled = tf.tile(t[:, None], [1, multiplier] + [1] * (t.shape.rank - 1))
        return tf.reshape(tiled, tf.concat([[tf.shape(t)[0] * multiplier], tf.shape(t)[1:]], 0))


BeamSearchDecoderState = collections.namedtuple(
    "BeamSearchDecoderState", ("cell_state", "log_probs", "finished", "lengths"))
BeamSearchDecoderOutput = collections.namedtuple(
    "BeamSearchDecoderOutput", ("scores", "predicted_ids", "parent_ids"))
FinalBeamSearchDecoderOutput = collections.namedtuple(
    "FinalBeamDecoderOutput", ("predicted_ids", "beam_search_decoder_output"))


def gather_tree(step_ids, parent_ids, max_sequence_lengths, end_token):
    """contrib's GatherTree kernel in graph ops ([T, B, K] time-major): each beam's tokens read
    back from its last step through its parents; steps at or past a row's max length, and every
    step after a beam's first `end_token`, are `end_token`."""
    steps = tf.shape(step_ids)[0]
    beams = tf.shape(step_ids)[2]
    identity = tf.tile(tf.range(beams)[None], [tf.shape(step_ids)[1], 1])

    def back(carry, t):
        parent = carry
        valid = (t < max_sequence_lengths)[:, None]
        start = tf.equal(t, max_sequence_lengths - 1)[:, None]
        index = tf.where(start, identity, parent)
        token = tf.gather(step_ids[t], index, batch_dims=1)
        return tf.where(valid, tf.gather(parent_ids[t], index, batch_dims=1), parent), \
            tf.where(valid, token, tf.fill(tf.shape(token), end_token))

    times = tf.range(steps - 1, -1, -1)
    _, tokens = tf.scan(lambda acc, t: back(acc[0], t), times,
                        initializer=(identity, tf.zeros_like(identity)))
    tokens = tf.reverse(tokens, [0])
    after_end = tf.cumsum(tf.cast(tf.equal(tokens, end_token), tf.int32), axis=0,
                          exclusive=True) > 0
    return tf.where(after_end, tf.fill(tf.shape(tokens), end_token), tokens)


class BeamSearchDecoder:
    """contrib's BeamSearchDecoder (TF 1.15 math, no coverage penalty): `initial_state` is the
    cell's state for batch * beam_width rows (`tile_batch`), beams of one example side by side.

    Per step, with `total = log_probs[:, :, None] + log_softmax(logits)` (a finished beam's row
    is 0 at end_token and the dtype's minimum elsewhere), `length = lengths + (token !=
    end_token, for unfinished beams)` and `score = total / ((5 + length) / 6) **
    length_penalty_weight` (1 at weight 0), the top beam_width of each example's
    beam_width * vocab scores become the next beams. At time 0 only beam 0 is live (the others
    start at -inf). A beam's length grows by one per step while it is unfinished (end_token
    counted).
    """
    tracks_own_finished = True

    def __init__(self, cell, embedding, start_tokens, end_token, initial_state, beam_width,
                 output_layer=None, length_penalty_weight=0.0):
        self._cell, self._output_layer = cell, output_layer
        self._embedding = (embedding if callable(embedding)
                           else lambda ids: tf.nn.embedding_lookup(embedding, ids))
        start_tokens = tf.convert_to_tensor(start_tokens, tf.int32)
        self._end_token = tf.convert_to_tensor(end_token, tf.int32)
        self.batch_size = tf.size(start_tokens)
        self._beam_width = beam_width
        self._length_penalty_weight = length_penalty_weight
        self._initial_cell_state = tf.nest.map_structure(self._split_if_batched, initial_state)
        self._start_inputs = self._embedding(tf.tile(start_tokens[:, None], [1, beam_width]))

    def _split(self, t):
        return tf.reshape(t, tf.concat([[self.batch_size, self._beam_width], tf.shape(t)[1:]],
                                       0))

    def _merge(self, t):
        return tf.reshape(t, tf.concat([[self.batch_size * self._beam_width], tf.shape(t)[2:]],
                                       0))

    def _split_if_batched(self, t):
        if _is_array(t):
            raise ValueError("A TensorArray in the cell state (alignment_history) is not "
                             "supported by this BeamSearchDecoder.")
        return self._split(t) if t.shape.rank >= 1 else t

    def _merge_if_batched(self, t):
        return self._merge(t) if t.shape.rank >= 2 else t

    def initialize(self):
        finished = tf.zeros([self.batch_size, self._beam_width], tf.bool)
        dtype = tf.nest.flatten(self._initial_cell_state)[0].dtype
        log_probs = tf.one_hot(tf.zeros([self.batch_size], tf.int32), self._beam_width,
                               on_value=tf.constant(0.0, dtype),
                               off_value=tf.constant(-np.inf, dtype), dtype=dtype)
        state = BeamSearchDecoderState(
            cell_state=self._initial_cell_state, log_probs=log_probs, finished=finished,
            lengths=tf.zeros([self.batch_size, self._beam_width], tf.int64))
        return finished, self._start_inputs, state

    def step(self, time, inputs, state):
        with tf.name_scope("BeamSearchDecoderStep"):
            cell_state = tf.nest.map_structure(self._merge_if_batched, state.cell_state)
            outputs, next_cell_state = self._cell(self._merge(inputs), cell_state)
            outputs = self._split(outputs)
            next_cell_state = tf.nest.map_structure(self._split_if_batched, next_cell_state)
            if self._output_layer is not None:
                outputs = self._output_layer(outputs)
            output, next_state = self._search_step(outputs, next_cell_state, state)
            finished = next_state.finished
            next_inputs = tf.cond(tf.reduce_all(finished), lambda: self._start_inputs,
                                  lambda: self._embedding(output.predicted_ids))
        return output, next_state, next_inputs, finished

    def _search_step(self, logits, next_cell_state, state):
        batch, width, end = self.batch_size, self._beam_width, self._end_token
        vocab = logits.shape[-1]
        previously_finished = state.finished
        step_log_probs = tf.nn.log_softmax(logits)
        finished_row = tf.one_hot(end, vocab, on_value=0.0, off_value=logits.dtype.min,
                                  dtype=logits.dtype)
        step_log_probs = tf.where(previously_finished[:, :, None],
                                  tf.broadcast_to(finished_row, tf.shape(step_log_probs)),
                                  step_log_probs)
        total = state.log_probs[:, :, None] + step_log_probs
        lengths_to_add = tf.one_hot(tf.fill([batch, width], end), vocab, on_value=np.int64(0),
                                    off_value=np.int64(1), dtype=tf.int64)
        lengths_to_add *= tf.cast(tf.logical_not(previously_finished), tf.int64)[:, :, None]
        new_lengths = lengths_to_add + state.lengths[:, :, None]
        scores = total / _length_penalty(new_lengths, self._length_penalty_weight)
        next_scores, word_indices = tf.nn.top_k(tf.reshape(scores, [batch, -1]), k=width)
        next_log_probs = tf.gather(tf.reshape(total, [batch, -1]), word_indices, batch_dims=1)
        next_word_ids = tf.math.floormod(word_indices, vocab)
        next_beam_ids = tf.math.floordiv(word_indices, vocab)
        gathered_finished = tf.gather(previously_finished, next_beam_ids, batch_dims=1)
        next_finished = tf.logical_or(gathered_finished, tf.equal(next_word_ids, end))
        next_lengths = (tf.gather(state.lengths, next_beam_ids, batch_dims=1)
                        + tf.cast(tf.logical_not(gathered_finished), tf.int64))
        next_cell_state = tf.nest.map_structure(
            lambda t: tf.gather(t, next_beam_ids, batch_dims=1) if t.shape.rank >= 2 else t,
            next_cell_state)
        return (BeamSearchDecoderOutput(next_scores, next_word_ids, next_beam_ids),
                BeamSearchDecoderState(next_cell_state, next_log_probs, next_finished,
                                       next_lengths))

    def output_specs(self):
        width = self._beam_width
        return BeamSearchDecoderOutput(tf.TensorSpec([None, width], tf.float32),
                                       tf.TensorSpec([None, width], tf.int32),
                                       tf.TensorSpec([None, width], tf.int32))

    def finalize(self, outputs, state, lengths):
        max_lengths = tf.cast(tf.reduce_max(state.lengths, axis=1), tf.int32)
        predicted = gather_tree(outputs.predicted_ids, outputs.parent_ids, max_lengths,
                                self._end_token)
        return FinalBeamSearchDecoderOutput(predicted, outputs), state


def _length_penalty(lengths, weight):
    if weight == 0:
        return 1.0
    return ((5.0 + tf.cast(lengths, tf.float32)) ** weight) / ((5.0 + 1.0) ** weight)


# --- Loss ----------------------------------------------------------------------------------------
def sequence_loss(logits, targets, weights):
    """contrib's sequence_loss with its defaults (average across timesteps and batch): the
    weighted sparse cross entropy summed, over the sum of the weights (0 where they sum to 0)."""
    vocab = tf.shape(logits)[-1]
    crossent = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.reshape(targets, [-1]), logits=tf.reshape(logits, [-1, vocab]))
    crossent *= tf.reshape(weights, [-1])
    return tf.math.divide_no_nan(tf.reduce_sum(crossent), tf.reduce_sum(weights))
