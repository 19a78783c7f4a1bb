"""GRUCell <-> Keras `GRUCell(reset_after=False)` / `GRU(reset_after=False)`.

    r, u = split(sigmoid(concat([x, h_prev]) @ gates/kernel + gates/bias))
    c = act(concat([x, r * h_prev]) @ candidate/kernel + candidate/bias)    reset BEFORE the matmul
    h = u * h_prev + (1 - u) * c                                            output and state: h

Keras's `z` is TF1's `u`. Keras's default `reset_after=True` (the cuDNN variant) applies `r` after
the recurrent matmul: another function, and the reason PyTorch's `nn.GRU` (also reset-after) has no
GRUCell equivalent. TF1 `gates/kernel [in+U, 2U]` (r, u) and `candidate/kernel [in+U, U]` become
Keras `kernel [in, 3U]` / `recurrent_kernel [U, 3U]` in the order z(=u), r, h; the biases likewise.
Exact both ways.
"""
import keras
import numpy as np
import tensorflow as tf

from legacy_rnn.errors import UserError
from legacy_rnn.zoo import cells, simple

NAMES = ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")


@cells.register
class GRU(cells.CellFamily):
    kind = "gru"
    tf1_name = "GRUCell"
    scope = "gru_cell"
    defaults = {"activation": "tanh"}
    keras_name = "GRUCell / GRU (reset_after=False)"
    kernel_name = "gates/kernel"
    old_names = {
        "TF 0.x": ("GRUCell", {"Gates/Linear/Matrix": "gates/kernel",
                               "Gates/Linear/Bias": "gates/bias",
                               "Candidate/Linear/Matrix": "candidate/kernel",
                               "Candidate/Linear/Bias": "candidate/bias"}),
        "TF 1.0/1.1": ("gru_cell", {"gates/weights": "gates/kernel", "gates/biases": "gates/bias",
                                    "candidate/weights": "candidate/kernel",
                                    "candidate/biases": "candidate/bias"})}

    def cases(self):
        return {"GRUCell(softsign)": cells.CellSpec.make(self.kind, 4, activation="softsign"),
                "GRUCell": cells.CellSpec.make(self.kind, 4)}

    def tf1_cell(self, spec, name=None):
        return tf.compat.v1.nn.rnn_cell.GRUCell(spec.units, activation=spec.get("activation"),
                                                name=name)

    def variables(self, spec, input_size):
        u, rows = spec.units, input_size + spec.units
        return {"gates/kernel": (rows, 2 * u), "gates/bias": (2 * u,),
                "candidate/kernel": (rows, u), "candidate/bias": (u,)}

    def units_from(self, shapes):
        bias = shapes.get("candidate/bias")
        return bias[0] if bias and len(bias) == 1 else None

    def options_in_graph(self, view, prefix):
        """candidate MatMul -> BiasAdd -> the activation op."""
        return simple.activation_after_bias(view, f"{prefix}/candidate/kernel")

    def keras_cell(self, spec, **kwargs):
        return keras.layers.GRUCell(spec.units, activation=spec.get("activation"),
                                    reset_after=False, **kwargs)

    def from_keras_cell(self, cell, activation_name):
        if not isinstance(cell, keras.layers.GRUCell):
            return None
        if cell.reset_after:
            raise UserError("GRU with reset_after=True (Keras's default, the cuDNN variant) applies "
                            "the reset gate after the recurrent matmul; TF1's GRUCell applies it "
                            "before. Only reset_after=False converts.")
        return {"activation": activation_name(cell.activation)}

    def to_keras(self, spec, tf1):
        r, u = np.split(tf1["gates/kernel"], 2, axis=1)
        b_r, b_u = np.split(tf1["gates/bias"], 2)
        stacked = np.concatenate([u, r, tf1["candidate/kernel"]], axis=1)
        return [*cells.split_rows(stacked, spec.units),
                np.concatenate([b_u, b_r, tf1["candidate/bias"]])]

    def to_tf1(self, spec, weights, gradients=False):
        kernel, recurrent_kernel, bias = weights
        if bias.ndim != 1:
            raise ValueError(f"GRU bias of shape {bias.shape}: only reset_after=False "
                             "(one [3U] bias) has a GRUCell equivalent")
        z, r, h = np.split(cells.stack_rows(kernel, recurrent_kernel), 3, axis=1)
        b_z, b_r, b_h = np.split(bias, 3)
        return {"gates/kernel": np.concatenate([r, z], axis=1),
                "gates/bias": np.concatenate([b_r, b_z]), "candidate/kernel": h,
                "candidate/bias": b_h}
