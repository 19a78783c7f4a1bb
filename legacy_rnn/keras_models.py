"""Keras 3 models that compute the same functions as the legacy graphs in `graphs.py`.

Built only from built-in layers and `keras.ops`, so a saved `.keras` file loads with
`keras.saving.load_model` (safe mode on) in a process that has never imported this package.
Layer names: `lstm` (or `bidirectional`) and `output`.
"""
import keras

from legacy_rnn import checkpoints, weights

MNIST_STEPS = MNIST_INPUT = 28
MNIST_CLASSES, TOY_CLASSES = 10, 2


def mnist_rnn(n_hidden, n_steps=MNIST_STEPS, n_input=MNIST_INPUT, n_classes=MNIST_CLASSES):
    """`static_rnn(BasicLSTMCell)` then `outputs[-1] @ W + b`: images `[b, 28, 28]` -> logits."""
    rows = keras.Input((n_steps, n_input), name="images")
    features = keras.layers.LSTM(n_hidden, name="lstm")(rows)
    logits = keras.layers.Dense(n_classes, name="output")(features)
    return keras.Model(rows, logits, name="mnist_rnn")


def mnist_birnn(n_hidden, n_steps=MNIST_STEPS, n_input=MNIST_INPUT, n_classes=MNIST_CLASSES):
    """`static_bidirectional_rnn` then `outputs[-1] @ W + b`.

    `outputs[-1]` pairs the forward LSTM after the whole sequence with the backward LSTM after
    only the last step, so the backward sequence is kept (`return_sequences=True`) and its last
    time step taken. A plain `Bidirectional(LSTM(U))` returns the backward LSTM after the whole
    sequence: a different model (tests/test_parity.py proves the difference).
    """
    rows = keras.Input((n_steps, n_input), name="images")
    sequence = keras.layers.Bidirectional(
        keras.layers.LSTM(n_hidden, return_sequences=True), name="bidirectional")(rows)
    last = keras.layers.Cropping1D((n_steps - 1, 0), name="last_step")(sequence)
    features = keras.layers.Flatten(name="features")(last)
    logits = keras.layers.Dense(n_classes, name="output")(features)
    return keras.Model(rows, logits, name="mnist_birnn")


def toy_dynamic_rnn(n_hidden, n_input=1, n_classes=TOY_CLASSES):
    """`static_rnn(..., sequence_length=seqlen)` then the output at `seqlen - 1`, then `@ W + b`.

    Inputs `[x [b, time, 1], seqlen [b] int32]`. The mask comes from the lengths, never from the
    values (`Masking(0.0)` would drop real zeros inside a sequence); a masked LSTM's final output
    is its output at the last unmasked step. Any time length is accepted.
    """
    x = keras.Input((None, n_input), name="x")
    seqlen = keras.Input((), dtype="int32", name="seqlen")
    positions = keras.ops.cumsum(keras.ops.ones_like(x[:, :, 0], dtype="int32"), axis=1)
    mask = keras.ops.less_equal(positions, keras.ops.expand_dims(seqlen, 1))
    features = keras.layers.LSTM(n_hidden, name="lstm")(x, mask=mask)
    logits = keras.layers.Dense(n_classes, name="output")(features)
    return keras.Model([x, seqlen], logits, name="toy_dynamic_rnn")


def from_tf1(model_name, tf1_weights, forget_bias=1.0):
    """The Keras equivalent of `model_name`, holding the TF1 variables `tf1_weights`
    (name -> array, as `checkpoints.MODEL_VARIABLES` names them)."""
    shape = checkpoints.infer_shape(model_name, tf1_weights)
    w = tf1_weights
    if model_name == "mnist_birnn":
        model = mnist_birnn(shape.n_hidden)
        model.get_layer("bidirectional").set_weights(weights.bidirectional_to_keras(
            *(weights.lstm_tf1_to_keras(w[f"bidirectional_rnn/{d}/basic_lstm_cell/kernel"],
                                        w[f"bidirectional_rnn/{d}/basic_lstm_cell/bias"],
                                        forget_bias) for d in ("fw", "bw"))))
    else:
        model = (mnist_rnn if model_name == "mnist_rnn" else toy_dynamic_rnn)(shape.n_hidden)
        model.get_layer("lstm").set_weights(weights.lstm_tf1_to_keras(
            w["rnn/basic_lstm_cell/kernel"], w["rnn/basic_lstm_cell/bias"], forget_bias))
    model.get_layer("output").set_weights(weights.dense_tf1_to_keras(
        w[checkpoints.OUTPUT_WEIGHTS], w[checkpoints.OUTPUT_BIASES]))
    return model


def rnn_layer_name(model_name):
    return "bidirectional" if model_name == "mnist_birnn" else "lstm"


def layer_arrays(model):
    """{layer name: its weights as numpy arrays} for the RNN and output layers of `model`."""
    return {name: model.get_layer(name).get_weights()
            for name in (rnn_layer_name(model.name), "output")}


def to_tf1(model_name, arrays, forget_bias=1.0):
    """TF1 variables {name: array} from `layer_arrays`-style arrays (weights, or gradients with
    forget_bias=0): the inverse of `from_tf1`."""
    rnn_arrays = arrays[rnn_layer_name(model_name)]
    if model_name == "mnist_birnn":
        tf1 = {}
        for direction, cell in zip(("fw", "bw"), weights.bidirectional_from_keras(rnn_arrays)):
            kernel, bias = weights.lstm_keras_to_tf1(*cell, forget_bias)
            tf1[f"bidirectional_rnn/{direction}/basic_lstm_cell/kernel"] = kernel
            tf1[f"bidirectional_rnn/{direction}/basic_lstm_cell/bias"] = bias
    else:
        kernel, bias = weights.lstm_keras_to_tf1(*rnn_arrays, forget_bias)
        tf1 = {"rnn/basic_lstm_cell/kernel": kernel, "rnn/basic_lstm_cell/bias": bias}
    tf1[checkpoints.OUTPUT_WEIGHTS], tf1[checkpoints.OUTPUT_BIASES] = arrays["output"]
    return tf1
