"""tf.contrib's LayerNormBasicLSTMCell: five layer norms (gamma/beta per gate and on the cell), no
bias, options only in the `.meta`'s ops.

The TF1 cell is checked against a float64 numpy evaluation of contrib's equations (written here
from tf.contrib.rnn's source, independently of the zoo); the conversion against the user's graph,
built as Magenta-style code builds it: recurrent dropout (`dropout_keep_prob` a Python float) in
the saved training graph, forget_bias 0.0, relu. The zoo's parity tests (tests/test_zoo_parity.py)
cover the twin through every driver.
"""
import json

import keras
import numpy as np
import tensorflow as tf

import numpy_lstm
import zoo_harness as h
from legacy_rnn import keras_cells, zoo  # noqa: F401  (the twin's registered cell)
from legacy_rnn.conversion import blockwise
from legacy_rnn.zoo import layer_norm_lstm

C = zoo.CellSpec.make
ATOL = blockwise.TOLERANCE  # the TF migration guide's forward tolerance
TIME, INPUT, BATCH = 5, 3, 4
GATES = numpy_lstm.LN_GATES


def relative(weights):
    return {name.split("layer_norm_basic_lstm_cell/", 1)[1]: value
            for name, value in weights.items()}


def test_the_tf1_cell_computes_contribs_equations():
    spec = C("layer_norm_basic_lstm", 4, forget_bias=0.3, activation="relu")
    x, _ = h.inputs()
    run = h.tf1_run(zoo.Block([spec], "forward", "dynamic"), x)
    assert set(relative(run.weights)) == {"kernel", *(f"{s}/{v}" for s in (*GATES, "state")
                                                      for v in ("gamma", "beta"))}
    expected = numpy_lstm.layer_norm_lstm_outputs(x.astype(np.float64), relative(run.weights), h.LENGTHS, 0.3,
                                  lambda v: np.maximum(v, 0))
    np.testing.assert_allclose(run.outputs, expected, rtol=1e-5, atol=1e-5)  # float32 vs 64


def user_graph(tmp_path, keep_prob, meta=True):
    """A tagger-style graph: the cell under the user's scope, dynamic_rnn, lengths; weights moved
    off their initial values. Returns (prefix, run(x, lengths)) of the same graph rebuilt with
    keep_prob 1.0 (the user's evaluation graph) restoring that checkpoint."""
    def build(keep):
        x = tf.compat.v1.placeholder(tf.float32, [None, TIME, INPUT], name="frames")
        lengths = tf.compat.v1.placeholder(tf.int32, [None], name="lengths")
        cell = layer_norm_lstm.LayerNormBasicLSTMCell(4, forget_bias=0.0, activation=tf.nn.relu,
                                                      dropout_keep_prob=keep)
        with tf.compat.v1.variable_scope("tagger"):
            outputs, _ = tf.compat.v1.nn.dynamic_rnn(cell, x, lengths, dtype=tf.float32)
        return x, lengths, outputs

    prefix = str(tmp_path / "ckpt" / "model.ckpt")
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(4)
        build(keep_prob)
        bumps = [v.assign_add(tf.random.normal(v.shape, stddev=0.5))
                 for v in tf.compat.v1.trainable_variables()]
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(bumps)
            tf.compat.v1.train.Saver().save(sess, prefix, write_meta_graph=meta)
    graph = tf.Graph()
    with graph.as_default():
        x, lengths, outputs = build(1.0)
        sess = tf.compat.v1.Session(graph=graph)
        tf.compat.v1.train.Saver().restore(sess, prefix)
    return prefix, lambda xv, lv: sess.run(outputs, {x: xv, lengths: lv})


def case(seed=5):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(BATCH, TIME, INPUT)).astype(np.float32),
            np.array([TIME, 2, 0, 4], np.int32))


def test_a_user_graph_with_recurrent_dropout_converts_against_that_graph(tmp_path):
    prefix, evaluation = user_graph(tmp_path, keep_prob=0.7)
    results, _ = blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    (entry,) = json.loads((tmp_path / "out" / "blocks.json").read_text())["blocks"]
    assert entry["structure"].startswith("dynamic_rnn(LayerNormBasicLSTMCell(4, activation='relu', "
                                     "forget_bias=0.0)")
    assert {k: v["value"] for k, v in entry["options"].items()} == {"forget_bias": 0.0,
                                                                    "activation": "relu"}
    assert all("the .meta graph" in o["source"] for o in entry["options"].values())
    assert entry["verified_against"].startswith("the user's graph")
    assert entry["neutralised"] == [
        "dropout rnn/layer_norm_basic_lstm_cell/dropout passes its input through"]
    assert entry["status"] == "written" and entry["largest_difference"] <= ATOL
    assert entry["load_with"] == "legacy_rnn.keras_cells"
    model = keras.saving.load_model(tmp_path / "out" / entry["file"])
    assert "LayerNormLSTMCell" in json.dumps(model.get_config())
    x, lengths = case()
    difference = np.abs(np.asarray(model([x, lengths])) - evaluation(x, lengths)).max()
    assert difference <= ATOL
    print(f"LayerNormBasicLSTMCell: {difference:.1e} (converter: "
          f"{entry['largest_difference']:.1e})")


def test_a_misread_forget_bias_is_refused_by_the_users_graph(tmp_path, monkeypatch):
    # Planted misread: the family reads forget_bias 1.0 where the graph adds 0.0.
    prefix, _ = user_graph(tmp_path, keep_prob=1.0)
    family = zoo.FAMILIES["layer_norm_basic_lstm"]
    honest = family.options_in_graph
    monkeypatch.setattr(family, "options_in_graph",
                        lambda view, p: {**honest(view, p), "forget_bias": 1.0})
    results, _ = blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    (entry,) = json.loads((tmp_path / "out" / "blocks.json").read_text())["blocks"]
    assert entry["options"]["forget_bias"]["value"] == 1.0  # the misread took effect
    assert not results[0].ok and entry["largest_difference"] > 1e-2
    assert entry["status"] == "failed: not written"


def test_without_the_meta_the_defaults_are_assumed_and_said(tmp_path):
    prefix, evaluation = user_graph(tmp_path, keep_prob=1.0, meta=False)
    blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    (entry,) = json.loads((tmp_path / "out" / "blocks.json").read_text())["blocks"]
    assert entry["verified_against"].startswith("this project's TF1 rebuild")
    assert set(entry["assumed"]) >= {"forget_bias", "activation"}
    model = keras.saving.load_model(tmp_path / "out" / entry["file"])
    x, lengths = case()
    # The assumption (forget_bias 1.0, tanh) is indeed not this graph's function.
    assert np.abs(np.asarray(model([x, lengths])) - evaluation(x, lengths)).max() > 1e-2
