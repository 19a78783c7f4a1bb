"""Keras 3 cells for the TF1 cells that Keras 3 has no layer for; `keras` and `keras.ops` only.

Import this module before `keras.saving.load_model` on a file that uses them (the converter's
`blocks.json` names it as `load_with`). It imports no TensorFlow, so converted models load and run
under `KERAS_BACKEND=jax` or `torch` too. Each cell is used through `keras.layers.RNN(cell)`.

- `TF1LSTMCell`: TF1's `LSTMCell` with use_peepholes, cell_clip, num_proj, proj_clip,
  forget_bias (at run time) and activation;
- `LNSimpleRNNCell`: the layer-normalised simple RNN cell (TF1 counterpart:
  `legacy_rnn.zoo.layer_norm.LayerNormBasicRNNCell`);
- `LayerNormLSTMCell`: tf.contrib's `LayerNormBasicLSTMCell` (a norm per gate and on the cell);
- `UGRNNCell`: tf.contrib's `UGRNNCell` (one update gate; TF1 side: `legacy_rnn.zoo.ugrnn`);
- `NASCell`: tf.contrib's `NASCell` (the searched cell; TF1 side: `legacy_rnn.zoo.nas`);
- `StackedCell`: TF1's `MultiRNNCell` as one cell with flat states (inside attention decoders;
  TF1 side: `legacy_rnn.zoo.multi`);
- `AttentionCell`: tf.contrib's `AttentionCellWrapper` around any cell (TF1 side:
  `legacy_rnn.zoo.attention_cell`);
- `IdsEmbedding`: tf.contrib's `EmbeddingWrapper` lookup before a block (TF1 side:
  `legacy_rnn.zoo.embedding`);
- `keras2_hard_sigmoid`: Keras 2's `hard_sigmoid`, `clip(0.2 x + 0.5, 0, 1)`;
- `length_mask`, `reverse_within_length`, `zero_past_length`: what TF1's `sequence_length` does,
  as plain `keras.ops` (saved as Keras ops in a functional model: no registration needed).
"""
import keras
from keras import ops

PACKAGE = "legacy_rnn"


@keras.saving.register_keras_serializable(package=PACKAGE)
def keras2_hard_sigmoid(x):
    """Keras 2's `hard_sigmoid`: `clip(0.2 x + 0.5, 0, 1)`. Keras 3's is `clip(x / 6 + 0.5, 0, 1)`,
    another function: a TF 1.x-era `tf.keras` LSTM/GRU (default `recurrent_activation=
    'hard_sigmoid'`) needs this one to compute the same numbers under Keras 3."""
    return ops.clip(0.2 * x + 0.5, 0.0, 1.0)


def _activation(name):
    return keras2_hard_sigmoid if name == "keras2_hard_sigmoid" else keras.activations.get(name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class TF1LSTMCell(keras.layers.Layer):
    """TF1's `LSTMCell` with every option, in Keras 3.

    With `z = x W + m_prev R + b` split into `z_i, z_f, z_c, z_o` (Keras gate order; TF1 stores
    i, j, f, o over `concat([x, m_prev])`, see `legacy_rnn.zoo.lstm`):

        i = sigmoid(z_i + p_i * c_prev)                   p_i = 0 without peepholes
        f = sigmoid(z_f + forget_bias + p_f * c_prev)     forget_bias applied at run time, as TF1
        c = f * c_prev + i * act(z_c)
        c = clip(c, -cell_clip, cell_clip)                if cell_clip
        o = sigmoid(z_o + p_o * c)                        the new c, as TF1
        m = o * act(c)
        m = clip(m P, -proj_clip, proj_clip)              if num_proj (clip only if proj_clip)

    Output `m`; states `[m, c]` (Keras order: output state first; TF1's `LSTMStateTuple` is
    `(c, m)`). Weights: `kernel [in, 4U]`, `recurrent_kernel [P or U, 4U]`, `bias [4U]`, then
    `w_i_diag, w_f_diag, w_o_diag [U]` with peepholes, then `projection [U, P]` with num_proj.
    """

    def __init__(self, units, use_peepholes=False, cell_clip=None, num_proj=None,
                 proj_clip=None, forget_bias=1.0, activation="tanh", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.use_peepholes = use_peepholes
        self.cell_clip = cell_clip
        self.num_proj = num_proj
        self.proj_clip = proj_clip
        self.forget_bias = forget_bias
        self.activation_name = activation
        self.activation = _activation(activation)
        out = num_proj or units
        self.state_size = [out, units]
        self.output_size = out

    def build(self, input_shape):
        out, units = self.output_size, self.units
        self.kernel = self.add_weight((input_shape[-1], 4 * units), name="kernel")
        self.recurrent_kernel = self.add_weight((out, 4 * units), name="recurrent_kernel")
        self.bias = self.add_weight((4 * units,), name="bias", initializer="zeros")
        if self.use_peepholes:
            self.w_i_diag, self.w_f_diag, self.w_o_diag = (
                self.add_weight((units,), name=name) for name in ("w_i_diag", "w_f_diag",
                                                                  "w_o_diag"))
        if self.num_proj:
            self.projection = self.add_weight((units, self.num_proj), name="projection")

    def call(self, inputs, states, training=False):
        m_prev, c_prev = states[0], states[1]
        z = ops.matmul(inputs, self.kernel) + ops.matmul(m_prev, self.recurrent_kernel) + self.bias
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        if self.use_peepholes:
            z_i = z_i + self.w_i_diag * c_prev
            z_f = z_f + self.w_f_diag * c_prev
        c = (ops.sigmoid(z_f + self.forget_bias) * c_prev
             + ops.sigmoid(z_i) * self.activation(z_c))
        if self.cell_clip is not None:
            c = ops.clip(c, -self.cell_clip, self.cell_clip)
        if self.use_peepholes:
            z_o = z_o + self.w_o_diag * c
        m = ops.sigmoid(z_o) * self.activation(c)
        if self.num_proj:
            m = ops.matmul(m, self.projection)
            if self.proj_clip is not None:
                m = ops.clip(m, -self.proj_clip, self.proj_clip)
        return m, [m, c]

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "use_peepholes": self.use_peepholes, "cell_clip": self.cell_clip,
                "num_proj": self.num_proj, "proj_clip": self.proj_clip,
                "forget_bias": self.forget_bias, "activation": self.activation_name}


@keras.saving.register_keras_serializable(package=PACKAGE)
class LNSimpleRNNCell(keras.layers.Layer):
    """A layer-normalised simple RNN cell (Geron, *Hands-On ML* 2nd ed., ch. 15):

        h = act(LayerNorm(x W + h_prev R + b))    LayerNorm(v) = (v - mean) / sqrt(var + eps) g + beta

    a `SimpleRNNCell(units, activation=None)`, then `LayerNormalization(epsilon)` over the units,
    then the activation. Output and state are `h`. Weights: `kernel [in, U]`,
    `recurrent_kernel [U, U]`, `bias [U]`, `gamma [U]`, `beta [U]`.
    """

    def __init__(self, units, activation="tanh", epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation_name = activation
        self.activation = _activation(activation)
        self.epsilon = epsilon
        self.state_size = units
        self.output_size = units
        self.simple_rnn_cell = keras.layers.SimpleRNNCell(units, activation=None,
                                                          name="simple_rnn_cell")
        self.layer_norm = keras.layers.LayerNormalization(epsilon=epsilon, name="layer_norm")

    def build(self, input_shape):
        self.simple_rnn_cell.build(input_shape)
        self.layer_norm.build((input_shape[0], self.units))

    def call(self, inputs, states, training=False):
        outputs, _ = self.simple_rnn_cell(inputs, states, training=training)
        h = self.activation(self.layer_norm(outputs))
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation_name,
                "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package=PACKAGE)
class LayerNormLSTMCell(keras.layers.Layer):
    """tf.contrib's `LayerNormBasicLSTMCell` in Keras 3 (TF1 side: `legacy_rnn.zoo.layer_norm_lstm`).

    With `z = x W + h_prev R` (no bias) split into `z_i, z_f, z_c, z_o` (Keras gate order) and
    `LN(v; g, b) = (v - mean(v)) / sqrt(var(v) + epsilon) * g + b` over the units:

        i = sigmoid(LN(z_i)),  f = sigmoid(LN(z_f) + forget_bias),  o = sigmoid(LN(z_o))
        c = LN(f * c_prev + i * act(LN(z_c)); state_gamma, state_beta)
        h = o * act(c)

    each gate with its own slice of `gamma` and `beta`. Output `h`; states `[h, c]`. Weights:
    `kernel [in, 4U]`, `recurrent_kernel [U, 4U]`, `gamma [4U]`, `beta [4U]`, `state_gamma [U]`,
    `state_beta [U]`. TF1's epsilon is 1e-12. TF1's recurrent dropout on `act(LN(z_c))`
    (`dropout_keep_prob`) is not here: a converted model computes the inference function.
    """

    def __init__(self, units, forget_bias=1.0, activation="tanh", epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.forget_bias = forget_bias
        self.activation_name = activation
        self.activation = _activation(activation)
        self.epsilon = epsilon
        self.state_size = [units, units]
        self.output_size = units

    def build(self, input_shape):
        u = self.units
        self.kernel = self.add_weight((input_shape[-1], 4 * u), name="kernel")
        self.recurrent_kernel = self.add_weight((u, 4 * u), name="recurrent_kernel")
        self.gamma = self.add_weight((4 * u,), name="gamma", initializer="ones")
        self.beta = self.add_weight((4 * u,), name="beta", initializer="zeros")
        self.state_gamma = self.add_weight((u,), name="state_gamma", initializer="ones")
        self.state_beta = self.add_weight((u,), name="state_beta", initializer="zeros")

    def _norm(self, v, gamma, beta):
        mean = ops.mean(v, axis=-1, keepdims=True)
        variance = ops.mean(ops.square(v - mean), axis=-1, keepdims=True)
        return (v - mean) * ops.rsqrt(variance + self.epsilon) * gamma + beta

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states[0], states[1]
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h_prev, self.recurrent_kernel)
        u = self.units
        z = ops.reshape(z, (-1, 4, u))
        z = self._norm(z, ops.reshape(self.gamma, (4, u)), ops.reshape(self.beta, (4, u)))
        z_i, z_f, z_c, z_o = z[:, 0], z[:, 1], z[:, 2], z[:, 3]
        c = ops.sigmoid(z_f + self.forget_bias) * c_prev + ops.sigmoid(z_i) * self.activation(z_c)
        c = self._norm(c, self.state_gamma, self.state_beta)
        h = ops.sigmoid(z_o) * self.activation(c)
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "forget_bias": self.forget_bias,
                "activation": self.activation_name, "epsilon": self.epsilon}


# The three length helpers below are plain `keras.ops` compositions, not layers: called on the
# symbolic inputs of a functional model they are saved as Keras ops, so a block of built-in cells
# loads with `keras.saving.load_model` (safe mode) without this module.

def _positions(x):
    """[batch, time] int32: 0, 1, 2, ... along time, for any time length."""
    return ops.cumsum(ops.ones_like(x[:, :, 0], dtype="int32"), axis=1) - 1


def length_mask(x, seqlen):
    """`x [batch, time, n]`, `seqlen [batch]` -> bool `[batch, time]`, True before each length:
    the mask TF1's `sequence_length` implies. From the lengths, never from the values
    (`Masking(0.0)` would also drop real zeros inside a sequence)."""
    return ops.less(_positions(x), ops.expand_dims(ops.cast(seqlen, "int32"), 1))


def reverse_within_length(x, seqlen):
    """Each sequence's first `seqlen` steps reversed, the padding left in place: TF1's
    `reverse_sequence`, which the backward half of every TF1 bidirectional RNN uses."""
    t = _positions(x)
    n = ops.expand_dims(ops.cast(seqlen, "int32"), 1)
    index = ops.where(ops.less(t, n), n - 1 - t, t)
    return ops.take_along_axis(x, ops.expand_dims(index, -1), axis=1)


def zero_past_length(x, seqlen):
    """Outputs with zeros at and after each length, as TF1's drivers emit them."""
    return ops.where(ops.expand_dims(length_mask(x, seqlen), -1), x, ops.zeros_like(x))


@keras.saving.register_keras_serializable(package=PACKAGE)
class UGRNNCell(keras.layers.Layer):
    """tf.contrib's `UGRNNCell` (Collins et al., ICLR 2017) in Keras 3:

        g_act, c_act = split(x W + h_prev R + b, 2)
        g = sigmoid(g_act + forget_bias),  c = act(c_act),  h = g * h_prev + (1 - g) * c

    Output and state are `h`. Weights: `kernel [in, 2U]`, `recurrent_kernel [U, 2U]`,
    `bias [2U]` (the gate's half first)."""

    def __init__(self, units, forget_bias=1.0, activation="tanh", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.forget_bias = forget_bias
        self.activation_name = activation
        self.activation = _activation(activation)
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight((input_shape[-1], 2 * self.units), name="kernel")
        self.recurrent_kernel = self.add_weight((self.units, 2 * self.units),
                                                name="recurrent_kernel")
        self.bias = self.add_weight((2 * self.units,), name="bias", initializer="zeros")

    def call(self, inputs, states, training=False):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h_prev, self.recurrent_kernel) + \
            self.bias
        g = ops.sigmoid(z[:, :self.units] + self.forget_bias)
        h = g * h_prev + (1.0 - g) * self.activation(z[:, self.units:])
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "forget_bias": self.forget_bias,
                "activation": self.activation_name}


@keras.saving.register_keras_serializable(package=PACKAGE)
class NASCell(keras.layers.Layer):
    """tf.contrib's `NASCell` (Zoph and Le, ICLR 2017: the cell found by architecture search) in
    Keras 3. With `a = split(x W, 8)` and `b = split(m_prev R + bias, 8)` (bias only if
    use_biases):

        p = sigmoid(a0 + b0) * relu(a1 + b1)       q = sigmoid(a2 + b2) + relu(a3 * b3)
        r = tanh(a4 + b4) * sigmoid(a5 + b5)       s = tanh(a6 + b6) + sigmoid(a7 + b7)
        c = tanh(tanh(p) + c_prev) * tanh(q)
        m = tanh(c * tanh(tanh(r) + sigmoid(s)))   then m P if num_proj

    Output `m`; states `[m, c]` (Keras order; TF1's `LSTMStateTuple` is `(c, m)`). Weights:
    `kernel [in, 8U]`, `recurrent_kernel [P or U, 8U]`, then `bias [8U]` with use_biases, then
    `projection [U, P]` with num_proj."""

    def __init__(self, units, num_proj=None, use_biases=False, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.num_proj = num_proj
        self.use_biases = use_biases
        out = num_proj or units
        self.state_size = [out, units]
        self.output_size = out

    def build(self, input_shape):
        units = self.units
        self.kernel = self.add_weight((input_shape[-1], 8 * units), name="kernel")
        self.recurrent_kernel = self.add_weight((self.output_size, 8 * units),
                                                name="recurrent_kernel")
        if self.use_biases:
            self.bias = self.add_weight((8 * units,), name="bias", initializer="zeros")
        if self.num_proj:
            self.projection = self.add_weight((units, self.num_proj), name="projection")

    def call(self, inputs, states, training=False):
        m_prev, c_prev = states[0], states[1]
        recurrent = ops.matmul(m_prev, self.recurrent_kernel)
        if self.use_biases:
            recurrent = recurrent + self.bias
        a = ops.split(ops.matmul(inputs, self.kernel), 8, axis=-1)
        b = ops.split(recurrent, 8, axis=-1)
        p = ops.sigmoid(a[0] + b[0]) * ops.relu(a[1] + b[1])
        q = ops.sigmoid(a[2] + b[2]) + ops.relu(a[3] * b[3])
        r = ops.tanh(a[4] + b[4]) * ops.sigmoid(a[5] + b[5])
        s = ops.tanh(a[6] + b[6]) + ops.sigmoid(a[7] + b[7])
        c = ops.tanh(ops.tanh(p) + c_prev) * ops.tanh(q)
        m = ops.tanh(c * ops.tanh(ops.tanh(r) + ops.sigmoid(s)))
        if self.num_proj:
            m = ops.matmul(m, self.projection)
        return m, [m, c]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "num_proj": self.num_proj,
                "use_biases": self.use_biases}


@keras.saving.register_keras_serializable(package=PACKAGE)
class AttentionCell(keras.layers.Layer):
    """tf.contrib's `AttentionCellWrapper` (Magenta's attention RNN; Cheng et al. 2016) in
    Keras 3, around any Keras cell `cell`. It keeps the last `attn_length` outputs (`A` wide) and
    attends over them with the wrapped cell's new state as the query:

        x' = [x, attns] K + b                       (input_size wide; default: x's width)
        out, state = cell(x', state)
        q = concat(state in TF1's order)            (`query_order`: the cell's states by index)
        s = sum(v * tanh(H W + q Q + q_b), -1)      H: the window [B, L, A]
        attns = sum(softmax(s)[..., None] * H, 1)
        y = [out, attns] P + p_b                    the output, A wide
        H = [H[:, 1:], y]

    States: the last output `y [A]` (first, as Keras's JAX and PyTorch loops expect the previous
    output to be: a masked step repeats it), the wrapped cell's, `attns [A]`, then `H` flattened
    `[L * A]` (TF1's state is the last three; `y` is H's newest row). Weights:
    `kernel, bias, attention_kernel [S, V], attention_bias [V], attn_w [A, V], attn_v [V],
    output_kernel [out + A, A], output_bias [A]`, then the wrapped cell's."""

    def __init__(self, cell, attn_length, attn_size, attn_vec_size=None, input_size=None,
                 query_order=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(cell, dict):
            cell = keras.saving.deserialize_keras_object(cell)
        self.cell = cell
        self.attn_length = attn_length
        self.attn_size = attn_size
        self.attn_vec_size = attn_vec_size or attn_size
        self.input_size = input_size
        inner = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [
            cell.state_size]
        self.inner_sizes = list(inner)
        self.query_order = list(query_order or range(len(inner)))
        self.state_size = [attn_size, *inner, attn_size, attn_length * attn_size]
        self.output_size = attn_size

    def build(self, input_shape):
        a, v, width = self.attn_size, self.attn_vec_size, input_shape[-1]
        size = self.input_size or width
        self.kernel = self.add_weight((width + a, size), name="kernel")
        self.bias = self.add_weight((size,), name="bias", initializer="zeros")
        self.attention_kernel = self.add_weight((sum(self.inner_sizes), v),
                                                name="attention_kernel")
        self.attention_bias = self.add_weight((v,), name="attention_bias", initializer="zeros")
        self.attn_w = self.add_weight((a, v), name="attn_w")
        self.attn_v = self.add_weight((v,), name="attn_v")
        out = self.cell.output_size
        self.output_kernel = self.add_weight((out + a, a), name="output_kernel")
        self.output_bias = self.add_weight((a,), name="output_bias", initializer="zeros")
        if not self.cell.built:  # a loaded model's cell is built from its own config
            self.cell.build((input_shape[0], size))

    def call(self, inputs, states, training=False):
        n, a, length = len(self.inner_sizes), self.attn_size, self.attn_length
        attns = states[n + 1]
        window = ops.reshape(states[n + 2], (-1, length, a))
        x = ops.matmul(ops.concatenate([inputs, attns], -1), self.kernel) + self.bias
        out, inner = self.cell(x, list(states[1:n + 1]), training=training)
        inner = list(inner) if isinstance(inner, (list, tuple)) else [inner]
        query = ops.concatenate([inner[i] for i in self.query_order], -1)
        y = ops.matmul(query, self.attention_kernel) + self.attention_bias
        scores = ops.sum(self.attn_v * ops.tanh(ops.matmul(window, self.attn_w)
                                                + ops.expand_dims(y, 1)), -1)
        attns = ops.sum(ops.expand_dims(ops.softmax(scores, axis=-1), -1) * window, 1)
        output = ops.matmul(ops.concatenate([out, attns], -1), self.output_kernel) + \
            self.output_bias
        window = ops.concatenate([window[:, 1:], ops.expand_dims(output, 1)], 1)
        return output, [output, *inner, attns, ops.reshape(window, (-1, length * a))]

    def get_config(self):
        return {**super().get_config(), "cell": keras.saving.serialize_keras_object(self.cell),
                "attn_length": self.attn_length, "attn_size": self.attn_size,
                "attn_vec_size": self.attn_vec_size, "input_size": self.input_size,
                "query_order": self.query_order}


@keras.saving.register_keras_serializable(package=PACKAGE)
class StackedCell(keras.layers.Layer):
    """TF1's `MultiRNNCell` as one Keras 3 cell with a flat list of states: the cells run one
    above the other at every step, each reading the output of the one below. States: the top
    cell's first (Keras's JAX and PyTorch loops repeat the first state as a masked step's
    output, and the top cell's first state is its output), then the others from the bottom up;
    `order` lists the cells in that order. Weights: each cell's, bottom first."""

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        self.cells = [keras.saving.deserialize_keras_object(c) if isinstance(c, dict) else c
                      for c in cells]
        sizes = [list(c.state_size) if isinstance(c.state_size, (list, tuple))
                 else [c.state_size] for c in self.cells]
        self.counts = [len(s) for s in sizes]
        self.order = [len(self.cells) - 1, *range(len(self.cells) - 1)]
        self.state_size = [size for k in self.order for size in sizes[k]]
        self.output_size = self.cells[-1].output_size

    def build(self, input_shape):
        width = input_shape[-1]
        for cell in self.cells:
            if not cell.built:  # a loaded model's cells are built from their own configs
                cell.build((input_shape[0], width))
            width = cell.output_size

    def call(self, inputs, states, training=False):
        per_cell, i = {}, 0
        for k in self.order:
            per_cell[k] = list(states[i:i + self.counts[k]])
            i += self.counts[k]
        out, new = inputs, {}
        for k, cell in enumerate(self.cells):
            out, state = cell(out, per_cell[k], training=training)
            new[k] = list(state) if isinstance(state, (list, tuple)) else [state]
        return out, [s for k in self.order for s in new[k]]

    def get_config(self):
        return {**super().get_config(),
                "cells": [keras.saving.serialize_keras_object(c) for c in self.cells]}


@keras.saving.register_keras_serializable(package=PACKAGE)
class IdsEmbedding(keras.layers.Layer):
    """tf.contrib's `EmbeddingWrapper` lookup before a block's recurrent layers: `x [B, T, 1]` of
    ids (as any number type; cast to int32) -> `embeddings[x] [B, T, size]`. Weights:
    `embeddings [classes, size]`."""

    def __init__(self, classes, size, **kwargs):
        super().__init__(**kwargs)
        self.classes = classes
        self.size = size

    def build(self, input_shape):
        self.embeddings = self.add_weight((self.classes, self.size), name="embeddings")

    def call(self, x):
        return ops.take(self.embeddings, ops.cast(x[..., 0], "int32"), axis=0)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.size)

    def get_config(self):
        return {**super().get_config(), "classes": self.classes, "size": self.size}
