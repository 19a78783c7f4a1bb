"""BasicRNNCell <-> Keras `SimpleRNNCell` / `SimpleRNN`.

    h = act(concat([x, h_prev]) @ kernel + bias)          (TF1; output and state are h)
    h = act(x @ kernel + h_prev @ recurrent_kernel + bias) (Keras; the same function)

TF1 `kernel [in + U, U]` is Keras `kernel` (its first `in` rows) and `recurrent_kernel` (the rest);
`bias [U]` is unchanged. Exact both ways.
"""
import keras
import tensorflow as tf

from legacy_rnn.zoo import cells


@cells.register
class BasicRNN(cells.CellFamily):
    kind = "basic_rnn"
    tf1_name = "BasicRNNCell"
    scope = "basic_rnn_cell"
    defaults = {"activation": "tanh"}
    keras_name = "SimpleRNNCell / SimpleRNN"

    def tf1_cell(self, spec, name=None):
        return tf.compat.v1.nn.rnn_cell.BasicRNNCell(spec.units, activation=spec.get("activation"),
                                                     name=name)

    def variables(self, spec, input_size):
        return {"kernel": (input_size + spec.units, spec.units), "bias": (spec.units,)}

    def keras_cell(self, spec, **kwargs):
        return keras.layers.SimpleRNNCell(spec.units, activation=spec.get("activation"), **kwargs)

    def state_dropout_twin(self, spec):
        return True

    def to_keras(self, spec, tf1):
        return [*cells.split_rows(tf1["kernel"], spec.units), tf1["bias"]]

    def to_tf1(self, spec, weights, gradients=False):
        kernel, recurrent_kernel, bias = weights
        return {"kernel": cells.stack_rows(kernel, recurrent_kernel), "bias": bias}
