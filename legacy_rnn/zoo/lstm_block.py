"""tf.contrib's `LSTMBlockCell` <-> Keras `LSTMCell`, or the registered `TF1LSTMCell` with
use_peephole or cell_clip.

One fused op per step, `LSTMBlockCell(x, cs_prev, h_prev, w, wci, wcf, wco, b)` (TF 2.x still has
it: `tf.raw_ops.LSTMBlockCell`), computing LSTMCell's function with LSTMCell's variables
(`lstm_cell/kernel [in+U, 4U]` in gates i, ci, f, o; `bias [4U]`; peepholes `w_i_diag`,
`w_f_diag`, `w_o_diag`):

    i, ci, f, o = split(concat([x, h_prev]) @ kernel + bias)
    i = sigmoid(i + w_i_diag * cs_prev);  f = sigmoid(f + forget_bias + w_f_diag * cs_prev)
    cs = clip(tanh(ci) * i + cs_prev * f, -cell_clip, cell_clip)       (cell_clip <= 0: none)
    h = sigmoid(o + w_o_diag * cs) * tanh(cs)

Its options are attributes of the op (`forget_bias`, `cell_clip`, `use_peephole`), not variables:
the graph (`.meta`) is the only place they survive, and the same variables would pass for an
LSTMCell with TF1's defaults. The op's own default `cell_clip` is 3.0; the contrib class passes
-1 (no clip) unless given one. The PTB tutorial's default model is this cell with forget_bias 0.
"""
import keras
import tensorflow as tf

from legacy_rnn import keras_cells
from legacy_rnn.zoo import cells, graphview, lstm

OP = "LSTMBlockCell"
PEEPHOLES = ("w_i_diag", "w_f_diag", "w_o_diag")


@tf.RegisterGradient(OP)
def _lstm_block_cell_gradient(op, *grads):
    """The gradient tf.contrib registered for the op (TF 2.x keeps the op and its gradient kernel,
    `LSTMBlockCellGrad`, but not the registration): the kernel gives the gate gradients `dicfo`
    and the peepholes'; the matmul over concat([x, h_prev]) is differentiated here."""
    x, cs_prev, h_prev, w, wci, wcf, wco, b = op.inputs
    i, cs, f, o, ci, co, _ = op.outputs
    cs_prev_grad, dicfo, wci_grad, wcf_grad, wco_grad = tf.raw_ops.LSTMBlockCellGrad(
        x=x, cs_prev=cs_prev, h_prev=h_prev, w=w, wci=wci, wcf=wcf, wco=wco, b=b, i=i, cs=cs,
        f=f, o=o, ci=ci, co=co, cs_grad=grads[1], h_grad=grads[6],
        use_peephole=op.get_attr("use_peephole"))
    input_size = tf.shape(x)[1]
    xh_grad = tf.matmul(dicfo, w, transpose_b=True)
    x_grad, h_prev_grad = xh_grad[:, :input_size], xh_grad[:, input_size:]
    w_grad = tf.matmul(tf.concat([x, h_prev], 1), dicfo, transpose_a=True)
    return (x_grad, cs_prev_grad, h_prev_grad, w_grad, wci_grad, wcf_grad, wco_grad,
            tf.reduce_sum(dicfo, 0))


class LSTMBlockCell(tf.compat.v1.nn.rnn_cell.RNNCell):
    """tf.contrib.rnn.LSTMBlockCell (TF 1.15) on today's TF: the fused op, contrib's names."""

    def __init__(self, num_units, forget_bias=1.0, cell_clip=None, use_peephole=False,
                 name="lstm_cell", **kwargs):
        super().__init__(name=name, **kwargs)
        self._num_units = num_units
        self._forget_bias = forget_bias
        self._cell_clip = cell_clip if cell_clip is not None else -1.0
        self._use_peephole = use_peephole

    @property
    def state_size(self):
        return tf.compat.v1.nn.rnn_cell.LSTMStateTuple(self._num_units, self._num_units)

    @property
    def output_size(self):
        return self._num_units

    def build(self, inputs_shape):
        input_size = inputs_shape[-1]
        u = self._num_units
        self._kernel = self.add_weight("kernel", shape=[input_size + u, 4 * u])
        self._bias = self.add_weight("bias", shape=[4 * u],
                                     initializer=tf.compat.v1.zeros_initializer())
        self._peepholes = [self.add_weight(name, shape=[u]) for name in PEEPHOLES] \
            if self._use_peephole else None
        self.built = True

    def call(self, inputs, state):
        cs_prev, h_prev = state
        wci, wcf, wco = self._peepholes or [tf.zeros([self._num_units], inputs.dtype)] * 3
        _, cs, _, _, _, _, h = tf.raw_ops.LSTMBlockCell(
            x=inputs, cs_prev=cs_prev, h_prev=h_prev, w=self._kernel, wci=wci, wcf=wcf, wco=wco,
            b=self._bias, forget_bias=self._forget_bias, cell_clip=self._cell_clip,
            use_peephole=self._use_peephole)
        return h, tf.compat.v1.nn.rnn_cell.LSTMStateTuple(cs, h)


@cells.register
class LSTMBlock(lstm._LSTMFamily):
    kind = "lstm_block"
    tf1_name = "LSTMBlockCell"
    scope = "lstm_cell"
    defaults = {"forget_bias": 1.0, "cell_clip": None, "use_peephole": False}
    keras_name = "LSTMCell / LSTM, or TF1LSTMCell with use_peephole or cell_clip"
    graph_options = ("forget_bias", "cell_clip")
    fused_ops = (OP,)
    all_options = {"use_peephole": True}

    def check_options(self, units, options):
        options = super().check_options(units, options)
        if options.get("cell_clip") is not None and options["cell_clip"] <= 0:
            options["cell_clip"] = None  # the op clips only above 0
        return options

    def cases(self):
        # cell_clip 3.0 (the op's own default) rarely binds on these inputs: where it does, TF1's
        # gradient passes straight through the clip (LSTMBlockCellGrad has no clip), the twin's
        # does not (docs/migration.md).
        return {"LSTMBlockCell(forget_bias=0, cell_clip, use_peephole)": cells.CellSpec.make(
                    self.kind, 4, forget_bias=0.0, cell_clip=3.0, use_peephole=True),
                "LSTMBlockCell": cells.CellSpec.make(self.kind, 4)}

    def options_from(self, shapes):
        return {"use_peephole": all(name in shapes for name in PEEPHOLES)}

    def steps_in_graph(self, view, prefix):
        """Each LSTMBlockCell op reads x_t (input 0) and h_prev (input 2) itself."""
        return [(key, view.inputs[key][0], view.inputs[key][2])
                for key in graphview.first_use(view, f"{prefix}/kernel", {OP})]

    def options_in_graph(self, view, prefix):
        """The attributes of the family's ops (`fused_ops`) that read the cell's kernel."""
        ops = graphview.first_use(view, f"{prefix}/kernel", set(self.fused_ops))
        if not ops:
            return {}
        attr = view.nodes[ops[0]].attr
        clip = attr["cell_clip"].f
        return {"forget_bias": float(str(attr["forget_bias"].f)),
                "cell_clip": float(str(clip)) if clip > 0 else None}

    def tf1_cell(self, spec, name=None):
        return LSTMBlockCell(spec.units, forget_bias=spec.get("forget_bias"),
                             cell_clip=spec.get("cell_clip"),
                             use_peephole=spec.get("use_peephole"), name=name or self.scope)

    def variables(self, spec, input_size):
        u = spec.units
        names = {"kernel": (input_size + u, 4 * u), "bias": (4 * u,)}
        if spec.get("use_peephole"):
            names.update({name: (u,) for name in PEEPHOLES})
        return names

    def _tuple(self, spec):
        return True

    def _uses_builtin(self, spec):
        return not (spec.get("use_peephole") or spec.get("cell_clip") is not None)

    def keras_cell(self, spec, **kwargs):
        if self._uses_builtin(spec):
            return keras.layers.LSTMCell(spec.units, **kwargs)
        return keras_cells.TF1LSTMCell(
            spec.units, use_peepholes=spec.get("use_peephole"), cell_clip=spec.get("cell_clip"),
            forget_bias=spec.get("forget_bias"), **kwargs)

    def from_keras_cell(self, cell, activation_name):
        return None  # a Keras LSTM goes back as LSTMCell / BasicLSTMCell, which every TF1 has

    def to_keras(self, spec, tf1):
        weights = list(lstm.tf1_gates_to_keras(
            tf1["kernel"], tf1["bias"], spec.get("forget_bias") if self._uses_builtin(spec)
            else 0.0, spec.units))
        if spec.get("use_peephole"):
            weights += [tf1[name] for name in PEEPHOLES]
        return weights

    def to_tf1(self, spec, weights, gradients=False):
        fold = spec.get("forget_bias") if self._uses_builtin(spec) and not gradients else 0.0
        kernel, bias = lstm.keras_gates_to_tf1(*weights[:3], fold)
        tf1 = {"kernel": kernel, "bias": bias}
        if spec.get("use_peephole"):
            tf1.update(zip(PEEPHOLES, weights[3:6]))
        return tf1

