"""tf.contrib's `GRUBlockCell` and `GRUBlockCellV2` <-> Keras `GRUCell(reset_after=False)`.

One fused op per step, `GRUBlockCell(x, h_prev, w_ru, w_c, b_ru, b_c)` (TF 2.x still has it:
`tf.raw_ops.GRUBlockCell`), computing GRUCell's function:

    r, u = split(sigmoid(concat([x, h_prev]) @ gate_kernel + gate_bias))      r first, as GRUCell
    c = tanh(concat([x, r * h_prev]) @ candidate_kernel + candidate_bias)
    h = u * h_prev + (1 - u) * c

Variables under `gru_cell` (contrib's default name, for compatibility with GRUCell):

- `GRUBlockCell` (V1, deprecated in TF 1.x): the gate kernel `[in+U, 2U]` is the variable named
  **`w_c`**, the candidate kernel `[in+U, U]` the one named **`w_ru`** (contrib passes them to the
  op crosswise: its build names the gate kernel "w_c"); biases `b_ru [2U]` (gates, initialised to
  1.0) and `b_c [U]`. The shapes say which is which.
- `GRUBlockCellV2`: GRUCell's own names (`gates/kernel`, `gates/bias`, `candidate/kernel`,
  `candidate/bias`): the checkpoint alone is a GRUCell's, the same function; the `.meta` shows
  the `GRUBlockCell` ops.

TF 2.x keeps the op and its gradient kernel but registers no gradient; this module registers
contrib's. Weights map exactly both ways (as GRUCell's).
"""
import tensorflow as tf

from legacy_rnn.zoo import cells, graphview, gru

OP = "GRUBlockCell"
V1 = {"w_c": "gates/kernel", "b_ru": "gates/bias", "w_ru": "candidate/kernel",
      "b_c": "candidate/bias"}


@tf.RegisterGradient(OP)
def _gru_block_cell_gradient(op, *grads):
    """contrib's gradient: the kernel gives d_x, d_h_prev and the pre-activation gradients; the
    two matmuls' weight gradients are formed here."""
    x, h_prev, w_ru, w_c, b_ru, b_c = op.inputs
    r, u, c, _ = op.outputs
    d_x, d_h_prev, d_c_bar, d_r_bar_u_bar = tf.raw_ops.GRUBlockCellGrad(
        x=x, h_prev=h_prev, w_ru=w_ru, w_c=w_c, b_ru=b_ru, b_c=b_c, r=r, u=u, c=c, d_h=grads[3])
    d_w_ru = tf.matmul(tf.concat([x, h_prev], 1), d_r_bar_u_bar, transpose_a=True)
    d_w_c = tf.matmul(tf.concat([x, h_prev * r], 1), d_c_bar, transpose_a=True)
    return (d_x, d_h_prev, d_w_ru, d_w_c, tf.reduce_sum(d_r_bar_u_bar, 0),
            tf.reduce_sum(d_c_bar, 0))


class GRUBlockCell(tf.compat.v1.nn.rnn_cell.RNNCell):
    """tf.contrib.rnn.GRUBlockCell / GRUBlockCellV2 (TF 1.15) on today's TF: the fused op with
    contrib's variable names (`v2`: GRUCell's)."""

    def __init__(self, num_units, v2=False, name="gru_cell", **kwargs):
        super().__init__(name=name, **kwargs)
        self._num_units = num_units
        self._v2 = v2

    @property
    def state_size(self):
        return self._num_units

    @property
    def output_size(self):
        return self._num_units

    def build(self, inputs_shape):
        rows, u = inputs_shape[-1] + self._num_units, self._num_units
        names = {today: today for today in V1.values()} if self._v2 else \
            {today: old for old, today in V1.items()}
        self._gate_kernel = self.add_weight(names["gates/kernel"], shape=[rows, 2 * u])
        self._gate_bias = self.add_weight(names["gates/bias"], shape=[2 * u],
                                          initializer=tf.compat.v1.constant_initializer(1.0))
        self._candidate_kernel = self.add_weight(names["candidate/kernel"], shape=[rows, u])
        self._candidate_bias = self.add_weight(names["candidate/bias"], shape=[u],
                                               initializer=tf.compat.v1.zeros_initializer())
        self.built = True

    def call(self, inputs, h_prev):
        *_, h = tf.raw_ops.GRUBlockCell(x=inputs, h_prev=h_prev, w_ru=self._gate_kernel,
                                        w_c=self._candidate_kernel, b_ru=self._gate_bias,
                                        b_c=self._candidate_bias)
        return h, h


@cells.register
class GRUBlockV2(gru.GRU):
    """GRUBlockCellV2: GRUCell's variables; only the graph's ops tell it from a GRUCell."""
    kind = "gru_block_v2"
    tf1_name = "GRUBlockCellV2"
    defaults = {}
    graph_options = ()
    fused_ops = (OP,)
    old_names = {}

    def cases(self):
        return {self.tf1_name: cells.CellSpec.make(self.kind, 4)}

    def tf1_cell(self, spec, name=None):
        return GRUBlockCell(spec.units, v2=True, name=name or self.scope)

    def keras_cell(self, spec, **kwargs):
        return super().keras_cell(cells.CellSpec.make("gru", spec.units), **kwargs)

    def from_keras_cell(self, cell, activation_name):
        return None  # a Keras GRU goes back as a GRUCell, which every TF1 has

    def steps_in_graph(self, view, prefix):
        """Each GRUBlockCell op reads x_t (input 0) and h_prev (input 1) itself."""
        return [(key, view.inputs[key][0], view.inputs[key][1])
                for key in graphview.first_use(view, f"{prefix}/{self.kernel_name}", {OP})]


@cells.register
class GRUBlock(GRUBlockV2):
    """GRUBlockCell (V1): its own names, the gate kernel called `w_c`."""
    kind = "gru_block"
    tf1_name = "GRUBlockCell"
    kernel_name = "w_c"

    def tf1_cell(self, spec, name=None):
        return GRUBlockCell(spec.units, name=name or self.scope)

    def variables(self, spec, input_size):
        today = super().variables(spec, input_size)
        return {old: today[new] for old, new in V1.items()}

    def units_from(self, shapes):
        bias = shapes.get("b_c")
        return bias[0] if bias and len(bias) == 1 else None

    def to_keras(self, spec, tf1):
        return super().to_keras(spec, {new: tf1[old] for old, new in V1.items()})

    def to_tf1(self, spec, weights, gradients=False):
        today = super().to_tf1(spec, weights, gradients)
        return {old: today[new] for old, new in V1.items()}
