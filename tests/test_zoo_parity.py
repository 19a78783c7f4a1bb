"""Every cell x driver x option that changes the arithmetic: the TF1 graph and its Keras 3 twin
on identical weights agree in outputs, final states and gradients (rtol 1e-6, atol 1e-5, the TF
migration guide's validate_correctness), with sequence lengths (zeros past each length, state
copied through), initial states and time-major inputs."""
import numpy as np
import pytest
import tensorflow as tf

import zoo_harness as h
from legacy_rnn import zoo
from legacy_rnn.errors import UserError
from legacy_rnn.zoo import blocks

C = zoo.CellSpec.make
CELLS = zoo.canonical_cases()  # every family's own cases (`CellFamily.cases`)


def check(block, **kwargs):
    x, _ = h.inputs()
    lengths = kwargs.pop("lengths", h.LENGTHS)
    reference = h.tf1_run(block, x, lengths, **kwargs)
    assert set(reference.weights) == set(block.variables(x.shape[-1]))
    twin = h.keras_run(block, reference.weights, x, lengths)
    forward, state, grads = h.assert_parity(reference, twin)
    print(f"{block.describe()}: forward {forward:.1e}, state {state:.1e}, gradients {grads:.1e}")
    return reference


@pytest.mark.parametrize("cell", CELLS)
def test_every_cell_under_dynamic_rnn_with_sequence_length(cell):
    reference = check(zoo.Block([CELLS[cell]], "forward", "dynamic"))
    # Zeros past each length, for the empty sequence too.
    assert np.all(reference.outputs[h.LENGTHS[:, None] <= np.arange(h.TIME)] == 0)
    assert np.any(reference.outputs[0] != 0)


MIXED = (C("gru", 3), C("lstm", 4, use_peepholes=True, num_proj=2))


@pytest.mark.parametrize("driver", zoo.blocks.DRIVERS)
@pytest.mark.parametrize("direction", zoo.blocks.DIRECTIONS)
def test_every_driver_over_a_two_level_stack(direction, driver):
    check(zoo.Block(MIXED, direction, driver))


@pytest.mark.parametrize("direction, driver", [("forward", "static"),
                                               ("bidirectional", "dynamic"),
                                               ("stack_bidirectional", "static")])
def test_drivers_without_sequence_length(direction, driver):
    check(zoo.Block(MIXED, direction, driver), lengths=None)


@pytest.mark.parametrize("cell, driver", [("BasicRNNCell", "static"), ("GRUCell", "dynamic"),
                                          ("BasicLSTMCell", "static"),
                                          ("LSTMCell(everything)", "dynamic"),
                                          ("LayerNormBasicRNNCell", "static"),
                                          ("LSTMBlockCell", "static")])
def test_initial_state(cell, driver):
    spec = CELLS[cell]
    rng = np.random.default_rng(7)
    keras_state = [rng.normal(size=(h.BATCH, s)).astype(np.float32) for s in tf.nest.flatten(
        spec.family.keras_cell(spec).state_size)]
    tf1_state = spec.family.state_from_keras(spec, keras_state)
    block = zoo.Block([spec], "forward", driver)
    x, _ = h.inputs()
    reference = h.tf1_run(block, x, initial_state=tf1_state)
    layer = blocks.keras_level(block.levels[0], "fw_0", return_sequences=True, return_state=True)
    layer.build((None, h.TIME, h.INPUT))
    layer.set_weights(spec.family.to_keras(spec, {k.split("/", 2)[-1]: v for k, v in
                                                  reference.weights.items()}))
    mask = np.arange(h.TIME) < h.LENGTHS[:, None]
    out, *state = layer(x, mask=mask, initial_state=keras_state)
    out = np.where(mask[..., None], out.numpy(), 0.0)
    np.testing.assert_allclose(out, reference.outputs, rtol=h.RTOL, atol=h.ATOL)
    final = spec.family.state_from_keras(spec, [s.numpy() for s in state])
    for a, b in zip(tf.nest.flatten(final), tf.nest.flatten(reference.state)):
        np.testing.assert_allclose(a, b, rtol=h.RTOL, atol=h.ATOL)
    # The empty sequence keeps the initial state: copied through, as TF1 does.
    for a, b in zip(tf.nest.flatten(reference.state), tf.nest.flatten(tf1_state)):
        np.testing.assert_array_equal(np.asarray(a)[3], np.asarray(b)[3])


@pytest.mark.parametrize("direction", zoo.blocks.DIRECTIONS)
def test_time_major_is_a_transpose(direction):
    block = zoo.Block([C("basic_lstm", 3)], direction, "dynamic")
    check(block, time_major=True)


def test_parallel_iterations_and_swap_memory_change_no_number():
    block = zoo.Block([C("gru", 3)], "bidirectional", "dynamic")
    x, _ = h.inputs()
    plain = h.tf1_run(block, x)
    tuned = h.tf1_run(block, x, parallel_iterations=1, swap_memory=True)
    np.testing.assert_array_equal(tuned.outputs, plain.outputs)
    check(block, parallel_iterations=1, swap_memory=True)


def test_residual_and_dropout_wrappers_in_a_stack():
    # Residual needs equal input and output sizes: 3 inputs, 3 units.
    levels = [zoo.Level(C("basic_lstm", 3), residual=True),
              zoo.Level(C("gru", 3), dropout=zoo.Dropout(1.0, 1.0, 1.0), residual=True)]
    reference = check(zoo.Block(levels, "forward", "dynamic"))
    # The residual really adds the input: the same stack without it differs.
    x, _ = h.inputs()
    plain = h.tf1_run(zoo.Block([level.cell for level in levels], "forward", "dynamic"), x)
    assert np.abs(plain.outputs - reference.outputs).max() > 0.1


def test_dropout_is_off_outside_training():
    block = zoo.Block([zoo.Level(C("basic_rnn", 3), dropout=zoo.Dropout(0.5, 0.7, 0.6, True))],
                      "forward", "static")
    x, _ = h.inputs()
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(1)
        training = tf.compat.v1.placeholder_with_default(False, [])
        xs = tf.constant(x)
        outputs, _ = zoo.tf1_block(block, xs, tf.constant(h.LENGTHS), training=training)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            weights = sess.run({v.op.name: v for v in tf.compat.v1.trainable_variables()})
            off, on = (sess.run(outputs, {training: t}) for t in (False, True))
    model = zoo.keras_block(block, h.INPUT)
    blocks.to_keras(block, model, weights)
    np.testing.assert_allclose(model([x, h.LENGTHS], training=False).numpy(), off,
                               rtol=h.RTOL, atol=h.ATOL)
    assert np.abs(on - off).max() > 1e-3  # and on while training


def test_a_users_own_scope_with_reuse_over_embedded_sequences():
    # The documents' BiLSTM: under variable_scope("bilstm", reuse=...), over an embedding.
    block = zoo.Block([C("lstm", 4)], "bidirectional", "dynamic", scope="bilstm/bidirectional_rnn")
    ids = np.array([[3, 1, 4, 1, 5], [9, 2, 6, 0, 0]], np.int32)
    lengths = np.array([5, 3], np.int32)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(3)
        embedding = tf.compat.v1.get_variable("embedding", [10, 3])
        embedded = tf.nn.embedding_lookup(embedding, ids)
        with tf.compat.v1.variable_scope("bilstm"):
            first, _ = zoo.tf1_block(zoo.Block([C("lstm", 4)], "bidirectional", "dynamic"),
                                     embedded, lengths)
        with tf.compat.v1.variable_scope("bilstm", reuse=True):
            again, _ = zoo.tf1_block(zoo.Block([C("lstm", 4)], "bidirectional", "dynamic"),
                                     embedded, lengths)
        names = {v.op.name for v in tf.compat.v1.trainable_variables()}
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            a, b, x = sess.run([first, again, embedded])
            weights = sess.run({v.op.name: v for v in tf.compat.v1.trainable_variables()})
    assert names == {"embedding", *block.variables(3)}  # reuse created nothing new
    np.testing.assert_array_equal(a, b)
    model = zoo.keras_block(block, 3)
    blocks.to_keras(block, model, weights)
    np.testing.assert_allclose(model([x, lengths]).numpy(), a, rtol=h.RTOL, atol=h.ATOL)


def _folded_biases(spec, prefix=""):
    """{variable name: the cell spec} of the biases a built-in Keras LSTM folds forget_bias into:
    the cell's own, or those of the cells a wrapper or a stack holds."""
    if spec.family.folds_forget_bias and spec.get("forget_bias"):
        return {f"{prefix}bias": spec}
    inner = {"cell": [(spec.get("cell"), "")], "cells": [
        (c, f"cell_{k}/") for k, c in enumerate(spec.get("cells") or ())]}
    return {name: folding for option, held in inner.items() if option in spec.family.defaults
            for c, at in held for name, folding in _folded_biases(
                c, f"{prefix}{at}{c.family.scope}/").items()}


@pytest.mark.parametrize("cell", CELLS)
def test_weights_round_trip(cell):
    spec = CELLS[cell]
    rng = np.random.default_rng(11)
    tf1 = {name: rng.normal(size=shape).astype(np.float32)
           for name, shape in spec.family.variables(spec, 3).items()}
    back = spec.family.to_tf1(spec, spec.family.to_keras(spec, tf1))
    assert back.keys() == tf1.keys()
    folded = _folded_biases(spec)
    for name in tf1:
        folding = folded.get(name)
        if folding is not None:
            # The built-in Keras LSTM folds forget_bias into the float32 bias: the f slice comes
            # back within half an ulp of b_f + forget_bias; everything else exactly.
            f = slice(2 * folding.units, 3 * folding.units)
            np.testing.assert_array_equal(np.delete(back[name], np.r_[f]),
                                          np.delete(tf1[name], np.r_[f]))
            np.testing.assert_allclose(back[name][f], tf1[name][f], rtol=0, atol=float(
                np.max(np.spacing(np.abs(tf1[name][f] + folding.get("forget_bias"))))))
        else:
            np.testing.assert_array_equal(back[name], tf1[name], err_msg=name)
    if spec.family.folds_forget_bias and "bias" in tf1:
        # Gradients map without the fold, exactly. (LayerNormBasicLSTMCell has no bias: its
        # twin applies forget_bias at run time.)
        keras_grads = spec.family.to_keras(spec, tf1)
        keras_grads[2] = np.arange(4 * spec.units, dtype=np.float32)
        back = spec.family.to_tf1(spec, keras_grads, gradients=True)["bias"]
        i, f, c, o = np.split(keras_grads[2], 4)
        np.testing.assert_array_equal(back, np.concatenate([i, c, f, o]))


def test_lstm_options_are_checked():
    with pytest.raises(UserError, match="num_unit_shards: deprecated since January 2017"):
        C("lstm", 4, num_unit_shards=2)
    with pytest.raises(UserError, match="num_proj_shards: deprecated"):
        C("lstm", 4, num_proj_shards=2)
    with pytest.raises(UserError, match="proj_clip clips the projection, and num_proj is not set"):
        C("lstm", 4, proj_clip=1.0)
    with pytest.raises(UserError, match="BasicLSTMCell has no option use_peepholes"):
        C("basic_lstm", 4, use_peepholes=True)
    with pytest.raises(UserError, match="hard_sigmoid does not"):
        C("gru", 4, activation="hard_sigmoid")


def test_lstm_initializer_sets_only_the_initial_values():
    spec = C("lstm", 3, use_peepholes=True, num_proj=2)
    graph = tf.Graph()
    with graph.as_default():
        cell = spec.family.tf1_cell(spec, initializer=tf.compat.v1.constant_initializer(0.25))
        tf.compat.v1.nn.dynamic_rnn(cell, tf.zeros([1, 2, 5]), dtype=tf.float32)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            values = sess.run({v.op.name: v for v in tf.compat.v1.trainable_variables()})
    for name in ("kernel", "w_f_diag", "projection/kernel"):
        assert np.all(values[f"rnn/lstm_cell/{name}"] == 0.25)
    assert np.all(values["rnn/lstm_cell/bias"] == 0.0)
