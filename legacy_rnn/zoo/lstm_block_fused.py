"""tf.contrib's `LSTMBlockFusedCell` <-> Keras `LSTM`, or the registered `TF1LSTMCell` with
use_peephole or cell_clip.

One op for the whole sequence, `BlockLSTM(seq_len_max, x, cs_prev, h_prev, w, wci, wcf, wco, b)`
over time-major `x [T, B, in]` (TF 2.x still has it, `tf.raw_ops.BlockLSTM`, and registers its
gradient), computing `LSTMBlockCell`'s function at every step, with its variables (`kernel
[in+U, 4U]` in gates i, c, f, o; `bias`; peepholes `w_i_diag`, `w_f_diag`, `w_o_diag`) and its
options as attributes of the op (`forget_bias`, `cell_clip`, `use_peephole`; contrib before 1.15
left `cell_clip` at the op's default 3.0). The contrib class is called directly, not through a
driver: `outputs, (c, h) = cell(x_time_major, dtype=tf.float32, sequence_length=lengths)` zeroes
the outputs past each length and gathers the final state at length - 1; its variables sit under
the caller's scope and the cell's name (`lstm_cell`). DeepSpeech's CPU graph names it
`cudnn_compatible_lstm_cell` under cuDNN's canonical scope, with forget_bias 0: that checkpoint
is the cuDNN family's (`zoo/cudnn.py`), read the same way.

A `.meta` shows no per-step ops: the verification feeds the op's own time-major input and reads
its `h` output (`CellFamily.sequence_calls`). The zoo's drivers (rebuilds, parity) run its step
function, `LSTMBlockCell`, which the op computes at each step.
"""
import tensorflow as tf

from legacy_rnn.zoo import cells, lstm_block

OP = "BlockLSTM"


class LSTMBlockFusedCell:
    """tf.contrib.rnn.LSTMBlockFusedCell (TF 1.15) on today's TF: contrib's call, names and op."""

    def __init__(self, num_units, forget_bias=1.0, cell_clip=None, use_peephole=False,
                 name="lstm_cell"):
        self.num_units = num_units
        self._forget_bias = forget_bias
        self._cell_clip = cell_clip if cell_clip is not None else -1.0
        self._use_peephole = use_peephole
        self._name = name

    def __call__(self, inputs, initial_state=None, dtype=None, sequence_length=None):
        """`inputs` time-major `[T, B, in]`; returns (outputs `[T, B, U]`, LSTMStateTuple)."""
        u, n_in = self.num_units, inputs.shape[-1]
        dtype = dtype or inputs.dtype
        with tf.compat.v1.variable_scope(self._name):
            w = tf.compat.v1.get_variable("kernel", [n_in + u, 4 * u], dtype)
            b = tf.compat.v1.get_variable("bias", [4 * u], dtype,
                                          initializer=tf.compat.v1.zeros_initializer())
            peepholes = [tf.compat.v1.get_variable(name, [u], dtype)
                         for name in lstm_block.PEEPHOLES] if self._use_peephole else \
                [tf.zeros([u], dtype)] * 3
        time, batch = tf.shape(inputs)[0], tf.shape(inputs)[1]
        if initial_state is None:
            zeros = tf.zeros(tf.stack([batch, u]), dtype)
            initial_state = (zeros, zeros)
        c0, h0 = initial_state
        max_len = tf.cast(time if sequence_length is None else tf.reduce_max(sequence_length),
                          tf.int64)
        wci, wcf, wco = peepholes
        _, cs, _, _, _, _, h = tf.raw_ops.BlockLSTM(
            seq_len_max=max_len, x=inputs, cs_prev=c0, h_prev=h0, w=w, wci=wci, wcf=wcf, wco=wco,
            b=b, forget_bias=self._forget_bias, cell_clip=self._cell_clip,
            use_peephole=self._use_peephole)
        if sequence_length is None:
            return h, tf.compat.v1.nn.rnn_cell.LSTMStateTuple(cs[-1], h[-1])
        mask = tf.transpose(tf.sequence_mask(sequence_length, time, dtype), [1, 0])[..., None]
        h = h * mask

        def last(states, first):  # the state at length - 1 (the initial one for length 0)
            states = tf.concat([first[None], states], 0)
            return tf.gather_nd(states, tf.stack([tf.cast(sequence_length, tf.int32),
                                                  tf.range(batch)], axis=1))
        return h, tf.compat.v1.nn.rnn_cell.LSTMStateTuple(last(cs, c0), last(h, h0))


@cells.register
class LSTMBlockFused(lstm_block.LSTMBlock):
    kind = "lstm_block_fused"
    tf1_name = "LSTMBlockFusedCell"
    keras_name = "LSTM, or RNN(TF1LSTMCell) with use_peephole or cell_clip"
    fused_ops = (OP,)
    sequence_ops = (OP,)
    called_directly = True

    def cases(self):
        return {"LSTMBlockFusedCell(forget_bias=0, use_peephole)": cells.CellSpec.make(
            self.kind, 4, forget_bias=0.0, use_peephole=True)}

    def steps_in_graph(self, view, prefix):
        return None  # one op for the whole sequence: `sequence_calls`
