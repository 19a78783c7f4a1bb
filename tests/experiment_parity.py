"""Parity of any experiment's TF1 graph and Keras 3 twin, whatever its head: forward, gradients
and Adam training steps with the same weights and batches. The Keras losses are written here with
keras.ops from each head's definition, independently of graphs.head_ops."""
import keras
import numpy as np
import tensorflow as tf

# The TF migration guide's validate_correctness tolerance for forward results and gradients.
RTOL, ATOL = 1e-6, 1e-5
# Its training check: losses within atol 1e-5 step by step; the final weights within 1e-5.
TRAIN_ATOL = 1e-5


def keras_loss(head, logits, labels):
    if head == "regression":
        return keras.ops.mean(keras.ops.square(logits - labels))
    if head == "sigmoid":
        z, y = logits[:, 0], labels
        # The stable form of -y log(sigmoid(z)) - (1 - y) log(1 - sigmoid(z)).
        return keras.ops.mean(keras.ops.relu(z) - z * y + keras.ops.log1p(keras.ops.exp(
            -keras.ops.abs(z))))
    return keras.ops.mean(keras.ops.categorical_crossentropy(labels, logits, from_logits=True))


class Legacy:
    """The experiment's TF1 training graph in an open Session."""

    def __init__(self, experiment, config, optimizer="adam"):
        self.model = experiment.build_graph(config, optimizer=optimizer)
        with self.model.graph.as_default():
            self.variables = {v.op.name: v for v in tf.compat.v1.trainable_variables()}
            init = tf.compat.v1.global_variables_initializer()
        self.sess = tf.compat.v1.Session(graph=self.model.graph)
        self.sess.run(init)
        self._gradients = None

    @property
    def gradients(self):
        """{name: the loss's gradient}, added to the graph on first use (seconds for a
        dynamic_rnn's loop and conds, which the training-only tests do not need)."""
        if self._gradients is None:
            with self.model.graph.as_default():
                # Dense: an embedding's gradient is IndexedSlices.
                self._gradients = {name: tf.convert_to_tensor(g) for name, g in zip(
                    self.variables, tf.gradients(self.model.loss, list(self.variables.values())))}
        return self._gradients

    def feed(self, feeds):
        return dict(zip(self.model.inputs, feeds))

    def weights(self):
        return self.sess.run(self.variables)


def max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(a[k]) - np.asarray(b[k])))) for k in a)


def forward_and_gradients(experiment, config, feeds):
    """Asserts the twin's outputs and gradients (mapped back to TF1 names) match the graph's;
    returns (forward max diff, gradient max diff)."""
    legacy = Legacy(experiment, config)
    logits, grads = legacy.sess.run([legacy.model.logits, legacy.gradients], legacy.feed(feeds))
    model = experiment.to_keras(config, legacy.weights())
    inputs, labels = experiment.keras_inputs(feeds), feeds[1]
    out = np.asarray(model(inputs))
    np.testing.assert_allclose(out, logits, rtol=RTOL, atol=ATOL)
    layers = experiment.keras_variables(model)
    with tf.GradientTape() as tape:
        loss = keras_loss(experiment.head, model(inputs), labels)
    keras_grads = tape.gradient(loss, layers)
    mapped = experiment.to_tf1(config, {k: [np.asarray(tf.convert_to_tensor(g)) for g in v]
                                        for k, v in keras_grads.items()}, gradients=True)
    assert mapped.keys() == grads.keys()
    for var in grads:
        np.testing.assert_allclose(mapped[var], grads[var], rtol=RTOL, atol=ATOL, err_msg=var)
    return float(np.abs(out - logits).max()), max_diff(mapped, grads)


def adam_steps(experiment, config, batches, densify=True):
    """Trains the graph and the twin (Adam, TF1's epsilon 1e-8) on the same `batches` (feed
    tuples) at `config.learning_rate`; asserts losses and final weights within TRAIN_ATOL and that
    the weights moved; returns (loss max diff, final weight max diff).

    `densify`: the twin's gradients are made dense before Adam applies them. Keras 3's Adam (TF
    backend) applies an Embedding's gradient, IndexedSlices, to the moments of the batch's rows
    only; TF1's AdamOptimizer decays every row's (docs/migration.md, trap 17)."""
    learning_rate = config.learning_rate
    legacy = Legacy(experiment, config)
    start = legacy.weights()
    model = experiment.to_keras(config, start)
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8)

    @tf.function
    def keras_step(inputs, labels):
        with tf.GradientTape() as tape:
            loss = keras_loss(experiment.head, model(inputs), labels)
        gradients = tape.gradient(loss, model.trainable_variables)
        if densify:
            gradients = [tf.convert_to_tensor(g) for g in gradients]
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    legacy_losses, keras_losses = [], []
    for feeds in batches:
        _, loss = legacy.sess.run([legacy.model.train_op, legacy.model.loss], legacy.feed(feeds))
        legacy_losses.append(loss)
        keras_losses.append(float(keras_step(experiment.keras_inputs(feeds), feeds[1])))
    np.testing.assert_allclose(keras_losses, legacy_losses, rtol=0, atol=TRAIN_ATOL)
    final, legacy_final = experiment.to_tf1(config, experiment.keras_arrays(model)), \
        legacy.weights()
    for var in legacy_final:
        np.testing.assert_allclose(final[var], legacy_final[var], rtol=0, atol=TRAIN_ATOL,
                                   err_msg=var)
    assert max_diff(legacy_final, start) > 5 * learning_rate  # the weights did move
    return (float(np.abs(np.subtract(keras_losses, legacy_losses)).max()),
            max_diff(final, legacy_final))
