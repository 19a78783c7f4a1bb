"""TF1 RNN-cell variables <-> Keras 3 layer weights, as plain numpy functions.

| TF1 cell | TF1 variables | Keras layer | Keras weights |
|---|---|---|---|
| BasicLSTMCell / LSTMCell (no peepholes, no projection) | `kernel [in+U, 4U]` over `concat([x, h])`, gates i, j, f, o; `bias [4U]`; `forget_bias` added to f at run time | `LSTM` | `kernel [in, 4U]`, `recurrent_kernel [U, 4U]`, gates i, f, c(=j), o; `bias [4U]` |
| GRUCell | `gates/kernel [in+U, 2U]` (r, u), `gates/bias [2U]`, `candidate/kernel [in+U, U]` over `concat([x, r*h])`, `candidate/bias [U]` | `GRU(reset_after=False)` | `kernel [in, 3U]`, `recurrent_kernel [U, 3U]`, gates z(=u), r, h; `bias [3U]` |
| BasicRNNCell | `kernel [in+U, U]`, `bias [U]` | `SimpleRNN` | `kernel [in, U]`, `recurrent_kernel [U, U]`, `bias [U]` |

The conversions are permutations and splits, exact in both directions, with one exception: the
LSTM forget-gate bias. Keras has no forget_bias, so it is folded into the float32 bias
(`b_f + forget_bias`); that sum rounds unless it is representable (it is for the zero biases a
cell starts with). The round trip TF1 -> Keras -> TF1 is therefore bit-exact for every kernel and
bias entry except the f slice, which comes back within half a float32 ulp of `b_f + forget_bias`
(6e-8 for |b_f + 1| < 1), far below any difference the two frameworks' arithmetic makes anyway.
Gradients map through the same functions with `forget_bias=0`, exactly.
"""
import numpy as np


def _split_rows(kernel, units):
    n_in = kernel.shape[0] - units
    if n_in <= 0:
        raise ValueError(f"kernel has {kernel.shape[0]} rows, not more than the {units} units")
    return kernel[:n_in], kernel[n_in:]


def _lstm_units(bias):
    if bias.ndim != 1 or bias.shape[0] % 4:
        raise ValueError(f"an LSTM bias has 4 * units entries, got shape {bias.shape}")
    return bias.shape[0] // 4


def lstm_tf1_to_keras(kernel, bias, forget_bias=1.0):
    """BasicLSTMCell/LSTMCell `(kernel, bias)` -> Keras `LSTM` `[kernel, recurrent_kernel, bias]`."""
    units = _lstm_units(bias)
    i, j, f, o = np.split(kernel, 4, axis=1)
    b_i, b_j, b_f, b_o = np.split(bias, 4)
    reordered = np.concatenate([i, f, j, o], axis=1)
    keras_bias = np.concatenate([b_i, b_f + np.asarray(forget_bias, bias.dtype), b_j, b_o])
    return [*_split_rows(reordered, units), keras_bias]


def lstm_keras_to_tf1(kernel, recurrent_kernel, bias, forget_bias=1.0):
    """Keras `LSTM` weights -> BasicLSTMCell `(kernel, bias)` for a cell with this forget_bias."""
    stacked = np.concatenate([kernel, recurrent_kernel], axis=0)
    i, f, c, o = np.split(stacked, 4, axis=1)
    b_i, b_f, b_c, b_o = np.split(bias, 4)
    return (np.concatenate([i, c, f, o], axis=1),
            np.concatenate([b_i, b_c, b_f - np.asarray(forget_bias, bias.dtype), b_o]))


def gru_tf1_to_keras(gates_kernel, gates_bias, candidate_kernel, candidate_bias):
    """GRUCell variables -> Keras `GRU(reset_after=False)` `[kernel, recurrent_kernel, bias]`."""
    units = candidate_bias.shape[0]
    r, u = np.split(gates_kernel, 2, axis=1)
    b_r, b_u = np.split(gates_bias, 2)
    stacked = np.concatenate([u, r, candidate_kernel], axis=1)
    return [*_split_rows(stacked, units), np.concatenate([b_u, b_r, candidate_bias])]


def gru_keras_to_tf1(kernel, recurrent_kernel, bias):
    """Keras `GRU(reset_after=False)` weights -> GRUCell
    `(gates_kernel, gates_bias, candidate_kernel, candidate_bias)`."""
    if bias.ndim != 1:
        raise ValueError(f"GRU bias of shape {bias.shape}: only reset_after=False "
                         "(one [3U] bias) has a GRUCell equivalent")
    stacked = np.concatenate([kernel, recurrent_kernel], axis=0)
    z, r, h = np.split(stacked, 3, axis=1)
    b_z, b_r, b_h = np.split(bias, 3)
    return (np.concatenate([r, z], axis=1), np.concatenate([b_r, b_z]), h, b_h)


def simple_rnn_tf1_to_keras(kernel, bias):
    """BasicRNNCell `(kernel, bias)` -> Keras `SimpleRNN` `[kernel, recurrent_kernel, bias]`."""
    return [*_split_rows(kernel, bias.shape[0]), bias]


def simple_rnn_keras_to_tf1(kernel, recurrent_kernel, bias):
    """Keras `SimpleRNN` weights -> BasicRNNCell `(kernel, bias)`."""
    return np.concatenate([kernel, recurrent_kernel], axis=0), bias


def bidirectional_to_keras(forward, backward):
    """Keras `Bidirectional` weights: the forward layer's list, then the backward layer's."""
    return [*forward, *backward]


def bidirectional_from_keras(weights):
    """(forward, backward) weight lists of a Keras `Bidirectional` layer's `get_weights()`."""
    half = len(weights) // 2
    return weights[:half], weights[half:]


def dense_tf1_to_keras(weights, biases):
    """`logits = x @ W + b` is a Keras `Dense` with kernel W and bias b, unchanged."""
    return [weights, biases]
