"""An attention decoder as one spec: its TF1 construction, its Keras 3 twin, and its variables
both ways.

A `DecoderSpec` says what contrib's user wrote: the wrapped cell (any zoo `CellSpec`), the
mechanism (`AttentionSpec`: Bahdanau with or without normalize, Luong with or without scale),
`attention_layer_size`, `output_attention`, the vocabulary of the output projection and the
scopes (`decoder` is dynamic_decode's default; the projection is `tf.layers.Dense`'s `dense`
unless named, nmt names it `output_projection`).

TF1 variables and their Keras twins (`<w>` = `<scope>/attention_wrapper`, or the wrapper's own
name: nmt's is `attention`):

| TF1 | Keras |
|---|---|
| `<memory_scope>/memory_layer/kernel` | mechanism `memory_kernel` |
| `<w>/<cell scope>/...` | the cell's weights (the zoo family's mapping) |
| `<w>/bahdanau_attention/query_layer/kernel`, `attention_v`, `attention_g`, `attention_b` | `query_kernel`, `attention_v`, `attention_g`, `attention_b` |
| `<w>/luong_attention/attention_g` (scale) | `attention_g` |
| `<w>/attention_layer/kernel` | decoder `attention_kernel` |
| `<scope>/<output_layer>/kernel`, `bias` (nmt's has none) | the projection `Dense` |
"""
import dataclasses

import keras

from legacy_rnn.errors import UserError
from legacy_rnn.seq2seq import keras_decoder
from legacy_rnn.zoo.cells import CellSpec

MECHANISMS = ("bahdanau", "luong")


@dataclasses.dataclass(frozen=True)
class AttentionSpec:
    kind: str
    units: int
    normalize: bool = False  # Bahdanau only
    scale: bool = False  # Luong only

    def __post_init__(self):
        if self.kind not in MECHANISMS:
            raise UserError(f"Unknown attention {self.kind!r}; choose one of "
                            f"{', '.join(MECHANISMS)}.")
        if (self.kind == "luong" and self.normalize) or (self.kind == "bahdanau" and self.scale):
            raise UserError(f"{self.describe()}: normalize is Bahdanau's option and scale is "
                            "Luong's.")

    @property
    def scope(self):
        return f"{self.kind}_attention"

    def describe(self):
        name = "BahdanauAttention" if self.kind == "bahdanau" else "LuongAttention"
        option = ("normalize" if self.kind == "bahdanau" else "scale")
        return f"{name}({self.units}, {option}={getattr(self, option)})"


@dataclasses.dataclass(frozen=True)
class DecoderSpec:
    cell: CellSpec
    attention: AttentionSpec
    vocab: int
    attention_layer_size: int | None = None
    output_attention: bool = True
    scope: str = "decoder"
    memory_scope: str = ""
    output_layer: str = "dense"
    wrapper_name: str = "attention_wrapper"  # nmt: AttentionWrapper(..., name="attention")
    output_bias: bool = True  # nmt: Dense(vocab, use_bias=False)

    def describe(self):
        name = "" if self.wrapper_name == "attention_wrapper" else f", name={self.wrapper_name!r}"
        bias = "" if self.output_bias else ", use_bias=False"
        return (f"AttentionWrapper({self.cell.describe()}, {self.attention.describe()}, "
                f"attention_layer_size={self.attention_layer_size}, "
                f"output_attention={self.output_attention}{name}) -> Dense({self.vocab}{bias})")

    def attention_size(self, memory_depth):
        return self.attention_layer_size or memory_depth

    def output_depth(self, memory_depth):
        return (self.attention_size(memory_depth) if self.output_attention
                else self.cell.output_size)

    # --- Names ----------------------------------------------------------------------------
    @property
    def wrapper(self):
        return _join(self.scope, self.wrapper_name)

    def variables(self, input_depth, memory_depth):
        """{TF1 variable name: shape} of the decoder (the embedding and encoder aside)."""
        att, units = self.attention, self.attention.units
        cell_input = input_depth + self.attention_size(memory_depth)
        names = {_join(self.memory_scope, "memory_layer/kernel"): (memory_depth, units)}
        names.update({f"{self.wrapper}/{self.cell.family.scope}/{k}": shape for k, shape in
                      self.cell.family.variables(self.cell, cell_input).items()})
        mech = f"{self.wrapper}/{att.scope}"
        if att.kind == "bahdanau":
            names[f"{mech}/query_layer/kernel"] = (self.cell.output_size, units)
            names[f"{mech}/attention_v"] = (units,)
            if att.normalize:
                names[f"{mech}/attention_g"] = ()
                names[f"{mech}/attention_b"] = (units,)
        elif att.scale:
            names[f"{mech}/attention_g"] = ()
        if self.attention_layer_size:
            names[f"{self.wrapper}/attention_layer/kernel"] = (
                self.cell.output_size + memory_depth, self.attention_layer_size)
        out = _join(self.scope, self.output_layer)
        names[f"{out}/kernel"] = (self.output_depth(memory_depth), self.vocab)
        if self.output_bias:
            names[f"{out}/bias"] = (self.vocab,)
        return names

    # --- TF1 --------------------------------------------------------------------------------
    def tf1_cell(self, memory, memory_lengths, initial_cell_state=None):
        """contrib's AttentionWrapper over this spec's cell and mechanism, in the current graph
        (the memory layer is built here, at the current scope, as contrib builds it)."""
        from legacy_rnn.seq2seq import tf1
        att = self.attention
        if att.kind == "bahdanau":
            mechanism = tf1.BahdanauAttention(att.units, memory, memory_lengths,
                                              normalize=att.normalize)
        else:
            mechanism = tf1.LuongAttention(att.units, memory, memory_lengths, scale=att.scale)
        return tf1.AttentionWrapper(
            self.cell.family.tf1_cell(self.cell), mechanism,
            attention_layer_size=self.attention_layer_size,
            output_attention=self.output_attention, initial_cell_state=initial_cell_state,
            name=None if self.wrapper_name == "attention_wrapper" else self.wrapper_name)

    def tf1_projection(self):
        import tensorflow as tf
        return tf.compat.v1.layers.Dense(self.vocab, name=self.output_layer,
                                         use_bias=self.output_bias)

    def tf1_decode(self, memory, memory_lengths, initial_cell_state=None, *, inputs=None,
                   lengths=None, embedding=None, start_tokens=None, end_token=None,
                   beam_width=None, length_penalty_weight=0.0, maximum_iterations=None,
                   impute_finished=False):
        """dynamic_decode of this decoder in the current graph, as contrib's user wrote it:
        teacher-forced over `inputs` [B, T, E] with `lengths` (TrainingHelper), greedy from
        `start_tokens` (GreedyEmbeddingHelper over `embedding`), or beam search with
        `beam_width` (memory, lengths and state tiled with tile_batch, the wrapper's zero state
        for batch * beam_width with the cell state replaced). Returns dynamic_decode's
        (outputs, state, lengths)."""
        import tensorflow as tf
        from legacy_rnn.seq2seq import tf1
        from legacy_rnn.zoo import blocks
        # The cell's kernels and the Dense layers' (memory_layer, attention_layer, the
        # projection) take tf-keras's default initializer, seeded from Python's `random`: with
        # the graph-seeded one of TF 1.x, `set_random_seed` fixes them again.
        with blocks.seeded_initializer():
            batch = tf.shape(memory)[0]
            if beam_width:
                memory = tf1.tile_batch(memory, beam_width)
                memory_lengths = (None if memory_lengths is None
                                  else tf1.tile_batch(memory_lengths, beam_width))
                initial_cell_state = (None if initial_cell_state is None else
                                      tf.nest.map_structure(
                                          lambda t: tf1.tile_batch(t, beam_width),
                                          initial_cell_state))
            cell = self.tf1_cell(memory, memory_lengths)
            state = cell.zero_state(batch * (beam_width or 1), tf.float32)
            if initial_cell_state is not None:
                state = state._replace(cell_state=initial_cell_state)
            projection = self.tf1_projection()
            if beam_width:
                decoder = tf1.BeamSearchDecoder(cell, embedding, start_tokens, end_token, state,
                                                beam_width, projection, length_penalty_weight)
            elif inputs is not None:
                decoder = tf1.BasicDecoder(cell, tf1.TrainingHelper(inputs, lengths), state,
                                           projection)
            else:
                decoder = tf1.BasicDecoder(
                    cell, tf1.GreedyEmbeddingHelper(embedding, start_tokens, end_token), state,
                    projection)
            return tf1.dynamic_decode(decoder, impute_finished=impute_finished,
                                      maximum_iterations=maximum_iterations, scope=self.scope)

    # --- Keras ------------------------------------------------------------------------------
    def keras_twin(self, input_depth, memory_depth):
        """(AttentionDecoderCell, projection Dense), built."""
        att = self.attention
        mechanism = (keras_decoder.BahdanauAttention(att.units, att.normalize)
                     if att.kind == "bahdanau" else
                     keras_decoder.LuongAttention(att.units, att.scale))
        cell = keras_decoder.AttentionDecoderCell(
            self.cell.family.keras_cell(self.cell), mechanism,
            attention_layer_size=self.attention_layer_size,
            output_attention=self.output_attention, name="attention_decoder")
        cell.build_for(input_depth, memory_depth)
        projection = keras.layers.Dense(self.vocab, name="output_projection",
                                        use_bias=self.output_bias)
        projection.build((None, self.output_depth(memory_depth)))
        return cell, projection

    def _twin_slots(self, cell, projection):
        """[(TF1 name or the cell's prefix, Keras variable or the cell's layer)] in one order."""
        att, mech = self.attention, f"{self.wrapper}/{self.attention.scope}"
        m = cell.attention
        slots = [(_join(self.memory_scope, "memory_layer/kernel"), m.memory_kernel)]
        if att.kind == "bahdanau":
            slots += [(f"{mech}/query_layer/kernel", m.query_kernel),
                      (f"{mech}/attention_v", m.attention_v)]
            if att.normalize:
                slots += [(f"{mech}/attention_g", m.attention_g),
                          (f"{mech}/attention_b", m.attention_b)]
        elif att.scale:
            slots.append((f"{mech}/attention_g", m.attention_g))
        if self.attention_layer_size:
            slots.append((f"{self.wrapper}/attention_layer/kernel", cell.attention_kernel))
        out = _join(self.scope, self.output_layer)
        slots.append((f"{out}/kernel", projection.kernel))
        if self.output_bias:
            slots.append((f"{out}/bias", projection.bias))
        return slots

    def to_keras(self, cell, projection, tf1):
        """Sets the twin's weights from TF1's {name: array} (names as `variables` gives)."""
        missing = sorted(set(self.variables(*self._depths(cell))) - set(tf1))
        if missing:
            raise UserError(f"The checkpoint lacks {', '.join(missing)} that {self.describe()} "
                            "needs; check the decoder's scope and options.")
        prefix = f"{self.wrapper}/{self.cell.family.scope}/"
        relative = {k[len(prefix):]: v for k, v in tf1.items() if k.startswith(prefix)}
        cell.cell.set_weights(self.cell.family.to_keras(self.cell, relative))
        for name, variable in self._twin_slots(cell, projection):
            variable.assign(tf1[name])

    def to_tf1(self, cell, projection, values=None, gradients=False):
        """TF1's {name: array} from the twin: its weights, or `values` {Keras variable path:
        array} (gradients with `gradients=True`, where a folded forget_bias is not undone)."""
        read = ((lambda v: keras.ops.convert_to_numpy(v)) if values is None
                else (lambda v: values[v.path]))
        prefix = f"{self.wrapper}/{self.cell.family.scope}"
        cell_arrays = [read(v) for v in cell.cell.weights]
        tf1 = {f"{prefix}/{k}": v for k, v in self.cell.family.to_tf1(
            self.cell, cell_arrays, gradients=gradients).items()}
        tf1.update({name: read(variable) for name, variable in self._twin_slots(cell, projection)})
        return tf1

    def _depths(self, cell):
        memory_depth = cell.attention.memory_kernel.shape[0]
        bottom = getattr(cell.cell, "cells", [cell.cell])[0]  # a StackedCell's bottom level
        return bottom.kernel.shape[0] - cell.attention_size, memory_depth


def _join(*parts):
    return "/".join(p for p in parts if p)


@dataclasses.dataclass(frozen=True)
class LegacySpec:
    """legacy_seq2seq.embedding_attention_seq2seq as the translate tutorial called it: the same
    kind of cell for encoder and decoder, `num_heads`, and the output projection: the user's
    own (W, B) variables (`output_projection` names them), or None for contrib's
    OutputProjectionWrapper around the decoder cell.

    Variables (`<s>` = scope, `<a>` = `<s>/embedding_attention_decoder/attention_decoder`):
    `<s>/rnn/embedding_wrapper/embedding`, `<s>/rnn/embedding_wrapper/<cell>/...`,
    `<s>/embedding_attention_decoder/embedding`, `<a>/AttnW_K` [1, 1, D, D], `<a>/AttnV_K`,
    `<a>/kernel`, `<a>/bias`, `<a>/[output_projection_wrapper/]<cell>/...`,
    `<a>/output_projection_wrapper/kernel`, `bias`, `<a>/Attention_K/kernel`, `bias`,
    `<a>/AttnOutputProjection/kernel`, `bias`."""
    cell: CellSpec
    encoder_symbols: int
    decoder_symbols: int
    embedding_size: int
    num_heads: int = 1
    output_projection: tuple | None = None  # (W name, B name)
    scope: str = "embedding_attention_seq2seq"

    @property
    def _decoder(self):
        return f"{self.scope}/embedding_attention_decoder"

    @property
    def _attention(self):
        return f"{self._decoder}/attention_decoder"

    @property
    def _cell_prefix(self):
        wrapper = "" if self.output_projection else "output_projection_wrapper/"
        return f"{self._attention}/{wrapper}{self.cell.family.scope}"

    @property
    def output_size(self):
        return self.cell.output_size if self.output_projection else self.decoder_symbols

    def query_order(self):
        """The cell's Keras states in the order TF1 flattens its state (the attention query)."""
        from legacy_rnn.zoo import cells
        return cells.keras_state_order(self.cell)

    def variables(self):
        u, e, d, h = self.cell.output_size, self.embedding_size, self.cell.output_size, \
            self.num_heads
        family = self.cell.family
        names = {f"{self.scope}/rnn/embedding_wrapper/embedding": (self.encoder_symbols, e)}
        names.update({f"{self.scope}/rnn/embedding_wrapper/{family.scope}/{k}": s
                      for k, s in family.variables(self.cell, e).items()})
        names[f"{self._decoder}/embedding"] = (self.decoder_symbols, e)
        a = self._attention
        from legacy_rnn.zoo import cells
        state = sum(cells.tf1_state_sizes(self.cell))
        for k in range(h):
            names.update({f"{a}/AttnW_{k}": (1, 1, d, d), f"{a}/AttnV_{k}": (d,),
                          f"{a}/Attention_{k}/kernel": (state, d),
                          f"{a}/Attention_{k}/bias": (d,)})
        names.update({f"{a}/kernel": (e + d * h, e), f"{a}/bias": (e,)})
        names.update({f"{self._cell_prefix}/{k}": s
                      for k, s in family.variables(self.cell, e).items()})
        if not self.output_projection:
            names[f"{a}/output_projection_wrapper/kernel"] = (u, self.decoder_symbols)
            names[f"{a}/output_projection_wrapper/bias"] = (self.decoder_symbols,)
        cell_out = self.output_size
        names[f"{a}/AttnOutputProjection/kernel"] = (cell_out + d * h, self.output_size)
        names[f"{a}/AttnOutputProjection/bias"] = (self.output_size,)
        return names

    def keras_twin(self):
        """{encoder_embedding, encoder (an RNN returning sequences and states),
        decoder_embedding, decoder (LegacyAttentionDecoderCell)}, built."""
        e = self.embedding_size
        encoder = keras.layers.RNN(self.cell.family.keras_cell(self.cell), return_sequences=True,
                                   return_state=True, name="encoder")
        encoder.build((None, None, e))
        embeddings = {}
        for name, symbols in (("encoder_embedding", self.encoder_symbols),
                              ("decoder_embedding", self.decoder_symbols)):
            embeddings[name] = keras.layers.Embedding(symbols, e, name=name)
            embeddings[name].build((None,))
        decoder = keras_decoder.LegacyAttentionDecoderCell(
            self.cell.family.keras_cell(self.cell), self.output_size, self.num_heads,
            cell_projection=None if self.output_projection else self.decoder_symbols,
            query_order=self.query_order(), name="attention_decoder")
        decoder.build_for(e, self.cell.output_size)
        return {"encoder": encoder, "decoder": decoder, **embeddings}

    def _slots(self, twin):
        a, dec = self._attention, twin["decoder"]
        slots = [(f"{self.scope}/rnn/embedding_wrapper/embedding",
                  twin["encoder_embedding"].embeddings),
                 (f"{self._decoder}/embedding", twin["decoder_embedding"].embeddings),
                 (f"{a}/kernel", dec.input_kernel), (f"{a}/bias", dec.input_bias)]
        for k, head in enumerate(dec.heads):
            slots += [(f"{a}/AttnW_{k}", head["w"]), (f"{a}/AttnV_{k}", head["v"]),
                      (f"{a}/Attention_{k}/kernel", head["query_kernel"]),
                      (f"{a}/Attention_{k}/bias", head["query_bias"])]
        if not self.output_projection:
            slots += [(f"{a}/output_projection_wrapper/kernel", dec.cell_projection_kernel),
                      (f"{a}/output_projection_wrapper/bias", dec.cell_projection_bias)]
        slots += [(f"{a}/AttnOutputProjection/kernel", dec.output_kernel),
                  (f"{a}/AttnOutputProjection/bias", dec.output_bias)]
        return slots

    def _cells(self, twin):
        return ((f"{self.scope}/rnn/embedding_wrapper/{self.cell.family.scope}",
                 twin["encoder"].cell), (self._cell_prefix, twin["decoder"].cell))

    def to_keras(self, twin, tf1):
        missing = sorted(set(self.variables()) - set(tf1))
        if missing:
            raise UserError(f"The checkpoint lacks {', '.join(missing[:4])} that "
                            f"embedding_attention_seq2seq({self.cell.describe()}, num_heads="
                            f"{self.num_heads}) needs; check its scope and options.")
        for prefix, cell in self._cells(twin):
            relative = {k[len(prefix) + 1:]: v for k, v in tf1.items()
                        if k.startswith(prefix + "/")}
            cell.set_weights(self.cell.family.to_keras(self.cell, relative))
        for name, variable in self._slots(twin):
            value = tf1[name]
            variable.assign(value.reshape(variable.shape))  # AttnW_K: [1, 1, D, D] -> [D, D]

    def to_tf1(self, twin, values=None, gradients=False):
        read = ((lambda v: keras.ops.convert_to_numpy(v)) if values is None
                else (lambda v: values[v.path]))
        shapes = self.variables()
        tf1 = {}
        for prefix, cell in self._cells(twin):
            tf1.update({f"{prefix}/{k}": v for k, v in self.cell.family.to_tf1(
                self.cell, [read(w) for w in cell.weights], gradients=gradients).items()})
        tf1.update({name: read(v).reshape(shapes[name]) for name, v in self._slots(twin)})
        return tf1

