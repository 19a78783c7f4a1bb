"""tf.contrib's LSTMBlockFusedCell: one BlockLSTM op over the whole time-major sequence, called
directly by user code (no driver), LSTMBlockCell's variables, its options only in the op's
attributes. The TF1 cell is checked against numpy (tests/numpy_lstm.py); the conversions against
the user's graph, fed at the fused op, and against that graph's outputs independently."""
import json

import keras
import numpy as np
import tensorflow as tf

import numpy_lstm
from legacy_rnn import zoo
from legacy_rnn.conversion import blockwise
from legacy_rnn.zoo import lstm_block_fused

ATOL = blockwise.TOLERANCE  # the TF migration guide's forward tolerance
TIME, INPUT, BATCH, UNITS = 5, 3, 4, 4
LENGTHS = np.array([TIME, 2, 0, 4], np.int32)


def case(seed=5):
    return np.random.default_rng(seed).normal(size=(BATCH, TIME, INPUT)).astype(np.float32)


def user_graph(tmp_path, scope, meta=True, **options):
    """`with variable_scope(scope): outputs, state = LSTMBlockFusedCell(...)(time-major x, ...)`
    as DeepSpeech-style code calls it; weights moved off their initial values. Returns (prefix,
    run(x, lengths) -> batch-major outputs, the weights)."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(3)
        x = tf.compat.v1.placeholder(tf.float32, [None, TIME, INPUT], name="features")
        lengths = tf.compat.v1.placeholder(tf.int32, [None], name="lengths")
        with tf.compat.v1.variable_scope(scope):
            cell = lstm_block_fused.LSTMBlockFusedCell(UNITS, **options)
            outputs, _ = cell(tf.transpose(x, [1, 0, 2]), dtype=tf.float32,
                              sequence_length=lengths)
        outputs = tf.transpose(outputs, [1, 0, 2])
        bumps = [v.assign_add(tf.random.normal(v.shape, stddev=0.5))
                 for v in tf.compat.v1.trainable_variables()]
        sess = tf.compat.v1.Session(graph=graph)
        sess.run(tf.compat.v1.global_variables_initializer())
        sess.run(bumps)
        weights = sess.run({v.op.name: v for v in tf.compat.v1.trainable_variables()})
        prefix = str(tmp_path / "ckpt" / "model.ckpt")
        tf.compat.v1.train.Saver().save(sess, prefix, write_meta_graph=meta)
    return prefix, lambda xv, lv: sess.run(outputs, {x: xv, lengths: lv}), weights


def converted(tmp_path, prefix):
    results, _ = blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    (entry,) = json.loads((tmp_path / "out" / "blocks.json").read_text())["blocks"]
    return results[0], entry


def test_the_fused_cell_computes_the_lstm_over_the_sequence_with_lengths(tmp_path):
    _, run, w = user_graph(tmp_path, "encoder", forget_bias=0.0)
    x = case()
    expected = numpy_lstm.lstm_outputs(x.astype(np.float64), w["encoder/lstm_cell/kernel"],
                                       w["encoder/lstm_cell/bias"], LENGTHS, forget_bias=0.0)
    np.testing.assert_allclose(run(x, LENGTHS), expected, rtol=1e-5, atol=1e-5)  # f32 vs f64


def test_a_fused_cell_converts_against_the_users_graph_with_its_op_attributes(tmp_path):
    options = {"forget_bias": 0.0, "cell_clip": 2.5, "use_peephole": True}
    prefix, run, _ = user_graph(tmp_path, "encoder", **options)
    result, entry = converted(tmp_path, prefix)
    assert entry["structure"] == ("LSTMBlockFusedCell(4, cell_clip=2.5, forget_bias=0.0, "
                                  "use_peephole=True) called on the sequence under encoder/")
    assert {k: v["value"] for k, v in entry["options"].items()} == {"forget_bias": 0.0,
                                                                    "cell_clip": 2.5}
    assert all("the .meta graph" in o["source"] for o in entry["options"].values())
    assert entry["verified_against"] == (
        "the user's graph (model.ckpt.meta: each direction's fused op fed its time-major input, "
        "its whole output compared)")
    assert entry["status"] == "written" and entry["largest_difference"] <= ATOL
    import legacy_rnn.keras_cells  # noqa: F401  (peepholes and clip: the registered twin)
    model = keras.saving.load_model(tmp_path / "out" / entry["file"])
    x = case()
    difference = np.abs(np.asarray(model([x, LENGTHS])) - run(x, LENGTHS)).max()
    assert difference <= ATOL
    print(f"LSTMBlockFusedCell: {difference:.1e} (converter: {entry['largest_difference']:.1e})")


def test_deepspeechs_fused_graph_under_cudnns_names_converts_as_the_cudnn_cell(tmp_path):
    # DeepSpeech's CPU path: LSTMBlockFusedCell(forget_bias=0, name='cudnn_compatible_lstm_cell')
    # under 'cudnn_lstm/rnn/multi_rnn_cell/cell_0', so that cuDNN checkpoints restore into it.
    prefix, run, _ = user_graph(tmp_path, "cudnn_lstm/rnn/multi_rnn_cell/cell_0",
                                forget_bias=0.0, name="cudnn_compatible_lstm_cell")
    result, entry = converted(tmp_path, prefix)
    assert "CudnnCompatibleLSTMCell(4)" in entry["structure"]
    assert entry["verified_against"].startswith("the user's graph (model.ckpt.meta: each "
                                                "direction's fused op")
    model = keras.saving.load_model(tmp_path / "out" / entry["file"])
    x = case()
    assert np.abs(np.asarray(model([x, LENGTHS])) - run(x, LENGTHS)).max() <= ATOL


def test_a_misread_forget_bias_is_refused_by_the_fused_op(tmp_path, monkeypatch):
    # Planted misread: forget_bias 1.0 read where the op's attribute is 0.0.
    prefix, _, _ = user_graph(tmp_path, "encoder", forget_bias=0.0)
    family = zoo.FAMILIES["lstm_block_fused"]
    honest = family.options_in_graph
    monkeypatch.setattr(family, "options_in_graph",
                        lambda view, p: {**honest(view, p), "forget_bias": 1.0})
    result, entry = converted(tmp_path, prefix)
    assert entry["options"]["forget_bias"]["value"] == 1.0  # the misread took effect
    assert not result.ok and entry["largest_difference"] > 1e-2
    assert entry["status"] == "failed: not written"
