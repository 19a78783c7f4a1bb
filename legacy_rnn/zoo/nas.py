"""tf.contrib's `NASCell` (TF 1.15, `contrib/rnn/python/ops/rnn_cell.py`; Zoph and Le, ICLR 2017)
<-> the registered Keras 3 cell `legacy_rnn.keras_cells.NASCell` (its docstring has the equations).

Two matrices, not one over concat([x, h]): `kernel [in, 8U]` multiplies x_t and
`recurrent_kernel [P, 8U]` the previous output m (P = num_proj, else U); `bias [8U]`
(use_biases, zeros) is added to the recurrent product only; `projection_weights [U, P]` with
num_proj. The state is `LSTMStateTuple(c, m)`. Default scope `nas_cell`; TF 1.1 wrote
`nas_rnn/weights` and `nas_rnn/recurrent_weights`. No option lives only in the graph: the
variables say num_proj and use_biases. The Keras cell keeps TF1's matrices as they are.
"""
import tensorflow as tf

from legacy_rnn import keras_cells
from legacy_rnn.zoo import cells, graphview

# The first layer of the searched cell: (how x_t's and m_prev's branch k combine, activation).
_ADD, _MUL = tf.add, tf.multiply
FIRST_LAYER = ((_ADD, tf.sigmoid), (_ADD, tf.nn.relu), (_ADD, tf.sigmoid), (_MUL, tf.nn.relu),
               (_ADD, tf.tanh), (_ADD, tf.sigmoid), (_ADD, tf.tanh), (_ADD, tf.sigmoid))


class NASCell(tf.compat.v1.nn.rnn_cell.RNNCell):
    """contrib's NASCell on today's TF, with its variable names and math."""

    def __init__(self, num_units, num_proj=None, use_biases=False, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._num_units = num_units
        self._num_proj = num_proj
        self._use_biases = use_biases

    @property
    def state_size(self):
        return tf.compat.v1.nn.rnn_cell.LSTMStateTuple(self._num_units,
                                                       self._num_proj or self._num_units)

    @property
    def output_size(self):
        return self._num_proj or self._num_units

    def build(self, inputs_shape):
        width = 8 * self._num_units
        self._recurrent_kernel = self.add_weight("recurrent_kernel",
                                                 shape=[self.output_size, width])
        self._kernel = self.add_weight("kernel", shape=[inputs_shape[-1], width])
        if self._use_biases:
            self._bias = self.add_weight("bias", shape=[width],
                                         initializer=tf.compat.v1.zeros_initializer())
        if self._num_proj:
            self._projection = self.add_weight("projection_weights",
                                               shape=[self._num_units, self._num_proj])
        self.built = True

    def call(self, inputs, state):
        c_prev, m_prev = state
        recurrent = tf.matmul(m_prev, self._recurrent_kernel)
        if self._use_biases:
            recurrent = tf.nn.bias_add(recurrent, self._bias)
        layer = [act(combine(x, m)) for (combine, act), x, m in zip(
            FIRST_LAYER, tf.split(tf.matmul(inputs, self._kernel), 8, axis=1),
            tf.split(recurrent, 8, axis=1))]
        injected = tf.tanh(tf.tanh(layer[0] * layer[1]) + c_prev)
        c = injected * tf.tanh(layer[2] + layer[3])
        m = tf.tanh(c * tf.tanh(tf.tanh(layer[4] * layer[5]) + tf.sigmoid(layer[6] + layer[7])))
        if self._num_proj:
            m = tf.matmul(m, self._projection)
        return m, tf.compat.v1.nn.rnn_cell.LSTMStateTuple(c, m)


@cells.register
class NAS(cells.CellFamily):
    kind = "nas"
    tf1_name = "NASCell"
    scope = "nas_cell"
    defaults = {"num_proj": None, "use_biases": False}
    keras_name = "keras_cells.NASCell (registered)"
    graph_options = ()  # num_proj and use_biases are in the variables
    all_options = {"num_proj": 2, "use_biases": True}
    old_names = {"TF 1.1": ("nas_rnn", {"weights": "kernel",
                                        "recurrent_weights": "recurrent_kernel",
                                        "bias": "bias",
                                        "projection_weights": "projection_weights"})}

    def check_options(self, units, options):
        options = super().check_options(units, options)
        if "num_proj" in options:
            options["num_proj"] = cells.positive_or_none(options, "num_proj")
        if "use_biases" in options:
            options["use_biases"] = bool(options["use_biases"])
        return options

    def cases(self):
        return {"NASCell(num_proj, use_biases)": cells.CellSpec.make(
                    self.kind, 4, num_proj=3, use_biases=True),
                "NASCell": cells.CellSpec.make(self.kind, 4)}

    def tf1_cell(self, spec, name=None):
        return NASCell(spec.units, num_proj=spec.get("num_proj"),
                       use_biases=spec.get("use_biases"), name=name or self.scope)

    def output_size(self, spec):
        return spec.get("num_proj") or spec.units

    def variables(self, spec, input_size):
        width = 8 * spec.units
        names = {"kernel": (input_size, width), "recurrent_kernel": (self.output_size(spec), width)}
        if spec.get("use_biases"):
            names["bias"] = (width,)
        if spec.get("num_proj"):
            names["projection_weights"] = (spec.units, spec.get("num_proj"))
        return names

    def units_from(self, shapes):
        recurrent = shapes.get("recurrent_kernel")
        if recurrent and len(recurrent) == 2 and recurrent[1] % 8 == 0:
            return recurrent[1] // 8
        return None

    def options_from(self, shapes):
        projection = shapes.get("projection_weights")
        return {"use_biases": "bias" in shapes,
                "num_proj": projection[1] if projection and len(projection) == 2 else None}

    def input_size_from(self, spec, shapes):
        kernel = shapes.get("kernel")
        return kernel[0] if kernel and len(kernel) == 2 else 0  # x_t alone

    def steps_in_graph(self, view, prefix):
        """x_t is what the kernel's MatMul reads, m_prev what the recurrent kernel's reads, the
        two paired step by step in build order. (`first_use` also follows a static driver's cond
        out to the next step, where the recurrent MatMul reads the last m: the kernel's own
        MatMuls are those the recurrent kernel's reach does not hold.)"""
        uses = {name: set(graphview.first_use(view, f"{prefix}/{name}", {"MatMul"}))
                for name in ("kernel", "recurrent_kernel")}
        x_keys, m_keys = (sorted(keys, key=view.position) for keys in (
            uses["kernel"] - uses["recurrent_kernel"], uses["recurrent_kernel"]))
        if len(x_keys) != len(m_keys):
            return None
        return [(x_key, view.inputs[x_key][0], view.inputs[m_key][0])
                for x_key, m_key in zip(x_keys, m_keys)]

    def state_to_keras(self, spec, state):
        c, m = state
        return [m, c]

    def state_from_keras(self, spec, states):
        m, c = states
        return tf.compat.v1.nn.rnn_cell.LSTMStateTuple(c, m)

    def keras_cell(self, spec, **kwargs):
        return keras_cells.NASCell(spec.units, num_proj=spec.get("num_proj"),
                                   use_biases=spec.get("use_biases"), **kwargs)

    def from_keras_cell(self, cell, activation_name):
        if isinstance(cell, keras_cells.NASCell):
            return {"num_proj": cell.num_proj, "use_biases": cell.use_biases}
        return None

    def registered_twin(self, spec):
        return True

    def to_keras(self, spec, tf1):
        weights = [tf1["kernel"], tf1["recurrent_kernel"]]
        if spec.get("use_biases"):
            weights.append(tf1["bias"])
        if spec.get("num_proj"):
            weights.append(tf1["projection_weights"])
        return weights

    def to_tf1(self, spec, weights, gradients=False):
        names = ["kernel", "recurrent_kernel"] + ["bias"] * bool(spec.get("use_biases")) + \
            ["projection_weights"] * bool(spec.get("num_proj"))
        return dict(zip(names, weights, strict=True))
