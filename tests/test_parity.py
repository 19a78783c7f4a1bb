"""Legacy TF1 graphs vs their Keras 3 equivalents, with identical weights (CPU, float32)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import numpy_lstm
from legacy_rnn import graphs, keras_models, weights

# The TF migration guide's validate_correctness tolerance for forward results.
RTOL, ATOL = 1e-6, 1e-5
N_HIDDEN, BATCH, TOY_LEN = 8, 16, 7


def tf1_model(name, optimizer="adam", learning_rate=0.001, seed=0):
    if name == "toy_dynamic_rnn":
        return graphs.build_toy_model(N_HIDDEN, TOY_LEN, optimizer=optimizer,
                                      learning_rate=learning_rate, seed=seed)
    return graphs.build_mnist_model(N_HIDDEN, name == "mnist_birnn", optimizer=optimizer,
                                    learning_rate=learning_rate, seed=seed)


def batch(name, rng, n=BATCH):
    """(graph feeds, keras inputs, one-hot labels) of one random batch."""
    if name == "toy_dynamic_rnn":
        seqlen = np.resize(np.arange(1, TOY_LEN + 1), n).astype(np.int32)  # every length
        x = rng.random((n, TOY_LEN, 1)).astype(np.float32)
        x[::3, 1] = 0.0  # real zeros inside sequences must not be taken for padding
        x[np.arange(TOY_LEN) >= seqlen[:, None]] = 0.0
        labels = np.eye(2, dtype=np.float32)[rng.integers(0, 2, n)]
        return (x, labels, seqlen), [x, seqlen], labels
    images = rng.random((n, 784)).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    return (images, labels), images.reshape(n, 28, 28), labels


class Legacy:
    """A built legacy graph in an open Session, with its trainable variables by name."""

    def __init__(self, name, **kwargs):
        self.model = tf1_model(name, **kwargs)
        with self.model.graph.as_default():
            self.variables = {v.op.name: v for v in tf.compat.v1.trainable_variables()}
            self.gradients = dict(zip(self.variables, tf.gradients(
                self.model.loss, list(self.variables.values()))))
            init = tf.compat.v1.global_variables_initializer()
        self.sess = tf.compat.v1.Session(graph=self.model.graph)
        self.sess.run(init)

    def feed(self, feeds):
        return dict(zip(self.model.inputs, feeds))

    def weights(self):
        return self.sess.run(self.variables)


def keras_loss(model, inputs, labels):
    logits = model(inputs)
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def max_diff(a, b):
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


MODELS = ["mnist_rnn", "mnist_birnn", "toy_dynamic_rnn"]


@pytest.mark.parametrize("name", MODELS)
def test_forward_and_gradients_match(name):
    legacy = Legacy(name)
    feeds, inputs, labels = batch(name, np.random.default_rng(0))
    logits, grads = legacy.sess.run([legacy.model.logits, legacy.gradients], legacy.feed(feeds))
    model = keras_models.from_tf1(name, legacy.weights())

    np.testing.assert_allclose(model(inputs).numpy(), logits, rtol=RTOL, atol=ATOL)

    layers = {layer: model.get_layer(layer).trainable_weights
              for layer in (keras_models.rnn_layer_name(name), "output")}
    with tf.GradientTape() as tape:
        loss = keras_loss(model, inputs, labels)
    keras_grads = tape.gradient(loss, layers)
    mapped = keras_models.to_tf1(name, {k: [g.numpy() for g in v] for k, v in keras_grads.items()},
                                 forget_bias=0.0)
    assert mapped.keys() == grads.keys()
    for var in grads:
        np.testing.assert_allclose(mapped[var], grads[var], rtol=RTOL, atol=ATOL, err_msg=var)
    print(f"{name}: forward max diff {np.abs(model(inputs).numpy() - logits).max():.2e}, "
          f"gradient max diff {max_diff(mapped, grads):.2e}")


@pytest.mark.parametrize("name", MODELS)
def test_twenty_adam_steps_match(name):
    lr = 0.001
    legacy = Legacy(name, optimizer="adam", learning_rate=lr)
    model = keras_models.from_tf1(name, legacy.weights())
    # TF1's AdamOptimizer uses epsilon 1e-8 (Keras defaults to 1e-7); same update rule otherwise.
    optimizer = keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8)
    rng = np.random.default_rng(1)
    legacy_losses, keras_losses = [], []
    for _ in range(20):
        feeds, inputs, labels = batch(name, rng)
        _, loss = legacy.sess.run([legacy.model.train_op, legacy.model.loss], legacy.feed(feeds))
        legacy_losses.append(loss)
        with tf.GradientTape() as tape:
            k_loss = keras_loss(model, inputs, labels)
        optimizer.apply_gradients(zip(tape.gradient(k_loss, model.trainable_variables),
                                      model.trainable_variables))
        keras_losses.append(float(k_loss))
    # The migration guide's training check: losses within atol 1e-5 step by step.
    np.testing.assert_allclose(keras_losses, legacy_losses, rtol=0, atol=1e-5)
    final = keras_models.to_tf1(name, keras_models.layer_arrays(model))
    legacy_final = legacy.weights()
    # Final weights: measured 2.4e-7 .. 3.6e-7 here (TF 2.21, Keras 3.15, CPU); 1e-5 = 1% of one
    # Adam step (lr) leaves room for other CPUs' rounding while catching any layout mistake.
    for var in legacy_final:
        np.testing.assert_allclose(final[var], legacy_final[var], rtol=0, atol=1e-5, err_msg=var)
    # ... and the weights did move: the comparison is not of two untouched copies.
    assert max_diff(legacy_final, Legacy(name, optimizer="adam").weights()) > 10 * lr
    print(f"{name}: 20 Adam steps, loss max diff "
          f"{np.abs(np.subtract(keras_losses, legacy_losses)).max():.2e}, "
          f"final weight max diff {max_diff(final, legacy_final):.2e}")


def test_plain_bidirectional_lstm_is_a_different_model():
    legacy = Legacy("mnist_birnn")
    feeds, inputs, _ = batch("mnist_birnn", np.random.default_rng(2))
    logits = legacy.sess.run(legacy.model.logits, legacy.feed(feeds))
    equivalent = keras_models.from_tf1("mnist_birnn", legacy.weights())

    rows = keras.Input((28, 28))
    plain = keras.Model(rows, keras.layers.Dense(10, name="output")(
        keras.layers.Bidirectional(keras.layers.LSTM(N_HIDDEN), name="bidirectional")(rows)))
    for layer in ("bidirectional", "output"):
        plain.get_layer(layer).set_weights(equivalent.get_layer(layer).get_weights())

    np.testing.assert_allclose(equivalent(inputs).numpy(), logits, rtol=RTOL, atol=ATOL)
    # Same weights, but the plain layer's backward half has read all 28 rows, not the last one.
    assert np.abs(plain(inputs).numpy() - logits).max() > 1e-2


def test_masking_by_value_would_be_wrong_for_the_toy_model():
    legacy = Legacy("toy_dynamic_rnn")
    feeds, (x, seqlen), _ = batch("toy_dynamic_rnn", np.random.default_rng(3))
    logits = legacy.sess.run(legacy.model.logits, legacy.feed(feeds))
    w = legacy.weights()
    np.testing.assert_allclose(
        keras_models.from_tf1("toy_dynamic_rnn", w)([x, seqlen]).numpy(), logits,
        rtol=RTOL, atol=ATOL)
    inputs = keras.Input((TOY_LEN, 1))
    masked_by_value = keras.Model(inputs, keras.layers.Dense(2, name="output")(
        keras.layers.LSTM(N_HIDDEN, name="lstm")(keras.layers.Masking(0.0)(inputs))))
    masked_by_value.get_layer("lstm").set_weights(weights.lstm_tf1_to_keras(
        w["rnn/basic_lstm_cell/kernel"], w["rnn/basic_lstm_cell/bias"]))
    masked_by_value.get_layer("output").set_weights(
        [w[graphs.OUTPUT_WEIGHTS], w[graphs.OUTPUT_BIASES]])
    wrong = np.abs(masked_by_value(x).numpy() - logits).max(axis=1)
    has_inner_zero = (x[:, 1, 0] == 0.0) & (seqlen > 1)
    assert has_inner_zero.any()
    assert wrong[has_inner_zero].min() > 1e-4 and wrong[~has_inner_zero].max() < ATOL


# Other cell types, one layer each: TF1 static_rnn with the cell vs the Keras layer.
GRU_NAMES = [f"rnn/gru_cell/{n}" for n in ("gates/kernel", "gates/bias", "candidate/kernel",
                                           "candidate/bias")]
CELLS = {
    "lstm": (lambda u: tf.compat.v1.nn.rnn_cell.BasicLSTMCell(u, forget_bias=1.0),
             lambda u: keras.layers.LSTM(u),
             lambda w: weights.lstm_tf1_to_keras(w["rnn/basic_lstm_cell/kernel"],
                                                 w["rnn/basic_lstm_cell/bias"]),
             lambda g: weights.lstm_keras_to_tf1(*g, forget_bias=0.0),
             ["rnn/basic_lstm_cell/kernel", "rnn/basic_lstm_cell/bias"]),
    "gru": (lambda u: tf.compat.v1.nn.rnn_cell.GRUCell(u),
            lambda u: keras.layers.GRU(u, reset_after=False),
            lambda w: weights.gru_tf1_to_keras(*(w[n] for n in GRU_NAMES)),
            lambda g: weights.gru_keras_to_tf1(*g),
            GRU_NAMES),
    "simple_rnn": (lambda u: tf.compat.v1.nn.rnn_cell.BasicRNNCell(u),
                   lambda u: keras.layers.SimpleRNN(u),
                   lambda w: weights.simple_rnn_tf1_to_keras(w["rnn/basic_rnn_cell/kernel"],
                                                             w["rnn/basic_rnn_cell/bias"]),
                   lambda g: weights.simple_rnn_keras_to_tf1(*g),
                   ["rnn/basic_rnn_cell/kernel", "rnn/basic_rnn_cell/bias"]),
}


@pytest.mark.parametrize("cell", CELLS)
def test_each_cell_type_forward_and_gradients(cell):
    make_cell, make_layer, to_keras, grads_to_tf1, names = CELLS[cell]
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 6, 3)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        xs = tf.compat.v1.placeholder(tf.float32, [None, 6, 3])
        outputs, _ = tf.compat.v1.nn.static_rnn(make_cell(4), tf.unstack(xs, 6, 1),
                                                dtype=tf.float32)
        variables = {v.op.name: v for v in tf.compat.v1.trainable_variables()}
        assert sorted(variables) == sorted(names)
        # Non-zero biases so that a mixed-up bias layout cannot pass.
        bumps = [v.assign_add(tf.random.normal(v.shape, stddev=0.5)) for v in variables.values()]
        loss = tf.reduce_sum(tf.sin(outputs[-1]))
        grads = dict(zip(variables, tf.gradients(loss, list(variables.values()))))
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(bumps)
            w = sess.run(variables)
            out, g = sess.run([outputs[-1], grads], {xs: x})
    layer = make_layer(4)
    layer.build((None, 6, 3))
    layer.set_weights(to_keras(w))
    np.testing.assert_allclose(layer(x).numpy(), out, rtol=RTOL, atol=ATOL)
    with tf.GradientTape() as tape:
        k_loss = tf.reduce_sum(tf.sin(layer(x)))
    mapped = dict(zip(names, grads_to_tf1([t.numpy() for t in tape.gradient(
        k_loss, layer.trainable_weights)])))
    for name in names:
        np.testing.assert_allclose(mapped[name], g[name], rtol=RTOL, atol=ATOL, err_msg=name)


def test_round_trips():
    rng = np.random.default_rng(5)
    kernel, bias = rng.normal(size=(7, 16)).astype(np.float32), rng.normal(size=16).astype(np.float32)
    back_kernel, back_bias = weights.lstm_keras_to_tf1(*weights.lstm_tf1_to_keras(kernel, bias))
    np.testing.assert_array_equal(back_kernel, kernel)
    f = slice(8, 12)
    np.testing.assert_array_equal(np.delete(back_bias, range(8, 12)), np.delete(bias, range(8, 12)))
    # The forget slice went through the float32 sum b_f + 1: within half an ulp of that sum.
    np.testing.assert_allclose(back_bias[f], bias[f], rtol=0,
                               atol=float(np.max(np.spacing(np.abs(bias[f] + 1)))))
    zero = np.zeros(16, np.float32)
    np.testing.assert_array_equal(weights.lstm_keras_to_tf1(
        *weights.lstm_tf1_to_keras(kernel, zero))[1], zero)

    gru = [rng.normal(size=s).astype(np.float32) for s in [(7, 8), (8,), (7, 4), (4,)]]
    for a, b in zip(weights.gru_keras_to_tf1(*weights.gru_tf1_to_keras(*gru)), gru):
        np.testing.assert_array_equal(a, b)
    rnn = [rng.normal(size=s).astype(np.float32) for s in [(7, 4), (4,)]]
    for a, b in zip(weights.simple_rnn_keras_to_tf1(*weights.simple_rnn_tf1_to_keras(*rnn)), rnn):
        np.testing.assert_array_equal(a, b)


def test_lstm_conversion_against_numpy():
    # Independent of both frameworks: the numpy TF1 cell vs the Keras layer.
    rng = np.random.default_rng(6)
    kernel = rng.normal(size=(3 + 4, 16)).astype(np.float32)
    bias = rng.normal(size=16).astype(np.float32)
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    layer = keras.layers.LSTM(4, return_sequences=True)
    layer.build((None, 5, 3))
    layer.set_weights(weights.lstm_tf1_to_keras(kernel, bias))
    np.testing.assert_allclose(layer(x).numpy(),
                               numpy_lstm.lstm_outputs(x.astype(np.float64), kernel, bias),
                               rtol=0, atol=ATOL)
