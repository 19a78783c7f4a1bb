import numpy as np
import pytest
import tensorflow as tf

import numpy_lstm
from legacy_rnn import zoo
from legacy_rnn.experiments import graphs
from legacy_rnn.experiments.mnist import MNIST_BIRNN, MNIST_RNN, MnistConfig
from legacy_rnn.experiments.toy import TOY, ToyConfig


def rnn_features(inputs, n_hidden, rnn, bidirectional=False, seqlen=None):
    """What the experiments' graphs read: the LSTM output at the last step or at seqlen - 1."""
    block = zoo.Block([zoo.CellSpec.make("basic_lstm", n_hidden)],
                      "bidirectional" if bidirectional else "forward", rnn)
    outputs, _ = zoo.tf1_block(block, inputs, seqlen, stacked=seqlen is not None)
    return graphs.last_output(outputs) if seqlen is None else graphs.last_relevant_output(
        outputs, seqlen)

# float32 TF against float64 numpy on a handful of steps: rounding stays far below this.
ATOL = 1e-5


def _session_values(build, names_to_fetch, feed_values):
    """Builds a graph with `build()` -> (placeholders, tensor), runs it from a fresh init, and
    returns the tensor's value and the values of the variables named in `names_to_fetch`."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        placeholders, tensor = build()
        variables = {v.op.name: v for v in tf.compat.v1.global_variables()}
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            value = sess.run(tensor, dict(zip(placeholders, feed_values)))
            weights = sess.run({name: variables[name] for name in names_to_fetch})
    return value, weights


def test_last_relevant_output_gathers_seqlen_minus_one():
    rng = np.random.default_rng(0)
    outputs = rng.normal(size=(5, 7, 3)).astype(np.float32)
    seqlen = np.array([1, 7, 3, 4, 2], np.int32)

    def build():
        o = tf.compat.v1.placeholder(tf.float32, [None, 7, 3])
        n = tf.compat.v1.placeholder(tf.int32, [None])
        return (o, n), graphs.last_relevant_output(o, n)

    got, _ = _session_values(build, [], (outputs, seqlen))
    np.testing.assert_array_equal(got, outputs[np.arange(5), seqlen - 1])


TOY_VARS = ["rnn/basic_lstm_cell/kernel", "rnn/basic_lstm_cell/bias"]
BI_VARS = [f"bidirectional_rnn/{d}/basic_lstm_cell/{w}" for d in ("fw", "bw")
           for w in ("kernel", "bias")]


@pytest.mark.parametrize("rnn", graphs.RNN_APIS)
def test_toy_features_are_the_lstm_output_at_seqlen_minus_one(rnn):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 5, 1)).astype(np.float32)
    x[2, 1] = 0.0  # a real zero inside a sequence
    seqlen = np.array([1, 5, 3, 2, 5, 4], np.int32)
    x[np.arange(5) >= seqlen[:, None]] = 0.0

    def build():
        xs = tf.compat.v1.placeholder(tf.float32, [None, 5, 1])
        n = tf.compat.v1.placeholder(tf.int32, [None])
        return (xs, n), rnn_features(xs, 4, rnn, seqlen=n)

    got, w = _session_values(build, TOY_VARS, (x, seqlen))
    outputs = numpy_lstm.lstm_outputs(x.astype(np.float64), w[TOY_VARS[0]], w[TOY_VARS[1]], seqlen)
    assert got.shape == (6, 4)
    np.testing.assert_allclose(got, outputs[np.arange(6), seqlen - 1], atol=ATOL, rtol=0)
    # The gather matters: the last time step is zero for every sequence shorter than 5.
    assert np.all(outputs[seqlen < 5, -1] == 0.0)


@pytest.mark.parametrize("rnn", graphs.RNN_APIS)
@pytest.mark.parametrize("with_lengths", [False, True])
def test_bidirectional_features_pair_full_forward_with_one_step_backward(rnn, with_lengths):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 4, 2)).astype(np.float32)
    seqlen = np.array([4, 2, 3], np.int32) if with_lengths else None

    def build():
        xs = tf.compat.v1.placeholder(tf.float32, [None, 4, 2])
        n = tf.compat.v1.placeholder(tf.int32, [None]) if with_lengths else None
        feats = rnn_features(xs, 3, rnn, bidirectional=True, seqlen=n)
        return ((xs, n) if with_lengths else (xs,)), feats

    got, w = _session_values(build, BI_VARS, (x, seqlen) if with_lengths else (x,))
    fw, bw = (w[BI_VARS[0]], w[BI_VARS[1]]), (w[BI_VARS[2]], w[BI_VARS[3]])
    outputs = numpy_lstm.bidirectional_outputs(x.astype(np.float64), fw, bw, seqlen)
    last = np.full(3, 4) if seqlen is None else seqlen
    expected = outputs[np.arange(3), last - 1]
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    # The backward half at the last step has seen only that step.
    one_step = numpy_lstm.lstm_outputs(x[np.arange(3), last - 1][:, None].astype(np.float64), *bw)
    np.testing.assert_allclose(got[:, 3:], one_step[:, 0], atol=ATOL, rtol=0)


MODELS = {
    "mnist_rnn": (lambda rnn: MNIST_RNN.build_graph(MnistConfig(n_hidden=6, rnn=rnn)),
                  ["rnn/basic_lstm_cell/kernel", "rnn/basic_lstm_cell/bias"]),
    "mnist_birnn": (lambda rnn: MNIST_BIRNN.build_graph(MnistConfig(n_hidden=6, rnn=rnn)),
                    BI_VARS),
    "toy_dynamic_rnn": (lambda rnn: TOY.build_graph(ToyConfig(n_hidden=6, seq_max_len=5, rnn=rnn)),
                        TOY_VARS),
}


def _feeds(model, rng):
    if len(model.inputs) == 2:
        return (rng.random((4, 784), np.float32), np.eye(10, dtype=np.float32)[[0, 3, 9, 3]])
    return (rng.random((4, 5, 1), np.float32), np.eye(2, dtype=np.float32)[[0, 1, 1, 0]],
            np.array([5, 1, 3, 2], np.int32))


@pytest.mark.parametrize("name", MODELS)
def test_checkpoints_move_between_static_and_dynamic(name, tmp_path):
    build, cell_vars = MODELS[name]
    feeds = _feeds(build("static"), np.random.default_rng(3))
    logits = {}
    for rnn in ("static", "dynamic"):
        model = build(rnn)
        with model.graph.as_default():
            names = {v.op.name for v in tf.compat.v1.trainable_variables()}
            assert names == {*cell_vars, graphs.OUTPUT_WEIGHTS, graphs.OUTPUT_BIASES}
            saver = tf.compat.v1.train.Saver()
            with tf.compat.v1.Session() as sess:
                if rnn == "static":
                    sess.run(tf.compat.v1.global_variables_initializer())
                    saver.save(sess, str(tmp_path / "ckpt"))
                else:
                    saver.restore(sess, str(tmp_path / "ckpt"))
                logits[rnn] = sess.run(model.logits, dict(zip(model.inputs, feeds)))
    assert logits["static"].shape == (4, len(feeds[1][0]))
    np.testing.assert_allclose(logits["dynamic"], logits["static"], atol=ATOL, rtol=0)


def _initial_values(model):
    with model.graph.as_default(), tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        return {v.op.name: sess.run(v) for v in tf.compat.v1.trainable_variables()}


def test_the_graph_seed_fixes_every_initial_value():
    # tf-keras seeds the cells' default initializer from Python's `random`; zoo.tf1_block must
    # override that, or two runs with one --seed start from different kernels. (A program's
    # graph of three static steps: the same seeding as MNIST's 28, in a quarter of the time.)
    kernel, bias = "rnn/basic_lstm_cell/kernel", "rnn/basic_lstm_cell/bias"
    first, second, other = (_initial_values(TOY.build_graph(ToyConfig(
        n_hidden=4, seq_max_len=3, min_len=1, max_value=30, seed=s))) for s in (3, 3, 4))
    assert first.keys() == second.keys() == other.keys() == {
        kernel, bias, graphs.OUTPUT_WEIGHTS, graphs.OUTPUT_BIASES}
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    assert not np.array_equal(first[kernel], other[kernel])
    # The seed's initializers: Glorot-uniform kernel (fan-in 1 + 4, fan-out 16), zero bias,
    # N(0, 1) output layer.
    limit = np.sqrt(6 / (1 + 4 + 16))
    assert np.abs(first[kernel]).max() <= limit
    assert np.abs(first[kernel]).max() > 0.8 * limit
    assert np.all(first[bias] == 0)
    assert 0.5 < first[graphs.OUTPUT_WEIGHTS].std() < 1.5
