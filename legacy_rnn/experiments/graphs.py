"""What every experiment's TF1 graph shares: a fresh seeded graph, the output layer, the head
(loss, metric and serving outputs), the optimizer, and the gathering of the last relevant output.
Built on request, never at import time.

The output layer is `output/weights` and `output/biases` (the tutorials left them unnamed:
`Variable` and `Variable_1`; checkpoints.py accepts both).

Heads (`HEADS`), by what the labels are:

| head | labels | loss | metric | serving outputs |
|---|---|---|---|---|
| softmax | one-hot float32 `[batch, classes]` | softmax cross-entropy | accuracy | logits, probabilities, classes (int64) |
| sigmoid | 0/1 float32 `[batch]` | sigmoid cross-entropy on `logits[:, 0]` | accuracy | logits, probabilities, classes (int64) |
| regression | float32 `[batch, outputs]` | mean squared error | mse | predictions |
"""
from __future__ import annotations  # the fields' tf types: no import at class creation

import dataclasses

from legacy_rnn import lazy

tf = lazy.module("tensorflow")

RNN_APIS = ("static", "dynamic")
OPTIMIZERS = {"adam": "AdamOptimizer", "sgd": "GradientDescentOptimizer"}  # tf.compat.v1.train
OUTPUT_WEIGHTS = "output/weights"
OUTPUT_BIASES = "output/biases"


@dataclasses.dataclass(frozen=True)
class Model:
    """A built training graph. `inputs` are the placeholders a batch tuple is fed to, in order;
    `serving_inputs` those a client feeds ({placeholder name: placeholder}: not the labels)."""
    graph: tf.Graph
    inputs: tuple
    logits: tf.Tensor  # the raw output: logits, or a regression's predictions
    loss: tf.Tensor
    metric: tf.Tensor  # the head's metric (accuracy, or the mse), averaged over the batch
    train_op: tf.Operation
    global_step: tf.Variable
    serving_outputs: dict  # {name: tensor} of the serving signature
    serving_inputs: dict
    metric_name: str = "accuracy"
    training: tf.Tensor | None = None  # a bool placeholder fed True on training steps, if any


def last_relevant_output(outputs, seqlen):
    """`outputs[i, seqlen[i] - 1]` for each i, gathered as the tutorial did.

    outputs: `[batch, max_len, n]`; seqlen: int32 `[batch]`, each in 1..max_len.
    """
    batch_size, max_len = tf.shape(outputs)[0], tf.shape(outputs)[1]
    index = tf.range(batch_size) * max_len + (seqlen - 1)
    return tf.gather(tf.reshape(outputs, [-1, outputs.shape[-1]]), index)


def last_output(outputs):
    """The output after the last step: `outputs[-1]` of a static driver's list, as the seeds read
    it, or `outputs[:, -1]` of a dynamic driver's `[batch, time, n]` tensor."""
    return outputs[-1] if isinstance(outputs, list) else outputs[:, -1]


def new_graph(seed):
    """A graph with its seed set, built under TF op determinism.

    Determinism is a process-wide switch, and some ops choose their deterministic kernels when
    the graph is built: enabling it only before running would make the first graph of a process
    differ (in the last float32 bit) from every later one.
    """
    tf.config.experimental.enable_op_determinism()
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
    return graph


def dense(features, n_out, init="normal"):
    """`features @ output/weights + output/biases`. `init="normal"`: the seeds' N(0, 1) for both;
    `"glorot"`: Keras `Dense`'s defaults (glorot uniform kernel, zero bias)."""
    n_in = features.shape[-1]
    with tf.compat.v1.name_scope("output"):
        if init == "normal":
            weights = tf.Variable(tf.random.normal([n_in, n_out]), name="weights")
            biases = tf.Variable(tf.random.normal([n_out]), name="biases")
        else:
            weights = tf.Variable(tf.compat.v1.glorot_uniform_initializer()([n_in, n_out]),
                                  name="weights")
            biases = tf.Variable(tf.zeros([n_out]), name="biases")
    return tf.matmul(features, weights) + biases


def head_ops(head, logits, labels):
    """(loss, metric, metric name) of `head` over the batch."""
    if head == "softmax":
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=labels,
                                                                      logits=logits))
        correct = tf.equal(tf.argmax(logits, 1), tf.argmax(labels, 1))
        return loss, tf.reduce_mean(tf.cast(correct, tf.float32)), "accuracy"
    if head == "sigmoid":
        loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels,
                                                                      logits=logits[:, 0]))
        correct = tf.equal(tf.cast(logits[:, 0] > 0, tf.float32), labels)
        return loss, tf.reduce_mean(tf.cast(correct, tf.float32)), "accuracy"
    if head == "regression":
        mse = tf.reduce_mean(tf.square(logits - labels))
        return mse, mse, "mse"
    raise ValueError(f"head {head!r}: one of {', '.join(HEADS)}")


def serving_outputs(head, logits, named=False):
    """{name: tensor} of the serving signature from the logits (`named`: as graph tensor
    names, for a TF1 graph)."""
    def name(n):
        return n if named else None
    if head == "regression":
        return {"predictions": tf.identity(logits, name=name("predictions"))}
    if head == "softmax":
        probabilities = tf.nn.softmax(logits, name=name("probabilities"))
        classes = tf.argmax(logits, 1, name=name("classes"))
    else:
        probabilities = tf.sigmoid(logits, name=name("probabilities"))
        classes = tf.cast(logits[:, 0] > 0, tf.int64, name=name("classes"))
    return {"logits": logits, "probabilities": probabilities, "classes": classes}


HEADS = ("softmax", "sigmoid", "regression")


def trained(graph, inputs, logits, labels, optimizer, learning_rate, head="softmax",
            training=None):
    """The Model: `head`'s loss and metric over `logits`, and the optimizer minimising it."""
    loss, metric, metric_name = head_ops(head, logits, labels)
    global_step = tf.compat.v1.train.get_or_create_global_step()
    train_op = getattr(tf.compat.v1.train, OPTIMIZERS[optimizer])(learning_rate).minimize(
        loss, global_step=global_step)
    # For serving; created last, so no random op's graph-derived seed moves.
    outputs = serving_outputs(head, logits, named=True)
    serving = {p.op.name: p for p in inputs if p is not labels}
    return Model(graph, inputs, logits, loss, metric, train_op, global_step, outputs, serving,
                 metric_name, training)


def classifier(graph, inputs, features, labels, optimizer, learning_rate):
    """The seeds' output layer, loss, accuracy and optimizer over `features`."""
    logits = dense(features, labels.shape[-1])
    return trained(graph, inputs, logits, labels, optimizer, learning_rate)
