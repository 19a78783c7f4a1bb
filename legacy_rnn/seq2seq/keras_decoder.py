"""The Keras 3 twin of tf.contrib.seq2seq's attention decoder: `keras` and `keras.ops` only.

It imports no TensorFlow, so it runs under `KERAS_BACKEND=jax` or `torch` too. The TF1 side, with
the math each layer reproduces, is `legacy_rnn.seq2seq.tf1`.

- `BahdanauAttention`, `LuongAttention`: the mechanisms (weights `memory_kernel`, then
  Bahdanau's `query_kernel`, `attention_v` and with normalize `attention_g`, `attention_b`;
  Luong's `attention_g` with scale). The memory layer is applied once per sequence (`memory`).
- `AttentionDecoderCell`: contrib's AttentionWrapper around any Keras RNN cell (the zoo's twins):
  the cell reads `concat([inputs, previous attention])`; weights: the cell's, the mechanism's,
  then `attention_kernel` when `attention_layer_size` is set.
- `teacher_forced`, `greedy_decode`, `beam_search_decode`: TrainingHelper, GreedyEmbeddingHelper
  and BeamSearchDecoder under dynamic_decode, as eager loops over time that stop where TF1's
  `while_loop` stops (every row finished, or `maximum_iterations`).

Traps these keep (docs/migration.md): the wrapper's initial attention is zeros, not the encoder
state; `output_attention=True` (the default) makes the attention vector, not the cell's output,
the step's output and the projection's input; BeamSearchDecoder starts with only beam 0 live and
counts end_token in a beam's length.
"""
import keras
import numpy as np
from keras import ops

PACKAGE = "legacy_rnn"


def _length_mask(lengths, maxlen):
    return ops.arange(maxlen)[None, :] < ops.cast(lengths, "int32")[:, None]


@keras.saving.register_keras_serializable(package=PACKAGE)
class BahdanauAttention(keras.layers.Layer):
    """score_t = sum(v * tanh(keys_t + query @ query_kernel)); normalize: v -> g v / |v|, + b."""

    def __init__(self, units, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.units, self.normalize = units, normalize

    def build_for(self, memory_depth, query_depth):
        self.memory_kernel = self.add_weight((memory_depth, self.units), name="memory_kernel")
        self.query_kernel = self.add_weight((query_depth, self.units), name="query_kernel")
        self.attention_v = self.add_weight((self.units,), name="attention_v")
        if self.normalize:
            self.attention_g = self.add_weight(
                (), name="attention_g",
                initializer=keras.initializers.Constant(np.sqrt(1.0 / self.units)))
            self.attention_b = self.add_weight((self.units,), name="attention_b",
                                               initializer="zeros")
        self.built = True

    def score(self, query, keys):
        processed = ops.matmul(query, self.query_kernel)[:, None, :]
        v = self.attention_v
        if not self.normalize:
            return ops.sum(v * ops.tanh(keys + processed), axis=2)
        normed_v = self.attention_g * v * ops.rsqrt(ops.sum(ops.square(v)))
        return ops.sum(normed_v * ops.tanh(keys + processed + self.attention_b), axis=2)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "normalize": self.normalize}


@keras.saving.register_keras_serializable(package=PACKAGE)
class LuongAttention(keras.layers.Layer):
    """score_t = query . keys_t; scale: g * score (the query's depth must equal `units`)."""

    def __init__(self, units, scale=False, **kwargs):
        super().__init__(**kwargs)
        self.units, self.scale = units, scale

    def build_for(self, memory_depth, query_depth):
        if query_depth != self.units:
            raise ValueError(f"LuongAttention needs the query's depth ({query_depth}) to equal "
                             f"units ({self.units}).")
        self.memory_kernel = self.add_weight((memory_depth, self.units), name="memory_kernel")
        if self.scale:
            self.attention_g = self.add_weight((), name="attention_g", initializer="ones")
        self.built = True

    def score(self, query, keys):
        score = ops.squeeze(ops.matmul(query[:, None, :], ops.transpose(keys, [0, 2, 1])), 1)
        return self.attention_g * score if self.scale else score

    def get_config(self):
        return {**super().get_config(), "units": self.units, "scale": self.scale}


class Memory:
    """The encoder's outputs as the mechanism reads them: values (rows past each length zeroed),
    keys (values @ memory_kernel) and the length mask."""

    def __init__(self, mechanism, memory, lengths=None):
        # A NumPy array times a backend tensor is the backend's product on TF and JAX, but a
        # TypeError on PyTorch: the memory is a tensor before any arithmetic.
        memory = ops.convert_to_tensor(memory)
        maxlen = ops.shape(memory)[1]
        self.mask = None if lengths is None else _length_mask(lengths, maxlen)
        self.values = memory if lengths is None else memory * ops.cast(
            self.mask, memory.dtype)[:, :, None]
        self.keys = ops.matmul(self.values, mechanism.memory_kernel)

    def tiled(self, multiplier):
        """tile_batch: each example `multiplier` times, side by side."""
        tiled = Memory.__new__(Memory)
        tiled.values, tiled.keys = tile_batch(self.values, multiplier), tile_batch(
            self.keys, multiplier)
        tiled.mask = None if self.mask is None else tile_batch(self.mask, multiplier)
        return tiled


def _top_k(x, k):
    """The `k` largest along the last axis, equal values in index order, as TF's top_k picks
    them. Beam search meets exact ties (two finished beams, two words of the same score), and
    torch.topk, which `keras.ops.top_k` calls on PyTorch, may order a tie either way: a stable
    sort of the negated values keeps TF's choice on every backend."""
    indices = ops.argsort(-x, axis=-1)[..., :k]
    return ops.take_along_axis(x, indices, axis=-1), indices


def tile_batch(x, multiplier):
    return ops.repeat(x, multiplier, axis=0)


@keras.saving.register_keras_serializable(package=PACKAGE)
class AttentionDecoderCell(keras.layers.Layer):
    """AttentionWrapper(cell, mechanism, attention_layer_size, output_attention) in Keras 3.

    States: the cell's states (Keras order), then `attention`. `step` returns
    (output, states, alignments)."""

    def __init__(self, cell, attention, attention_layer_size=None, output_attention=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.cell = cell if isinstance(cell, keras.layers.Layer) else \
            keras.saving.deserialize_keras_object(cell)
        self.attention = attention if isinstance(attention, keras.layers.Layer) else \
            keras.saving.deserialize_keras_object(attention)
        self.attention_layer_size = attention_layer_size
        self.output_attention = output_attention

    def build_for(self, input_depth, memory_depth):
        size = self.attention_layer_size or memory_depth
        self.attention_size = size
        cell_output = self.cell.output_size
        if not self.cell.built:  # a deserialized cell comes built from its build config
            self.cell.build((None, input_depth + size))
        self.attention.build_for(memory_depth, cell_output)
        if self.attention_layer_size:
            self.attention_kernel = self.add_weight(
                (cell_output + memory_depth, self.attention_layer_size), name="attention_kernel")
        self.built = True

    def initial_attention(self, batch, dtype="float32"):
        return ops.zeros((batch, self.attention_size), dtype)

    def step(self, inputs, states, memory):
        *cell_states, attention = states
        cell_output, next_cell_states = self.cell(
            ops.concatenate([inputs, attention], -1), list(cell_states))
        if not isinstance(next_cell_states, (list, tuple)):
            next_cell_states = [next_cell_states]
        score = self.attention.score(cell_output, memory.keys)
        if memory.mask is not None:
            score = ops.where(memory.mask, score, ops.full_like(score, -np.inf))
        alignments = ops.softmax(score, axis=-1)
        context = ops.squeeze(ops.matmul(alignments[:, None, :], memory.values), 1)
        if self.attention_layer_size:
            attention = ops.matmul(ops.concatenate([cell_output, context], 1),
                                   self.attention_kernel)
        else:
            attention = context
        output = attention if self.output_attention else cell_output
        return output, [*next_cell_states, attention], alignments

    def get_config(self):
        return {**super().get_config(),
                "cell": keras.saving.serialize_keras_object(self.cell),
                "attention": keras.saving.serialize_keras_object(self.attention),
                "attention_layer_size": self.attention_layer_size,
                "output_attention": self.output_attention}


def _all(finished):
    return bool(np.all(ops.convert_to_numpy(finished)))


def teacher_forced(decoder, projection, inputs, lengths, memory, states):
    """TrainingHelper + BasicDecoder under dynamic_decode: logits [B, T, V] for
    T = max(lengths) (TF1 stops there), and the alignments [B, T, memory time]."""
    steps = int(np.max(ops.convert_to_numpy(lengths))) if lengths is not None else \
        inputs.shape[1]
    logits, alignments = [], []
    for t in range(steps):
        output, states, align = decoder.step(inputs[:, t], states, memory)
        logits.append(projection(output))
        alignments.append(align)
    return ops.stack(logits, 1), ops.stack(alignments, 1)


def greedy_decode(decoder, projection, embedding, start_tokens, end_token, memory, states,
                  maximum_iterations, impute_finished=False, stop_early=True):
    """GreedyEmbeddingHelper + BasicDecoder under dynamic_decode: (ids [B, T], logits
    [B, T, V], lengths [B]); T is where every row has emitted end_token, or the maximum.
    `stop_early=False` runs every step (traceable: no value read back), the first T the same."""
    batch = ops.shape(start_tokens)[0]
    inputs = embedding(start_tokens)
    finished = ops.zeros((batch,), "bool")
    lengths = ops.zeros((batch,), "int32")
    ids, logits = [], []
    for t in range(maximum_iterations):
        output, next_states, _ = decoder.step(inputs, states, memory)
        step_logits = projection(output)
        sample = next_sample = ops.cast(ops.argmax(step_logits, axis=-1), "int32")
        next_finished = ops.logical_or(ops.equal(sample, end_token), finished)
        if t + 1 >= maximum_iterations:
            next_finished = ops.ones_like(next_finished)
        lengths = ops.where(finished, lengths, t + 1)
        if impute_finished:
            step_logits = ops.where(finished[:, None], 0.0, step_logits)
            sample = ops.where(finished, 0, sample)
            next_states = [ops.where(finished[:, None], old, new)
                           for old, new in zip(states, next_states)]
        ids.append(sample)
        logits.append(step_logits)
        states, finished = next_states, next_finished
        if stop_early and _all(finished):
            break
        inputs = embedding(next_sample)
    return ops.stack(ids, 1), ops.stack(logits, 1), lengths


def _length_penalty(lengths, weight):
    if weight == 0:
        return 1.0
    return ((5.0 + ops.cast(lengths, "float32")) ** weight) / ((5.0 + 1.0) ** weight)


def gather_tree(step_ids, parent_ids, max_lengths, end_token):
    """[B, T, K] batch-major: each beam's tokens read back through its parents (TF1's
    GatherTree); at or past a row's max length, and after a beam's first end_token: end_token."""
    steps = step_ids.shape[1]
    batch, width = ops.shape(step_ids)[0], ops.shape(step_ids)[2]
    identity = ops.tile(ops.arange(width)[None], (batch, 1))
    parent = identity
    tokens = [None] * steps
    for t in reversed(range(steps)):
        valid = (t < max_lengths)[:, None]
        index = ops.where(ops.equal(max_lengths - 1, t)[:, None], identity, parent)
        token = ops.take_along_axis(step_ids[:, t], index, axis=1)
        tokens[t] = ops.where(valid, token, end_token)
        parent = ops.where(valid, ops.take_along_axis(parent_ids[:, t], index, axis=1), parent)
    tokens = ops.stack(tokens, 1)
    ended = ops.cast(ops.equal(tokens, end_token), "int32")
    after_end = (ops.cumsum(ended, axis=1) - ended) > 0
    return ops.where(after_end, end_token, tokens)


def beam_search_decode(decoder, projection, embedding, start_tokens, end_token, memory, states,
                       beam_width, maximum_iterations, length_penalty_weight=0.0,
                       stop_early=True, steps_too=False):
    """BeamSearchDecoder under dynamic_decode: (predicted ids [B, T, K] after gather_tree,
    scores [B, T, K], lengths [B, K]); `memory` and `states` hold batch * beam_width rows
    (`Memory.tiled`, `tile_batch`), as TF1's must. `stop_early=False`: as greedy_decode's.
    `steps_too`: also each step's word ids and parent beams [B, T, K] (the loop's outputs)."""
    batch = ops.shape(start_tokens)[0]
    width = beam_width
    start = ops.repeat(ops.cast(start_tokens, "int32")[:, None], width, axis=1)
    inputs = embedding(start)
    log_probs = ops.where(ops.arange(width)[None, :] == 0, 0.0, -np.inf) * ops.ones((batch, 1))
    finished = ops.zeros((batch, width), "bool")
    lengths = ops.zeros((batch, width), "int32")
    scores_t, ids_t, parents_t = [], [], []
    for t in range(maximum_iterations):
        flat_inputs = ops.reshape(inputs, (batch * width, -1))
        output, next_states, _ = decoder.step(flat_inputs, states, memory)
        logits = projection(output)
        vocab = logits.shape[-1]
        logits = ops.reshape(logits, (batch, width, vocab))
        step_log_probs = ops.log_softmax(logits, axis=-1)
        finished_row = ops.where(ops.arange(vocab) == end_token, 0.0,
                                 np.finfo(np.float32).min)
        step_log_probs = ops.where(finished[:, :, None], finished_row, step_log_probs)
        total = log_probs[:, :, None] + step_log_probs
        not_end = ops.cast(ops.arange(vocab) != end_token, "int32")[None, None, :]
        new_lengths = lengths[:, :, None] + not_end * ops.cast(
            ops.logical_not(finished), "int32")[:, :, None]
        scores = total / _length_penalty(new_lengths, length_penalty_weight)
        next_scores, indices = _top_k(ops.reshape(scores, (batch, -1)), width)
        log_probs = ops.take_along_axis(ops.reshape(total, (batch, -1)), indices, axis=1)
        word_ids = ops.cast(indices % vocab, "int32")
        beam_ids = ops.cast(indices // vocab, "int32")
        gathered_finished = ops.take_along_axis(finished, beam_ids, axis=1)
        finished = ops.logical_or(gathered_finished, ops.equal(word_ids, end_token))
        lengths = ops.take_along_axis(lengths, beam_ids, axis=1) + ops.cast(
            ops.logical_not(gathered_finished), "int32")
        rows = ops.reshape(beam_ids + ops.arange(batch)[:, None] * width, (-1,))
        states = [ops.take(s, rows, axis=0) for s in next_states]
        scores_t.append(next_scores)
        ids_t.append(word_ids)
        parents_t.append(beam_ids)
        if (stop_early and _all(finished)) or t + 1 >= maximum_iterations:
            break
        inputs = embedding(word_ids)
    ids, parents = ops.stack(ids_t, 1), ops.stack(parents_t, 1)
    predicted = gather_tree(ids, parents, ops.max(lengths, axis=1), end_token)
    if steps_too:
        return predicted, ops.stack(scores_t, 1), lengths, ids, parents
    return predicted, ops.stack(scores_t, 1), lengths


def run(decoder, projection, embedding, arrays, mode, problem, stop_early=True):
    """One of the three ways TF1 ran the decoder, on {memory, memory_lengths, states (the
    cell's, Keras order), inputs, lengths}: `teacher` -> {logits}; `greedy` -> {ids, logits,
    lengths}; `beam` -> {ids, scores, lengths} ({beam_width, length_penalty_weight,
    maximum_iterations, start, end} from `problem`)."""
    batch = ops.shape(arrays["memory"])[0]
    memory = Memory(decoder.attention, arrays["memory"], arrays["memory_lengths"])
    states = [ops.convert_to_tensor(s) for s in arrays["states"]]
    states.append(decoder.initial_attention(batch))
    if mode == "teacher":
        logits, _ = teacher_forced(decoder, projection, ops.convert_to_tensor(arrays["inputs"]),
                                   arrays["lengths"], memory, states)
        return {"logits": logits}
    start = ops.full((batch,), problem["start"], "int32")
    if mode == "greedy":
        ids, logits, lengths = greedy_decode(decoder, projection, embedding, start,
                                             problem["end"], memory, states,
                                             problem["maximum_iterations"],
                                             problem.get("impute_finished", False), stop_early)
        return {"ids": ids, "logits": logits, "lengths": lengths}
    width = problem["beam_width"]
    ids, scores, lengths = beam_search_decode(
        decoder, projection, embedding, start, problem["end"], memory.tiled(width),
        [tile_batch(s, width) for s in states], width, problem["maximum_iterations"],
        problem["length_penalty_weight"], stop_early)
    return {"ids": ids, "scores": scores, "lengths": lengths}


# --- legacy_seq2seq ---------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package=PACKAGE)
class LegacyAttentionDecoderCell(keras.layers.Layer):
    """legacy_seq2seq's attention_decoder step (`legacy_rnn.seq2seq.legacy` has the equations),
    around any Keras RNN cell; `cell_projection`: the OutputProjectionWrapper's size, if the
    cell is wrapped in one; `query_order`: the cell's Keras states in TF1's flatten order (an
    LSTM's query is concat([c, h]): `[1, 0]`).

    Weights: the cell's; `cell_projection_kernel`, `_bias`; `input_kernel`, `input_bias`; per
    head `attn_w_K` [D, D], `attn_v_K`, `query_kernel_K`, `query_bias_K`; `output_kernel`,
    `output_bias`."""

    def __init__(self, cell, output_size, num_heads=1, cell_projection=None, query_order=(0,),
                 **kwargs):
        super().__init__(**kwargs)
        self.cell = cell if isinstance(cell, keras.layers.Layer) else \
            keras.saving.deserialize_keras_object(cell)
        self.output_size, self.num_heads = output_size, num_heads
        self.cell_projection, self.query_order = cell_projection, list(query_order)

    def build_for(self, input_depth, memory_depth):
        heads, depth = self.num_heads, memory_depth
        if not self.cell.built:
            self.cell.build((None, input_depth))
        sizes = self.cell.state_size if isinstance(self.cell.state_size, (list, tuple)) else [
            self.cell.state_size]
        cell_output = self.cell_projection or self.cell.output_size
        if self.cell_projection:
            self.cell_projection_kernel = self.add_weight(
                (self.cell.output_size, self.cell_projection), name="cell_projection_kernel")
            self.cell_projection_bias = self.add_weight((self.cell_projection,),
                                                        name="cell_projection_bias")
        self.input_kernel = self.add_weight((input_depth + depth * heads, input_depth),
                                            name="input_kernel")
        self.input_bias = self.add_weight((input_depth,), name="input_bias")
        self.heads = []
        for k in range(heads):
            self.heads.append({
                "w": self.add_weight((depth, depth), name=f"attn_w_{k}"),
                "v": self.add_weight((depth,), name=f"attn_v_{k}"),
                "query_kernel": self.add_weight((sum(sizes), depth), name=f"query_kernel_{k}"),
                "query_bias": self.add_weight((depth,), name=f"query_bias_{k}")})
        self.output_kernel = self.add_weight((cell_output + depth * heads, self.output_size),
                                             name="output_kernel")
        self.output_bias = self.add_weight((self.output_size,), name="output_bias")
        self.built = True

    def features(self, memory):
        return [ops.matmul(memory, head["w"]) for head in self.heads]

    def attention(self, states, memory, features):
        query = ops.concatenate([states[i] for i in self.query_order], 1)
        reads = []
        for head, feature in zip(self.heads, features):
            y = ops.matmul(query, head["query_kernel"]) + head["query_bias"]
            weights = ops.softmax(ops.sum(head["v"] * ops.tanh(feature + y[:, None, :]), 2),
                                  axis=-1)
            reads.append(ops.sum(weights[:, :, None] * memory, 1))
        return reads

    def step(self, inputs, states, attns, memory, features):
        x = ops.matmul(ops.concatenate([inputs, *attns], 1), self.input_kernel) + self.input_bias
        cell_output, states = self.cell(x, list(states))
        if not isinstance(states, (list, tuple)):
            states = [states]
        if self.cell_projection:
            cell_output = ops.matmul(cell_output, self.cell_projection_kernel) + \
                self.cell_projection_bias
        attns = self.attention(states, memory, features)
        output = ops.matmul(ops.concatenate([cell_output, *attns], 1), self.output_kernel) + \
            self.output_bias
        return output, list(states), attns

    def get_config(self):
        return {**super().get_config(), "cell": keras.saving.serialize_keras_object(self.cell),
                "output_size": self.output_size, "num_heads": self.num_heads,
                "cell_projection": self.cell_projection, "query_order": self.query_order}


def legacy_decode(decoder, embedding, decoder_ids, memory, states, feed_previous=False,
                  output_projection=None, initial_state_attention=False):
    """embedding_attention_decoder over `decoder_ids` [B, T] (with `feed_previous`, only step 0's
    id is read; later steps embed the argmax of the previous output, through
    `output_projection` (W, B) where it is given): outputs [B, T, output_size]."""
    features = decoder.features(memory)
    batch = ops.shape(memory)[0]
    attns = ([ops.zeros((batch, memory.shape[-1]))] * decoder.num_heads
             if not initial_state_attention else decoder.attention(states, memory, features))
    outputs, prev = [], None
    for t in range(decoder_ids.shape[1]):
        if feed_previous and prev is not None:
            logits = prev if output_projection is None else (
                ops.matmul(prev, output_projection[0]) + output_projection[1])
            inputs = embedding(ops.argmax(logits, axis=1))
        else:
            inputs = embedding(decoder_ids[:, t])
        prev, states, attns = decoder.step(inputs, states, attns, memory, features)
        outputs.append(prev)
    return ops.stack(outputs, 1)


# --- Files ----------------------------------------------------------------------------------------
def save_layers(stem, layers, depths):
    """`stem.json` (each layer's Keras config, and the depths `build_for` takes) and `stem.npz`
    (their weights, in `get_weights` order): what `load_layers` reads back on any backend. Both
    written atomically; nothing in them runs code when loaded."""
    import json
    import os
    import tempfile
    arrays = {f"{name}{i:03d}": w for name, layer in layers.items()
              for i, w in enumerate(layer.get_weights())}
    config = {"layers": {name: keras.saving.serialize_keras_object(layer)
                         for name, layer in layers.items()},
              "depths": list(depths), "weights": os.path.basename(stem) + ".npz"}
    directory = os.path.dirname(stem) or "."
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".npz", delete=False) as f:
        np.savez(f, **arrays)
    os.replace(f.name, stem + ".npz")
    with tempfile.NamedTemporaryFile("w", dir=directory, suffix=".json", delete=False) as f:
        json.dump(config, f, indent=1, default=str)
    os.replace(f.name, stem + ".json")


def load_layers(stem):
    """{name: built layer holding its weights} from `save_layers`' files."""
    import json
    import zipfile

    from legacy_rnn.errors import UserError
    try:
        with open(stem + ".json") as f:
            config = json.load(f)
        data = np.load(stem + ".npz", allow_pickle=False)
        layers = {name: keras.saving.deserialize_keras_object(c)
                  for name, c in config["layers"].items()}
        input_depth, memory_depth = config["depths"]
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
        raise UserError(f"{stem}.json / {stem}.npz cannot be read as a converted decoder "
                        f"({type(e).__name__}: {str(e)[:160]}). They are damaged or not what "
                        "`convert` wrote: convert the checkpoint again.") from None
    for name, layer in layers.items():
        if hasattr(layer, "build_for"):
            layer.build_for(input_depth, memory_depth)
    for name, layer in layers.items():
        weights = [data[k] for k in sorted(data.files) if k[:-3] == name]
        if not layer.built:  # a Dense, Embedding or RNN: built from its first weight's shape
            layer.build((None,) if isinstance(layer, keras.layers.Embedding) else
                        (None, None, weights[0].shape[0]) if isinstance(layer, keras.layers.RNN)
                        else (None, weights[0].shape[0]))
        layer.set_weights(weights)
    return layers
