"""tf.contrib's EmbeddingWrapper outside legacy_seq2seq: the block reads ids. The TF1
reproduction against a lookup by hand into the unwrapped block, the block converted from a
checkpoint and its `.meta` and checked against that graph with ids (a planted misread, the
embedding's rows shifted by one, refused), and a whole model over it translated."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo_harness
from legacy_rnn import zoo
from legacy_rnn.conversion import blockwise, whole
from legacy_rnn.errors import UserError
from legacy_rnn.facts import TOLERANCE

C, W = zoo.CellSpec.make, zoo.WrapperSpec
CLASSES, SIZE, TIME = 11, 5, 6
LSTM = C("basic_lstm", 4, forget_bias=0.5)
WRAPPED = [W("output_projection", 3, "tanh"), W("embedding", SIZE, classes=CLASSES)]
LENGTHS = np.array([TIME, 2, 0, 4], np.int32)


def _ids(seed, batch=4):
    return np.random.default_rng(seed).integers(0, CLASSES, (batch, TIME, 1)).astype(np.int32)


def _save(tmp_path, block):
    """The block over an ids placeholder `[batch, time, 1]`, every variable moved off its
    initial value; (prefix, run(ids, lengths))."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(5)
        ids = tf.compat.v1.placeholder(tf.int32, [None, TIME, 1], name="ids")
        lengths = tf.compat.v1.placeholder(tf.int32, [None], name="lengths")
        outputs, _ = zoo.tf1_block(block, ids, lengths)
        sess = tf.compat.v1.Session(graph=graph)
        sess.run(tf.compat.v1.global_variables_initializer())
        for v in tf.compat.v1.trainable_variables():
            v.load(sess.run(v) + 0.3, sess)
        prefix = str(tmp_path / "ckpt" / "model.ckpt")
        tf.compat.v1.train.Saver().save(sess, prefix)
        weights = {v.op.name: sess.run(v) for v in tf.compat.v1.trainable_variables()}
    return prefix, weights, lambda x, lv: sess.run(outputs, {ids: x, lengths: lv})


def test_the_tf1_wrapper_looks_up_each_steps_id(tmp_path):
    block = zoo.Block([LSTM], wrappers=WRAPPED[1:])
    _, w, run = _save(tmp_path, block)
    ids = _ids(1)
    embedding = w["rnn/embedding_wrapper/embedding"]
    inner = {name.replace("embedding_wrapper/", ""): v for name, v in w.items()
             if "lstm_cell" in name}
    expected = zoo_harness.keras_run(zoo.Block([LSTM]), inner, embedding[ids[..., 0]],
                                     LENGTHS).outputs
    assert np.abs(run(ids, LENGTHS) - expected).max() <= 1e-6  # two float32 evaluations


def test_it_converts_against_its_graph_and_refuses_shifted_rows(tmp_path, monkeypatch):
    block = zoo.Block([LSTM], "bidirectional", wrappers=WRAPPED)
    prefix, _, run = _save(tmp_path, block)
    results, _ = blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    entry = json.loads((tmp_path / "out" / "blocks.json").read_text())["blocks"][0]
    assert entry["structure"].startswith("bidirectional_dynamic_rnn(fw=OutputProjectionWrapper("
                                         "EmbeddingWrapper(BasicLSTMCell(4, forget_bias=0.5), "
                                         "11, 5), 3, activation=tanh)")
    assert entry["verified_against"].startswith("the user's graph")
    assert results[0].ok and entry["input_size"] == 1
    print("embedding, bidirectional dynamic:", entry["largest_difference"])
    from legacy_rnn import keras_cells  # noqa: F401  (the registered lookup)
    model = keras.saving.load_model(tmp_path / "out" / entry["file"])
    ids = _ids(2)
    np.testing.assert_allclose(np.asarray(model([ids, LENGTHS])), run(ids, LENGTHS),
                               atol=TOLERANCE, rtol=0)
    # Planted: the embedding's rows shifted by one (an id read as the next one's).
    wrapper = zoo.WRAPPERS["embedding"]
    honest = wrapper.to_keras
    monkeypatch.setattr(wrapper, "to_keras",
                        lambda spec, tf1: [np.roll(honest(spec, tf1)[0], 1, axis=0)])
    results, _ = blockwise.to_keras_blocks(prefix, str(tmp_path / "planted"))
    assert not results[0].ok and results[0].largest_difference > 10 * TOLERANCE


def test_a_model_over_an_embedding_wrapper_translates_whole(tmp_path, monkeypatch):
    """ids [batch, time] -> expand_dims -> dynamic_rnn(EmbeddingWrapper(BasicLSTMCell)) with
    lengths -> a projection: the whole graph translated, the ids fed as the graph takes them."""
    from legacy_rnn.zoo.embedding import EmbeddingWrapper  # tf.contrib's, reproduced
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(6)
        ids = tf.compat.v1.placeholder(tf.int32, [None, None], name="ids")
        lengths = tf.compat.v1.placeholder(tf.int32, [None], name="lengths")
        cell = EmbeddingWrapper(tf.compat.v1.nn.rnn_cell.BasicLSTMCell(4, forget_bias=0.5),
                                CLASSES, SIZE)
        outputs, _ = tf.compat.v1.nn.dynamic_rnn(cell, tf.expand_dims(ids, -1),
                                                 sequence_length=lengths, dtype=tf.float32)
        w = tf.compat.v1.get_variable("proj/w", [4, 3])
        tf.identity(tf.tensordot(outputs, w, 1), name="logits")
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            prefix = str(tmp_path / "model.ckpt")
            tf.compat.v1.train.Saver().save(sess, prefix)
            feeds = {"ids": _ids(3, 3)[..., 0], "lengths": np.array([TIME, 1, 3], np.int32)}
            (expected,) = sess.run(["logits:0"], {f"{k}:0": v for k, v in feeds.items()})
    # The ids are looked up inside the loop: generated below the block's classes.
    result = whole.to_keras_model(prefix, ["logits:0"])
    assert result.inputs["ids"].startswith("int32 [None, None]"), result.inputs
    print("embedding whole", result.forward_difference, result.gradient_difference)
    assert result.ok, (result.forward_difference, result.gradient_difference)
    np.testing.assert_allclose(np.asarray(result.model(feeds)), expected, atol=TOLERANCE, rtol=0)
    # Planted: the embedding's rows shifted by one; the block's own check refuses it.
    wrapper = zoo.WRAPPERS["embedding"]
    honest = wrapper.to_keras
    monkeypatch.setattr(wrapper, "to_keras",
                        lambda spec, tf1: [np.roll(honest(spec, tf1)[0], 1, axis=0)])
    with pytest.raises(UserError, match="failed their own check"):
        whole.to_keras_model(prefix, ["logits:0"])
