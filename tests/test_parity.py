"""The experiments' TF1 graphs vs their Keras 3 twins, with identical weights (CPU, float32)."""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

import experiment_parity
import numpy_lstm
from legacy_rnn import experiments, zoo
from legacy_rnn.experiments import graphs

# The TF migration guide's validate_correctness tolerance for forward results.
RTOL, ATOL = 1e-6, 1e-5
N_HIDDEN, BATCH, TOY_LEN = 8, 16, 7


def config_of(name, seed=0, learning_rate=None):
    experiment = experiments.get(name)
    config = dataclasses.replace(experiment.config, n_hidden=N_HIDDEN, seed=seed)
    if name == "toy_dynamic_rnn":
        config = dataclasses.replace(config, seq_max_len=TOY_LEN)
    if learning_rate:
        config = dataclasses.replace(config, learning_rate=learning_rate)
    return experiment, config


def tf1_model(name, optimizer="adam", learning_rate=0.001, seed=0):
    experiment, config = config_of(name, seed, learning_rate)
    return experiment.build_graph(config, optimizer=optimizer)


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


def twin(name, weights):
    experiment, config = config_of(name)
    return experiment.to_keras(config, weights)


def Legacy(name, optimizer="adam", learning_rate=0.001, seed=0):  # noqa: N802 (was a class)
    """The experiment's legacy graph in an open Session, with its trainable variables by name."""
    experiment, config = config_of(name, seed, learning_rate)
    return experiment_parity.Legacy(experiment, config, optimizer)


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
    experiment, config = config_of(name)
    model = experiment.to_keras(config, legacy.weights())

    np.testing.assert_allclose(model(inputs).numpy(), logits, rtol=RTOL, atol=ATOL)

    layers = experiment.keras_variables(model)
    with tf.GradientTape() as tape:
        loss = keras_loss(model, inputs, labels)
    keras_grads = tape.gradient(loss, layers)
    mapped = experiment.to_tf1(config, {k: [g.numpy() for g in v]
                                        for k, v in keras_grads.items()}, gradients=True)
    assert mapped.keys() == grads.keys()
    for var in grads:
        np.testing.assert_allclose(mapped[var], grads[var], rtol=RTOL, atol=ATOL, err_msg=var)
    print(f"{name}: forward max diff {np.abs(model(inputs).numpy() - logits).max():.2e}, "
          f"gradient max diff {max_diff(mapped, grads):.2e}")


@pytest.mark.parametrize("name", MODELS)
def test_twenty_adam_steps_match(name):
    lr = 0.001
    legacy = Legacy(name, optimizer="adam", learning_rate=lr)
    experiment, config = config_of(name)
    model = experiment.to_keras(config, legacy.weights())
    # TF1's AdamOptimizer uses epsilon 1e-8 (Keras defaults to 1e-7); same update rule otherwise.
    optimizer = keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8)
    rng = np.random.default_rng(1)
    legacy_losses, keras_losses = [], []

    @tf.function  # one traced step instead of eager op-by-op dispatch: same arithmetic, faster
    def keras_step(inputs, labels):
        with tf.GradientTape() as tape:
            k_loss = keras_loss(model, inputs, labels)
        optimizer.apply_gradients(zip(tape.gradient(k_loss, model.trainable_variables),
                                      model.trainable_variables))
        return k_loss

    for _ in range(20):
        feeds, inputs, labels = batch(name, rng)
        _, loss = legacy.sess.run([legacy.model.train_op, legacy.model.loss], legacy.feed(feeds))
        legacy_losses.append(loss)
        keras_losses.append(float(keras_step(inputs, labels)))
    # The migration guide's training check: losses within atol 1e-5 step by step.
    np.testing.assert_allclose(keras_losses, legacy_losses, rtol=0, atol=1e-5)
    final = experiment.to_tf1(config, experiment.keras_arrays(model))
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
    equivalent = twin("mnist_birnn", legacy.weights())

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
        twin("toy_dynamic_rnn", w)([x, seqlen]).numpy(), logits,
        rtol=RTOL, atol=ATOL)
    inputs = keras.Input((TOY_LEN, 1))
    masked_by_value = keras.Model(inputs, keras.layers.Dense(2, name="output")(
        keras.layers.LSTM(N_HIDDEN, name="lstm")(keras.layers.Masking(0.0)(inputs))))
    spec = zoo.CellSpec.make("basic_lstm", N_HIDDEN)
    masked_by_value.get_layer("lstm").set_weights(spec.family.to_keras(
        spec, {"kernel": w["rnn/basic_lstm_cell/kernel"], "bias": w["rnn/basic_lstm_cell/bias"]}))
    masked_by_value.get_layer("output").set_weights(
        [w[graphs.OUTPUT_WEIGHTS], w[graphs.OUTPUT_BIASES]])
    wrong = np.abs(masked_by_value(x).numpy() - logits).max(axis=1)
    has_inner_zero = (x[:, 1, 0] == 0.0) & (seqlen > 1)
    assert has_inner_zero.any()
    assert wrong[has_inner_zero].min() > 1e-4 and wrong[~has_inner_zero].max() < ATOL


def test_lstm_conversion_against_numpy():
    # Independent of both frameworks: the numpy TF1 cell vs the Keras layer.
    rng = np.random.default_rng(6)
    kernel = rng.normal(size=(3 + 4, 16)).astype(np.float32)
    bias = rng.normal(size=16).astype(np.float32)
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    layer = keras.layers.LSTM(4, return_sequences=True)
    layer.build((None, 5, 3))
    spec = zoo.CellSpec.make("basic_lstm", 4)
    layer.set_weights(spec.family.to_keras(spec, {"kernel": kernel, "bias": bias}))
    np.testing.assert_allclose(layer(x).numpy(),
                               numpy_lstm.lstm_outputs(x.astype(np.float64), kernel, bias),
                               rtol=0, atol=ATOL)
