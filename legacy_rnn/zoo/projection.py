"""tf.contrib's `InputProjectionWrapper` and `OutputProjectionWrapper` (TF 1.15,
`contrib/rnn/python/ops/core_rnn_cell.py`) <-> a Keras `Dense` layer before / after the
recurrent layers of the block's direction.

    InputProjectionWrapper(cell, num_proj, activation):   cell(act(x_t @ kernel + bias), state)
    OutputProjectionWrapper(cell, output_size, activation): act(cell(x_t, state)[0] @ kernel + bias)

Each holds `kernel [in, size]` and `bias [size]` (zeros) under its own scope
(`input_projection_wrapper`, `output_projection_wrapper`), with the wrapped cell's scope inside it;
the state is the wrapped cell's. The activation (TF1's default: none) is not a variable: only the
`.meta` graph shows it (the op after the BiasAdd). A driver with `sequence_length` zeros the
projected outputs past each length, as the Keras block does at its end.
"""
import keras
import tensorflow as tf

from legacy_rnn.zoo import graphview, wrappers
from legacy_rnn.zoo.simple import activation_after_bias

_TF1_ACTIVATIONS = {"linear": None, "tanh": tf.tanh, "sigmoid": tf.sigmoid, "relu": tf.nn.relu,
                    "softsign": tf.nn.softsign, "elu": tf.nn.elu}


class _Projection(wrappers.WrappingCell):
    """The two wrappers on today's TF, with TF 1.15's variable names and math."""

    def __init__(self, cell, size, activation=None, name=None, **kwargs):
        super().__init__(cell, name=name, **kwargs)
        self._size = size
        self._activation = activation

    def _weights(self, rows):
        # float32 whatever the wrapper reads (around an EmbeddingWrapper: ids).
        self._kernel = self.add_weight("kernel", shape=[rows, self._size], dtype=tf.float32)
        self._bias = self.add_weight("bias", shape=[self._size], dtype=tf.float32,
                                     initializer=tf.compat.v1.zeros_initializer())
        self.built = True

    def _project(self, value):
        projected = tf.nn.bias_add(tf.matmul(value, self._kernel), self._bias)
        return self._activation(projected) if self._activation else projected


class InputProjectionWrapper(_Projection):
    def build(self, inputs_shape):
        self._weights(inputs_shape[-1])

    def call(self, inputs, state):
        return self._cell(self._project(inputs), state)


class OutputProjectionWrapper(_Projection):
    @property
    def output_size(self):
        return self._size

    def build(self, inputs_shape):
        self._weights(self._cell.output_size)

    def call(self, inputs, state):
        output, new_state = self._cell(inputs, state)
        return self._project(output), new_state


class _ProjectionKind(wrappers.Wrapper):
    tf1_class = None

    def variables(self, spec, input_size, inner_size):
        rows = input_size if self.side == "input" else inner_size
        return {"kernel": (rows, spec.size), "bias": (spec.size,)}

    def recognize(self, shapes):
        kernel, bias = shapes.get("kernel"), shapes.get("bias")
        if set(shapes) != {"kernel", "bias"} or len(kernel) != 2 or tuple(bias) != (kernel[1],):
            return None
        return wrappers.WrapperSpec(self.kind, kernel[1])

    def input_size_from(self, shapes, prefix):
        return shapes[f"{prefix}/kernel"][0]

    def options_in_graph(self, view, prefix):
        """MatMul -> BiasAdd -> the activation op (none: linear)."""
        return activation_after_bias(view, f"{prefix}/kernel")

    def steps_in_graph(self, view, prefix):
        """Each step's MatMul by the kernel: its input, and the BiasAdd after it (or the
        activation op after that, when there is one)."""
        steps = []
        for key in sorted(graphview.first_use(view, f"{prefix}/kernel", {"MatMul"}),
                          key=view.position):
            bias_add = graphview.consumer(view, key, "BiasAdd")
            if bias_add is None:
                return None
            act = graphview.consumer(view, bias_add, tuple(graphview.ACTIVATION_OPS))
            steps.append((view.inputs[key][0], act or bias_add))
        return steps or None

    def tf1_wrap(self, spec, cell):
        return self.tf1_class(cell, spec.size, activation=_TF1_ACTIVATIONS[spec.activation])

    def keras_layer(self, spec, name):
        return keras.layers.Dense(spec.size, activation=spec.activation, name=name)

    def to_keras(self, spec, tf1):
        return [tf1["kernel"], tf1["bias"]]

    def to_tf1(self, spec, weights):
        kernel, bias = weights
        return {"kernel": kernel, "bias": bias}

    def from_keras_layer(self, layer, activation_name):
        if not isinstance(layer, keras.layers.Dense) or not layer.use_bias:
            return None
        return wrappers.WrapperSpec(self.kind, layer.units, activation_name(layer.activation))


@wrappers.register
class InputProjection(_ProjectionKind):
    kind, tf1_name, scope, side = ("input_projection", "InputProjectionWrapper",
                                   "input_projection_wrapper", "input")
    tf1_class = InputProjectionWrapper


@wrappers.register
class OutputProjection(_ProjectionKind):
    kind, tf1_name, scope, side = ("output_projection", "OutputProjectionWrapper",
                                   "output_projection_wrapper", "output")
    tf1_class = OutputProjectionWrapper
