"""Checkpoints written before TF 1.2 (TF 0.x and TF 1.0/1.1 variable names), upgraded to today's
names and read by inspect / convert.

The old checkpoints are written here variable by variable under the names those releases gave
(non-zero values, a non-recurrent variable and an optimizer slot beside them). The upgraded copy
is restored by today's TF1 graph of the same model, whose outputs are checked against an
independent numpy computation from the OLD checkpoint's arrays (the TF1 equations: gates i, j, f,
o / r, u over concat([x, h]), forget_bias 1.0).
"""
import numpy as np
import pytest
import tensorflow as tf

import numpy_lstm
from legacy_rnn import zoo
from legacy_rnn.conversion import blockwise, inspection, upgrade
from legacy_rnn.errors import UserError

C = zoo.CellSpec.make
ATOL = 1e-5  # the TF migration guide's forward tolerance (float32 graph vs float64 numpy)
IN, U, P, T, B = 3, 4, 2, 5, 2


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def lstm_step(x, state, w, peep=None, proj=None):
    c, h = state
    i, j, f, o = np.split(np.concatenate([x, h], 1) @ w["kernel"] + w["bias"], 4, 1)
    pi, pf, po = peep if peep is not None else (0, 0, 0)
    c = sigmoid(f + 1.0 + pf * c) * c + sigmoid(i + pi * c) * np.tanh(j)
    h = sigmoid(o + po * c) * np.tanh(c)
    return (c, h @ proj if proj is not None else h)


def gru_step(x, state, w):
    r, u = np.split(sigmoid(np.concatenate([x, state], 1) @ w["gates/kernel"] + w["gates/bias"]),
                    2, 1)
    c = np.tanh(np.concatenate([x, r * state], 1) @ w["candidate/kernel"] + w["candidate/bias"])
    return u * state + (1 - u) * c


def rnn_step(x, state, w):
    return np.tanh(np.concatenate([x, state], 1) @ w["kernel"] + w["bias"])


def run(step, x, state, out):
    outputs = []
    for t in range(x.shape[1]):
        state = step(x[:, t], state)
        outputs.append(out(state))
    return np.stack(outputs, 1)


def rng_values(shapes, seed):
    rng = np.random.default_rng(seed)
    return {name: (rng.normal(size=shape) * 0.5).astype(np.float32)
            for name, shape in shapes.items()}


def write(tmp_path, values, name="old"):
    graph = tf.Graph()
    with graph.as_default():
        variables = [tf.compat.v1.get_variable(n, initializer=tf.constant(v))
                     for n, v in values.items()]
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            prefix = str(tmp_path / name / "model.ckpt")
            tf.compat.v1.train.Saver(variables).save(sess, prefix, write_meta_graph=False)
    return prefix


def restored_outputs(block, prefix, x):
    """Today's TF1 graph of `block`, restored from `prefix` by name, run on x (full lengths)."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        outputs, _ = zoo.tf1_block(block, tf.constant(x))
        with tf.compat.v1.Session() as sess:
            tf.compat.v1.train.Saver(tf.compat.v1.global_variables()).restore(sess, prefix)
            return sess.run(outputs)


def stacked_lstm(old, cell0, cell1, x):
    w0 = {"kernel": old[cell0 + "Matrix"], "bias": old[cell0 + "Bias"]}
    w1 = {"kernel": old[cell1 + "Matrix"], "bias": old[cell1 + "Bias"]}
    zeros = (np.zeros((B, U)), np.zeros((B, U)))
    h0 = run(lambda xt, s: lstm_step(xt, s, w0), x, zeros, lambda s: s[1])
    return run(lambda xt, s: lstm_step(xt, s, w1), h0, zeros, lambda s: s[1])


OLD_LSTM = {"RNN/MultiRNNCell/Cell0/BasicLSTMCell/Linear/Matrix": (IN + U, 4 * U),
            "RNN/MultiRNNCell/Cell0/BasicLSTMCell/Linear/Bias": (4 * U,),
            "RNN/MultiRNNCell/Cell1/BasicLSTMCell/Linear/Matrix": (2 * U, 4 * U),
            "RNN/MultiRNNCell/Cell1/BasicLSTMCell/Linear/Bias": (4 * U,),
            "softmax_w": (U, 7)}


def test_a_tf0_stacked_lstm_checkpoint_upgrades_and_today_s_graph_reproduces_it(tmp_path):
    old = rng_values(OLD_LSTM, 1)
    old["RNN/MultiRNNCell/Cell0/BasicLSTMCell/Linear/Matrix/Adam"] = old[
        "RNN/MultiRNNCell/Cell0/BasicLSTMCell/Linear/Matrix"] * 0.1
    prefix = write(tmp_path, old)
    renames, eras = upgrade.upgrade(prefix, str(tmp_path / "new" / "model.ckpt"))
    assert eras == {"TF 0.x": 4}
    assert renames["RNN/MultiRNNCell/Cell1/BasicLSTMCell/Linear/Bias"] == \
        "rnn/multi_rnn_cell/cell_1/basic_lstm_cell/bias"
    assert renames["RNN/MultiRNNCell/Cell0/BasicLSTMCell/Linear/Matrix/Adam"] == \
        "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel/Adam"
    new = dict(tf.train.list_variables(str(tmp_path / "new" / "model.ckpt")))
    assert "softmax_w" in new and len(new) == len(old)
    x = np.random.default_rng(2).normal(size=(B, T, IN)).astype(np.float32)
    block = zoo.Block([C("basic_lstm", U), C("basic_lstm", U)], "forward", "static")
    expected = stacked_lstm(old, "RNN/MultiRNNCell/Cell0/BasicLSTMCell/Linear/",
                            "RNN/MultiRNNCell/Cell1/BasicLSTMCell/Linear/", x)
    np.testing.assert_allclose(restored_outputs(block, str(tmp_path / "new" / "model.ckpt"), x),
                               expected, rtol=0, atol=ATOL)


def gru(names):
    """The numpy GRU over x from the old arrays named (gate kernel, gate bias, candidate kernel,
    candidate bias)."""
    keys = ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")
    return lambda o, x: run(lambda xt, s: gru_step(xt, s, {k: o[n] for k, n in zip(keys, names)}),
                            x, np.zeros((B, U)), lambda s: s)


def both_directions(one, o, x):
    """concat(forward over x, backward over x reversed and reversed back): full lengths.
    `one(o, x, half)` runs one direction."""
    return np.concatenate([one(o, x, "fw"), one(o, x[:, ::-1], "bw")[:, ::-1]], 2)


def basic_rnn(kernel, bias):
    return lambda o, x: run(lambda xt, s: rnn_step(xt, s, {"kernel": o[kernel], "bias": o[bias]}),
                            x, np.zeros((B, U)), lambda s: s)


def basic_lstm(kernel, bias):
    return lambda o, x: run(lambda xt, s: lstm_step(xt, s, {"kernel": o[kernel],
                                                           "bias": o[bias]}),
                            x, (np.zeros((B, U)), np.zeros((B, U))), lambda s: s[1])


BIRNN = {"fw": "BiRNN/FW/BasicRNNCell/Linear/", "bw": "BiRNN/BW/BasicRNNCell/Linear/"}
BILSTM = {"fw": "bidirectional_rnn/fw/basic_lstm_cell/",
          "bw": "bidirectional_rnn/bw/basic_lstm_cell/"}
CASES = {
    "TF 1.0 GRUCell": (
        {"rnn/gru_cell/gates/weights": (IN + U, 2 * U), "rnn/gru_cell/gates/biases": (2 * U,),
         "rnn/gru_cell/candidate/weights": (IN + U, U), "rnn/gru_cell/candidate/biases": (U,)},
        zoo.Block([C("gru", U)]),
        gru(["rnn/gru_cell/gates/weights", "rnn/gru_cell/gates/biases",
             "rnn/gru_cell/candidate/weights", "rnn/gru_cell/candidate/biases"])),
    "TF 1.0 BasicRNNCell": (
        {"rnn/basic_rnn_cell/weights": (IN + U, U), "rnn/basic_rnn_cell/biases": (U,)},
        zoo.Block([C("basic_rnn", U)]),
        basic_rnn("rnn/basic_rnn_cell/weights", "rnn/basic_rnn_cell/biases")),
    "TF 1.1 bidirectional BasicLSTMCell": (
        {f"{BILSTM[d]}{v}": shape for d in ("fw", "bw")
         for v, shape in (("weights", (IN + U, 4 * U)), ("biases", (4 * U,)))},
        zoo.Block([C("basic_lstm", U)], "bidirectional", "static"),
        lambda o, x: both_directions(lambda o, x, d: basic_lstm(
            BILSTM[d] + "weights", BILSTM[d] + "biases")(o, x), o, x)),
    "TF 0.x GRUCell": (
        {"RNN/GRUCell/Gates/Linear/Matrix": (IN + U, 2 * U),
         "RNN/GRUCell/Gates/Linear/Bias": (2 * U,),
         "RNN/GRUCell/Candidate/Linear/Matrix": (IN + U, U),
         "RNN/GRUCell/Candidate/Linear/Bias": (U,)},
        zoo.Block([C("gru", U)]),
        gru(["RNN/GRUCell/Gates/Linear/Matrix", "RNN/GRUCell/Gates/Linear/Bias",
             "RNN/GRUCell/Candidate/Linear/Matrix", "RNN/GRUCell/Candidate/Linear/Bias"])),
    "TF 0.x bidirectional BasicRNNCell": (
        {f"{BIRNN[d]}{v}": shape for d in ("fw", "bw")
         for v, shape in (("Matrix", (IN + U, U)), ("Bias", (U,)))},
        zoo.Block([C("basic_rnn", U)], "bidirectional", "static"),
        lambda o, x: both_directions(lambda o, x, d: basic_rnn(
            BIRNN[d] + "Matrix", BIRNN[d] + "Bias")(o, x), o, x)),
    "TF 0.x LSTMCell(peepholes, num_proj)": (
        {"RNN/LSTMCell/W_0": (IN + P, 4 * U), "RNN/LSTMCell/B": (4 * U,),
         "RNN/LSTMCell/W_I_diag": (U,), "RNN/LSTMCell/W_F_diag": (U,),
         "RNN/LSTMCell/W_O_diag": (U,), "RNN/LSTMCell/W_P_0": (U, P)},
        zoo.Block([C("lstm", U, use_peepholes=True, num_proj=P)]),
        lambda o, x: run(lambda xt, s: lstm_step(
            xt, s, {"kernel": o["RNN/LSTMCell/W_0"], "bias": o["RNN/LSTMCell/B"]},
            peep=(o["RNN/LSTMCell/W_I_diag"], o["RNN/LSTMCell/W_F_diag"],
                  o["RNN/LSTMCell/W_O_diag"]), proj=o["RNN/LSTMCell/W_P_0"]),
            x, (np.zeros((B, U)), np.zeros((B, P))), lambda s: s[1])),
    "TF 1.1 LSTMCell(num_proj)": (
        {"rnn/lstm_cell/weights": (IN + P, 4 * U), "rnn/lstm_cell/biases": (4 * U,),
         "rnn/lstm_cell/projection/weights": (U, P)},
        zoo.Block([C("lstm", U, num_proj=P)]),
        lambda o, x: run(lambda xt, s: lstm_step(
            xt, s, {"kernel": o["rnn/lstm_cell/weights"], "bias": o["rnn/lstm_cell/biases"]},
            proj=o["rnn/lstm_cell/projection/weights"]),
            x, (np.zeros((B, U)), np.zeros((B, P))), lambda s: s[1])),
    "TF 1.1 LayerNormBasicLSTMCell (tf.contrib)": (
        {"rnn/layer_norm_basic_lstm_cell/weights": (IN + U, 4 * U),
         **{f"rnn/layer_norm_basic_lstm_cell/{s}/{v}": (U,)
            for s in (*numpy_lstm.LN_GATES, "state") for v in ("gamma", "beta")}},
        zoo.Block([C("layer_norm_basic_lstm", U)]),
        lambda o, x: numpy_lstm.layer_norm_lstm_outputs(
            x, {("kernel" if n.endswith("/weights") else n.split("cell/", 1)[1]): v
                for n, v in o.items()}, np.full(B, T))),
    "TF 1.1 NASCell(num_proj, use_biases) (tf.contrib)": (
        {"rnn/nas_rnn/weights": (IN, 8 * U), "rnn/nas_rnn/recurrent_weights": (P, 8 * U),
         "rnn/nas_rnn/bias": (8 * U,), "rnn/nas_rnn/projection_weights": (U, P)},
        zoo.Block([C("nas", U, num_proj=P, use_biases=True)]),
        lambda o, x: numpy_lstm.nas_outputs(
            x, {{"weights": "kernel", "recurrent_weights": "recurrent_kernel"}.get(
                n.rsplit("/", 1)[1], n.rsplit("/", 1)[1]): v for n, v in o.items()},
            np.full(B, T))),
}


@pytest.mark.parametrize("case", CASES)
def test_old_checkpoints_upgrade_and_restore_into_todays_graph(case, tmp_path):
    shapes, block, reference = CASES[case]
    old = rng_values(shapes, 3)
    prefix = write(tmp_path, old)
    renames, _ = upgrade.upgrade(prefix, str(tmp_path / "new" / "model.ckpt"))
    # Renamed, or already today's (LayerNormBasicLSTMCell's norms kept their names).
    assert set(renames.values()) | (set(old) - set(renames)) == set(block.variables(IN))
    x = np.random.default_rng(4).normal(size=(B, T, IN)).astype(np.float32)
    np.testing.assert_allclose(restored_outputs(block, str(tmp_path / "new" / "model.ckpt"), x),
                               reference(old, x), rtol=0, atol=ATOL)


def test_inspect_and_convert_read_old_names_directly(tmp_path):
    old = rng_values(OLD_LSTM, 5)
    prefix = write(tmp_path, old)
    report = inspection.describe(prefix)
    (b,) = report["blocks"]
    assert b["structure"] == "dynamic_rnn(MultiRNNCell([BasicLSTMCell(4), BasicLSTMCell(4)])) " \
        "under rnn/"
    assert len(report["old_names"]) == 4
    results, _ = blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    (r,) = results
    assert r.ok and "pre-TF-1.2 names" in r.verified_against and "forget_bias" in r.assumed
    import keras
    model = keras.saving.load_model(tmp_path / "out" / r.file)
    x = np.random.default_rng(6).normal(size=(B, T, IN)).astype(np.float32)
    expected = stacked_lstm(old, "RNN/MultiRNNCell/Cell0/BasicLSTMCell/Linear/",
                            "RNN/MultiRNNCell/Cell1/BasicLSTMCell/Linear/", x)
    np.testing.assert_allclose(np.asarray(model([x, np.full(B, T, np.int32)])), expected,
                               rtol=0, atol=ATOL)


def test_a_collision_or_an_unknown_old_layout_is_refused_and_nothing_written(tmp_path):
    both = rng_values({"rnn/basic_lstm_cell/weights": (IN + U, 4 * U),
                       "rnn/basic_lstm_cell/biases": (4 * U,),
                       "rnn/basic_lstm_cell/kernel": (IN + U, 4 * U)}, 7)
    out = tmp_path / "new" / "model.ckpt"
    with pytest.raises(UserError, match="would both become rnn/basic_lstm_cell/kernel"):
        upgrade.upgrade(write(tmp_path, both, "both"), str(out))
    half = rng_values({"RNN/BasicLSTMCell/Linear/Matrix": (IN + U, 4 * U)}, 8)
    with pytest.raises(UserError, match="do not make a whole cell"):
        upgrade.upgrade(write(tmp_path, half, "half"), str(out))
    today = rng_values({"rnn/basic_lstm_cell/kernel": (IN + U, 4 * U),
                        "rnn/basic_lstm_cell/bias": (4 * U,)}, 9)
    with pytest.raises(UserError, match="nothing to upgrade"):
        upgrade.upgrade(write(tmp_path, today, "today"), str(out))
    assert not (tmp_path / "new").exists()
