"""tf.contrib's GRUBlockCell (its own names, the gate kernel called `w_c`) and GRUBlockCellV2
(GRUCell's names): built as TF1 code built them (the fused op per step, weights moved off their
initial values), converted from the checkpoint and its `.meta`, and checked against that graph."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from legacy_rnn import zoo
from legacy_rnn.conversion import blockwise, inspection

C = zoo.CellSpec.make
ATOL = blockwise.TOLERANCE  # the TF migration guide's forward tolerance
TIME, INPUT, BATCH = 5, 3, 4


def save(tmp_path, block):
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(3)
        x = tf.compat.v1.placeholder(tf.float32, [None, TIME, INPUT], name="inputs")
        lengths = tf.compat.v1.placeholder(tf.int32, [None], name="lengths")
        outputs, _ = zoo.tf1_block(block, x, lengths)
        bumps = [v.assign_add(tf.random.normal(v.shape, stddev=0.5))
                 for v in tf.compat.v1.trainable_variables()]
        sess = tf.compat.v1.Session(graph=graph)
        sess.run(tf.compat.v1.global_variables_initializer())
        sess.run(bumps)
        prefix = str(tmp_path / "ckpt" / "model.ckpt")
        tf.compat.v1.train.Saver().save(sess, prefix)
    return prefix, lambda xv, lv: sess.run(outputs, {x: xv, lengths: lv})


@pytest.mark.parametrize("kind, driver, names", [
    ("gru_block", "static", {"w_c": [INPUT + 4, 8], "b_ru": [8], "w_ru": [INPUT + 4, 4],
                             "b_c": [4]}),
    ("gru_block_v2", "dynamic", {"gates/kernel": [INPUT + 4, 8], "gates/bias": [8],
                                 "candidate/kernel": [INPUT + 4, 4], "candidate/bias": [4]})])
def test_gru_block_cells_convert_against_their_graph(tmp_path, kind, driver, names):
    block = zoo.Block([C(kind, 4)], "bidirectional", driver, scope="enc/bidirectional_rnn")
    prefix, original = save(tmp_path, block)
    stored = dict(tf.train.list_variables(prefix))
    assert {k.rsplit("/gru_cell/", 1)[1]: v for k, v in stored.items()
            if k.startswith("enc/bidirectional_rnn/fw/")} == names
    (b,) = inspection.describe(prefix)["blocks"]
    assert b["cells"][0]["cell"] == f"{C(kind, 4).family.tf1_name}(4)"
    blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    entry = json.loads((tmp_path / "out" / "blocks.json").read_text())["blocks"][0]
    assert entry["verified_against"].startswith("the user's graph")
    assert entry["largest_difference"] <= ATOL and entry["status"] == "written"
    model = keras.saving.load_model(tmp_path / "out" / entry["file"])
    rng = np.random.default_rng(5)
    x, lengths = rng.normal(size=(BATCH, TIME, INPUT)).astype(np.float32), np.array([5, 2, 0, 4])
    assert np.abs(np.asarray(model([x, lengths])) - original(x, lengths)).max() <= ATOL


def test_the_gradient_registered_for_the_op_matches_finite_differences():
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(1)
        x = tf.constant(np.random.default_rng(2).normal(size=(2, 4, 2)), tf.float32)
        outputs, _ = zoo.tf1_block(zoo.Block([C("gru_block", 3)], "forward", "static"), x)
        loss = tf.reduce_sum(tf.square(outputs))
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for v in tf.compat.v1.trainable_variables():
                theoretical, numerical = tf.compat.v1.test.compute_gradient(
                    v, v.shape.as_list(), loss, [], delta=1e-3)
                np.testing.assert_allclose(theoretical, numerical, atol=2e-2, rtol=2e-2,
                                           err_msg=v.name)
