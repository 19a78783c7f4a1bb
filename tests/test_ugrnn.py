"""tf.contrib's UGRNNCell: the TF1 reproduction against numpy written from TF 1.15's equations,
and the cell converted from a checkpoint and its `.meta` (forget_bias 0.5 and relu, which only
the graph records), checked against that graph; a planted misread (forget_bias at its default)
is far outside the tolerance."""
import json

import keras
import numpy as np
import tensorflow as tf

import zoo_harness
from legacy_rnn import zoo
from legacy_rnn.conversion import blockwise, inspection
from legacy_rnn.zoo import blocks

C = zoo.CellSpec.make
ATOL = blockwise.TOLERANCE  # the TF migration guide's forward tolerance
TIME, INPUT, BATCH, UNITS = 5, 3, 4, 4
SPEC = C("ugrnn", UNITS, forget_bias=0.5, activation="relu")


def _numpy_ugrnn(x, lengths, kernel, bias, forget_bias, activation):
    """contrib's UGRNNCell.call under dynamic_rnn (zeros past each length, the state copied),
    in float64."""
    h = np.zeros((x.shape[0], UNITS))
    outputs = np.zeros((x.shape[0], x.shape[1], UNITS))
    for t in range(x.shape[1]):
        z = np.concatenate([x[:, t], h], 1) @ kernel + bias
        g = 1 / (1 + np.exp(-(z[:, :UNITS] + forget_bias)))
        new = g * h + (1 - g) * activation(z[:, UNITS:])
        live = (t < lengths)[:, None]
        h = np.where(live, new, h)
        outputs[:, t] = np.where(live, new, 0.0)
    return outputs


def test_the_tf1_cell_computes_contribs_equations():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(BATCH, TIME, INPUT)).astype(np.float32)
    lengths = np.array([5, 2, 0, 4], np.int32)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(2)
        outputs, _ = zoo.tf1_block(zoo.Block([SPEC]), tf.constant(x), tf.constant(lengths))
        (kernel, bias) = tf.compat.v1.trainable_variables()
        assert kernel.op.name == "rnn/ugrnn_cell/kernel" and bias.op.name == "rnn/ugrnn_cell/bias"
        bump = bias.assign(tf.random.normal(bias.shape))  # off its zero initial value
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(bump)
            got, k, b = sess.run([outputs, kernel, bias])
    expected = _numpy_ugrnn(x.astype(np.float64), lengths, k, b, 0.5, lambda v: np.maximum(v, 0))
    assert np.abs(got - expected).max() <= 1e-6  # float32 against float64


def test_ugrnn_converts_against_its_graph_with_options_from_the_meta(tmp_path):
    block = zoo.Block([SPEC], "bidirectional", "dynamic", scope="enc/bidirectional_rnn")
    prefix, original = zoo_harness.save_block_graph(tmp_path, block, time=TIME)
    (b,) = inspection.describe(prefix)["blocks"]
    assert b["cells"][0]["cell"] == "UGRNNCell(4, activation='relu', forget_bias=0.5)"
    assert b["options"]["forget_bias"]["source"].startswith("the .meta graph")
    blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    entry = json.loads((tmp_path / "out" / "blocks.json").read_text())["blocks"][0]
    assert entry["verified_against"].startswith("the user's graph")
    assert entry["largest_difference"] <= ATOL and entry["status"] == "written"
    from legacy_rnn import keras_cells  # noqa: F401  (the registered twin)
    model = keras.saving.load_model(tmp_path / "out" / entry["file"])
    rng = np.random.default_rng(5)
    x, lengths = rng.normal(size=(BATCH, TIME, INPUT)).astype(np.float32), np.array([5, 2, 0, 4])
    expected = original(x, lengths)
    assert np.abs(np.asarray(model([x, lengths])) - expected).max() <= ATOL
    # Planted: the same weights with forget_bias at its default (1.0) are another model.
    wrong = zoo.Block([C("ugrnn", UNITS, activation="relu")], "bidirectional", "dynamic",
                      scope="enc/bidirectional_rnn")
    twin = zoo.keras_block(wrong, INPUT)
    weights = {n: tf.train.load_variable(prefix, n) for n in entry["variables"]}
    blocks.to_keras(wrong, twin, weights)
    assert np.abs(np.asarray(twin([x, lengths])) - expected).max() > 10 * ATOL
