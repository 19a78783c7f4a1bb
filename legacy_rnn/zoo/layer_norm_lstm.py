"""tf.contrib's `LayerNormBasicLSTMCell` <-> the registered Keras cell `LayerNormLSTMCell`.

TF 1.x (`tf.contrib.rnn.LayerNormBasicLSTMCell(num_units, forget_bias=1.0, activation=tanh,
layer_norm=True, norm_gain=1.0, norm_shift=0.0, dropout_keep_prob=1.0)`), scope
`layer_norm_basic_lstm_cell`:

    i, j, f, o = split(concat([x, h_prev]) @ kernel)              no bias: the norms shift
    i, j, f, o = LN_input(i), LN_transform(j), LN_forget(f), LN_output(o)
    g = act(j), dropped with dropout_keep_prob (training only: recurrent dropout on g)
    c = LN_state(c_prev * sigmoid(f + forget_bias) + sigmoid(i) * g)
    h = act(c) * sigmoid(o)
    LN_s(v) = (v - mean(v)) / sqrt(var(v) + 1e-12) * s/gamma + s/beta     over the units

The layer norm is contrib's `layers.layer_norm` (variance epsilon 1e-12, fixed in every TF 1.x);
each of the five has its own `gamma` and `beta`. `norm_gain` and `norm_shift` only initialise
them. With `layer_norm=False` the cell is BasicLSTMCell (`kernel` and `bias`) and its checkpoint
converts as one. tensorflow-addons' `LayerNormLSTMCell` is another function (it normalises the
input and recurrent products separately and the cell state before the output gate only:
addons#210), and Keras 3 has none: the twin is `legacy_rnn.keras_cells.LayerNormLSTMCell`.
TF 1.0/1.1 named the kernel `weights`.
"""
import numpy as np
import tensorflow as tf

from legacy_rnn import keras_cells
from legacy_rnn.zoo import cells, graphview, lstm

EPSILON = 1e-12
NORMS = ("input", "transform", "forget", "output")  # the gates' norms, TF1's gate order
TO_KERAS = (0, 2, 1, 3)  # TF1's i, j, f, o -> Keras's i, f, c(=j), o


class LayerNormBasicLSTMCell(tf.compat.v1.nn.rnn_cell.RNNCell):
    """tf.contrib.rnn.LayerNormBasicLSTMCell (TF 1.15) on today's TF: its names, its ops."""

    def __init__(self, num_units, forget_bias=1.0, activation=None, dropout_keep_prob=1.0,
                 dropout_prob_seed=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._num_units = num_units
        self._forget_bias = forget_bias
        self._activation = activation or tf.tanh
        self._keep_prob = dropout_keep_prob
        self._seed = dropout_prob_seed

    @property
    def state_size(self):
        return tf.compat.v1.nn.rnn_cell.LSTMStateTuple(self._num_units, self._num_units)

    @property
    def output_size(self):
        return self._num_units

    def build(self, inputs_shape):
        u = self._num_units
        self._kernel = self.add_weight("kernel", shape=[inputs_shape[-1] + u, 4 * u])
        self._norms = {
            scope: (self.add_weight(f"{scope}/gamma", shape=[u],
                                    initializer=tf.compat.v1.ones_initializer()),
                    self.add_weight(f"{scope}/beta", shape=[u],
                                    initializer=tf.compat.v1.zeros_initializer()))
            for scope in (*NORMS, "state")}
        self.built = True

    def _norm(self, v, scope):
        gamma, beta = self._norms[scope]
        with tf.name_scope(scope):
            mean, variance = tf.nn.moments(v, [1], keepdims=True)
            return tf.nn.batch_normalization(v, mean, variance, beta, gamma, EPSILON)

    def call(self, inputs, state):
        c_prev, h_prev = state
        gates = tf.split(tf.matmul(tf.concat([inputs, h_prev], 1), self._kernel), 4, axis=1)
        i, j, f, o = (self._norm(v, scope) for v, scope in zip(gates, NORMS))
        g = self._activation(j)
        if not isinstance(self._keep_prob, float) or self._keep_prob < 1:
            g = tf.nn.dropout(g, rate=1 - self._keep_prob, seed=self._seed)  # as v1 keep_prob
        c = self._norm(c_prev * tf.sigmoid(f + self._forget_bias) + tf.sigmoid(i) * g, "state")
        h = self._activation(c) * tf.sigmoid(o)
        return h, tf.compat.v1.nn.rnn_cell.LSTMStateTuple(c, h)


@cells.register
class LayerNormBasicLSTM(lstm._LSTMFamily):
    kind = "layer_norm_basic_lstm"
    tf1_name = "LayerNormBasicLSTMCell"
    scope = "layer_norm_basic_lstm_cell"
    defaults = {"forget_bias": 1.0, "activation": "tanh"}
    keras_name = "LayerNormLSTMCell (registered)"
    graph_options = ("forget_bias", "activation")
    old_names = {"TF 1.0/1.1": ("layer_norm_basic_lstm_cell", {"weights": "kernel"})}

    def cases(self):
        c = cells.CellSpec.make
        return {"LayerNormBasicLSTMCell(forget_bias=0, relu)": c(self.kind, 4, forget_bias=0.0,
                                                                 activation="relu"),
                "LayerNormBasicLSTMCell": c(self.kind, 4)}

    def units_from(self, shapes):
        gamma = shapes.get("state/gamma")
        return gamma[0] if gamma and len(gamma) == 1 else None

    def tf1_cell(self, spec, name=None):
        activation = {"linear": tf.identity}.get(spec.get("activation"),
                                                 getattr(tf.nn, spec.get("activation"), None))
        return LayerNormBasicLSTMCell(spec.units, forget_bias=spec.get("forget_bias"),
                                      activation=activation, name=name)

    def variables(self, spec, input_size):
        u = spec.units
        names = {"kernel": (input_size + u, 4 * u)}
        for scope in (*NORMS, "state"):
            names.update({f"{scope}/gamma": (u,), f"{scope}/beta": (u,)})
        return names

    def options_in_graph(self, view, prefix):
        """forget_bias: the Const added to the forget norm's output before its Sigmoid; the
        activation: the op applied to the transform norm's output."""
        options = {}
        forget = self._norm_output(view, f"{prefix}/forget/gamma")
        for add, _ in view.next_ops(forget) if forget else ():
            if view.op(add) in ("Add", "AddV2"):
                value = view.other_const(add, forget)
                if value is not None:
                    options["forget_bias"] = value
        transform = self._norm_output(view, f"{prefix}/transform/gamma")
        activation = graphview.activation(view, transform) if transform else None
        if activation:
            options["activation"] = activation
        return options

    @staticmethod
    def _norm_output(view, gamma):
        """batch_normalization's last op: v * (rsqrt(var + eps) * gamma) + (beta - mean * ...)."""
        scaled = graphview.first_use(view, gamma, {"Mul"})
        for mul, _ in view.next_ops(scaled[0]) if scaled else ():
            if view.op(mul) == "Mul":
                add = graphview.consumer(view, mul, ("Add", "AddV2"))
                if add is not None:
                    return add
        return None

    def _tuple(self, spec):
        return True

    def _uses_builtin(self, spec):
        return False

    def state_dropout_twin(self, spec):
        return False

    def keras_cell(self, spec, **kwargs):
        return keras_cells.LayerNormLSTMCell(spec.units, forget_bias=spec.get("forget_bias"),
                                             activation=spec.get("activation"),
                                             epsilon=EPSILON, **kwargs)

    def from_keras_cell(self, cell, activation_name):
        if isinstance(cell, keras_cells.LayerNormLSTMCell) and cell.epsilon == EPSILON:
            return {"forget_bias": cell.forget_bias, "activation": cell.activation_name}
        return None

    def to_keras(self, spec, tf1):
        input_rows, recurrent_rows = cells.split_rows(_gates(tf1["kernel"], TO_KERAS), spec.units)
        gamma, beta = (np.concatenate([tf1[f"{NORMS[k]}/{name}"] for k in TO_KERAS])
                       for name in ("gamma", "beta"))
        return [input_rows, recurrent_rows, gamma, beta, tf1["state/gamma"], tf1["state/beta"]]

    def to_tf1(self, spec, weights, gradients=False):
        kernel, recurrent_kernel, gamma, beta, state_gamma, state_beta = weights
        tf1 = {"kernel": _gates(cells.stack_rows(kernel, recurrent_kernel), TO_KERAS),
               "state/gamma": state_gamma, "state/beta": state_beta}
        for name, stacked in (("gamma", gamma), ("beta", beta)):
            for k, part in zip(TO_KERAS, np.split(stacked, 4)):
                tf1[f"{NORMS[k]}/{name}"] = part
        return tf1


def _gates(matrix, order):
    """The four gate blocks of `matrix`'s columns in `order` (TO_KERAS is its own inverse)."""
    blocks = np.split(matrix, 4, axis=1)
    return np.concatenate([blocks[k] for k in order], axis=1)
