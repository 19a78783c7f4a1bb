"""What every experiment's TF1 graph shares: a fresh seeded graph, the seeds' output layer and
optimizer, and the gathering of the last relevant output. Built on request, never at import time.

The output layer is `output/weights` and `output/biases` (the tutorials left them unnamed:
`Variable` and `Variable_1`; checkpoints.py accepts both).
"""
import dataclasses

import tensorflow as tf

RNN_APIS = ("static", "dynamic")
OPTIMIZERS = {
    "adam": tf.compat.v1.train.AdamOptimizer,
    "sgd": tf.compat.v1.train.GradientDescentOptimizer,
}
OUTPUT_WEIGHTS = "output/weights"
OUTPUT_BIASES = "output/biases"


@dataclasses.dataclass(frozen=True)
class Model:
    """A built training graph. `inputs` are the placeholders a batch tuple is fed to, in order;
    `serving_inputs` those a client feeds ({placeholder name: placeholder}: not the labels)."""
    graph: tf.Graph
    inputs: tuple
    logits: tf.Tensor
    loss: tf.Tensor
    accuracy: tf.Tensor
    train_op: tf.Operation
    global_step: tf.Variable
    probabilities: tf.Tensor
    classes: tf.Tensor  # int64 class index
    serving_inputs: dict


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


def classifier(graph, inputs, features, labels, optimizer, learning_rate):
    """The seeds' output layer, loss, accuracy and optimizer over `features`."""
    n_in, n_classes = features.shape[-1], labels.shape[-1]
    with tf.compat.v1.name_scope("output"):
        # The seed initialises the output layer from N(0, 1), not Glorot.
        weights = tf.Variable(tf.random.normal([n_in, n_classes]), name="weights")
        biases = tf.Variable(tf.random.normal([n_classes]), name="biases")
    logits = tf.matmul(features, weights) + biases
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    correct = tf.equal(tf.argmax(logits, 1), tf.argmax(labels, 1))
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    global_step = tf.compat.v1.train.get_or_create_global_step()
    train_op = OPTIMIZERS[optimizer](learning_rate).minimize(loss, global_step=global_step)
    # For serving; created last, so no random op's graph-derived seed moves.
    probabilities = tf.nn.softmax(logits, name="probabilities")
    classes = tf.argmax(logits, 1, name="classes")
    serving = {p.op.name: p for p in inputs if p is not labels}
    return Model(graph, inputs, logits, loss, accuracy, train_op, global_step, probabilities,
                 classes, serving)
