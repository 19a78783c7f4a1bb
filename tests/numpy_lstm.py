"""An independent numpy BasicLSTMCell, written from the TF1 equations, to check the graphs against
(and tf.contrib's LayerNormBasicLSTMCell, from contrib's source: `layer_norm_lstm_outputs`).

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


LN_GATES = ("input", "transform", "forget", "output")


def layer_norm_lstm_outputs(x, w, lengths, forget_bias=1.0, act=np.tanh):
    """contrib's LayerNormBasicLSTMCell over float64 `x [batch, time, in]`; `w`: relative names."""
    def norm(v, scope):
        mean = v.mean(axis=1, keepdims=True)
        var = ((v - mean) ** 2).mean(axis=1, keepdims=True)
        return (v - mean) / np.sqrt(var + 1e-12) * w[f"{scope}/gamma"] + w[f"{scope}/beta"]

    batch, time, _ = x.shape
    units = w["state/gamma"].shape[0]
    c, hs = np.zeros((batch, units)), np.zeros((batch, units))
    outputs = np.zeros((batch, time, units))
    for t in range(time):
        z = np.concatenate([x[:, t], hs], 1) @ w["kernel"]
        i, j, f, o = (norm(v, scope) for v, scope in zip(np.split(z, 4, axis=1), LN_GATES))
        new_c = norm(c * sigmoid(f + forget_bias) + sigmoid(i) * act(j), "state")
        new_h = act(new_c) * sigmoid(o)
        live = (t < lengths)[:, None]
        c, hs = np.where(live, new_c, c), np.where(live, new_h, hs)
        outputs[:, t] = np.where(live, new_h, 0.0)
    return outputs
