"""Whole TF1 models (`.meta` + checkpoint) translated into one Keras 3 model
(`legacy_rnn/conversion/whole.py`), each in the shape of a public program: the PTB word LM
(embedding -> 2-layer LSTM with forget_bias 0.0 -> reshape -> softmax_w/softmax_b, written with TF1
control flow as TF 1.x wrote it) and a tagger (embedding -> bidirectional_dynamic_rnn with
lengths -> concat -> projection). The expected numbers are the user's graph, imported and run by
hand here (not through the translator); a planted misread of one op is caught by the converter's
own end-to-end check; an op outside the translated set is refused with its place in the graph."""
import collections
import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from legacy_rnn import keras_graph
from legacy_rnn.cli import entry
from legacy_rnn.conversion import convert, whole
from legacy_rnn.errors import UserError
from legacy_rnn.facts import TOLERANCE
import user_graphs
from user_graphs import TIME, VOCAB, build_lm, build_tagger, run_graph, tf1


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("lm") / "model.ckpt")
    build_lm(prefix)
    return prefix


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("tagger") / "model.ckpt")
    build_tagger(prefix)
    return prefix


def test_a_ptb_style_lm_translates_whole_and_equals_its_graph(lm, tmp_path):
    result = whole.to_keras_model(lm, ["logits:0", "probabilities:0"])
    print("lm", result.forward_difference, result.gradient_difference, result.translated)
    assert result.ok and result.forward_difference <= TOLERANCE
    assert result.gradient_difference <= TOLERANCE
    # The block's option read from the graph, not TF1's default of 1.0.
    (block,) = result.blocks
    assert block.options["forget_bias"]["value"] == 0.0
    assert {"GatherV2", "Reshape", "MatMul", "BiasAdd", "Softmax"} <= set(result.translated)
    assert result.variables == ["embedding", "softmax_b", "softmax_w"]
    # Independently: the graph run by hand, and the model file loaded back in safe mode.
    path = whole.write(result, lm, ["logits:0", "probabilities:0"], str(tmp_path / "lm.keras"))
    import keras
    loaded = keras.saving.load_model(path)
    ids = np.random.default_rng(0).integers(0, VOCAB, (3, TIME)).astype(np.int32)
    logits, probabilities = run_graph(lm, ["logits:0", "probabilities:0"], {"input_ids": ids},
                                      v1_loops=True)
    got_logits, got_probabilities = loaded({"input_ids": ids})
    np.testing.assert_allclose(np.asarray(got_logits), logits, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(np.asarray(got_probabilities), probabilities, atol=TOLERANCE,
                               rtol=0)


def test_a_bilstm_tagger_with_lengths_and_a_computed_shape_translates_whole(tagger):
    result = whole.to_keras_model(tagger, ["logits:0"])
    print("tagger", result.forward_difference, result.gradient_difference, result.translated)
    assert result.ok, (result.forward_difference, result.gradient_difference)
    assert {"ResourceGather", "ReverseSequence", "ConcatV2", "Shape", "StridedSlice",
            "Pack"} <= set(result.translated)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, VOCAB, (4, 7)).astype(np.int32)  # a time the graph was not built for
    lengths = np.array([7, 3, 0, 5], np.int32)
    (expected,) = run_graph(tagger, ["logits:0"], {"word_ids": ids, "sequence_lengths": lengths})
    got = np.asarray(result.model({"word_ids": ids, "sequence_lengths": lengths}))
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)


def test_an_ner_tagger_with_a_char_bilstm_translates_whole(tmp_path, monkeypatch):
    """Char BiLSTM over one row per word (its final h per direction read), word BiLSTM,
    projection: the lengths of each word, [batch, words], generated as lengths too."""
    prefix = str(tmp_path / "model.ckpt")
    user_graphs.build_ner_tagger(prefix)
    result = whole.to_keras_model(prefix, ["proj/logits:0"])
    print("ner", result.forward_difference, result.gradient_difference, result.translated)
    assert result.ok, (result.forward_difference, result.gradient_difference)
    options = {b.block.prefix: b.options for b in result.blocks}
    assert options["chars/bidirectional_rnn"]["forget_bias"]["value"] == 0.75
    assert set(result.inputs) == {"word_ids", "sequence_lengths", "char_ids", "word_lengths"}
    rng = np.random.default_rng(13)
    feeds = {"word_ids": rng.integers(0, VOCAB, (2, 4)).astype(np.int32),
             "sequence_lengths": np.array([4, 2], np.int32),
             "char_ids": rng.integers(0, 9, (2, 4, 5)).astype(np.int32),
             "word_lengths": np.array([[5, 1, 3, 2], [4, 2, 0, 0]], np.int32)}  # 0: padding
    (expected,) = run_graph(prefix, ["proj/logits:0"], feeds)
    got = np.asarray(result.model(feeds))
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)
    # Planted: the backward directions' ReverseSequence read as a plain reverse: wrong on every
    # word shorter than the longest, which the generated word lengths must include.
    monkeypatch.setitem(keras_graph.OPS, "ReverseSequence",
                        lambda inputs, attrs: keras_graph.ops.flip(inputs[0], axis=1))
    planted = whole.to_keras_model(prefix, ["proj/logits:0"])
    assert not planted.ok and planted.forward_difference > 100 * TOLERANCE


def test_the_translated_model_exports_a_signature_that_serves_the_graphs_outputs(tagger,
                                                                                  tmp_path):
    import os
    result = whole.to_keras_model(tagger, ["logits:0"])
    export_dir = str(tmp_path / "export")
    assert whole.export(result, ["logits:0"], export_dir) <= TOLERANCE
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    rng = np.random.default_rng(16)
    ids = rng.integers(0, VOCAB, (5, 9)).astype(np.int32)  # another batch and time: both open
    lengths = np.array([9, 4, 1, 0, 6], np.int32)
    (expected,) = run_graph(tagger, ["logits:0"], {"word_ids": ids, "sequence_lengths": lengths})
    served = serve(word_ids=tf.constant(ids), sequence_lengths=tf.constant(lengths))
    np.testing.assert_allclose(np.asarray(served["logits"]), expected, atol=TOLERANCE, rtol=0)
    # Planted: the graph's outputs the served ones are checked against, 1e-3 off: not kept.
    planted = dataclasses.replace(result, graph_outputs=[o + 1e-3 for o in result.graph_outputs])
    with pytest.raises(UserError, match="serves outputs 1.00e-03 away from the graph's"):
        whole.export(planted, ["logits:0"], str(tmp_path / "planted"))
    assert not os.path.exists(tmp_path / "planted")


def _convert(argv, capsys):
    """`convert` as its entry point runs it, in this process: (status, stdout, stderr)."""
    flag_values = flags.FlagValues()
    holders = convert.define_flags(flag_values)
    flag_values(["convert", *argv])
    capsys.readouterr()
    status = entry.guarded("convert", lambda: convert.main(holders, ["convert"]))
    out, err = capsys.readouterr()
    return status, out, err


def test_the_command_writes_the_model_and_its_report_and_refuses_a_planted_misread(
        tagger, tmp_path, capsys, monkeypatch):
    output = str(tmp_path / "tagger.keras")
    argv = [f"--checkpoint={tagger}", "--outputs=logits:0", f"--output={output}"]
    status, out, _ = _convert(argv, capsys)
    assert status == 0 and f"wrote {output}" in out
    assert "translated ops: " in out and "ReverseSequence x2" in out
    report = json.loads(open(output + ".json").read())
    assert report["load_with"] == "legacy_rnn.keras_graph"
    assert report["largest_difference"]["outputs"] <= TOLERANCE
    assert report["blocks"][0]["options"]["forget_bias"]["value"] == 0.5
    before = open(output, "rb").read()
    # ReverseSequence read as a plain reverse of the whole time axis (padding reversed too):
    # equal on full-length rows, wrong on the short ones the generated lengths include.
    monkeypatch.setitem(keras_graph.OPS, "ReverseSequence",
                        lambda inputs, attrs: keras_graph.ops.flip(inputs[0], axis=1))
    status, out, err = _convert(argv + ["--overwrite"], capsys)
    assert status == 1 and "does not compute what the graph computes; nothing was written" in err
    difference = float(out.split("against the graph: outputs ")[1].split(",")[0])
    assert difference > 100 * TOLERANCE
    assert open(output, "rb").read() == before  # the earlier file is kept
    status, _, err = _convert(argv, capsys)  # no --overwrite
    assert status == 1 and "exists. Choose another --output, or pass --overwrite" in err


def test_an_op_outside_the_translated_set_is_refused_with_its_place(tmp_path):
    prefix = str(tmp_path / "model.ckpt")
    graph = tf.Graph()
    with graph.as_default():
        x = tf1.placeholder(tf.float32, [None, 3], name="x")
        w = tf1.get_variable("w", [3, 2], initializer=tf1.ones_initializer())
        tf.identity(tf.math.cumsum(tf.matmul(x, w), axis=1) * 2.0, name="y")
        user_graphs.save(graph, prefix)
    with pytest.raises(UserError, match=r"Cumsum \(Cumsum\) cannot be translated: this "
                                         r"translator does not know it\. It sits on the path "
                                         r"y <- mul <- Cumsum from the output"):
        whole.to_keras_model(prefix, ["y:0"])


def test_the_five_experiments_graphs_translate_from_their_meta_alone(tmp_path):
    """Each experiment's training graph (dropout, optimizer and all) saved with its .meta and
    translated from it, without --model: the model equals the hand-written Keras twin of the
    same weights, and the graph, on new inputs. Static drivers included: their step outputs are
    matched by value to the converted block's."""
    from legacy_rnn import experiments
    from legacy_rnn.tools import backends
    for name, experiment in experiments.EXPERIMENTS.items():
        config = experiment.resolved(experiment.golden)
        graph_model = experiment.build_graph(config)
        sess = backends._bumped_session(graph_model.graph, 1)  # weights off their initial values
        prefix = str(tmp_path / name / "model.ckpt")
        with graph_model.graph.as_default():
            tf1.train.Saver().save(sess, prefix)
            variables = {v.op.name: v for v in tf1.trainable_variables()}
        feeds = experiment.random_feeds(config, 5, np.random.default_rng(3))
        expected = sess.run(graph_model.logits, dict(zip(graph_model.inputs, feeds)))
        twin = experiment.to_keras(config, sess.run(variables))
        sess.close()
        result = whole.to_keras_model(prefix, [graph_model.logits.name])
        assert result.ok, (name, result.forward_difference, result.gradient_difference)
        got = np.asarray(result.model({whole._keras_name(t.op.name): f
                                       for t, f in zip(graph_model.inputs, feeds)
                                       if t.op.name in result.inputs}))
        np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0, err_msg=name)
        np.testing.assert_allclose(got, np.asarray(twin(experiment.keras_inputs(feeds))),
                                   atol=TOLERANCE, rtol=0, err_msg=name)
        print(f"{name}: outputs {result.forward_difference:.1e}, gradients "
              f"{result.gradient_difference:.1e}, translated {result.translated}")


def _translated_and_checked(prefix, output, input_name):
    """(WholeResult, its one block) of a model with one id input of CHAR_BATCH x TIME, its
    outputs compared with the graph run by hand on ids the conversion did not check with."""
    result = whole.to_keras_model(prefix, [output])
    print(prefix, result.forward_difference, result.gradient_difference, result.translated)
    assert result.ok, (result.forward_difference, result.gradient_difference)
    ids = np.random.default_rng(9).integers(0, VOCAB, (user_graphs.CHAR_BATCH, TIME))
    ids = ids.astype(np.int32)
    (expected,) = run_graph(prefix, [output], {input_name: ids})
    got = np.asarray(result.model({whole._keras_name(input_name): ids}))
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)
    (block,) = result.blocks
    return result, block


@pytest.mark.parametrize("kind", ["lstm", "nas"])
def test_a_char_rnn_model_translates_whole(kind, tmp_path, monkeypatch):
    """char-rnn: steps under another op scope than their variables, from zero_state, the inputs
    split and squeezed, and forget_bias 0.5 (LSTM) or NAS's biases read from the graph."""
    prefix = str(tmp_path / "model.ckpt")
    user_graphs.build_char_rnn(prefix, kind)
    result, block = _translated_and_checked(prefix, "probs:0", "input_data")
    if kind == "lstm":
        assert block.options["forget_bias"]["value"] == 0.5  # not TF1's 1.0
    assert {"Split": 1, "Squeeze": TIME}.items() <= result.translated.items()
    if kind == "nas":
        return
    # Planted: tf.split's parts in the wrong order (the steps reversed) is caught end to end.
    split = keras_graph.OPS["Split"]
    monkeypatch.setitem(keras_graph.OPS, "Split", lambda inputs, attrs: split(inputs, attrs)[::-1])
    planted = whole.to_keras_model(prefix, ["probs:0"])
    assert not planted.ok and planted.forward_difference > 100 * TOLERANCE


@pytest.mark.parametrize("rnn_mode", ["basic", "block"])
def test_the_ptb_tutorials_own_model_translates_whole(rnn_mode, tmp_path, monkeypatch, capsys):
    """The tutorial's time loop under Model/RNN/ (its x_t sliced inside the block's scope), from
    zero_state; forget_bias 0.0 read from the graph (an op attribute for LSTMBlockCell)."""
    prefix = str(tmp_path / "model.ckpt")
    user_graphs.build_ptb(prefix, rnn_mode)
    result, block = _translated_and_checked(prefix, "Model/logits:0", "Model/input_data")
    assert block.block.prefix == "Model/RNN"
    assert block.options["forget_bias"]["value"] == 0.0  # not TF1's 1.0
    # inspect --graph walks it as the conversion did: the same ops, the input, nothing refused.
    status, out, _ = _inspect([prefix, "--graph", "--outputs=Model/logits:0", "--json"], capsys)
    report = json.loads(out)
    assert status == 0 and report["refused"] == [] and report["translated"] == dict(
        result.translated)
    assert [i["name"] for i in report["inputs"]] == ["Model/input_data"]
    assert len(report["blocks"][0]["initial_states"]) == 4  # two levels' (c, h) zero_state
    if rnn_mode == "basic":
        return
    # Planted: the forget_bias attribute not read (TF1's default 1.0 taken): refused.
    from legacy_rnn.zoo import lstm_block
    real = lstm_block.LSTMBlock.options_in_graph
    monkeypatch.setattr(lstm_block.LSTMBlock, "options_in_graph", lambda self, view, prefix: {
        k: v for k, v in real(self, view, prefix).items() if k != "forget_bias"})
    with pytest.raises(UserError, match=r"The recurrent block\(s\) Model/RNN failed their own "
                                        r"check against the graph; nothing was written"):
        whole.to_keras_model(prefix, ["Model/logits:0"])


@pytest.mark.parametrize("cudnn_names", [True, False], ids=["DeepSpeech's names", "lstm_cell"])
def test_deepspeech_time_major_dense_fused_lstm_dense_translates_whole(cudnn_names, tmp_path,
                                                                       monkeypatch, capsys):
    """The fused cell's BlockLSTM op replaced by the converted block over the op's own
    time-major input; the mask contrib's cell applies after it, and the dense layers around it,
    translated."""
    prefix = str(tmp_path / "model.ckpt")
    user_graphs.build_deepspeech(prefix, cudnn_names)
    result = whole.to_keras_model(prefix, ["raw_logits:0"])
    print("deepspeech", result.forward_difference, result.gradient_difference, result.translated)
    assert result.ok, (result.forward_difference, result.gradient_difference)
    (block,) = result.blocks
    if not cudnn_names:  # LSTMBlockFusedCell's default is 1.0; the 0 is in BlockLSTM's attribute
        assert block.options["forget_bias"]["value"] == 0.0
    assert {"Minimum", "Less", "Transpose"} <= set(result.translated)
    rng = np.random.default_rng(15)
    feeds = {"input_node": rng.normal(size=(3, 8, 4)).astype(np.float32),  # 8: a new time
             "input_lengths": np.array([8, 5, 1], np.int32)}
    (expected,) = run_graph(prefix, ["raw_logits:0"], feeds)
    np.testing.assert_allclose(np.asarray(result.model(feeds)), expected, atol=TOLERANCE,
                               rtol=0)
    # inspect --graph stops at the op as the conversion does: the same ops, nothing refused.
    status, out, _ = _inspect([prefix, "--graph", "--outputs=raw_logits:0", "--json"], capsys)
    report = json.loads(out)
    assert status == 0 and report["refused"] == [] and report["translated"] == dict(
        result.translated)
    # Planted: the sequence mask's t < length read as t <= length (one step too many kept).
    monkeypatch.setitem(keras_graph.OPS, "Less",
                        lambda inputs, attrs: keras_graph.ops.less_equal(*inputs))
    planted = whole.to_keras_model(prefix, ["raw_logits:0"])
    assert not planted.ok and planted.forward_difference > 100 * TOLERANCE


def test_a_static_bidirectional_rnn_with_lengths_translates_whole(tmp_path, monkeypatch):
    """static_bidirectional_rnn reverses the backward steps back within each length outside its
    scope: the tensors it reads there are the backward direction's own steps, matched to the
    Keras block's backward part reversed within the lengths."""
    prefix = str(tmp_path / "model.ckpt")
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(19)
        x = tf1.placeholder(tf.float32, [None, TIME, 3], name="x")
        lengths = tf1.placeholder(tf.int32, [None], name="lengths")
        outputs, _, _ = tf1.nn.static_bidirectional_rnn(
            tf1.nn.rnn_cell.LSTMCell(4, forget_bias=0.5), tf1.nn.rnn_cell.GRUCell(3),
            tf.unstack(x, axis=1), sequence_length=lengths, dtype=tf.float32)
        w = tf1.get_variable("w", [7, 2])
        tf.stack([tf.matmul(o, w) for o in outputs], axis=1, name="y")
        user_graphs.save(graph, prefix)
    result = whole.to_keras_model(prefix, ["y:0"])
    print("static bidirectional", result.forward_difference, result.gradient_difference,
          result.translated)
    assert result.ok, (result.forward_difference, result.gradient_difference)
    assert result.blocks[0].options["forget_bias"]["value"] == 0.5
    rng = np.random.default_rng(20)
    feeds = {"x": rng.normal(size=(4, TIME, 3)).astype(np.float32),
             "lengths": np.array([TIME, 3, 0, 1], np.int32)}
    (expected,) = run_graph(prefix, ["y:0"], feeds)
    np.testing.assert_allclose(np.asarray(result.model(feeds)), expected, atol=TOLERANCE, rtol=0)
    # Planted: the backward steps taken as the block's output without the reversal: refused.
    real = whole._step_boundaries

    def unreversed(*args):
        return {k: dataclasses.replace(b, reversed_within_lengths=False)
                if isinstance(b, whole.StepBoundary) else b for k, b in real(*args).items()}

    monkeypatch.setattr(whole, "_step_boundaries", unreversed)
    planted = whole.to_keras_model(prefix, ["y:0"])
    assert not planted.ok and planted.forward_difference > 100 * TOLERANCE


def test_a_fed_initial_state_is_refused_whole_and_the_block_converts_alone(tmp_path):
    prefix = str(tmp_path / "model.ckpt")
    user_graphs.build_char_rnn(prefix, "lstm", fed_state=True)
    with pytest.raises(UserError, match=r"The block rnnlm/ starts from a state that is not zero: "
                                        r"its ops read .*h[01]:0 .* h0:0, h1:0 are fed: the "
                                        r"translation takes a block's initial state only from what "
                                        r"the graph computes"):
        whole.to_keras_model(prefix, ["probs:0"])
    # The block's own check feeds the state zeros, as its Keras layer starts (and says so).
    from legacy_rnn.conversion import blockwise
    _, meta, _, read, old_names = blockwise.read_blocks(prefix, none_is_fine=True)
    ((found, block, options),) = read
    checked, _ = blockwise.convert_block(found, block, options, prefix, meta, old_names,
                                         np.random.default_rng(0))
    assert checked.ok and checked.largest_difference <= TOLERANCE
    assert "h0 fed zeros (an initial state)" in checked.neutralised


ISSUE_OPS = {"MatMul", "BiasAdd", "Add", "AddV2", "Sub", "Mul", "RealDiv", "Identity", "Reshape",
             "Transpose", "ConcatV2", "Pack", "Unpack", "StridedSlice", "Squeeze", "ExpandDims",
             "GatherV2", "ResourceGather", "Range", "Shape", "Cast", "Softmax", "LogSoftmax",
             "Sigmoid", "Tanh", "Relu", "Mean", "Sum", "ArgMax", "Select", "SelectV2"}


def test_every_op_of_the_translated_set_computes_what_tf_computes(tmp_path, monkeypatch):
    """One graph whose outputs use each op the issue lists and the others the translator
    knows, translated whole and compared with the graph (outputs and gradients), then on new
    inputs by hand; Sub planted as Add is refused."""
    prefix = str(tmp_path / "model.ckpt")
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(17)
        x = tf1.placeholder(tf.float32, [None, 4], name="x")
        ids = tf1.placeholder(tf.int32, [None, 3], name="ids")
        w = tf1.get_variable("w", [4, 4])
        table = tf1.get_variable("table", [VOCAB, 4])
        h = tf.nn.bias_add(tf.matmul(x, w), tf1.get_variable("b", [4]))
        positive = tf.abs(x) + 1.0
        looked_up = tf.nn.embedding_lookup(table, ids)  # [batch, 3, 4]
        steps = tf.range(tf.shape(ids)[1])
        outputs = {
            "sub": h - x, "realdiv": h / positive, "add": tf.raw_ops.Add(x=h, y=x),
            "unpack": tf.unstack(h, axis=1)[2], "log_softmax": tf.nn.log_softmax(h),
            "softmax": tf.nn.softmax(h), "sigmoid": tf.sigmoid(h), "tanh": tf.tanh(h),
            "relu": tf.nn.relu(h), "relu6": tf.nn.relu6(h), "elu": tf.nn.elu(h),
            "softplus": tf.nn.softplus(h), "mean": tf.reduce_mean(h, axis=1),
            "sum": tf.reduce_sum(h, axis=0, keepdims=True), "max": tf.reduce_max(h, axis=1),
            "prod": tf.reduce_prod(positive, axis=1), "argmax": tf.argmax(h, axis=1),
            "select": tf1.where(tf.reduce_sum(h, axis=1) > 0, h, x),
            "select_v2": tf.where(h > 0, h, -x), "min_max": tf.minimum(tf.maximum(h, -0.5), 0.5),
            "addn": tf.add_n([h, x, h]), "unary": -tf.exp(-tf.square(h)) + tf.math.log(positive)
                                                   + tf.sqrt(positive),
            "transpose_concat": tf.concat([tf.transpose(looked_up, [0, 2, 1]),
                                           tf.expand_dims(h, -1)], axis=2),
            "pack_squeeze": tf.squeeze(tf.stack([h, x], axis=1)[:, :1], axis=1),
            "gather": tf.gather(looked_up, 1, axis=1),
            "cast_range": tf.cast(steps, tf.float32) * tf.reduce_sum(looked_up, axis=2),
            "reshape": tf.reshape(looked_up, [-1, 12]) @ tf.ones([12, 2])}
        names = sorted(outputs)
        for name in names:
            tf.identity(outputs[name], name=f"out_{name}")
        user_graphs.save(graph, prefix)
    wanted = [f"out_{n}:0" for n in names]
    result = whole.to_keras_model(prefix, wanted)
    assert result.ok, (result.forward_difference, result.gradient_difference)
    print("ops", result.forward_difference, result.gradient_difference, result.translated)
    assert ISSUE_OPS <= set(result.translated)
    rng = np.random.default_rng(18)
    feeds = {"x": rng.normal(size=(5, 4)).astype(np.float32),
             "ids": rng.integers(0, VOCAB, (5, 3)).astype(np.int32)}
    expected = run_graph(prefix, wanted, feeds)
    got = result.model(feeds)
    for name, want, value in zip(names, expected, got):
        np.testing.assert_allclose(np.asarray(value), want, atol=TOLERANCE, rtol=0, err_msg=name)
    monkeypatch.setitem(keras_graph.OPS, "Sub", keras_graph.OPS["AddV2"])  # planted
    assert not whole.to_keras_model(prefix, ["out_sub:0"]).ok


def test_split_and_splitv_translate(tmp_path):
    prefix = str(tmp_path / "model.ckpt")
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(10)
        x = tf1.placeholder(tf.float32, [None, 6], name="x")
        w = tf1.get_variable("w", [6, 6])
        y = tf.matmul(x, w)
        a, b, c = tf.split(y, 3, axis=1)
        d, e, f = tf.split(y, [3, -1, 1], axis=-1)  # SplitV, the -1 read from the shape
        tf.identity(tf.concat([a * 1.0 + b * 2.0 + c * 3.0, d, e * f], axis=1), name="out")
        user_graphs.save(graph, prefix)
    result = whole.to_keras_model(prefix, ["out:0"])
    assert result.ok and {"Split", "SplitV"} <= set(result.translated)
    x = np.random.default_rng(3).normal(size=(4, 6)).astype(np.float32)
    (expected,) = run_graph(prefix, ["out:0"], {"x": x})
    np.testing.assert_allclose(np.asarray(result.model({"x": x})), expected, atol=TOLERANCE,
                               rtol=0)


@pytest.mark.parametrize("v1_loops", [True, False], ids=["TF1 Enter/Exit", "TF2 While"])
def test_final_states_read_by_a_classifier_translate_whole(v1_loops, tmp_path, monkeypatch):
    prefix = str(tmp_path / "model.ckpt")
    user_graphs.build_state_classifier(prefix, v1_loops)
    result = whole.to_keras_model(prefix, ["logits:0"])
    assert result.ok, (result.forward_difference, result.gradient_difference)
    options = {b.block.prefix: b.options for b in result.blocks}
    assert options["bidirectional_rnn"]["forget_bias"]["value"] == 0.25  # not TF1's 1.0
    rng = np.random.default_rng(7)
    ids = rng.integers(0, VOCAB, (4, TIME)).astype(np.int32)
    lengths = np.array([TIME, 2, 1, 4], np.int32)
    (expected,) = run_graph(prefix, ["logits:0"], {"ids": ids, "lengths": lengths},
                            v1_loops=v1_loops)
    got = np.asarray(result.model({"ids": ids, "lengths": lengths}))
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)
    if not v1_loops:
        return
    # Planted: Keras's LSTM states ([h, c]) taken in TF1's LSTMStateTuple order (c, h).
    real = whole._matched_states

    def misread(values, states):
        count = collections.Counter((id(run), layer) for run, layer, _, _ in states)
        return {name: dataclasses.replace(b, index=1 - b.index)
                if count[(id(b.of), b.layer)] == 2 else b
                for name, b in real(values, states).items()}

    monkeypatch.setattr(whole, "_matched_states", misread)
    planted = whole.to_keras_model(prefix, ["logits:0"])
    assert not planted.ok and planted.forward_difference > 100 * TOLERANCE


def test_a_final_state_that_is_no_single_state_is_refused_with_its_place(tmp_path):
    prefix = str(tmp_path / "model.ckpt")
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(4)
        x = tf1.placeholder(tf.float32, [None, TIME, 2], name="x")
        cell = tf1.nn.rnn_cell.LSTMCell(3, state_is_tuple=False)  # c and h concatenated
        _, state = tf1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
        tf.identity(state * 2.0, name="y")
        user_graphs.save(graph, prefix)
    with pytest.raises(UserError, match=r"rnn/while/Identity_4 \(Identity\) cannot be "
                                         r"translated: it is part of a loop that is neither .*"
                                         r"state_is_tuple=False .* It sits on the path y <- mul "
                                         r"<- rnn/while/Identity_4 from the output"):
        whole.to_keras_model(prefix, ["y:0"])


def _inspect(argv, capsys):
    from legacy_rnn.conversion import inspection
    flag_values = flags.FlagValues()
    holders = inspection.define_flags(flag_values)
    positional = flag_values(["inspect", *argv])
    capsys.readouterr()
    status = entry.guarded("inspect", lambda: inspection.main(holders, positional))
    out, err = capsys.readouterr()
    return status, out, err


def test_inspect_graph_shows_the_inputs_the_blocks_and_nothing_refused_on_the_tagger(
        tagger, capsys):
    status, out, _ = _inspect([tagger, "--graph", "--outputs=logits:0", "--json"], capsys)
    assert status == 0
    report = json.loads(out)
    assert [i["name"] for i in report["inputs"]] == ["sequence_lengths", "word_ids"]
    (block,) = report["blocks"]
    assert block["scope"] == "bidirectional_rnn" and "LSTMCell" in block["structure"]
    assert report["refused"] == []
    assert {"MatMul", "ConcatV2", "Reshape", "ResourceGather"} <= set(report["translated"]) or \
        {"MatMul", "ConcatV2", "Reshape", "GatherV2"} <= set(report["translated"])
    from absl import app
    with pytest.raises(app.UsageError, match="--graph and --outputs"):  # --outputs missing
        _inspect([tagger, "--graph"], capsys)


def test_inspect_graph_names_every_op_the_conversion_would_refuse(tmp_path, capsys):
    # An LSTM block, then two ops the translator does not know (Cumsum, Cumprod), each named
    # with its path, and the final state of the loop, shown with the block; convert --outputs
    # refuses the first op it meets.
    prefix = str(tmp_path / "model.ckpt")
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(5)
        x = tf1.placeholder(tf.float32, [None, TIME, 2], name="x")
        out, state = tf1.nn.dynamic_rnn(tf1.nn.rnn_cell.LSTMCell(3), x, dtype=tf.float32)
        y = tf.math.cumsum(out[:, -1], axis=1) + tf.math.cumprod(state.h, axis=1)
        tf.identity(y, name="y")
        user_graphs.save(graph, prefix)
    status, out, _ = _inspect([prefix, "--graph", "--outputs=y"], capsys)
    assert status == 0
    assert "rnn/  dynamic_rnn(LSTMCell" in out
    assert "Cumsum (Cumsum): this translator does not know it\n    on the path y <- add <- Cumsum" \
        in out
    assert "Cumprod (Cumprod)" in out
    assert "its final state read as rnn/while/Identity_5 (each matched to one level's state by " \
        "value when converting)" in out
    assert "2 op(s) refused" in out
    with pytest.raises(UserError, match=r"\(Cumsum\) cannot be translated|\(Cumprod\) cannot be "
                                        r"translated|cannot be translated: it is part of a loop"):
        whole.to_keras_model(prefix, ["y:0"])


def test_a_time_series_rnn_in_an_output_projection_wrapper_translates_whole(tmp_path,
                                                                            monkeypatch, capsys):
    """Hands-On ML's chapter-14 model: OutputProjectionWrapper(BasicRNNCell(relu), 1) under
    dynamic_rnn, its loss and Adam step in the graph; the outputs and the loss translate."""
    from legacy_rnn import zoo
    prefix = str(tmp_path / "model.ckpt")
    user_graphs.build_time_series(prefix)
    result = whole.to_keras_model(prefix, ["outputs:0", "loss:0"])
    print("time series", result.forward_difference, result.gradient_difference)
    assert result.ok, (result.forward_difference, result.gradient_difference)
    (block,) = result.blocks
    assert block.block.describe() == ("dynamic_rnn(OutputProjectionWrapper(BasicRNNCell(5, "
                                      "activation='relu'), 1)) under rnn/")
    rng = np.random.default_rng(16)
    feeds = {"X": rng.normal(size=(2, TIME, 1)).astype(np.float32),
             "y": rng.normal(size=(2, TIME, 1)).astype(np.float32)}
    expected = run_graph(prefix, ["outputs:0", "loss:0"], feeds)
    for got, want in zip(result.model(feeds), expected):
        np.testing.assert_allclose(np.asarray(got), want, atol=TOLERANCE, rtol=0)
    # inspect --graph stops at the loop as the conversion does, though the training graph's While
    # also reads its gradients' accumulators (it walked into them and refused them before).
    status, out, _ = _inspect([prefix, "--graph", "--outputs=outputs:0,loss:0", "--json"],
                              capsys)
    report = json.loads(out)
    assert status == 0 and report["refused"] == [] and report["translated"] == dict(
        result.translated)
    # Planted: the projection read as tanh'ed (the cell's default activation, misplaced).
    monkeypatch.setattr(zoo.WRAPPERS["output_projection"], "options_in_graph",
                        lambda view, prefix: {"activation": "tanh"})
    with pytest.raises(UserError, match="failed their own check"):
        whole.to_keras_model(prefix, ["outputs:0"])


def test_magentas_attention_rnn_translates_whole(tmp_path, monkeypatch):
    """An AttentionCellWrapper(BasicLSTMCell, attn_length=4) as the first level of a
    MultiRNNCell, with lengths: the block and the projection around it translate."""
    from legacy_rnn import zoo
    prefix = str(tmp_path / "model.ckpt")
    user_graphs.build_magenta_attention(prefix)
    result = whole.to_keras_model(prefix, ["logits:0"])
    print("magenta", result.forward_difference, result.gradient_difference)
    assert result.ok, (result.forward_difference, result.gradient_difference)
    (block,) = result.blocks
    assert block.options["attn_length"]["value"] == 4
    rng = np.random.default_rng(18)
    feeds = {"inputs": rng.normal(size=(3, 7, VOCAB)).astype(np.float32),  # 7: a new time
             "lengths": np.array([7, 2, 5], np.int32)}
    (expected,) = run_graph(prefix, ["logits:0"], feeds)
    np.testing.assert_allclose(np.asarray(result.model(feeds)), expected, atol=TOLERANCE,
                               rtol=0)
    # Planted: the attention window read one step long.
    family = zoo.FAMILIES["attention_cell_wrapper"]
    honest = family.options_in_graph
    monkeypatch.setattr(family, "options_in_graph",
                        lambda view, p: {**honest(view, p), "attn_length": 5})
    with pytest.raises(UserError, match="failed their own check"):
        whole.to_keras_model(prefix, ["logits:0"])
