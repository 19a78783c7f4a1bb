"""cuDNN layers' checkpoints in their canonical form (what contrib's CudnnOpaqueParamsSaveable
writes for `CudnnLSTM` / `CudnnGRU`), converted and checked against float64 numpy evaluations of
the cuDNN equations (the cuDNN user guide's, as TF 1.15's cudnn_rnn_ops.py documents them),
written here independently of the zoo: LSTM with the two biases summed and no forget bias; GRU
with the reset gate applied after the hidden projection."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import numpy_lstm
import zoo_harness
from legacy_rnn import zoo
from legacy_rnn.conversion import blockwise, inspection
from legacy_rnn.errors import UserError

ATOL = blockwise.TOLERANCE  # the TF migration guide's forward tolerance
IN, U, T, B = 3, 4, 5, 4
LENGTHS = np.array([T, 2, 0, 4], np.int32)
GRU = "cudnn_compatible_gru_cell"
LSTM = "cudnn_compatible_lstm_cell"


def write_checkpoint(tmp_path, values):
    """A checkpoint holding exactly `values` under their names, as the cuDNN saver left it (the
    training graph's CudnnRNN ops run only on a GPU: no `.meta` to run here)."""
    with tf.Graph().as_default():
        variables = [tf.compat.v1.get_variable(name, initializer=value)
                     for name, value in values.items()]
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            prefix = str(tmp_path / "ckpt" / "model.ckpt")
            tf.compat.v1.train.Saver(variables).save(sess, prefix, write_meta_graph=False)
    return prefix


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def cudnn_gru_outputs(x, w, lengths):
    """r, u from the summed gate biases; h' = tanh(x Wi + bi + r * (h Wh + bh))."""
    h = np.zeros((x.shape[0], U))
    outputs = np.zeros((*x.shape[:2], U))
    for t in range(x.shape[1]):
        r, u = np.split(sigmoid(np.concatenate([x[:, t], h], 1) @ w["gates/kernel"]
                                + w["gates/bias"]), 2, axis=1)
        candidate = np.tanh(x[:, t] @ w["candidate/input_projection/kernel"]
                            + w["candidate/input_projection/bias"]
                            + r * (h @ w["candidate/hidden_projection/kernel"]
                                   + w["candidate/hidden_projection/bias"]))
        new_h = u * h + (1 - u) * candidate
        live = (t < lengths)[:, None]
        h = np.where(live, new_h, h)
        outputs[:, t] = np.where(live, new_h, 0.0)
    return outputs


def values_of(rng, shapes):
    return {name: rng.normal(size=shape).astype(np.float32) for name, shape in shapes.items()}


def convert(prefix, out):
    results, others = blockwise.to_keras_blocks(prefix, str(out))
    report = json.loads((out / "blocks.json").read_text())
    return results, others, report


def run_file(out, entry, x):
    model = keras.saving.load_model(out / entry["file"])
    return np.asarray(model([x, LENGTHS]))


def test_a_two_layer_cudnn_lstm_checkpoint_converts_and_computes_cudnns_lstm(tmp_path):
    rng = np.random.default_rng(0)
    shapes = {}
    for k, n_in in enumerate((IN, U)):
        cell = f"cudnn_lstm/rnn/multi_rnn_cell/cell_{k}/{LSTM}"
        shapes.update({f"{cell}/kernel": (n_in + U, 4 * U), f"{cell}/bias": (4 * U,)})
    values = values_of(rng, shapes)
    values["cudnn_lstm/opaque_kernel"] = rng.normal(size=(368,)).astype(np.float32)
    prefix = write_checkpoint(tmp_path, values)
    report = inspection.describe(prefix)
    (block,) = report["blocks"]
    assert block["structure"] == ("dynamic_rnn(MultiRNNCell([CudnnCompatibleLSTMCell(4), "
                                  "CudnnCompatibleLSTMCell(4)])) under cudnn_lstm/rnn/")
    results, others, report = convert(prefix, tmp_path / "out")
    (entry,) = report["blocks"]
    assert entry["status"] == "written" and entry["assumed"] == []  # no option to assume
    assert entry["verified_against"].startswith("this project's TF1 rebuild")
    # The opaque buffer is not converted, and said so (the canonical names carry the weights).
    (opaque,) = [o for o in others if o["name"] == "cudnn_lstm/opaque_kernel"]
    assert "opaque parameter buffer" in opaque["guess"]
    x = rng.normal(size=(B, T, IN)).astype(np.float32)
    expected = x.astype(np.float64)
    for k in range(2):
        cell = f"cudnn_lstm/rnn/multi_rnn_cell/cell_{k}/{LSTM}"
        expected = numpy_lstm.lstm_outputs(expected, values[f"{cell}/kernel"],
                                           values[f"{cell}/bias"], LENGTHS, forget_bias=0.0)
    difference = np.abs(run_file(tmp_path / "out", entry, x) - expected).max()
    assert difference <= ATOL
    print(f"CudnnLSTM 2 layers: {difference:.1e}")


def bidirectional_cudnn_gru(rng, layers=2):
    values = {}
    for k in range(layers):
        n_in = IN if k == 0 else 2 * U
        for d in ("fw", "bw"):
            cell = f"cudnn_gru/stack_bidirectional_rnn/cell_{k}/bidirectional_rnn/{d}/{GRU}"
            # The names and shapes CudnnGRUSaveable writes (TF 1.15's cudnn_rnn_ops.py).
            values.update(values_of(rng, {
                f"{cell}/gates/kernel": (n_in + U, 2 * U), f"{cell}/gates/bias": (2 * U,),
                f"{cell}/candidate/input_projection/kernel": (n_in, U),
                f"{cell}/candidate/input_projection/bias": (U,),
                f"{cell}/candidate/hidden_projection/kernel": (U, U),
                f"{cell}/candidate/hidden_projection/bias": (U,)}))
    return values


def numpy_bidirectional_gru(values, x, layers=2):
    out = x.astype(np.float64)
    for k in range(layers):
        w = {d: {name.split(f"{GRU}/", 1)[1]: v for name, v in values.items()
                 if f"cell_{k}/bidirectional_rnn/{d}/" in name} for d in ("fw", "bw")}
        forward = cudnn_gru_outputs(out, w["fw"], LENGTHS)
        backward = numpy_lstm.reverse_within_length(cudnn_gru_outputs(
            numpy_lstm.reverse_within_length(out, LENGTHS), w["bw"], LENGTHS), LENGTHS)
        out = np.concatenate([forward, backward], axis=2)
    return out


def test_a_bidirectional_two_layer_cudnn_gru_converts_and_resets_after_the_matmul(tmp_path):
    rng = np.random.default_rng(1)
    values = bidirectional_cudnn_gru(rng)
    prefix = write_checkpoint(tmp_path, values)
    results, _, report = convert(prefix, tmp_path / "out")
    (entry,) = report["blocks"]
    assert entry["structure"] == ("stack_bidirectional_dynamic_rnn([CudnnCompatibleGRUCell(4), "
                                  "CudnnCompatibleGRUCell(4)]) under "
                                  "cudnn_gru/stack_bidirectional_rnn/")
    assert entry["status"] == "written"
    x = rng.normal(size=(B, T, IN)).astype(np.float32)
    converted = run_file(tmp_path / "out", entry, x)
    difference = np.abs(converted - numpy_bidirectional_gru(values, x)).max()
    assert difference <= ATOL
    print(f"CudnnGRU bidirectional 2 layers: {difference:.1e}")
    # TF1's GRUCell on the same weights (the reset gate before the matmul) is another function.
    config = json.dumps(keras.saving.load_model(tmp_path / "out" / entry["file"]).get_config())
    assert '"reset_after": true' in config


def test_a_misread_gate_order_is_refused_by_the_check(tmp_path, monkeypatch):
    # Planted misread: reset and update gates swapped in the mapping. The check against the TF1
    # cell on the checkpoint's own arrays (no .meta here) must refuse it, writing nothing.
    rng = np.random.default_rng(2)
    prefix = write_checkpoint(tmp_path, bidirectional_cudnn_gru(rng, layers=1))
    family = zoo.FAMILIES["cudnn_gru"]
    honest = family.to_keras

    def swapped(spec, tf1):
        kernel, recurrent, bias = honest(spec, tf1)
        z, r, h = np.split(kernel, 3, axis=1)
        return [np.concatenate([r, z, h], axis=1), recurrent, bias]

    monkeypatch.setattr(family, "to_keras", swapped)
    results, _, report = convert(prefix, tmp_path / "out")
    (entry,) = report["blocks"]
    assert not results[0].ok and entry["largest_difference"] > 1e-3
    assert entry["status"] == "failed: not written"


def test_a_cudnn_compatible_cpu_graph_converts_against_that_graph(tmp_path):
    # The CPU inference graph TF documents for these checkpoints (the compatible cells under the
    # canonical names), saved with its .meta: checked against that graph.
    block = zoo.Block([zoo.CellSpec.make("cudnn_lstm", U)] * 2, "forward", "dynamic",
                      scope="cudnn_lstm/rnn", multi=True)
    prefix, original = zoo_harness.save_block_graph(tmp_path, block, time=T)
    names = {n for n, _ in tf.train.list_variables(prefix)}
    assert f"cudnn_lstm/rnn/multi_rnn_cell/cell_1/{LSTM}/kernel" in names
    _, _, report = convert(prefix, tmp_path / "out")
    (entry,) = report["blocks"]
    assert entry["verified_against"].startswith("the user's graph")
    x = np.random.default_rng(3).normal(size=(B, T, IN)).astype(np.float32)
    assert np.abs(run_file(tmp_path / "out", entry, x) - original(x, LENGTHS)).max() <= ATOL


def test_the_opaque_buffer_alone_is_refused_with_what_to_run(tmp_path):
    prefix = write_checkpoint(tmp_path, {"cudnn_lstm/opaque_kernel": np.ones(368, np.float32)})
    with pytest.raises(UserError, match=r"opaque parameter buffer, whose layout only the cuDNN "
                                        r"library knows .*tf.raw_ops.CudnnRNNParamsToCanonical"):
        convert(prefix, tmp_path / "out")
    assert not (tmp_path / "out").exists()
