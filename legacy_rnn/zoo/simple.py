"""BasicRNNCell <-> Keras `SimpleRNNCell` / `SimpleRNN`.

    h = act(concat([x, h_prev]) @ kernel + bias)          (TF1; output and state are h)
    h = act(x @ kernel + h_prev @ recurrent_kernel + bias) (Keras; the same function)

TF1 `kernel [in + U, U]` is Keras `kernel` (its first `in` rows) and `recurrent_kernel` (the rest);
`bias [U]` is unchanged. Exact both ways.
"""
import keras
import tensorflow as tf

from legacy_rnn.zoo import cells, graphview


def activation_after_bias(view, kernel):
    """{"activation": ...} of a cell computing act(matmul(..., kernel) + bias), as the graph
    shows it; {} when the graph does not."""
    matmul = graphview.matmul(view, kernel)
    bias_add = graphview.consumer(view, matmul, "BiasAdd") if matmul else None
    activation = graphview.activation(view, bias_add) if bias_add else None
    return {"activation": activation} if activation else {}


@cells.register
class BasicRNN(cells.CellFamily):
    kind = "basic_rnn"
    tf1_name = "BasicRNNCell"
    scope = "basic_rnn_cell"
    defaults = {"activation": "tanh"}
    keras_name = "SimpleRNNCell / SimpleRNN"
    old_names = {"TF 0.x": ("BasicRNNCell", {"Linear/Matrix": "kernel", "Linear/Bias": "bias"}),
                 "TF 1.0/1.1": ("basic_rnn_cell", {"weights": "kernel", "biases": "bias"})}

    def cases(self):
        return {"BasicRNNCell(relu)": cells.CellSpec.make(self.kind, 4, activation="relu"),
                "BasicRNNCell": cells.CellSpec.make(self.kind, 4)}

    def tf1_cell(self, spec, name=None):
        return tf.compat.v1.nn.rnn_cell.BasicRNNCell(spec.units, activation=spec.get("activation"),
                                                     name=name)

    def variables(self, spec, input_size):
        return {"kernel": (input_size + spec.units, spec.units), "bias": (spec.units,)}

    def options_in_graph(self, view, prefix):
        """MatMul -> BiasAdd -> the activation op (none: linear)."""
        return activation_after_bias(view, f"{prefix}/kernel")

    def keras_cell(self, spec, **kwargs):
        return keras.layers.SimpleRNNCell(spec.units, activation=spec.get("activation"), **kwargs)

    def from_keras_cell(self, cell, activation_name):
        if isinstance(cell, keras.layers.SimpleRNNCell):
            return {"activation": activation_name(cell.activation)}
        return None

    def state_dropout_twin(self, spec):
        return True

    def to_keras(self, spec, tf1):
        return cells.kernel_and_bias_to_keras(tf1, spec.units)

    def to_tf1(self, spec, weights, gradients=False):
        return cells.kernel_and_bias_to_tf1(weights)
