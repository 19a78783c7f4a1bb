"""tf.contrib's `UGRNNCell` (TF 1.15, `contrib/rnn/python/ops/rnn_cell.py`) <-> the registered
Keras 3 cell `legacy_rnn.keras_cells.UGRNNCell`.

    g_act, c_act = split(concat([x, h_prev]) @ kernel + bias, 2)
    g = sigmoid(g_act + forget_bias),  c = act(c_act),  h = g * h_prev + (1 - g) * c

One update gate (the recurrent form of a highway layer). Variables under `ugrnn_cell` (the cell's
default name): `kernel [in + U, 2U]`, `bias [2U]` (zeros). forget_bias (default 1.0) is added at
run time, so only the graph records it: an `Add` of a constant to the split's first output; the
activation (default tanh) is the op on its second. The Keras cell keeps TF1's column order;
its kernel and recurrent_kernel are the kernel's input and recurrent rows. Exact both ways.
"""
import tensorflow as tf

from legacy_rnn import keras_cells
from legacy_rnn.zoo import cells, graphview


class UGRNNCell(tf.compat.v1.nn.rnn_cell.RNNCell):
    """contrib's UGRNNCell on today's TF, with its variable names and math."""

    def __init__(self, num_units, forget_bias=1.0, activation=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._num_units = num_units
        self._forget_bias = forget_bias
        self._activation = activation or tf.tanh

    @property
    def state_size(self):
        return self._num_units

    @property
    def output_size(self):
        return self._num_units

    def build(self, inputs_shape):
        rows = inputs_shape[-1] + self._num_units
        self._kernel = self.add_weight("kernel", shape=[rows, 2 * self._num_units])
        self._bias = self.add_weight("bias", shape=[2 * self._num_units],
                                     initializer=tf.compat.v1.zeros_initializer())
        self.built = True

    def call(self, inputs, state):
        z = tf.nn.bias_add(tf.matmul(tf.concat([inputs, state], 1), self._kernel), self._bias)
        g_act, c_act = tf.split(z, 2, axis=1)
        g = tf.sigmoid(g_act + self._forget_bias)
        h = g * state + (1.0 - g) * self._activation(c_act)
        return h, h


@cells.register
class UGRNN(cells.CellFamily):
    kind = "ugrnn"
    tf1_name = "UGRNNCell"
    scope = "ugrnn_cell"
    defaults = {"forget_bias": 1.0, "activation": "tanh"}
    keras_name = "keras_cells.UGRNNCell (registered)"
    graph_options = ("forget_bias", "activation")

    def cases(self):
        return {"UGRNNCell(forget_bias=0.5, relu)": cells.CellSpec.make(
                    self.kind, 4, forget_bias=0.5, activation="relu"),
                "UGRNNCell": cells.CellSpec.make(self.kind, 4)}

    def tf1_cell(self, spec, name=None):
        activation = spec.get("activation")
        return UGRNNCell(spec.units, forget_bias=spec.get("forget_bias"),
                         activation=None if activation == "tanh" else
                         tf.keras.activations.get(activation), name=name or self.scope)

    def variables(self, spec, input_size):
        return {"kernel": (input_size + spec.units, 2 * spec.units), "bias": (2 * spec.units,)}

    def units_from(self, shapes):
        bias = shapes.get("bias")
        return bias[0] // 2 if bias and len(bias) == 1 and bias[0] % 2 == 0 else None

    def options_in_graph(self, view, prefix):
        """MatMul -> BiasAdd -> Split(2): output 0 + Const = forget_bias; output 1 -> the
        activation op."""
        options = {}
        split = graphview.gate_split(view, f"{prefix}/kernel")
        if split is None:
            return options
        forget_bias = graphview.added_constant(view, split, 0)
        if forget_bias is not None:
            options["forget_bias"] = forget_bias
        for key, _ in view.next_ops(split, output=1):
            if view.op(key) in graphview.ACTIVATION_OPS:
                options["activation"] = graphview.ACTIVATION_OPS[view.op(key)]
        return options

    def keras_cell(self, spec, **kwargs):
        return keras_cells.UGRNNCell(spec.units, forget_bias=spec.get("forget_bias"),
                                     activation=spec.get("activation"), **kwargs)

    def from_keras_cell(self, cell, activation_name):
        if isinstance(cell, keras_cells.UGRNNCell):
            return {"forget_bias": cell.forget_bias, "activation": cell.activation_name}
        return None

    def registered_twin(self, spec):
        return True

    def to_keras(self, spec, tf1):
        return cells.kernel_and_bias_to_keras(tf1, spec.units)

    def to_tf1(self, spec, weights, gradients=False):
        return cells.kernel_and_bias_to_tf1(weights)
