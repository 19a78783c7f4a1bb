"""tf.contrib's NASCell: the TF1 reproduction against numpy written from TF 1.15's equations, and
the cell converted from a checkpoint and its `.meta` (num_proj and use_biases, both off their
defaults), checked against that graph, static and dynamic; a planted misread (the bias lost on the
way to the twin) is refused by that check."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import numpy_lstm
import zoo_harness
from legacy_rnn import zoo
from legacy_rnn.conversion import blockwise, inspection

C = zoo.CellSpec.make
ATOL = blockwise.TOLERANCE  # the TF migration guide's forward tolerance
TIME, INPUT, BATCH, UNITS, PROJ = 5, 3, 4, 4, 3
SPEC = C("nas", UNITS, num_proj=PROJ, use_biases=True)
LENGTHS = np.array([5, 2, 0, 4], np.int32)


def test_the_tf1_cell_computes_contribs_equations():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(BATCH, TIME, INPUT)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(2)
        outputs, _ = zoo.tf1_block(zoo.Block([SPEC]), tf.constant(x), tf.constant(LENGTHS))
        variables = {v.op.name: v for v in tf.compat.v1.trainable_variables()}
        assert sorted(variables) == ["rnn/nas_cell/bias", "rnn/nas_cell/kernel",
                                     "rnn/nas_cell/projection_weights",
                                     "rnn/nas_cell/recurrent_kernel"]
        bump = variables["rnn/nas_cell/bias"].assign(tf.random.normal([8 * UNITS]))  # off zeros
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(bump)
            got, values = sess.run([outputs, variables])
    weights = {name.rsplit("/", 1)[1]: value for name, value in values.items()}
    expected = numpy_lstm.nas_outputs(x.astype(np.float64), weights, LENGTHS)
    assert np.abs(got - expected).max() <= 1e-6  # float32 against float64


@pytest.mark.parametrize("direction, driver", [("bidirectional", "dynamic"),
                                               ("forward", "static")])
def test_nas_converts_against_its_graph(direction, driver, tmp_path, monkeypatch):
    block = zoo.Block([SPEC], direction, driver, scope="enc")
    prefix, original = zoo_harness.save_block_graph(tmp_path, block, time=TIME)
    (b,) = inspection.describe(prefix)["blocks"]
    assert b["cells"][0]["cell"] == "NASCell(4, num_proj=3, use_biases=True)"
    blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    entry = json.loads((tmp_path / "out" / "blocks.json").read_text())["blocks"][0]
    assert entry["verified_against"].startswith("the user's graph")
    assert entry["largest_difference"] <= ATOL and entry["status"] == "written"
    from legacy_rnn import keras_cells  # noqa: F401  (the registered twin)
    model = keras.saving.load_model(tmp_path / "out" / entry["file"])
    x = np.random.default_rng(5).normal(size=(BATCH, TIME, INPUT)).astype(np.float32)
    lengths = LENGTHS if driver == "dynamic" else np.full(BATCH, TIME, np.int32)
    assert np.abs(np.asarray(model([x, lengths])) - original(x, lengths)).max() <= ATOL
    # Planted: the bias lost between the checkpoint and the twin; the graph's check refuses it.
    family = zoo.FAMILIES["nas"]
    honest = family.to_keras

    def lost_bias(spec, tf1):
        return honest(spec, {**tf1, "bias": np.zeros_like(tf1["bias"])})

    monkeypatch.setattr(family, "to_keras", lost_bias)
    results, _ = blockwise.to_keras_blocks(prefix, str(tmp_path / "planted"))
    entry = json.loads((tmp_path / "planted" / "blocks.json").read_text())["blocks"][0]
    assert not results[0].ok and entry["largest_difference"] > 10 * ATOL
    assert entry["status"] == "failed: not written"
