"""An independent numpy BasicLSTMCell, written from the TF1 equations, to check the graphs against
(and tf.contrib's LayerNormBasicLSTMCell and NASCell, from contrib's source:
`layer_norm_lstm_outputs`, `nas_outputs`).

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


def nas_outputs(x, w, lengths):
    """tf.contrib's NASCell (TF 1.15's `NASCell.call`, step by step as it is written there) under
    dynamic_rnn, in float64: `w` holds kernel, recurrent_kernel and optionally bias and
    projection_weights (relative names)."""
    relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
    batch, time, _ = x.shape
    units = w["kernel"].shape[1] // 8
    proj = w.get("projection_weights")
    c = np.zeros((batch, units))
    m = np.zeros((batch, units if proj is None else proj.shape[1]))
    outputs = np.zeros((batch, time, m.shape[1]))
    for t in range(time):
        m_matrix = m @ w["recurrent_kernel"] + w.get("bias", 0.0)
        ms = np.split(m_matrix, 8, axis=1)
        xs = np.split(x[:, t] @ w["kernel"], 8, axis=1)
        layer1_0 = sigmoid(xs[0] + ms[0])
        layer1_1 = relu(xs[1] + ms[1])
        layer1_2 = sigmoid(xs[2] + ms[2])
        layer1_3 = relu(xs[3] * ms[3])
        layer1_4 = np.tanh(xs[4] + ms[4])
        layer1_5 = sigmoid(xs[5] + ms[5])
        layer1_6 = np.tanh(xs[6] + ms[6])
        layer1_7 = sigmoid(xs[7] + ms[7])
        l2_0 = np.tanh(layer1_0 * layer1_1)
        l2_1 = np.tanh(layer1_2 + layer1_3)
        l2_2 = np.tanh(layer1_4 * layer1_5)
        l2_3 = sigmoid(layer1_6 + layer1_7)
        l2_0 = np.tanh(l2_0 + c)
        new_c = l2_0 * l2_1
        new_m = np.tanh(new_c * np.tanh(l2_2 + l2_3))
        if proj is not None:
            new_m = new_m @ proj
        live = (t < np.asarray(lengths))[:, None]
        c = np.where(live, new_c, c)
        m = np.where(live, new_m, m)
        outputs[:, t] = np.where(live, new_m, 0.0)
    return outputs


def attention_lstm_outputs(x, w, lengths, attn_length, forget_bias=1.0):
    """tf.contrib's AttentionCellWrapper around a BasicLSTMCell (TF 1.15's `call` and
    `_attention`, as written there: the 1x1 conv as a matmul) under dynamic_rnn, in float64.
    `w`: the wrapper's variables by relative name, the cell's under `basic_lstm_cell/`."""
    batch, time, _ = x.shape
    a = w["attn_output_projection/bias"].shape[0]
    units = w["basic_lstm_cell/bias"].shape[0] // 4
    c, h = np.zeros((batch, units)), np.zeros((batch, units))
    attns, window = np.zeros((batch, a)), np.zeros((batch, attn_length, a))
    outputs = np.zeros((batch, time, a))
    for t in range(time):
        inputs = np.concatenate([x[:, t], attns], 1) @ w["kernel"] + w["bias"]
        z = np.concatenate([inputs, h], 1) @ w["basic_lstm_cell/kernel"] + w["basic_lstm_cell/bias"]
        i, j, f, o = np.split(z, 4, axis=1)
        new_c = c * sigmoid(f + forget_bias) + sigmoid(i) * np.tanh(j)
        new_h = np.tanh(new_c) * sigmoid(o)
        query = np.concatenate([new_c, new_h], 1)  # nest.flatten(LSTMStateTuple(c, h))
        features = window @ w["attention/attn_w"][0, 0]  # [B, L, V]
        y = query @ w["attention/kernel"] + w["attention/bias"]
        s = np.sum(w["attention/attn_v"] * np.tanh(features + y[:, None]), axis=2)
        weights = np.exp(s - s.max(1, keepdims=True))
        weights /= weights.sum(1, keepdims=True)
        new_attns = np.sum(weights[..., None] * window, axis=1)
        output = (np.concatenate([new_h, new_attns], 1) @ w["attn_output_projection/kernel"]
                  + w["attn_output_projection/bias"])
        new_window = np.concatenate([window[:, 1:], output[:, None]], 1)
        live = (t < np.asarray(lengths))[:, None]
        outputs[:, t] = np.where(live, output, 0.0)
        c, h = np.where(live, new_c, c), np.where(live, new_h, h)
        attns = np.where(live, new_attns, attns)
        window = np.where(live[..., None], new_window, window)
    return outputs
