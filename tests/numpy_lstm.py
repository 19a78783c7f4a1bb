"""An independent numpy BasicLSTMCell, written from the TF1 equations, to check the graphs against.

kernel `[input + units, 4 * units]` over `concat([x, h])`, gate columns i, j, f, o;
c' = sigmoid(f + forget_bias) * c + sigmoid(i) * tanh(j); h' = sigmoid(o) * tanh(c').
With sequence lengths, steps at or after a sequence's length emit zeros and keep the state.
"""
import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def lstm_outputs(x, kernel, bias, seqlen=None, forget_bias=1.0):
    """All outputs `[batch, time, units]` of a BasicLSTMCell run over float64 `x [batch, time, in]`."""
    batch, time, _ = x.shape
    units = bias.shape[0] // 4
    seqlen = np.full(batch, time) if seqlen is None else np.asarray(seqlen)
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    outputs = np.zeros((batch, time, units))
    for t in range(time):
        z = np.concatenate([x[:, t], h], axis=1) @ kernel + bias
        i, j, f, o = np.split(z, 4, axis=1)
        new_c = sigmoid(f + forget_bias) * c + sigmoid(i) * np.tanh(j)
        new_h = sigmoid(o) * np.tanh(new_c)
        live = (t < seqlen)[:, None]
        c = np.where(live, new_c, c)
        h = np.where(live, new_h, h)
        outputs[:, t] = np.where(live, new_h, 0.0)
    return outputs


def reverse_within_length(x, seqlen):
    """Each sequence's first seqlen steps reversed, padding left in place (tf.reverse_sequence)."""
    out = x.copy()
    for b, n in enumerate(seqlen):
        out[b, :n] = x[b, :n][::-1]
    return out


def bidirectional_outputs(x, fw, bw, seqlen=None):
    """Forward and backward outputs concatenated, both in time order, as static_bidirectional_rnn."""
    seqlen = np.full(x.shape[0], x.shape[1]) if seqlen is None else np.asarray(seqlen)
    forward = lstm_outputs(x, *fw, seqlen)
    backward = reverse_within_length(
        lstm_outputs(reverse_within_length(x, seqlen), *bw, seqlen), seqlen)
    return np.concatenate([forward, backward], axis=2)
