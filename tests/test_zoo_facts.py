"""The design documents' small facts, each keras.layers.RNN option against its TF1 construction,
and the traps of docs/migration.md, each proved."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo_harness as h
from legacy_rnn import keras_cells, zoo
from legacy_rnn.zoo import blocks

C = zoo.CellSpec.make


def tf1_session_run(build, weights=None):
    """Builds `build()` -> fetches in a fresh graph, initialises, loads `weights` ({variable name
    without its first two scopes: array}), then runs the fetches and returns their values."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        fetches = build()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for v in tf.compat.v1.trainable_variables():
                if weights is not None:
                    v.load(weights[v.op.name.split("/", 2)[-1]], sess)
            return sess.run(fetches)


# --- The documents' SimpleRNNCell facts ------------------------------------------------------

def test_simple_rnn_cell_weight_shapes_and_the_output_is_the_state():
    cell = keras.layers.SimpleRNNCell(3)
    cell.build((None, 4))
    assert [tuple(w.shape) for w in cell.weights] == [(4, 3), (3, 3), (3,)]
    assert [w.path.split("/")[-1] for w in cell.weights] == ["kernel", "recurrent_kernel", "bias"]

    cell = keras.layers.SimpleRNNCell(64)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 100)).astype(np.float32)
    state = rng.normal(size=(4, 64)).astype(np.float32)
    out, new_state = cell(x, [state])
    assert out.shape == (4, 64) and len(new_state) == 1
    assert out is new_state[0]  # literally the same tensor
    expected = np.tanh(x @ cell.kernel.numpy() + state @ cell.recurrent_kernel.numpy())
    np.testing.assert_allclose(out.numpy(), expected, rtol=h.RTOL, atol=h.ATOL)
    # Two cells stacked by hand: the first one's output is the second one's input.
    second = keras.layers.SimpleRNNCell(8)
    out2, _ = second(out, [np.zeros((4, 8), np.float32)])
    np.testing.assert_allclose(out2.numpy(), np.tanh(out.numpy() @ second.kernel.numpy()),
                               rtol=h.RTOL, atol=h.ATOL)


def test_the_worked_example_gives_6_then_22_in_keras_3():
    first = keras.layers.SimpleRNNCell(1, activation=None, kernel_initializer="ones",
                                       recurrent_initializer="ones",
                                       bias_initializer=keras.initializers.Constant(3))
    out, _ = first(np.array([[2.0]], np.float32), [np.array([[1.0]], np.float32)])
    assert float(out[0, 0]) == 6.0  # 2*1 + 1*1 + 3
    second = keras.layers.SimpleRNNCell(1, activation=None, kernel_initializer="ones",
                                        recurrent_initializer=keras.initializers.Constant(3),
                                        bias_initializer="ones")
    out2, _ = second(np.array([[3.0]], np.float32), [out])
    assert float(out2[0, 0]) == 22.0  # 3*1 + 6*3 + 1


def test_the_worked_example_gives_6_then_22_with_tf1_basic_rnn_cells():
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        # Identity activation; constant kernels through the scope initializer (rows: x, then h);
        # the biases, which BasicRNNCell always starts at zero, loaded after initialisation.
        with v1.variable_scope("first", initializer=v1.ones_initializer()):
            cell = v1.nn.rnn_cell.BasicRNNCell(1, activation="linear")
            out, _ = cell(tf.constant([[2.0]]), tf.constant([[1.0]]))
        with v1.variable_scope("second", initializer=v1.constant_initializer([[1.0], [3.0]])):
            cell2 = v1.nn.rnn_cell.BasicRNNCell(1, activation="linear")
            out2, _ = cell2(tf.constant([[3.0]]), out)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            cell.weights[1].load([3.0], sess)
            cell2.weights[1].load([1.0], sess)
            first, second = sess.run([out, out2])
    assert float(first[0, 0]) == 6.0 and float(second[0, 0]) == 22.0


def test_simple_rnn_layers_return_sequences_unroll_and_dropout():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 6, 2)).astype(np.float32)
    deep = keras.Sequential([keras.Input((None, 2)),
                             keras.layers.SimpleRNN(20, return_sequences=True),
                             keras.layers.SimpleRNN(20, return_sequences=True),
                             keras.layers.SimpleRNN(1)])
    assert deep(x).shape == (3, 1)
    assert keras.layers.SimpleRNN(20, return_sequences=True)(x).shape == (3, 6, 20)
    looped = keras.layers.SimpleRNN(5)
    unrolled = keras.layers.SimpleRNN(5, unroll=True)
    looped.build(x.shape)
    unrolled.build(x.shape)
    unrolled.set_weights(looped.get_weights())
    np.testing.assert_allclose(unrolled(x).numpy(), looped(x).numpy(), rtol=h.RTOL, atol=h.ATOL)
    dropped = keras.layers.SimpleRNN(5, dropout=0.5, seed=3)
    dropped.build(x.shape)
    dropped.set_weights(looped.get_weights())
    np.testing.assert_allclose(dropped(x, training=False).numpy(), looped(x).numpy(),
                               rtol=h.RTOL, atol=h.ATOL)
    assert np.abs(dropped(x, training=True).numpy() - looped(x).numpy()).max() > 1e-3


# --- keras.layers.RNN options against their TF1 constructions ---------------------------------

def _tf1_cell_outputs(spec, x, weights, **driver):
    """dynamic_rnn of a zoo cell with the given TF1 weights {relative name: array}."""
    def build():
        xs = tf.constant(x)
        return tf.compat.v1.nn.dynamic_rnn(spec.family.tf1_cell(spec), xs, dtype=tf.float32,
                                           **driver)
    return tf1_session_run(build, weights)


@pytest.fixture
def gru_case():
    spec = C("gru", 4)
    rng = np.random.default_rng(2)
    weights = {k: rng.normal(size=s, scale=0.5).astype(np.float32)
               for k, s in spec.family.variables(spec, 3).items()}
    x = rng.normal(size=(2, 6, 3)).astype(np.float32)

    def layer(batch_size=None, **options):
        rnn = keras.layers.RNN(spec.family.keras_cell(spec), **options)
        rnn.build((batch_size, 6, 3))
        rnn.set_weights(spec.family.to_keras(spec, weights))
        return rnn
    return spec, weights, x, layer


def test_go_backwards_is_reversing_the_input(gru_case):
    spec, weights, x, layer = gru_case
    out, _ = _tf1_cell_outputs(spec, x[:, ::-1].copy(), weights)
    backwards = layer(go_backwards=True, return_sequences=True)(x).numpy()
    # Keras returns the outputs in the order it computed them: over the reversed input.
    np.testing.assert_allclose(backwards, out, rtol=h.RTOL, atol=h.ATOL)


def test_return_state_is_the_final_state(gru_case):
    spec, weights, x, layer = gru_case
    _, state = _tf1_cell_outputs(spec, x, weights)
    _, final = layer(return_state=True)(x)
    np.testing.assert_allclose(final.numpy(), state, rtol=h.RTOL, atol=h.ATOL)


def test_stateful_is_feeding_the_last_state_back_as_initial_state(gru_case):
    spec, weights, x, layer = gru_case
    first, state = _tf1_cell_outputs(spec, x[:, :3], weights)
    second, _ = _tf1_cell_outputs(spec, x[:, 3:], weights, initial_state=state)
    whole, _ = _tf1_cell_outputs(spec, x, weights)
    np.testing.assert_allclose(np.concatenate([first, second], 1), whole, rtol=h.RTOL,
                               atol=h.ATOL)
    stateful = layer(stateful=True, return_sequences=True, batch_size=2)
    chunks = [stateful(x[:, :3]).numpy(), stateful(x[:, 3:]).numpy()]
    np.testing.assert_allclose(np.concatenate(chunks, 1), whole, rtol=h.RTOL, atol=h.ATOL)
    stateful.reset_state()
    np.testing.assert_allclose(stateful(x[:, :3]).numpy(), first, rtol=h.RTOL, atol=h.ATOL)


def test_zero_output_for_mask_is_static_rnns_zeros_past_the_length(gru_case):
    spec, weights, x, layer = gru_case
    lengths = np.array([6, 2], np.int32)

    def build():
        steps = tf.unstack(tf.constant(x), axis=1)
        outs, _ = tf.compat.v1.nn.static_rnn(spec.family.tf1_cell(spec), steps,
                                             dtype=tf.float32, sequence_length=lengths)
        return tf.stack(outs, 1)
    expected = tf1_session_run(build, weights)
    mask = np.arange(6) < lengths[:, None]
    zeroed = layer(return_sequences=True, zero_output_for_mask=True)(x, mask=mask).numpy()
    np.testing.assert_allclose(zeroed, expected, rtol=h.RTOL, atol=h.ATOL)
    # Without it, Keras repeats the last valid output past the length: not what TF1 emits.
    repeated = layer(return_sequences=True)(x, mask=mask).numpy()
    np.testing.assert_allclose(repeated[1, 2:], np.repeat(expected[1, 1:2], 4, 0), rtol=h.RTOL,
                               atol=h.ATOL)
    assert np.abs(expected[1, 2:]).max() == 0 and np.abs(repeated[1, 2:]).max() > 1e-3


def test_unroll_is_static_rnn(gru_case):
    spec, weights, x, layer = gru_case

    def build():
        outs, _ = tf.compat.v1.nn.static_rnn(spec.family.tf1_cell(spec),
                                             tf.unstack(tf.constant(x), axis=1),
                                             dtype=tf.float32)
        return tf.stack(outs, 1)
    np.testing.assert_allclose(layer(unroll=True, return_sequences=True)(x).numpy(),
                               tf1_session_run(build, weights), rtol=h.RTOL, atol=h.ATOL)


def test_keras_3_rnn_has_no_time_major_argument():
    # Keras 2's RNN took time_major; Keras 3's does not: transpose instead
    # (test_zoo_parity.py::test_time_major_is_a_transpose).
    with pytest.raises((TypeError, ValueError), match="time_major"):
        keras.layers.RNN(keras.layers.GRUCell(2), time_major=True)


def test_keras_bidirectional_layer_is_the_one_level_twin():
    block = zoo.Block([C("basic_lstm", 3)], "bidirectional", "dynamic")
    x, _ = h.inputs()
    reference = h.tf1_run(block, x)
    model = zoo.keras_block(block, h.INPUT)
    blocks.to_keras(block, model, reference.weights)
    bidi = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True))
    bidi.build((None, h.TIME, h.INPUT))
    bidi.set_weights(model.get_layer("fw_0").get_weights() + model.get_layer("bw_0").get_weights())
    mask = np.arange(h.TIME) < h.LENGTHS[:, None]
    out = np.where(mask[..., None], bidi(x, mask=mask).numpy(), 0.0)
    np.testing.assert_allclose(out, reference.outputs, rtol=h.RTOL, atol=h.ATOL)


# --- Traps ------------------------------------------------------------------------------------

def test_hard_sigmoid_is_another_function_in_keras_3():
    import tf_keras  # Keras 2, what tf.keras was in TF 1.x / 2.x

    x = np.linspace(-4, 4, 81).astype(np.float32)
    keras2 = tf_keras.activations.hard_sigmoid(tf.constant(x)).numpy()
    np.testing.assert_allclose(keras2, np.clip(0.2 * x + 0.5, 0, 1), atol=1e-7)
    np.testing.assert_allclose(keras.activations.hard_sigmoid(x).numpy(),
                               np.clip(x / 6 + 0.5, 0, 1), atol=1e-7)
    np.testing.assert_allclose(np.asarray(keras_cells.keras2_hard_sigmoid(x)), keras2, atol=1e-7)
    # A TF 1.x-era tf.keras LSTM (default recurrent_activation='hard_sigmoid') moved to Keras 3.
    rng = np.random.default_rng(4)
    seq = rng.normal(size=(2, 5, 3)).astype(np.float32)
    old = tf_keras.layers.LSTM(4, recurrent_activation="hard_sigmoid")
    expected = old(seq).numpy()
    naive = keras.layers.LSTM(4, recurrent_activation="hard_sigmoid")
    careful = keras.layers.LSTM(4, recurrent_activation=keras_cells.keras2_hard_sigmoid)
    for layer in (naive, careful):
        layer.build(seq.shape)
        layer.set_weights(old.get_weights())
    assert np.abs(naive(seq).numpy() - expected).max() > 1e-3
    np.testing.assert_allclose(careful(seq).numpy(), expected, rtol=h.RTOL, atol=h.ATOL)


def test_gru_cell_resets_before_the_matmul_only_reset_after_false_matches():
    spec = C("gru", 4)
    block = zoo.Block([spec], "forward", "dynamic")
    x, _ = h.inputs()
    reference = h.tf1_run(block, x, lengths=None)
    kernel, recurrent, bias = spec.family.to_keras(
        spec, {k.split("/", 2)[-1]: v for k, v in reference.weights.items()})
    default = keras.layers.GRU(4, return_sequences=True)  # reset_after=True, the cuDNN variant
    default.build(x.shape)
    default.set_weights([kernel, recurrent, np.stack([bias, np.zeros_like(bias)])])
    assert np.abs(default(x).numpy() - reference.outputs).max() > 1e-2
    matching = keras.layers.GRU(4, return_sequences=True, reset_after=False)
    matching.build(x.shape)
    matching.set_weights([kernel, recurrent, bias])
    np.testing.assert_allclose(matching(x).numpy(), reference.outputs, rtol=h.RTOL, atol=h.ATOL)


# --- Dropout: what each side promises, measured -------------------------------------------

KEEP, SIZE, STEPS, BATCH = 0.7, 16, 10, 64
# Binomial standard deviation of a kept fraction over 10,240 entries (BATCH*STEPS*SIZE, or ten
# batches of BATCH*SIZE) is about 0.0045: 0.03 is 6.6 of them.
FRACTION_TOLERANCE = 0.03


def _identity_block(dropout):
    """A linear BasicRNNCell whose output equals its input (kernel [I; 0], bias 0), so the output
    shows exactly which inputs the dropout kept (value 1/keep) and which it dropped (0)."""
    block = zoo.Block([zoo.Level(C("basic_rnn", SIZE, activation="linear"), dropout)],
                      "forward", "dynamic")
    weights = {"rnn/basic_rnn_cell/kernel": np.concatenate([np.eye(SIZE), np.zeros((SIZE, SIZE))]
                                                           ).astype(np.float32),
               "rnn/basic_rnn_cell/bias": np.zeros(SIZE, np.float32)}
    return block, weights


def _tf1_masks(block, weights, runs=1):
    ones = np.ones((BATCH, STEPS, SIZE), np.float32)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(5)
        out, _ = zoo.tf1_block(block, tf.constant(ones))
        with tf.compat.v1.Session() as sess:
            for v in tf.compat.v1.trainable_variables():
                v.load(weights[v.op.name], sess)
            return [sess.run(out) for _ in range(runs)]


def _keras_masks(block, weights, runs=1):
    model = zoo.keras_block(block, SIZE)
    blocks.to_keras(block, model, weights)
    ones = np.ones((BATCH, STEPS, SIZE), np.float32)
    lengths = np.full(BATCH, STEPS, np.int32)
    return [model([ones, lengths], training=True).numpy() for _ in range(runs)]


@pytest.mark.parametrize("side", [_tf1_masks, _keras_masks])
def test_per_step_dropout_keeps_keep_prob_with_a_new_mask_every_step(side):
    block, weights = _identity_block(zoo.Dropout(input_keep_prob=KEEP))
    (out,) = side(block, weights)
    # Dropped: 0; kept: scaled by 1/keep.
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / KEEP], rtol=1e-6)
    assert abs((out > 0).mean() - KEEP) < FRACTION_TOLERANCE
    # A new mask per step and per example.
    assert not np.all(out[:, :1] == out)
    assert not np.all(out[:1] == out)


@pytest.mark.parametrize("side", [_tf1_masks, _keras_masks])
def test_variational_dropout_is_one_mask_for_the_batch_and_every_step(side):
    block, weights = _identity_block(zoo.Dropout(output_keep_prob=KEEP,
                                                 variational_recurrent=True))
    outs = side(block, weights, runs=40)
    for out in outs:
        np.testing.assert_array_equal(out, np.broadcast_to(out[:1, :1], out.shape))
    # A new mask each run; over the runs, keep_prob of the units kept.
    kept = np.array([out[0, 0] > 0 for out in outs])
    assert len({tuple(k) for k in kept}) > 1
    assert abs(kept.mean() - KEEP) < 0.1  # 640 draws: std about 0.018


def test_state_dropout_tf1_variational_vs_keras_recurrent_dropout():
    # TF1: DropoutWrapper(state_keep_prob, variational_recurrent=True) drops the state passed on,
    # one [1, units] mask for the batch. Keras: recurrent_dropout drops h_prev in the recurrent
    # matmul with one mask per example. With identity recurrence and a state of ones, the second
    # output (TF1) / the first output (Keras) shows the mask.
    spec = C("basic_rnn", SIZE, activation="linear")
    level = zoo.Level(spec, zoo.Dropout(state_keep_prob=KEEP, variational_recurrent=True))
    kernel = np.concatenate([np.zeros((SIZE, SIZE)), np.eye(SIZE)]).astype(np.float32)
    ones = np.ones((BATCH, SIZE), np.float32)

    def build():
        return zoo.tf1_block(zoo.Block([level]), tf.zeros((BATCH, 2, SIZE)),
                             initial_state=tf.constant(ones))[0]
    tf1_second = tf1_session_run(build, {"kernel": kernel,
                                         "bias": np.zeros(SIZE, np.float32)})[:, 1]
    np.testing.assert_array_equal(tf1_second, np.broadcast_to(tf1_second[:1], tf1_second.shape))

    layer = blocks.keras_level(level, "fw_0", return_sequences=True)
    layer.build((None, 2, SIZE))
    layer.set_weights(spec.family.to_keras(spec, {"kernel": kernel,
                                                  "bias": np.zeros(SIZE, np.float32)}))
    # Ten batches pooled: BATCH * SIZE * 10 entries, as the other fraction tests.
    keras_first = np.concatenate([layer(np.zeros((BATCH, 2, SIZE), np.float32),
                                        initial_state=[ones], training=True).numpy()[:, 0]
                                  for _ in range(10)])
    assert abs((keras_first > 0).mean() - KEEP) < FRACTION_TOLERANCE
    assert not np.all(keras_first == keras_first[:1])  # one mask per example


def test_state_dropout_without_a_keras_twin_is_refused():
    level = zoo.Level(C("gru", 3), zoo.Dropout(state_keep_prob=0.5, variational_recurrent=True))
    with pytest.raises(zoo.cells.UserError, match="has no Keras 3 twin"):
        zoo.keras_block(zoo.Block([level]), 3)
