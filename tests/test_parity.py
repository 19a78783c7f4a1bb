"""The experiments' TF1 graphs vs their Keras 3 twins, with identical weights (CPU, float32)."""
import dataclasses

import keras
import numpy as np
import pytest

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


def legacy_graph(name, optimizer="adam", learning_rate=0.001, seed=0):
    """The experiment's legacy graph in an open Session, with its trainable variables by name."""
    experiment, config = config_of(name, seed, learning_rate)
    return experiment_parity.Legacy(experiment, config, optimizer)


MODELS = ["mnist_rnn", "mnist_birnn", "toy_dynamic_rnn"]


@pytest.mark.parametrize("name", MODELS)
def test_forward_and_gradients_match(name):
    experiment, config = config_of(name)
    forward, gradients = experiment_parity.forward_and_gradients(
        experiment, config, batch(name, np.random.default_rng(0))[0])
    print(f"{name}: forward max diff {forward:.2e}, gradient max diff {gradients:.2e}")


@pytest.mark.parametrize("name", MODELS)
def test_twenty_adam_steps_match(name):
    # Losses step by step and the final weights within the guide's training tolerance; the
    # weights moved (experiment_parity.adam_steps).
    experiment, config = config_of(name, learning_rate=0.001)
    rng = np.random.default_rng(1)
    losses, weights = experiment_parity.adam_steps(experiment, config,
                                                   [batch(name, rng)[0] for _ in range(20)])
    print(f"{name}: 20 Adam steps, loss max diff {losses:.2e}, final weight max diff "
          f"{weights:.2e}")


def test_plain_bidirectional_lstm_is_a_different_model():
    legacy = legacy_graph("mnist_birnn")
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
    legacy = legacy_graph("toy_dynamic_rnn")
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
