"""Any TF1 RNN checkpoint -> Keras 3 blocks (discovered, options read, verified) and back.

Each case builds its own TF1 graph with the real tf.compat.v1 drivers under its own scopes, saves
a checkpoint (with or without the `.meta`), converts it, and compares the written `.keras` files
with the ORIGINAL graph on fresh random inputs and lengths: independently of the converter's own
verification, which is checked to have reported what it did.
"""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from legacy_rnn import zoo
from legacy_rnn.conversion import blockwise as conversion
from legacy_rnn.conversion import inspection as inspect_tool
from legacy_rnn.errors import UserError

C = zoo.CellSpec.make
ATOL = conversion.TOLERANCE
TIME, INPUT = 6, 3


def save_graph(tmp_path, block, meta=True, time_major=False, lengths=True, dropout_on=False,
               seed=0):
    """Builds `block` (random weights) in a graph the way user code would, saves it; returns
    (prefix, run(x, lengths) -> the original graph's outputs)."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        x = tf.compat.v1.placeholder(tf.float32, [None, TIME, INPUT], name="inputs")
        seqlen = tf.compat.v1.placeholder(tf.int32, [None], name="lengths") if lengths else None
        feed_x = tf.transpose(x, (1, 0, 2)) if time_major else x
        outputs, _ = zoo.tf1_block(block, feed_x, seqlen, time_major=time_major,
                                   training=tf.constant(True) if dropout_on else None)
        if time_major:
            outputs = tf.transpose(outputs, (1, 0, 2))
        extra = tf.compat.v1.get_variable("classifier/kernel", [block.output_size, 2])
        bumps = [v.assign_add(tf.random.normal(v.shape, stddev=0.4))
                 for v in tf.compat.v1.trainable_variables()]
        saver = tf.compat.v1.train.Saver()
        sess = tf.compat.v1.Session(graph=graph)
        sess.run(tf.compat.v1.global_variables_initializer())
        sess.run(bumps)
        prefix = str(tmp_path / "ckpt" / "model.ckpt")
        saver.save(sess, prefix, write_meta_graph=meta)
    del extra

    def run(xv, lv):
        return sess.run(outputs, {x: xv, **({seqlen: lv} if lengths else {})})
    return prefix, run


def random_case(seed=1, batch=5):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, TIME, INPUT)).astype(np.float32)
    lengths = np.array([TIME, 1, 4, 0, 3][:batch], np.int32)
    return x, lengths


def convert(prefix, out, **kwargs):
    results, others = conversion.to_keras_blocks(prefix, str(out), **kwargs)
    return results, others, json.loads((out / "blocks.json").read_text())


CASES = {
    "stacked GRU + LSTM(peepholes, projection) under the user's scope, dynamic, .meta": dict(
        block=zoo.Block([C("gru", 4), C("lstm", 5, use_peepholes=True, num_proj=3,
                                        forget_bias=0.5, cell_clip=2.0)],
                        "forward", "dynamic", scope="encoder/rnn"),
        against="the user's graph"),
    "BiLSTM static, forget_bias 0.7, .meta": dict(
        block=zoo.Block([C("basic_lstm", 4, forget_bias=0.7)], "bidirectional", "static"),
        against="the user's graph"),
    "stack_bidirectional_rnn (static) of GRU + LSTMCell(clips), .meta": dict(
        block=zoo.Block([C("gru", 3), C("lstm", 4, cell_clip=0.4, forget_bias=0.2)],
                        "stack_bidirectional", "static"),
        against="the user's graph"),
    "stack_bidirectional_dynamic_rnn of GRU(relu) + LSTM, .meta": dict(
        block=zoo.Block([C("gru", 3, activation="relu"), C("lstm", 4)], "stack_bidirectional",
                        "dynamic", scope="tagger/stack_bidirectional_rnn"),
        against="the user's graph"),
    "stack_bidirectional_rnn (static) of two BasicRNNCells, no .meta": dict(
        block=zoo.Block([C("basic_rnn", 4), C("basic_rnn", 4)], "stack_bidirectional", "static"),
        against="this project's TF1 rebuild", meta=False),
    "time-major dynamic LSTMCell(num_proj, proj_clip), .meta": dict(
        block=zoo.Block([C("lstm", 4, num_proj=2, proj_clip=0.3)], "forward", "dynamic"),
        against="the user's graph", time_major=True),
    "layer-normalised RNN without sequence_length, .meta": dict(
        block=zoo.Block([C("ln_basic_rnn", 4)], "forward", "dynamic"),
        against="the user's graph", lengths=False),
    "one-cell MultiRNNCell of a static LSTMCell(forget_bias 0.0), .meta": dict(
        block=zoo.Block([C("lstm", 4, forget_bias=0.0)], "forward", "static", multi=True),
        against="the user's graph"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_checkpoint_converts_to_blocks_that_reproduce_the_original_graph(case, tmp_path):
    spec = dict(CASES[case])
    block, against = spec.pop("block"), spec.pop("against")
    prefix, original = save_graph(tmp_path, block, **spec)
    results, others, report = convert(prefix, tmp_path / "out")
    assert len(results) == 1
    (result,) = results
    entry = report["blocks"][0]
    assert entry["scope"] == block.prefix and entry["status"] == "written"
    assert entry["verified_against"].startswith(against)
    assert entry["largest_difference"] <= ATOL
    assert sorted(entry["variables"]) == sorted(block.variables(INPUT))
    assert {o["name"] for o in report["other_variables"]} >= {"classifier/kernel"}
    registered = any(level.cell.kind == "ln_basic_rnn" or level.cell.get("use_peepholes")
                     or level.cell.get("num_proj") or level.cell.get("cell_clip") is not None
                     for level in block.levels)
    assert entry["load_with"] == ("legacy_rnn.keras_cells" if registered else None)
    # The options that are not variables, and where each came from.
    for level in block.levels:
        for name in ("forget_bias", "cell_clip", "proj_clip", "activation"):
            if name in level.cell.family.defaults and entry["options"].get(name):
                value = entry["options"][name]["value"]
                if not isinstance(value, dict):
                    assert value == level.cell.get(name), name
                source = entry["options"][name]["source"]
                assert ("the .meta graph" in source) == spec.get("meta", True), source
    # Independent check: the file, loaded fresh, against the original graph on new inputs.
    model = keras.saving.load_model(tmp_path / "out" / entry["file"])
    x, lengths = random_case()
    if not spec.get("lengths", True):
        lengths = np.full(len(x), TIME, np.int32)
    difference = np.abs(np.asarray(model([x, lengths])) - original(x, lengths)).max()
    assert difference <= ATOL
    print(f"{case}: {result.block.describe()}: largest difference {difference:.1e} "
          f"(converter's own check {result.largest_difference:.1e} against "
          f"{result.verified_against})")


def test_without_the_meta_options_come_from_flags_or_tf1_defaults(tmp_path):
    block = zoo.Block([C("basic_lstm", 4, forget_bias=0.5)], "forward", "dynamic")
    prefix, original = save_graph(tmp_path, block, meta=False)
    x, lengths = random_case()
    # TF1's default (1.0) is not what the graph used: the rebuild agrees with the file (the
    # converter cannot know), the original graph does not. This is why the .meta matters.
    _, _, report = convert(prefix, tmp_path / "default")
    entry = report["blocks"][0]
    assert entry["options"]["forget_bias"] == {"value": 1.0, "source": "TF1's default"}
    assert entry["verified_against"].startswith("this project's TF1 rebuild")
    assert "no .meta beside the checkpoint" in entry["verified_against"]
    wrong = keras.saving.load_model(tmp_path / "default" / entry["file"])
    assert np.abs(np.asarray(wrong([x, lengths])) - original(x, lengths)).max() > 1e-3
    # Given as a flag, it converts exactly.
    _, _, report = convert(prefix, tmp_path / "flag", given={"forget_bias": 0.5})
    entry = report["blocks"][0]
    assert entry["options"]["forget_bias"] == {"value": 0.5, "source": "--forget_bias"}
    right = keras.saving.load_model(tmp_path / "flag" / entry["file"])
    assert np.abs(np.asarray(right([x, lengths])) - original(x, lengths)).max() <= ATOL


class DoublingRNNCell(tf.compat.v1.nn.rnn_cell.BasicRNNCell):
    """A user's own cell with BasicRNNCell's variables and another function: 2 * tanh(...)."""

    def call(self, inputs, state):
        output, _ = super().call(inputs, state)
        return 2.0 * output, 2.0 * output


def test_a_block_failing_verification_is_not_written_unless_forced(tmp_path):
    # The variables say BasicRNNCell; the user's graph computes something else: only a check
    # against that graph can see it.
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.compat.v1.placeholder(tf.float32, [None, TIME, INPUT])
        tf.compat.v1.nn.dynamic_rnn(DoublingRNNCell(4, name="basic_rnn_cell"), x,
                                    dtype=tf.float32)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            prefix = str(tmp_path / "ckpt" / "model.ckpt")
            tf.compat.v1.train.Saver().save(sess, prefix)
    results, _, report = convert(prefix, tmp_path / "out")
    assert report["blocks"][0]["verified_against"].startswith("the user's graph")
    assert not results[0].ok and report["blocks"][0]["status"] == "failed: not written"
    assert report["blocks"][0]["largest_difference"] > 1e-3
    assert not list((tmp_path / "out").glob("*.keras"))
    results, _, report = convert(prefix, tmp_path / "forced", force=True)
    assert report["blocks"][0]["status"] == "written despite failing (--force)"
    assert list((tmp_path / "forced").glob("*.keras"))


def test_dropout_left_in_a_saved_training_graph_is_neutralised_not_trusted(tmp_path):
    # A training graph saved with dropout on (a tensor keep probability, and Python floats:
    # random ops inside the RNN): the check runs the graph with the dropout bypassed, says so,
    # and the conversion verifies.
    levels = [zoo.Level(C("gru", 4), dropout=zoo.Dropout(input_keep_prob=0.5)),
              zoo.Level(C("basic_lstm", 3, forget_bias=0.0),
                        dropout=zoo.Dropout(output_keep_prob=0.6))]
    prefix, original = save_graph(tmp_path, zoo.Block(levels, "forward", "static"),
                                  dropout_on=True)
    results, _, report = convert(prefix, tmp_path / "out")
    entry = report["blocks"][0]
    assert entry["status"] == "written" and entry["largest_difference"] <= ATOL, entry
    assert entry["verified_against"].startswith("the user's graph")
    assert any("dropout" in note and "passes its input through" in note
               for note in entry["neutralised"]), entry["neutralised"]


def test_a_misread_option_fails_against_the_users_graph(tmp_path, monkeypatch):
    # Planted misread: the LSTM family reads forget_bias 1.0 where the graph holds 0.0. The
    # check against the user's graph must refuse the result (a check against this project's
    # rebuild, built with the same misread value, would pass it).
    block = zoo.Block([C("basic_lstm", 4, forget_bias=0.0)], "forward", "static", multi=True)
    prefix, _ = save_graph(tmp_path, block)
    family = zoo.FAMILIES["basic_lstm"]
    honest = family.options_in_graph
    monkeypatch.setattr(family, "options_in_graph",
                        lambda view, p: {**honest(view, p), "forget_bias": 1.0})
    results, _, report = convert(prefix, tmp_path / "out")
    entry = report["blocks"][0]
    assert entry["options"]["forget_bias"]["value"] == 1.0  # the misread took effect
    assert entry["verified_against"].startswith("the user's graph")
    assert not results[0].ok and entry["largest_difference"] > 1e-2
    assert entry["status"] == "failed: not written"


def test_a_ptb_style_hand_written_loop_converts_against_its_graph(tmp_path):
    # tensorflow/models' PTB LM: MultiRNNCell([DropoutWrapper(BasicLSTMCell(forget_bias=0.0),
    # output_keep_prob=0.5)]) of ONE cell, stepped by hand under variable_scope("RNN") with
    # reuse, saved from the training graph (dropout ops inside). inspect and convert agree.
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        ids = tf.compat.v1.placeholder(tf.int32, [3, TIME], name="input_ids")
        embedding = tf.compat.v1.get_variable("embedding", [11, INPUT])
        inputs = tf.nn.embedding_lookup(embedding, ids)
        cell = tf.compat.v1.nn.rnn_cell.MultiRNNCell([tf.compat.v1.nn.rnn_cell.DropoutWrapper(
            tf.compat.v1.nn.rnn_cell.BasicLSTMCell(4, forget_bias=0.0), output_keep_prob=0.5)])
        state = cell.zero_state(3, tf.float32)
        outputs = []
        with tf.compat.v1.variable_scope("RNN"):
            for t in range(TIME):
                if t > 0:
                    tf.compat.v1.get_variable_scope().reuse_variables()
                output, state = cell(inputs[:, t, :], state)
                outputs.append(output)
        softmax_w = tf.compat.v1.get_variable("softmax_w", [4, 11])
        tf.matmul(tf.reshape(tf.concat(outputs, 1), [-1, 4]), softmax_w, name="logits")
        bumps = [v.assign_add(tf.random.normal(v.shape, stddev=0.4))
                 for v in tf.compat.v1.trainable_variables()]
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(bumps)
            prefix = str(tmp_path / "ckpt" / "model.ckpt")
            tf.compat.v1.train.Saver().save(sess, prefix)
    report = inspect_tool.describe(prefix)
    (b,) = report["blocks"]
    assert b["scope"] == "RNN" and b["depth"] == 1
    assert b["structure"] == "static_rnn(MultiRNNCell([BasicLSTMCell(4, forget_bias=0.0)])) " \
        "under RNN/"
    results, _, out = convert(prefix, tmp_path / "out")
    entry = out["blocks"][0]
    assert entry["structure"] == b["structure"]
    assert entry["options"]["forget_bias"]["value"] == 0.0
    assert "the .meta graph" in entry["options"]["forget_bias"]["source"]
    assert entry["verified_against"].startswith("the user's graph")
    assert entry["neutralised"] and entry["status"] == "written"
    assert entry["largest_difference"] <= ATOL
    print(f"PTB-style loop: largest difference {entry['largest_difference']:.1e}")


def test_the_way_back_restores_into_tf1_with_the_same_outputs(tmp_path):
    block = zoo.Block([C("lstm", 4, use_peepholes=True, forget_bias=0.3)], "bidirectional",
                      "dynamic", scope="bilstm/bidirectional_rnn")
    prefix, original = save_graph(tmp_path, block)
    results, _, report = convert(prefix, tmp_path / "out")
    keras_file = tmp_path / "out" / report["blocks"][0]["file"]
    names, back_block = conversion.to_tf1_checkpoint(str(keras_file), str(tmp_path / "back"),
                                                     scope="bilstm/bidirectional_rnn")
    assert set(names) == set(block.variables(INPUT))
    x, lengths = random_case()
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        xs = tf.compat.v1.placeholder(tf.float32, [None, TIME, INPUT])
        ls = tf.compat.v1.placeholder(tf.int32, [None])
        outputs, _ = zoo.tf1_block(back_block, xs, ls)
        with tf.compat.v1.Session() as sess:
            tf.compat.v1.train.Saver().restore(sess, str(tmp_path / "back"))
            restored = sess.run(outputs, {xs: x, ls: lengths})
    np.testing.assert_allclose(restored, original(x, lengths), rtol=0, atol=ATOL)


def test_a_keras_lstm_model_becomes_an_lstm_cell_checkpoint(tmp_path):
    inputs = keras.Input((TIME, INPUT))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(
        keras.layers.LSTM(4, name="lstm")(inputs)))
    model.save(tmp_path / "m.keras")
    names, block = conversion.to_tf1_checkpoint(str(tmp_path / "m.keras"), str(tmp_path / "c"))
    assert set(names) == {"rnn/lstm_cell/kernel", "rnn/lstm_cell/bias", "head/kernel",
                          "head/bias"}
    x, _ = random_case()
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        cell = tf.compat.v1.nn.rnn_cell.LSTMCell(4)  # forget_bias 1.0: TF1's default
        outputs, _ = tf.compat.v1.nn.dynamic_rnn(cell, tf.constant(x), dtype=tf.float32)
        with tf.compat.v1.Session() as sess:
            tf.compat.v1.train.Saver(
                {"rnn/lstm_cell/kernel": cell.weights[0], "rnn/lstm_cell/bias": cell.weights[1]}
            ).restore(sess, str(tmp_path / "c"))
            last = sess.run(outputs[:, -1])
    np.testing.assert_allclose(last, model.get_layer("lstm")(x).numpy(), rtol=0, atol=ATOL)
    with pytest.raises(UserError, match="exists"):
        conversion.to_tf1_checkpoint(str(tmp_path / "m.keras"), str(tmp_path / "c"))
    gru = keras.Model(inputs, keras.layers.GRU(3)(inputs))  # reset_after=True
    gru.save(tmp_path / "g.keras")
    with pytest.raises(UserError, match="Only reset_after=False converts"):
        conversion.to_tf1_checkpoint(str(tmp_path / "g.keras"), str(tmp_path / "g"))


def test_inspect_lists_blocks_and_guesses_the_rest(tmp_path, capsys):
    block = zoo.Block([C("gru", 4), C("gru", 4)], "forward", "dynamic", scope="decoder/rnn")
    prefix, _ = save_graph(tmp_path, block)
    flag_values = flags.FlagValues()
    holders = inspect_tool.define_flags(flag_values)
    flag_values(["inspect"])
    assert inspect_tool.main(holders, ["inspect", prefix]) == 0
    out = capsys.readouterr().out
    assert "1 recurrent block(s):" in out
    assert "decoder/rnn/  forward, 2 level(s), input 3, output 4" in out
    assert "fw_1: GRUCell(4)  (decoder/rnn/multi_rnn_cell/cell_1/gru_cell/...)" in out
    assert "classifier/kernel [4, 2]: a matrix [4, 2]" in out


def test_guesses_for_other_variables():
    from legacy_rnn.conversion import discover
    shapes = {"embedding": (100, 8), "dense/kernel": (8, 3), "dense/bias": (3,),
              "Variable": (8, 3), "Variable_1": (3,), "global_step": (),
              "dense/kernel/Adam": (8, 3), "beta1_power": ()}
    guesses = {n: discover.guess(n, s, shapes) for n, s in shapes.items()}
    assert guesses["embedding"] == "an embedding: 100 ids x 8 dimensions"
    assert guesses["dense/kernel"] == "a dense layer's kernel [8, 3] (bias: dense/bias)"
    assert guesses["Variable_1"] == "a dense layer's bias (kernel: Variable)"
    assert guesses["global_step"] == "the global step"
    assert guesses["dense/kernel/Adam"] == "optimizer state (Adam) of dense/kernel"
    assert guesses["beta1_power"] == "Adam's decay-rate power accumulator"


def test_bad_inputs_are_explained(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        tf.compat.v1.get_variable("dense/kernel", [4, 3])
        tf.compat.v1.get_variable("dense/bias", [3])
        tf.compat.v1.get_variable("rnn/lstm_cell/kernel", [7, 9])  # fits no cell
        tf.compat.v1.get_variable("rnn/lstm_cell/bias", [9])
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver().save(sess, str(tmp_path / "plain"))
    with pytest.raises(UserError, match="holds no recurrent layer this tool recognises") as e:
        conversion.to_keras_blocks(str(tmp_path / "plain"), str(tmp_path / "out"))
    assert "rnn/lstm_cell/kernel [7, 9]" in str(e.value)
    assert not (tmp_path / "out").exists()

    block = zoo.Block([C("gru", 3)], "forward", "dynamic")
    prefix, _ = save_graph(tmp_path, block)
    with open(prefix + ".meta", "wb") as f:
        f.write(b"\x00 not a MetaGraphDef \xff" * 10)
    with pytest.raises(UserError, match=r"model.ckpt.meta is not a readable MetaGraphDef"):
        conversion.to_keras_blocks(prefix, str(tmp_path / "out"))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "a_file").write_text("keep me")
    import os
    os.remove(prefix + ".meta")
    with pytest.raises(UserError, match="exists and is not an empty directory"):
        conversion.to_keras_blocks(prefix, str(tmp_path / "taken"))
    assert (tmp_path / "taken" / "a_file").read_text() == "keep me"


def test_a_prefix_ending_in_a_slash_converts(tmp_path, monkeypatch):
    # An NER project's `saver.save(sess, "results/model.weights/")`: files `.index`, `.data-...`,
    # `.meta` inside the directory, and "." in its `checkpoint` index, which TF cannot read back.
    monkeypatch.chdir(tmp_path)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.compat.v1.placeholder(tf.float32, [None, TIME, INPUT])
        cells = [tf.compat.v1.nn.rnn_cell.LSTMCell(4, forget_bias=0.3) for _ in range(2)]
        tf.compat.v1.nn.bidirectional_dynamic_rnn(*cells, x, dtype=tf.float32,
                                                  scope="bi-lstm-sentence")
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            (tmp_path / "results" / "model.weights").mkdir(parents=True)
            tf.compat.v1.train.Saver().save(sess, "results/model.weights/")
    assert (tmp_path / "results" / "model.weights" / "checkpoint").read_text().startswith(
        'model_checkpoint_path: "."')
    for given in ("results/model.weights/", "results/model.weights"):
        results, _, report = convert(given, tmp_path / f"out{len(given)}")
        entry = report["blocks"][0]
        assert entry["scope"] == "bi-lstm-sentence" and entry["status"] == "written"
        assert entry["options"]["forget_bias"]["value"] == 0.3
        assert entry["verified_against"].startswith("the user's graph")


def test_a_truncated_or_code_carrying_keras_file_is_named_for_what_it_is(tmp_path):
    # Issue 21: a truncated .keras got Keras's "File not found" (the file exists); the refusal of
    # a Lambda layer was cut mid-sentence ("If you trust the )."), losing the fix at its end.
    inputs = keras.Input((TIME, INPUT))
    model = keras.Model(inputs, keras.layers.LSTM(4, name="lstm")(inputs))
    model.save(tmp_path / "m.keras")
    data = (tmp_path / "m.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[:len(data) // 2])
    with pytest.raises(UserError, match=r"--input=.*cut.keras is not a complete .keras file \(a "
                                        r".keras model is a zip archive, and this one is "
                                        r"truncated"):
        conversion.to_tf1_checkpoint(str(tmp_path / "cut.keras"), str(tmp_path / "c"))
    scaled = keras.layers.Lambda(lambda t: t * 2.0, name="scale")(
        keras.layers.LSTM(4, name="lstm")(inputs))
    keras.Model(inputs, scaled).save(tmp_path / "lambda.keras")
    with pytest.raises(UserError) as e:
        conversion.to_tf1_checkpoint(str(tmp_path / "lambda.keras"), str(tmp_path / "c2"))
    message = str(e.value)
    assert "Lambda" in message and "safe_mode=False" in message
    assert message.endswith("never runs code from a model file: save the model without its "
                            "Lambda layers (the recurrent layers and Dense are what it converts) "
                            "and convert that.")
    assert not list(tmp_path.glob("c*.index"))


class _ProjectionWrapper(tf.compat.v1.nn.rnn_cell.RNNCell):
    """tf.contrib's Input/OutputProjectionWrapper as TF 1.15 builds it: its own `kernel`/`bias`
    (`_Linear`) beside the wrapped cell's, under `input_/output_projection_wrapper`."""

    def __init__(self, cell, size, where, name):
        super().__init__(name=name)
        self._cell, self._size, self._where = cell, size, where

    @property
    def state_size(self):
        return self._cell.state_size

    @property
    def output_size(self):
        return self._size if self._where == "output" else self._cell.output_size

    def call(self, inputs, state):
        def linear(v):
            w = tf.compat.v1.get_variable("kernel", [v.shape[-1], self._size])
            return tf.matmul(v, w) + tf.compat.v1.get_variable("bias", [self._size])
        if self._where == "input":
            return self._cell(linear(inputs), state)
        output, new_state = self._cell(inputs, state)
        return linear(output), new_state


@pytest.mark.parametrize("where, meta", [("output", True), ("input", False)])
def test_a_hand_written_projection_wrapper_converts(tmp_path, where, meta):
    # Before: an OutputProjectionWrapper's kernel [6, 2] and bias [2] passed for a BasicRNNCell(2)
    # "verified" against this project's rebuild and written, the wrapped LSTM for a block of its
    # own. Then such wrappers were named and refused. Now they convert: this wrapper is written
    # as user code writes one (get_variable inside call, an Add for the bias), not the zoo's.
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(0)
        x = tf.compat.v1.placeholder(tf.float32, [None, TIME, INPUT])
        cell = _ProjectionWrapper(tf.compat.v1.nn.rnn_cell.BasicLSTMCell(6), 2, where,
                                  f"{where}_projection_wrapper")
        outputs, _ = tf.compat.v1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for v in tf.compat.v1.trainable_variables():  # a zero bias hides a misplaced one
                v.load(sess.run(v) + 0.5, sess)
            prefix = str(tmp_path / "ckpt" / "model.ckpt")
            tf.compat.v1.train.Saver().save(sess, prefix, write_meta_graph=meta)
            xv = np.random.default_rng(4).normal(size=(3, TIME, INPUT)).astype(np.float32)
            expected = sess.run(outputs, {x: xv})
    name = {"output": "OutputProjectionWrapper", "input": "InputProjectionWrapper"}[where]
    results, _, report = convert(prefix, tmp_path / "out")
    (entry,) = report["blocks"]
    assert entry["structure"] == f"dynamic_rnn({name}(BasicLSTMCell(6), 2)) under rnn/"
    assert entry["verified_against"].startswith("the user's graph" if meta else
                                                "this project's TF1 rebuild")
    # The bias is an Add, not TF1's BiasAdd: the graph does not show the activation, so TF1's
    # default is taken and said (with the .meta, the check against the graph then proves it).
    assert entry["options"][f"{name} activation"] == {"value": "linear",
                                                      "source": "TF1's default"}
    assert results[0].ok and entry["status"] == "written"
    model = keras.saving.load_model(tmp_path / "out" / entry["file"])
    got = np.asarray(model([xv, np.full(3, TIME, np.int32)]))
    np.testing.assert_allclose(got, expected, atol=conversion.TOLERANCE, rtol=0)
