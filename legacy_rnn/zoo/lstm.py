"""BasicLSTMCell and LSTMCell (every option) <-> Keras `LSTMCell` or the registered `TF1LSTMCell`.

TF1 (both cells; peepholes, clips and projection are LSTMCell's):

    i, j, f, o = split(concat([x, m_prev]) @ kernel + bias)          gate columns i, j, f, o
    c = sigmoid(f + forget_bias + w_f_diag * c_prev) * c_prev + sigmoid(i + w_i_diag * c_prev) * act(j)
    c = clip(c, -cell_clip, cell_clip)
    m = sigmoid(o + w_o_diag * c) * act(c)
    m = clip(m @ projection/kernel, -proj_clip, proj_clip)
    output m; state LSTMStateTuple(c, m), or concat([c, m]) with state_is_tuple=False

Keras `LSTMCell` computes the same without peepholes, clips or projection, with gates i, f, c(=j), o,
separate input/recurrent kernels and no forget_bias: converting folds forget_bias into the f slice
of the bias (exact except that one float32 addition; gradients map back without it). With any of
use_peepholes, cell_clip, num_proj, the twin is `legacy_rnn.keras_cells.TF1LSTMCell`, which applies
forget_bias at run time as TF1 does. Keras states are `[m, c]`.
"""
import keras
import numpy as np
import tensorflow as tf

from legacy_rnn import keras_cells
from legacy_rnn.errors import UserError
from legacy_rnn.zoo import cells, graphview

DEPRECATED = ("num_unit_shards", "num_proj_shards")


def tf1_gates_to_keras(kernel, bias, forget_bias, recurrent_size):
    """(kernel [in + recurrent_size, 4U] in gates i, j, f, o; bias) -> Keras (kernel,
    recurrent_kernel, bias) in gates i, f, c, o, forget_bias added to the f slice."""
    i, j, f, o = np.split(kernel, 4, axis=1)
    b_i, b_j, b_f, b_o = np.split(bias, 4)
    input_rows, recurrent_rows = cells.split_rows(np.concatenate([i, f, j, o], axis=1),
                                                  recurrent_size)
    return (input_rows, recurrent_rows,
            np.concatenate([b_i, b_f + np.asarray(forget_bias, bias.dtype), b_j, b_o]))


def keras_gates_to_tf1(kernel, recurrent_kernel, bias, forget_bias):
    i, f, c, o = np.split(cells.stack_rows(kernel, recurrent_kernel), 4, axis=1)
    b_i, b_f, b_c, b_o = np.split(bias, 4)
    return (np.concatenate([i, c, f, o], axis=1),
            np.concatenate([b_i, b_c, b_f - np.asarray(forget_bias, bias.dtype), b_o]))


class _LSTMFamily(cells.CellFamily):
    folds_forget_bias = True  # where the twin is Keras's LSTM (`_uses_builtin`)

    def check_options(self, units, options):
        given = [name for name in DEPRECATED if options.get(name) is not None]
        if given:
            raise UserError(
                f"{', '.join(given)}: deprecated since January 2017 (TF1's LSTMCell logs so); they "
                "split the kernels into partitioned variables, which no Keras layer has. Leave "
                "them out (the same LSTM, unpartitioned), or wrap the graph in a variable_scope "
                "with a partitioner.")
        options = {k: v for k, v in options.items() if k not in DEPRECATED}
        options = super().check_options(units, options)
        for name in ("cell_clip", "proj_clip", "forget_bias"):
            if options.get(name) is not None:
                options[name] = float(options[name])
        if "num_proj" in options:
            options["num_proj"] = cells.positive_or_none(options, "num_proj")
        if options.get("proj_clip") is not None and not options.get("num_proj"):
            raise UserError("proj_clip clips the projection, and num_proj is not set: TF1 ignores "
                            "it then. Leave proj_clip out or set num_proj.")
        return options

    graph_options = ("forget_bias", "activation")

    def units_from(self, shapes):
        bias = shapes.get("bias")
        return bias[0] // 4 if bias and len(bias) == 1 and bias[0] % 4 == 0 else None

    def options_in_graph(self, view, prefix):
        """MatMul -> BiasAdd -> Split(4): output 2 (f) + Const = forget_bias; output 1 (j) -> the
        activation op. LSTMCell: Minimum(c, Const) = cell_clip; projection MatMul ->
        Minimum(Const) = proj_clip."""
        options = {}
        matmul = graphview.matmul(view, f"{prefix}/kernel")
        split = graphview.gate_split(view, f"{prefix}/kernel")
        if split is None:
            return options
        forget_bias = graphview.added_constant(view, split, 2)
        if forget_bias is not None:
            options["forget_bias"] = forget_bias
        activation = None
        for key, _ in view.next_ops(split, output=1):
            if view.op(key) in graphview.ACTIVATION_OPS:
                activation = graphview.ACTIVATION_OPS[view.op(key)]
            elif view.op(key) == "Mul" and activation is None:
                activation = "linear"
        if activation:
            options["activation"] = activation
        options.update(self._clips_in_graph(view, prefix, matmul))
        return options

    def _clips_in_graph(self, view, prefix, matmul):
        return {}

    def _tuple(self, spec):
        return spec.get("state_is_tuple")

    def state_to_keras(self, spec, state):
        if self._tuple(spec):
            c, m = state
        else:
            c, m = state[:, :spec.units], state[:, spec.units:]
        return [m, c]

    def state_from_keras(self, spec, states):
        m, c = states
        if self._tuple(spec):
            return tf.compat.v1.nn.rnn_cell.LSTMStateTuple(c, m)
        return np.concatenate([c, m], axis=1)

    def _uses_builtin(self, spec):
        return True

    def registered_twin(self, spec):
        return not self._uses_builtin(spec)

    def state_dropout_twin(self, spec):
        return self._uses_builtin(spec)

    def keras_cell(self, spec, **kwargs):
        if self._uses_builtin(spec):
            return keras.layers.LSTMCell(spec.units, activation=spec.get("activation"), **kwargs)
        return keras_cells.TF1LSTMCell(
            spec.units, use_peepholes=spec.get("use_peepholes"), cell_clip=spec.get("cell_clip"),
            num_proj=spec.get("num_proj"), proj_clip=spec.get("proj_clip"),
            forget_bias=spec.get("forget_bias"), activation=spec.get("activation"), **kwargs)

    def to_keras(self, spec, tf1):
        builtin = self._uses_builtin(spec)
        # The built-in cell has no forget_bias: fold it into the bias. TF1LSTMCell applies it.
        weights = list(tf1_gates_to_keras(tf1["kernel"], tf1["bias"],
                                          spec.get("forget_bias") if builtin else 0.0,
                                          self.output_size(spec)))
        if spec.get("use_peepholes"):
            weights += [tf1["w_i_diag"], tf1["w_f_diag"], tf1["w_o_diag"]]
        if spec.get("num_proj"):
            weights.append(tf1["projection/kernel"])
        return weights

    def to_tf1(self, spec, weights, gradients=False):
        fold = spec.get("forget_bias") if self._uses_builtin(spec) and not gradients else 0.0
        kernel, bias = keras_gates_to_tf1(*weights[:3], fold)
        tf1 = {"kernel": kernel, "bias": bias}
        rest = list(weights[3:])
        if spec.get("use_peepholes"):
            tf1["w_i_diag"], tf1["w_f_diag"], tf1["w_o_diag"] = rest[:3]
            rest = rest[3:]
        if spec.get("num_proj"):
            tf1["projection/kernel"] = rest[0]
        return tf1


@cells.register
class BasicLSTM(_LSTMFamily):
    kind = "basic_lstm"
    tf1_name = "BasicLSTMCell"
    scope = "basic_lstm_cell"
    defaults = {"forget_bias": 1.0, "state_is_tuple": True, "activation": "tanh"}
    keras_name = "LSTMCell / LSTM (forget_bias folded into the bias)"
    old_names = {"TF 0.x": ("BasicLSTMCell", {"Linear/Matrix": "kernel", "Linear/Bias": "bias"}),
                 "TF 1.0/1.1": ("basic_lstm_cell", {"weights": "kernel", "biases": "bias"})}

    def from_keras_cell(self, cell, activation_name):
        if isinstance(cell, keras.layers.LSTMCell):
            return {"activation": activation_name(cell.activation)}
        return None

    def cases(self):
        return {"BasicLSTMCell(forget_bias=0, concat state)": cells.CellSpec.make(
                    self.kind, 4, forget_bias=0.0, state_is_tuple=False),
                "BasicLSTMCell": cells.CellSpec.make(self.kind, 4)}

    def tf1_cell(self, spec, name=None):
        return tf.compat.v1.nn.rnn_cell.BasicLSTMCell(
            spec.units, forget_bias=spec.get("forget_bias"),
            state_is_tuple=spec.get("state_is_tuple"), activation=spec.get("activation"),
            name=name)

    def variables(self, spec, input_size):
        return {"kernel": (input_size + spec.units, 4 * spec.units), "bias": (4 * spec.units,)}


@cells.register
class LSTM(_LSTMFamily):
    kind = "lstm"
    tf1_name = "LSTMCell"
    scope = "lstm_cell"
    defaults = {"use_peepholes": False, "cell_clip": None, "num_proj": None, "proj_clip": None,
                "forget_bias": 1.0, "state_is_tuple": True, "activation": "tanh"}
    keras_name = "LSTMCell / LSTM, or TF1LSTMCell with peepholes, cell_clip or num_proj"
    graph_options = ("forget_bias", "cell_clip", "proj_clip", "activation")
    all_options = {"use_peepholes": True, "num_proj": 2}
    old_names = {
        "TF 0.x": ("LSTMCell", {"W_0": "kernel", "B": "bias", "W_I_diag": "w_i_diag",
                                "W_F_diag": "w_f_diag", "W_O_diag": "w_o_diag",
                                "W_P_0": "projection/kernel"}),
        "TF 1.0/1.1": ("lstm_cell", {"weights": "kernel", "biases": "bias",
                                     "projection/weights": "projection/kernel"})}

    def option_names(self, spec):
        return [name for name in self.graph_options
                if name != "proj_clip" or spec.get("num_proj")]

    def cases(self):
        c = cells.CellSpec.make
        return {"LSTMCell(peepholes, cell_clip, num_proj, proj_clip, forget_bias)": c(
                    self.kind, 4, use_peepholes=True, cell_clip=0.5, num_proj=3, proj_clip=0.4,
                    forget_bias=0.7),
                "LSTMCell": c(self.kind, 4),
                "LSTMCell(use_peepholes)": c(self.kind, 4, use_peepholes=True),
                "LSTMCell(cell_clip)": c(self.kind, 4, cell_clip=0.4),
                "LSTMCell(num_proj)": c(self.kind, 4, num_proj=2),
                "LSTMCell(num_proj, proj_clip)": c(self.kind, 4, num_proj=3, proj_clip=0.2),
                "LSTMCell(everything)": c(
                    self.kind, 4, use_peepholes=True, cell_clip=0.5, num_proj=2, proj_clip=0.3,
                    forget_bias=2.5, state_is_tuple=False, activation="elu")}

    def _clips_in_graph(self, view, prefix, matmul):
        # The cell was found: no clip op in it means no clip.
        options = {"cell_clip": None, "proj_clip": None}
        projection = graphview.matmul(view, f"{prefix}/projection/kernel")
        for key, node in view.nodes.items():
            if key[0] != matmul[0] or node is None or node.op != "Minimum":
                continue
            producer = view.inputs[key][0][:2]
            value = next((v for v in (view.const(k[:2]) for k in view.inputs[key][1:])
                          if v is not None), None)
            if value is None or not key[1].startswith(matmul[1].rsplit("/", 1)[0]):
                continue
            if projection is not None and producer == projection:
                options["proj_clip"] = value
            else:
                options["cell_clip"] = value
        return options

    def _uses_builtin(self, spec):
        return not (spec.get("use_peepholes") or spec.get("cell_clip") is not None
                    or spec.get("num_proj"))

    def output_size(self, spec):
        return spec.get("num_proj") or spec.units

    def from_keras_cell(self, cell, activation_name):
        if isinstance(cell, keras.layers.LSTMCell):
            return {"activation": activation_name(cell.activation)}
        if isinstance(cell, keras_cells.TF1LSTMCell):
            return {"use_peepholes": cell.use_peepholes, "cell_clip": cell.cell_clip,
                    "num_proj": cell.num_proj, "proj_clip": cell.proj_clip,
                    "forget_bias": cell.forget_bias, "activation": cell.activation_name}
        return None

    def options_from(self, shapes):
        projection = shapes.get("projection/kernel")
        return {"use_peepholes": "w_f_diag" in shapes,
                "num_proj": projection[1] if projection and len(projection) == 2 else None}

    def tf1_cell(self, spec, name=None, initializer=None):
        """`initializer` (kernels, peepholes, projection) sets only the initial values."""
        return tf.compat.v1.nn.rnn_cell.LSTMCell(
            spec.units, use_peepholes=spec.get("use_peepholes"), cell_clip=spec.get("cell_clip"),
            initializer=initializer, num_proj=spec.get("num_proj"),
            proj_clip=spec.get("proj_clip"), forget_bias=spec.get("forget_bias"),
            state_is_tuple=spec.get("state_is_tuple"), activation=spec.get("activation"),
            name=name)

    def variables(self, spec, input_size):
        u, out = spec.units, self.output_size(spec)
        names = {"kernel": (input_size + out, 4 * u), "bias": (4 * u,)}
        if spec.get("use_peepholes"):
            names.update({"w_f_diag": (u,), "w_i_diag": (u,), "w_o_diag": (u,)})
        if spec.get("num_proj"):
            names["projection/kernel"] = (u, out)
        return names
