"""tf.contrib's fused-RNN adaptors (TF 1.15, `contrib/rnn/python/ops/fused_rnn_cell.py`) on
today's TF, for code written against them:

- `FusedRNNCellAdaptor(cell, use_dynamic_rnn)` runs any RNNCell as a fused cell: called on a
  time-major `[T, B, in]` tensor (or a list of `[B, in]` steps), it is `dynamic_rnn(cell, ...,
  time_major=True)` or `static_rnn(cell, unstacked)`, under the scope it is given (else the
  driver's `rnn`).
- `TimeReversedFusedRNN(fused)` runs a fused cell (an adaptor, or `LSTMBlockFusedCell`) backwards:
  the input reversed in time before, the output reversed back after, both within each sequence's
  length (`ReverseSequence`) when `sequence_length` is given; a list of steps is reversed whole,
  lengths or not (TF1's own behaviour: not within the lengths).

Neither creates variables or scopes of its own, so a checkpoint cannot tell them from the driver
they call: `convert` reads the cell as that driver's block (time-major or not, the block is the
same), and the reversal, the concatenation of a bidirectional pair and whatever else the user's
code does with the outputs are the graph's own ops, translated with the model (`convert
--outputs`, `conversion/whole.py`).
"""
import tensorflow as tf


class FusedRNNCellAdaptor:
    def __init__(self, cell, use_dynamic_rnn=False):
        self._cell = cell
        self._use_dynamic_rnn = use_dynamic_rnn

    def __call__(self, inputs, initial_state=None, dtype=None, sequence_length=None, scope=None):
        is_list = isinstance(inputs, list)
        if self._use_dynamic_rnn:
            outputs, state = tf.compat.v1.nn.dynamic_rnn(
                self._cell, tf.stack(inputs) if is_list else inputs,
                sequence_length=sequence_length, initial_state=initial_state, dtype=dtype,
                time_major=True, scope=scope)
            return (tf.unstack(outputs) if is_list else outputs), state
        outputs, state = tf.compat.v1.nn.static_rnn(
            self._cell, inputs if is_list else tf.unstack(inputs), initial_state=initial_state,
            dtype=dtype, sequence_length=sequence_length, scope=scope)
        return (outputs if is_list else tf.stack(outputs)), state


class TimeReversedFusedRNN:
    def __init__(self, cell):
        self._cell = cell

    @staticmethod
    def _reverse(t, lengths):
        if isinstance(t, list):
            return list(reversed(t))
        if lengths is None:
            return tf.reverse(t, [0])
        return tf.reverse_sequence(t, lengths, seq_axis=0, batch_axis=1)

    def __call__(self, inputs, initial_state=None, dtype=None, sequence_length=None, scope=None):
        kwargs = {} if scope is None else {"scope": scope}  # LSTMBlockFusedCell takes none
        outputs, state = self._cell(self._reverse(inputs, sequence_length),
                                    initial_state=initial_state, dtype=dtype,
                                    sequence_length=sequence_length, **kwargs)
        return self._reverse(outputs, sequence_length), state
