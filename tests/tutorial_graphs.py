"""The original tutorial graphs (aymericdamien/TensorFlow-Examples), as their scripts built them,
for checkpoints in the tutorials' own layout: the output layer's W and b are unnamed
`tf.Variable`s created before the RNN, so they are saved as `Variable` and `Variable_1`."""
import tensorflow as tf

v1 = tf.compat.v1


def build(model_name, n_hidden, seq_max_len=20):
    """Returns (graph, placeholders, logits) of the tutorial's graph with its Adam/SGD op."""
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(1)
        bidirectional = model_name == "mnist_birnn"
        toy = model_name == "toy_dynamic_rnn"
        n_steps, n_input, n_classes = (seq_max_len, 1, 2) if toy else (28, 28, 10)
        x = v1.placeholder("float", [None, n_steps, n_input])
        y = v1.placeholder("float", [None, n_classes])
        weights = {"out": tf.Variable(v1.random_normal(
            [2 * n_hidden if bidirectional else n_hidden, n_classes]))}
        biases = {"out": tf.Variable(v1.random_normal([n_classes]))}
        steps = tf.unstack(x, n_steps, 1)
        if bidirectional:
            outputs, _, _ = v1.nn.static_bidirectional_rnn(
                v1.nn.rnn_cell.BasicLSTMCell(n_hidden, forget_bias=1.0),
                v1.nn.rnn_cell.BasicLSTMCell(n_hidden, forget_bias=1.0), steps, dtype=tf.float32)
            last, inputs = outputs[-1], (x, y)
        elif toy:
            seqlen = v1.placeholder(tf.int32, [None])
            outputs, _ = v1.nn.static_rnn(v1.nn.rnn_cell.BasicLSTMCell(n_hidden), steps,
                                          dtype=tf.float32, sequence_length=seqlen)
            outputs = tf.transpose(tf.stack(outputs), [1, 0, 2])
            index = tf.range(0, tf.shape(outputs)[0]) * seq_max_len + (seqlen - 1)
            last, inputs = tf.gather(tf.reshape(outputs, [-1, n_hidden]), index), (x, y, seqlen)
        else:
            outputs, _ = v1.nn.static_rnn(v1.nn.rnn_cell.BasicLSTMCell(n_hidden, forget_bias=1.0),
                                          steps, dtype=tf.float32)
            last, inputs = outputs[-1], (x, y)
        logits = tf.matmul(last, weights["out"]) + biases["out"]
        cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=logits, labels=y))
        optimizer = (v1.train.GradientDescentOptimizer(0.01) if toy
                     else v1.train.AdamOptimizer(0.001))
        optimizer.minimize(cost)
    return graph, inputs, logits


def train_and_save(model_name, n_hidden, prefix, feeds, seq_max_len=20):
    """Builds the tutorial graph, makes its weights non-trivial, saves a checkpoint with
    `tf.compat.v1.train.Saver()` (all variables, Adam slots included) and returns the logits of
    `feeds` (a tuple of arrays for the graph's placeholders, the labels included)."""
    graph, inputs, logits = build(model_name, n_hidden, seq_max_len)
    with graph.as_default():
        bumps = [v.assign_add(v1.random_normal(v.shape, stddev=0.3))
                 for v in v1.trainable_variables()]
        saver = v1.train.Saver()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(bumps)
            saver.save(sess, prefix)
            return sess.run(logits, dict(zip(inputs, feeds)))
