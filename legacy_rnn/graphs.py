"""The tutorials' TF1 graphs, built into a fresh `tf.Graph` on request (never at import time).

Variable names are the ones tf.compat.v1 gives the seed code, whichever RNN API builds the graph:
`rnn/basic_lstm_cell/{kernel,bias}` or `bidirectional_rnn/{fw,bw}/basic_lstm_cell/{kernel,bias}`,
so a checkpoint written with `rnn='static'` restores into `rnn='dynamic'` and back. The output
layer is `output/weights` and `output/biases` (the tutorials left them unnamed).
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
    """A built training graph. `inputs` are the placeholders a batch tuple is fed to, in order."""
    graph: tf.Graph
    inputs: tuple
    logits: tf.Tensor
    loss: tf.Tensor
    accuracy: tf.Tensor
    train_op: tf.Operation
    global_step: tf.Variable


def lstm_cell(n_hidden):
    return tf.compat.v1.nn.rnn_cell.BasicLSTMCell(n_hidden, forget_bias=1.0)


def last_relevant_output(outputs, seqlen):
    """`outputs[i, seqlen[i] - 1]` for each i, gathered as the tutorial did.

    outputs: `[batch, max_len, n]`; seqlen: int32 `[batch]`, each in 1..max_len.
    """
    batch_size, max_len = tf.shape(outputs)[0], tf.shape(outputs)[1]
    index = tf.range(batch_size) * max_len + (seqlen - 1)
    return tf.gather(tf.reshape(outputs, [-1, outputs.shape[-1]]), index)


def rnn_features(inputs, n_hidden, rnn="static", bidirectional=False, seqlen=None):
    """The RNN output the classifier reads: at the last step, or at `seqlen - 1` when given.

    inputs: float32 `[batch, time, input]` with a static time size. Returns `[batch, n_hidden]`,
    or `[batch, 2 * n_hidden]` (forward then backward) when bidirectional. As in
    `static_bidirectional_rnn`'s `outputs[-1]`, the backward half at the last step is the
    backward cell after seeing only that step.
    """
    if rnn not in RNN_APIS:
        raise ValueError(f"rnn must be one of {RNN_APIS}, got {rnn!r}")
    # TF 1.x initialised cell kernels with the graph-seeded glorot_uniform_initializer. tf-keras,
    # which provides the cells now, seeds its default from Python's `random` instead, so
    # set_random_seed would not fix them. A scope initializer restores the TF1 behaviour
    # without changing any variable name.
    with tf.compat.v1.variable_scope(tf.compat.v1.get_variable_scope(),
                                     initializer=tf.compat.v1.glorot_uniform_initializer()):
        return _rnn_features(inputs, n_hidden, rnn, bidirectional, seqlen)


def _rnn_features(inputs, n_hidden, rnn, bidirectional, seqlen):
    cells = (lstm_cell(n_hidden), lstm_cell(n_hidden)) if bidirectional else (lstm_cell(n_hidden),)
    if rnn == "static":
        steps = tf.unstack(inputs, inputs.shape[1], axis=1)
        if bidirectional:
            outputs, _, _ = tf.compat.v1.nn.static_bidirectional_rnn(
                *cells, steps, dtype=tf.float32, sequence_length=seqlen)
        else:
            outputs, _ = tf.compat.v1.nn.static_rnn(
                *cells, steps, dtype=tf.float32, sequence_length=seqlen)
        if seqlen is None:
            return outputs[-1]
        outputs = tf.stack(outputs, axis=1)
    else:
        if bidirectional:
            (forward, backward), _ = tf.compat.v1.nn.bidirectional_dynamic_rnn(
                *cells, inputs, dtype=tf.float32, sequence_length=seqlen)
            outputs = tf.concat([forward, backward], axis=2)
        else:
            outputs, _ = tf.compat.v1.nn.dynamic_rnn(
                *cells, inputs, dtype=tf.float32, sequence_length=seqlen)
        if seqlen is None:
            return outputs[:, -1]
    return last_relevant_output(outputs, seqlen)


def _new_graph(seed):
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


def _classifier(graph, inputs, features, labels, optimizer, learning_rate):
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
    return Model(graph, inputs, logits, loss, accuracy, train_op, global_step)


def build_mnist_model(n_hidden, bidirectional=False, rnn="static", learning_rate=0.001, seed=0,
                      n_steps=28, n_input=28, n_classes=10, optimizer="adam"):
    """The MNIST row-by-row classifier; inputs `(images [b, n_steps * n_input], labels [b, 10])`."""
    graph = _new_graph(seed)
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, n_steps * n_input], name="images")
        labels = tf.compat.v1.placeholder(tf.float32, [None, n_classes], name="labels")
        rows = tf.reshape(images, [-1, n_steps, n_input])
        features = rnn_features(rows, n_hidden, rnn, bidirectional)
        return _classifier(graph, (images, labels), features, labels, optimizer, learning_rate)


def build_toy_model(n_hidden, seq_max_len, rnn="static", learning_rate=0.01, seed=0, n_classes=2,
                    optimizer="sgd"):
    """The variable-length classifier; inputs `(x [b, seq_max_len, 1], labels [b, 2], seqlen [b])`."""
    graph = _new_graph(seed)
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, seq_max_len, 1], name="x")
        labels = tf.compat.v1.placeholder(tf.float32, [None, n_classes], name="labels")
        seqlen = tf.compat.v1.placeholder(tf.int32, [None], name="seqlen")
        features = rnn_features(x, n_hidden, rnn, seqlen=seqlen)
        return _classifier(graph, (x, labels, seqlen), features, labels, optimizer, learning_rate)
