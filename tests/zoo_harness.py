"""Runs a zoo block in its TF1 graph and as its Keras 3 twin on the same weights and inputs.

The TF1 side is the reference: the block is built with `zoo.tf1_block`, every variable is moved
away from its initial value (non-zero biases, peepholes and layer-norm gains) so that a mixed-up
layout cannot pass, and outputs, final state and gradients of a fixed loss are fetched. The Keras
side gets the converted weights and computes the same quantities.
"""
import dataclasses

import numpy as np
import tensorflow as tf

from legacy_rnn import zoo
from legacy_rnn.zoo import blocks

# The TF migration guide's validate_correctness tolerance (forward results, same weights).
RTOL, ATOL = 1e-6, 1e-5
BATCH, TIME, INPUT = 4, 5, 3
LENGTHS = np.array([5, 1, 3, 0], np.int32)  # every case: full, one step, partial, empty


@dataclasses.dataclass
class Run:
    outputs: np.ndarray
    state: object
    gradients: dict  # {TF1 variable name: array}
    input_gradient: np.ndarray
    weights: dict  # {TF1 variable name: array} (TF1 side only)


def inputs(seed=0, batch=BATCH, time=TIME, size=INPUT):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, time, size)).astype(np.float32)
    x[0, 1] = 0.0  # real zeros inside a sequence are data, not padding
    return x, rng.normal(size=(1, 1, 64)).astype(np.float32)


def loss_weights(w, size):
    return w[..., :size]


def tf1_run(block, x, lengths=LENGTHS, initial_state=None, time_major=False, seed=0,
            **driver_options):
    """The TF1 block's outputs (batch-major), final state, gradients, and its weights."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        feed_x = np.transpose(x, (1, 0, 2)) if time_major else x
        xs = tf.compat.v1.placeholder(tf.float32, feed_x.shape)
        seqlen = None if lengths is None else tf.constant(lengths)
        state = None if initial_state is None else tf.nest.map_structure(tf.constant,
                                                                         initial_state)
        outputs, final = zoo.tf1_block(block, xs, seqlen, initial_state=state,
                                       time_major=time_major, **driver_options)
        if time_major:
            outputs = tf.transpose(outputs, (1, 0, 2))
        variables = {v.op.name: v for v in tf.compat.v1.trainable_variables()}
        bumps = [v.assign_add(tf.random.normal(v.shape, stddev=0.5)) for v in variables.values()]
        w = tf.constant(loss_weights(inputs(seed)[1], outputs.shape[-1]))
        loss = tf.reduce_sum(tf.sin(outputs) * w)
        grads = tf.gradients(loss, [*variables.values(), xs])
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(bumps)
            weights = sess.run(variables)
            out, fin, *g = sess.run([outputs, final, *grads], {xs: feed_x})
    input_grad = np.transpose(g[-1], (1, 0, 2)) if time_major else g[-1]
    return Run(out, fin, dict(zip(variables, g[:-1])), input_grad, weights)


def keras_run(block, weights, x, lengths=LENGTHS, seed=0):
    """The Keras twin's outputs, final state (in TF1's structure) and gradients."""
    model = zoo.keras_block(block, x.shape[-1], return_state=True)
    blocks.to_keras(block, model, weights)
    lengths = np.full(len(x), x.shape[1], np.int32) if lengths is None else lengths
    layers = {name: model.get_layer(name).trainable_weights for name in block.layer_names()}
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        result = model([xt, tf.constant(lengths)])
        w = loss_weights(inputs(seed)[1], result["outputs"].shape[-1])
        loss = tf.reduce_sum(tf.sin(result["outputs"]) * w)
    grads, input_grad = tape.gradient(loss, [layers, xt])
    gradients = blocks.from_keras(block, {k: [g.numpy() for g in v] for k, v in grads.items()},
                                  gradients=True)
    state = blocks.tf1_state(block, {k: v for k, v in result.items() if k != "outputs"})
    return Run(result["outputs"].numpy(), state, gradients, input_grad.numpy(), {})


def largest(a, b):
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
               for x, y in zip(tf.nest.flatten(a), tf.nest.flatten(b)))


def assert_parity(reference, twin):
    """Outputs, final state and gradients within the migration guide's tolerance; returns the
    largest differences (forward, state, gradients)."""
    np.testing.assert_allclose(twin.outputs, reference.outputs, rtol=RTOL, atol=ATOL)
    tf.nest.assert_same_structure(reference.state, twin.state, check_types=False)
    for a, b in zip(tf.nest.flatten(twin.state), tf.nest.flatten(reference.state)):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    assert twin.gradients.keys() == reference.gradients.keys()
    for name in reference.gradients:
        np.testing.assert_allclose(twin.gradients[name], reference.gradients[name], rtol=RTOL,
                                   atol=ATOL, err_msg=name)
    np.testing.assert_allclose(twin.input_gradient, reference.input_gradient, rtol=RTOL,
                               atol=ATOL)
    grads = max(largest(twin.gradients[k], reference.gradients[k]) for k in reference.gradients)
    return (largest(twin.outputs, reference.outputs), largest(twin.state, reference.state),
            max(grads, largest(twin.input_gradient, reference.input_gradient)))


def save_block_graph(tmp_path, block, meta=True, time=TIME, input_size=INPUT, seed=3):
    """`block` built as user code builds it (placeholders for the inputs and lengths), every
    variable moved off its initial value, saved (with its `.meta` unless `meta=False`); returns
    (prefix, run(x, lengths) -> the graph's outputs)."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        x = tf.compat.v1.placeholder(tf.float32, [None, time, input_size], name="inputs")
        lengths = tf.compat.v1.placeholder(tf.int32, [None], name="lengths")
        outputs, _ = zoo.tf1_block(block, x, lengths)
        bumps = [v.assign_add(tf.random.normal(v.shape, stddev=0.5))
                 for v in tf.compat.v1.trainable_variables()]
        sess = tf.compat.v1.Session(graph=graph)
        sess.run(tf.compat.v1.global_variables_initializer())
        sess.run(bumps)
        prefix = str(tmp_path / "ckpt" / "model.ckpt")
        tf.compat.v1.train.Saver().save(sess, prefix, write_meta_graph=meta)
    return prefix, lambda xv, lv: sess.run(outputs, {x: xv, lengths: lv})


def assert_gradients_match_finite_differences(spec):
    """The TF1 graph's gradients of a static block of `spec` against finite differences (for the
    fused ops whose gradient the zoo registers itself)."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(1)
        x = tf.constant(np.random.default_rng(2).normal(size=(2, 4, 2)), tf.float32)
        outputs, _ = zoo.tf1_block(zoo.Block([spec], "forward", "static"), x)
        loss = tf.reduce_sum(tf.square(outputs))
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for v in tf.compat.v1.trainable_variables():
                theoretical, numerical = tf.compat.v1.test.compute_gradient(
                    v, v.shape.as_list(), loss, [], delta=1e-3)
                np.testing.assert_allclose(theoretical, numerical, atol=2e-2, rtol=2e-2,
                                           err_msg=v.name)
