"""cuDNN checkpoints in their canonical form: `CudnnCompatibleLSTMCell` <-> Keras `LSTMCell` and
`CudnnCompatibleGRUCell` <-> Keras `GRUCell(reset_after=True)`.

tf.contrib's `CudnnLSTM` / `CudnnGRU` keep their weights in one opaque buffer (`opaque_kernel`),
whose layout belongs to the cuDNN version that trained them; `CudnnOpaqueParamsSaveable` writes
them to checkpoints in a canonical form, under the names of the cells TF documents as their CPU
equivalents (TF 1.15, contrib/cudnn_rnn/python/ops/cudnn_rnn_ops.py), below the layer's scope:

    <scope>/rnn/multi_rnn_cell/cell_K/<cell>/...                            unidirectional
    <scope>/stack_bidirectional_rnn/cell_K/bidirectional_rnn/{fw,bw}/<cell>/...   bidirectional

so a layer reads as `MultiRNNCell` under `dynamic_rnn`, or as `stack_bidirectional_dynamic_rnn`,
whose level K > 0 takes both directions of level K - 1 (cuDNN's layout too).

- `cudnn_compatible_lstm_cell/kernel [in+U, 4U]` (gates i, c, f, o: cuDNN's i, f, c, o reordered)
  and `bias [4U]` (cuDNN's input and recurrent biases, summed): an `LSTMBlockCell` with
  forget_bias 0 and no clip, which Keras's `LSTMCell` computes with no fold.
- `cudnn_compatible_gru_cell/gates/kernel [in+U, 2U]` (r, u), `gates/bias [2U]` (summed),
  `candidate/input_projection/{kernel [in, U], bias}`, `candidate/hidden_projection/{kernel
  [U, U], bias}`:

      r, u = split(sigmoid(concat([x, h]) @ gates/kernel + gates/bias))
      c = tanh(x @ Wi + bi + r * (h @ Wh + bh))          the reset gate AFTER the hidden matmul
      h = u * h + (1 - u) * c

  which is Keras's `GRUCell(reset_after=True)` (its default) with the recurrent bias of the
  gates zero. Not TF1's `GRUCell` (reset before the matmul): another function.

The opaque buffer alone (`opaque_kernel`, no canonical names) is refused by `inspect`/`convert`
with what to run on a GPU machine (docs/migration.md).
"""
import keras
import numpy as np
import tensorflow as tf

from legacy_rnn.zoo import cells, lstm, lstm_block

GRU_NAMES = ("gates/kernel", "gates/bias", "candidate/input_projection/kernel",
             "candidate/input_projection/bias", "candidate/hidden_projection/kernel",
             "candidate/hidden_projection/bias")


@cells.register
class CudnnCompatibleLSTM(lstm._LSTMFamily):
    kind = "cudnn_lstm"
    tf1_name = "CudnnCompatibleLSTMCell"
    scope = "cudnn_compatible_lstm_cell"
    defaults = {}
    keras_name = "LSTMCell / LSTM (cuDNN's canonical weights, forget_bias 0)"
    graph_options = ()
    # DeepSpeech's CPU graph runs these names with LSTMBlockFusedCell's one op (forget_bias 0).
    fused_ops = (lstm_block.OP, "BlockLSTM")
    sequence_ops = ("BlockLSTM",)

    def cases(self):
        return {"CudnnCompatibleLSTMCell": cells.CellSpec.make(self.kind, 4)}

    def steps_in_graph(self, view, prefix):
        return lstm_block.LSTMBlock.steps_in_graph(self, view, prefix)  # the same fused op

    def tf1_cell(self, spec, name=None):
        return lstm_block.LSTMBlockCell(spec.units, forget_bias=0.0, name=name or self.scope)

    def variables(self, spec, input_size):
        return {"kernel": (input_size + spec.units, 4 * spec.units), "bias": (4 * spec.units,)}

    def _tuple(self, spec):
        return True

    def keras_cell(self, spec, **kwargs):
        return keras.layers.LSTMCell(spec.units, **kwargs)

    def to_keras(self, spec, tf1):
        return list(lstm.tf1_gates_to_keras(tf1["kernel"], tf1["bias"], 0.0, spec.units))

    def to_tf1(self, spec, weights, gradients=False):
        kernel, bias = lstm.keras_gates_to_tf1(*weights[:3], 0.0)
        return {"kernel": kernel, "bias": bias}


def gru_shapes(n_in, u):
    """{name: shape} of CudnnCompatibleGRUCell's variables."""
    return dict(zip(GRU_NAMES, [(n_in + u, 2 * u), (2 * u,), (n_in, u), (u,), (u, u), (u,)]))


class CudnnCompatibleGRUCell(tf.compat.v1.nn.rnn_cell.RNNCell):
    """contrib's CudnnCompatibleGRUCell (TF 1.15) on today's TF: its names, its function."""

    def __init__(self, num_units, name="cudnn_compatible_gru_cell", **kwargs):
        super().__init__(name=name, **kwargs)
        self._num_units = num_units

    @property
    def state_size(self):
        return self._num_units

    @property
    def output_size(self):
        return self._num_units

    def build(self, inputs_shape):
        shapes = gru_shapes(inputs_shape[-1], self._num_units)
        self._w = {name: self.add_weight(
            name, shape=shape, initializer=tf.compat.v1.constant_initializer(1.0)
            if name == "gates/bias" else tf.compat.v1.zeros_initializer()
            if name.endswith("bias") else None) for name, shape in shapes.items()}
        self.built = True

    def call(self, inputs, state):
        w = self._w
        gates = tf.sigmoid(tf.nn.bias_add(tf.matmul(tf.concat([inputs, state], 1),
                                                    w["gates/kernel"]), w["gates/bias"]))
        r, u = tf.split(gates, 2, axis=1)
        hi = tf.nn.bias_add(tf.matmul(inputs, w["candidate/input_projection/kernel"]),
                            w["candidate/input_projection/bias"])
        hh = r * tf.nn.bias_add(tf.matmul(state, w["candidate/hidden_projection/kernel"]),
                                w["candidate/hidden_projection/bias"])
        c = tf.tanh(hi + hh)
        h = u * state + (1 - u) * c
        return h, h


@cells.register
class CudnnCompatibleGRU(cells.CellFamily):
    kind = "cudnn_gru"
    tf1_name = "CudnnCompatibleGRUCell"
    scope = "cudnn_compatible_gru_cell"
    defaults = {}
    keras_name = "GRUCell / GRU (reset_after=True, Keras's default)"
    kernel_name = "gates/kernel"
    graph_options = ()

    def cases(self):
        return {"CudnnCompatibleGRUCell": cells.CellSpec.make(self.kind, 4)}

    def units_from(self, shapes):
        bias = shapes.get("candidate/hidden_projection/bias")
        return bias[0] if bias and len(bias) == 1 else None

    def tf1_cell(self, spec, name=None):
        return CudnnCompatibleGRUCell(spec.units, name=name or self.scope)

    def variables(self, spec, input_size):
        return gru_shapes(input_size, spec.units)

    def keras_cell(self, spec, **kwargs):
        return keras.layers.GRUCell(spec.units, reset_after=True, **kwargs)

    def to_keras(self, spec, tf1):
        u = spec.units
        r, z = np.split(tf1["gates/kernel"], 2, axis=1)
        b_r, b_z = np.split(tf1["gates/bias"], 2)
        x_rows, h_rows = slice(0, r.shape[0] - u), slice(r.shape[0] - u, None)
        kernel = np.concatenate([z[x_rows], r[x_rows],
                                 tf1["candidate/input_projection/kernel"]], axis=1)
        recurrent = np.concatenate([z[h_rows], r[h_rows],
                                    tf1["candidate/hidden_projection/kernel"]], axis=1)
        zeros = np.zeros_like(b_z)
        bias = np.stack([np.concatenate([b_z, b_r, tf1["candidate/input_projection/bias"]]),
                         np.concatenate([zeros, zeros,
                                         tf1["candidate/hidden_projection/bias"]])])
        return [kernel, recurrent, bias]

    def to_tf1(self, spec, weights, gradients=False):
        """The gates' input and recurrent biases are summed, as cuDNN's saver sums them (a
        gradient maps to each of the two the same)."""
        kernel, recurrent, bias = weights
        z, r, h = np.split(cells.stack_rows(kernel, recurrent), 3, axis=1)
        (b_z, b_r, b_hi), (rb_z, rb_r, b_hh) = (np.split(row, 3) for row in bias)
        u = spec.units
        gate_bias = np.concatenate([b_r, b_z]) if gradients else \
            np.concatenate([b_r + rb_r, b_z + rb_z])
        return {"gates/kernel": np.concatenate([r, z], axis=1), "gates/bias": gate_bias,
                "candidate/input_projection/kernel": h[:-u],
                "candidate/input_projection/bias": b_hi,
                "candidate/hidden_projection/kernel": h[-u:],
                "candidate/hidden_projection/bias": b_hh}
