"""A layer-normalised simple RNN cell: TF1 `LayerNormBasicRNNCell` <-> Keras `LNSimpleRNNCell`.

    h = act(LayerNorm(concat([x, h_prev]) @ kernel + bias))
    LayerNorm(v) = (v - mean(v)) / sqrt(var(v) + epsilon) * gamma + beta     over the units

TF1 never shipped this cell (tf.contrib had only a layer-normalised LSTM); it is the TF1 counterpart
of Geron's Keras `LNSimpleRNNCell` (a `SimpleRNNCell(activation=None)`, then `LayerNormalization`,
then tanh), written as a tf.compat.v1 `RNNCell` the way TF1 cells were: one kernel over
`concat([x, h])`, variables `kernel`, `bias`, `layer_norm/gamma`, `layer_norm/beta` under
`layer_norm_basic_rnn_cell`. epsilon defaults to Keras's LayerNormalization's 1e-3.
"""
import tensorflow as tf

from legacy_rnn import keras_cells
from legacy_rnn.zoo import cells, graphview


class LayerNormBasicRNNCell(tf.compat.v1.nn.rnn_cell.BasicRNNCell):
    """`BasicRNNCell` with layer normalisation between the affine map and the activation."""

    def __init__(self, num_units, activation=None, epsilon=1e-3, **kwargs):
        super().__init__(num_units, activation=activation, **kwargs)
        self._epsilon = epsilon

    def build(self, input_shape):
        # Before the parent's build: tf-keras's legacy add_weight reuses variables once the
        # layer counts as built, and BasicRNNCell.build marks it so.
        self._gamma = self.add_weight("layer_norm/gamma", shape=[self._num_units],
                                      initializer=tf.compat.v1.ones_initializer())
        self._beta = self.add_weight("layer_norm/beta", shape=[self._num_units],
                                     initializer=tf.compat.v1.zeros_initializer())
        super().build(input_shape)

    def call(self, inputs, state):
        v = tf.nn.bias_add(tf.matmul(tf.concat([inputs, state], 1), self._kernel), self._bias)
        mean, variance = tf.nn.moments(v, axes=[1], keepdims=True)
        inv = tf.math.rsqrt(variance + self._epsilon) * self._gamma
        output = self._activation(v * inv + (self._beta - mean * inv))
        return output, output


@cells.register
class LNBasicRNN(cells.CellFamily):
    kind = "ln_basic_rnn"
    tf1_name = "LayerNormBasicRNNCell"
    scope = "layer_norm_basic_rnn_cell"
    defaults = {"activation": "tanh", "epsilon": 1e-3}
    keras_name = "LNSimpleRNNCell (registered)"

    def cases(self):
        return {"LayerNormBasicRNNCell": cells.CellSpec.make(self.kind, 4)}

    def tf1_cell(self, spec, name=None):
        return LayerNormBasicRNNCell(spec.units, activation=spec.get("activation"),
                                     epsilon=spec.get("epsilon"), name=name)

    def variables(self, spec, input_size):
        u = spec.units
        return {"kernel": (input_size + u, u), "bias": (u,), "layer_norm/gamma": (u,),
                "layer_norm/beta": (u,)}

    def options_in_graph(self, view, prefix):
        """MatMul -> BiasAdd -> v * inv + (beta - mean * inv) -> the activation op."""
        matmul = graphview.matmul(view, f"{prefix}/kernel")
        bias_add = graphview.consumer(view, matmul, "BiasAdd") if matmul else None
        scaled = graphview.consumer(view, bias_add, "Mul") if bias_add else None
        after = graphview.consumer(view, scaled, ("Add", "AddV2")) if scaled else None
        activation = graphview.activation(view, after) if after else None
        return {"activation": activation} if activation else {}

    def keras_cell(self, spec, **kwargs):
        return keras_cells.LNSimpleRNNCell(spec.units, activation=spec.get("activation"),
                                           epsilon=spec.get("epsilon"), **kwargs)

    def from_keras_cell(self, cell, activation_name):
        if isinstance(cell, keras_cells.LNSimpleRNNCell):
            return {"activation": cell.activation_name, "epsilon": cell.epsilon}
        return None

    def registered_twin(self, spec):
        return True

    def to_keras(self, spec, tf1):
        return [*cells.split_rows(tf1["kernel"], spec.units), tf1["bias"],
                tf1["layer_norm/gamma"], tf1["layer_norm/beta"]]

    def to_tf1(self, spec, weights, gradients=False):
        kernel, recurrent_kernel, bias, gamma, beta = weights
        return {"kernel": cells.stack_rows(kernel, recurrent_kernel), "bias": bias,
                "layer_norm/gamma": gamma, "layer_norm/beta": beta}
