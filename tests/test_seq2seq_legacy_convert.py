"""A user's legacy_seq2seq checkpoint (the translate tutorial's embedding_attention_seq2seq,
saved with its .meta from a training graph) through the converter: found by legacy_seq2seq's
names with options that differ from the defaults (BasicLSTMCell forget_bias 0.5, read from the
graph; two heads; initial_state_attention, which only the graph shows), its twin checked
against the user's own graph; planted misreads of those options fail that check."""
import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from legacy_rnn.conversion import blockwise, metagraph
from legacy_rnn.errors import UserError
from legacy_rnn.seq2seq import keras_decoder, legacy, legacy_checkpoint
from legacy_rnn.training import checkpoints
from legacy_rnn.zoo.cells import CellSpec

v1 = tf.compat.v1
TOLERANCE = legacy_checkpoint.TOLERANCE
SOURCE, TARGET, ENC, DEC, EMB, UNITS = 4, 3, 7, 6, 3, 4


def _cell(stack):
    """The tutorial's cell: BasicLSTMCell(forget_bias=0.5), or with `stack` the tutorial's
    num_layers > 1, a MultiRNNCell (here of that LSTM and a GRUCell)."""
    lstm = v1.nn.rnn_cell.BasicLSTMCell(UNITS, forget_bias=0.5)
    return v1.nn.rnn_cell.MultiRNNCell([lstm, v1.nn.rnn_cell.GRUCell(UNITS)]) if stack else lstm


def build_user_graph(prefix, feed_previous=False, user_projection=False, buckets=False,
                     stack=False):
    """Placeholders encoder0.. / decoder0.. / target0.. as the tutorial feeds them ->
    embedding_attention_seq2seq(BasicLSTMCell(forget_bias=0.5), num_heads=2,
    initial_state_attention=True) -> sparse softmax loss, Adam; saved with its .meta. With
    `buckets`, as the tutorial's model_with_buckets builds it: one copy per bucket (2x2 steps,
    then all) over the same variables, under name scope model_with_buckets."""
    with tf.Graph().as_default() as graph:
        v1.set_random_seed(3)
        enc = [v1.placeholder(tf.int32, [None], f"encoder{i}") for i in range(SOURCE)]
        dec = [v1.placeholder(tf.int32, [None], f"decoder{i}") for i in range(TARGET)]
        targets = [v1.placeholder(tf.int32, [None], f"target{i}") for i in range(TARGET)]
        projection = None
        if user_projection:
            projection = (v1.get_variable("proj_w", [UNITS, DEC]), v1.get_variable("proj_b", [DEC]))
        sizes = [(2, 2), (SOURCE, TARGET)] if buckets else [(SOURCE, TARGET)]
        with v1.name_scope("model_with_buckets" if buckets else None):
            for j, (s, t) in enumerate(sizes):
                with v1.variable_scope(v1.get_variable_scope(), reuse=True if j else None):
                    outputs, _ = legacy.embedding_attention_seq2seq(
                        enc[:s], dec[:t], _cell(stack), ENC, DEC, EMB, num_heads=2,
                        output_projection=projection, feed_previous=feed_previous,
                        initial_state_attention=True, encoder_cell=_cell(stack))
        logits = [o if projection is None else v1.nn.xw_plus_b(o, *projection) for o in outputs]
        loss = tf.add_n([tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=t, logits=l)) for t, l in zip(targets, logits)])
        v1.train.AdamOptimizer(0.01).minimize(loss)
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            v1.train.Saver().save(sess, prefix)
    return prefix


def _found(prefix):
    shapes = checkpoints.list_variables(prefix)
    view = metagraph.GraphView(metagraph.read_graph(prefix + ".meta"))
    (found,) = legacy_checkpoint.find(shapes, view)
    return found, checkpoints.load_tensors(prefix, found.variables)


@pytest.mark.parametrize("user_projection,buckets", [(False, False), (True, True)])
def test_the_model_is_read_from_the_graph_and_its_twin_matches_the_users_graph(
        tmp_path, user_projection, buckets):
    prefix = build_user_graph(str(tmp_path / "model.ckpt"), user_projection=user_projection,
                              buckets=buckets)
    found, weights = _found(prefix)
    spec = found.spec
    assert spec.cell.kind == "basic_lstm" and spec.cell.get("forget_bias") == 0.5
    assert found.sources["decoder forget_bias"] == "the .meta graph"
    assert spec.num_heads == 2 and bool(spec.output_projection) == user_projection
    got, inputs = legacy_checkpoint.run_graph(prefix, found)
    assert found.initial_state_attention is True
    if buckets:  # the first copy (bucket 2x2) is checked; the other one is named
        assert found.copies == ["model_with_buckets/embedding_attention_seq2seq",
                                "model_with_buckets/embedding_attention_seq2seq_1"]
        assert set(inputs) == {"encoder0", "encoder1", "decoder0", "decoder1"}
    else:
        assert set(inputs) == {f"encoder{i}" for i in range(SOURCE)} | {
            f"decoder{i}" for i in range(TARGET)}
    assert legacy_checkpoint.difference(found, weights, got) <= TOLERANCE
    # Planted misreads, each caught by the same comparison.
    for planted in (dataclasses.replace(found, initial_state_attention=False),
                    dataclasses.replace(found, spec=dataclasses.replace(
                        spec, cell=CellSpec.make("basic_lstm", UNITS)))):
        assert legacy_checkpoint.difference(planted, weights, got) > 10 * TOLERANCE


def test_convert_writes_the_twin_and_it_loads_back(tmp_path):
    prefix = build_user_graph(str(tmp_path / "model.ckpt"))
    out = str(tmp_path / "out")
    blockwise.to_keras_blocks(prefix, out)
    with open(os.path.join(out, "blocks.json")) as f:
        (report,) = json.load(f)["decoders"]
    assert report["ok"] and report["largest_difference"] <= TOLERANCE
    assert report["options"]["initial_state_attention"]["value"] is True
    assert report["options"]["decoder forget_bias"] == {"value": 0.5,
                                                         "source": "the .meta graph"}
    layers = keras_decoder.load_layers(os.path.join(out, report["file"][:-len(".json")]))
    found, weights = _found(prefix)
    back = found.spec.to_tf1(layers)
    assert set(back) == set(weights)
    assert max(np.max(np.abs(back[k] - weights[k])) for k in back) <= 1e-7


def test_a_feed_previous_graph_and_a_missing_meta_are_refused(tmp_path):
    prefix = build_user_graph(str(tmp_path / "model.ckpt"), feed_previous=True)
    found, _ = _found(prefix)
    with pytest.raises(UserError, match=r"feed_previous=True"):
        legacy_checkpoint.run_graph(prefix, found)
    os.remove(prefix + ".meta")
    with pytest.raises(UserError, match=r"legacy_seq2seq attention decoder .* converted only "
                                        r"with the \.meta"):
        blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")
    with pytest.raises(UserError, match="initial_state_attention cannot be read"):
        legacy_checkpoint.find(checkpoints.list_variables(prefix), None)


def test_the_tutorials_multi_layer_cell_is_read_and_checked_against_the_users_graph(tmp_path):
    """translate.py's num_layers > 1: a MultiRNNCell in the encoder and in the decoder."""
    prefix = build_user_graph(str(tmp_path / "model.ckpt"), stack=True)
    found, weights = _found(prefix)
    spec = found.spec
    assert spec.cell.describe() == ("MultiRNNCell([BasicLSTMCell(4, forget_bias=0.5), "
                                    "GRUCell(4)])")
    assert found.sources["decoder cell_0.forget_bias"] == "the .meta graph"
    got, _ = legacy_checkpoint.run_graph(prefix, found)
    difference = legacy_checkpoint.difference(found, weights, got)
    print("legacy MultiRNNCell:", difference)
    assert difference <= TOLERANCE
    # Planted: the bottom level's forget_bias at BasicLSTMCell's default.
    wrong = CellSpec.make(spec.cell.kind, UNITS, **{**dict(spec.cell.options),
                                                   "cell_0.forget_bias": 1.0})
    planted = dataclasses.replace(found, spec=dataclasses.replace(spec, cell=wrong))
    assert legacy_checkpoint.difference(planted, weights, got) > 10 * TOLERANCE
    # Written by convert and loaded back: the same weights under the tutorial's names.
    out = str(tmp_path / "out")
    results, _ = blockwise.to_keras_blocks(prefix, out)
    assert not results  # the encoder is the model's, not a block of its own
    with open(os.path.join(out, "blocks.json")) as f:
        (report,) = json.load(f)["decoders"]
    assert report["ok"] and report["largest_difference"] <= TOLERANCE
    layers = keras_decoder.load_layers(os.path.join(out, report["file"][:-len(".json")]))
    back = spec.to_tf1(layers)
    assert set(back) == set(weights)
    assert max(np.max(np.abs(back[k] - weights[k])) for k in back) <= 1e-7


def build_deepqa_graph(prefix):
    """DeepQA's chatbot model in miniature: encoder0.. / decoder0.. placeholders ->
    embedding_rnn_seq2seq(MultiRNNCell([DropoutWrapper(BasicLSTMCell(forget_bias=0.5),
    output_keep_prob=0.9)] * 2)) -> softmax loss, Adam; saved from the training graph (dropout
    on, the optimizer's gradients in it) with its .meta."""
    def cell():
        return v1.nn.rnn_cell.MultiRNNCell([v1.nn.rnn_cell.DropoutWrapper(
            v1.nn.rnn_cell.BasicLSTMCell(UNITS, forget_bias=0.5), output_keep_prob=0.9)
            for _ in range(2)])

    with tf.Graph().as_default() as graph:
        v1.set_random_seed(5)
        encoder = [v1.placeholder(tf.int32, [None], f"encoder{i}") for i in range(SOURCE)]
        decoder = [v1.placeholder(tf.int32, [None], f"decoder{i}") for i in range(TARGET)]
        targets = [v1.placeholder(tf.int32, [None], f"target{i}") for i in range(TARGET)]
        outputs, _ = legacy.embedding_rnn_seq2seq(encoder, decoder, cell(), ENC, DEC, EMB,
                                                  encoder_cell=cell())
        tf.stack(outputs, 1, name="logits")
        loss = tf.add_n([tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=t, logits=o)) for t, o in zip(targets, outputs)])
        v1.train.AdamOptimizer(0.01).minimize(loss)
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            v1.train.Saver().save(sess, prefix)
    return prefix


def test_deepqas_embedding_rnn_seq2seq_training_graph_converts_checked_where_the_graph_can_be(
        tmp_path, monkeypatch):
    """Both halves convert, each checked against the user's graph with its dropout passed
    through: the encoder (static_rnn over EmbeddingWrapper) fed ids at each step's lookup, the
    decoder (rnn_decoder over OutputProjectionWrapper) started from zeros as the Keras block
    starts (the graph starts it from the encoder's final state: the four state tensors entering
    it are fed zeros, and the report says so). Both used to be checked only against this
    project's rebuild: the optimizer's gradient MatMuls read the kernels too and hid the steps,
    and the gradients of the dropout kept it from being neutralised. A planted forget_bias
    misread fails both."""
    from legacy_rnn.zoo import FAMILIES
    prefix = build_deepqa_graph(str(tmp_path / "model.ckpt"))
    out = str(tmp_path / "out")
    results, _ = blockwise.to_keras_blocks(prefix, out)
    with open(os.path.join(out, "blocks.json")) as f:
        entries = {b["scope"]: b for b in json.load(f)["blocks"]}
    assert all(r.ok for r in results), entries
    encoder = entries["embedding_rnn_seq2seq/rnn"]
    assert encoder["verified_against"].startswith("the user's graph")
    assert encoder["largest_difference"] <= TOLERANCE
    assert any("dropout" in note for note in encoder["neutralised"]), encoder
    decoder = entries["embedding_rnn_seq2seq/embedding_rnn_decoder/rnn_decoder"]
    assert decoder["verified_against"].startswith("the user's graph")
    assert decoder["largest_difference"] <= TOLERANCE
    (entering,) = [n for n in decoder["neutralised"] if n.startswith("the state entering")]
    assert entering.count("embedding_rnn_seq2seq/rnn/") == 4  # (c, h) of two levels
    assert decoder["options"]["forget_bias"]["value"] == 0.5  # both levels
    # Planted: every level's forget_bias read at BasicLSTMCell's default.
    family = FAMILIES["basic_lstm"]
    honest = family.options_in_graph
    monkeypatch.setattr(family, "options_in_graph",
                        lambda view, p: {**honest(view, p), "forget_bias": 1.0})
    results, _ = blockwise.to_keras_blocks(prefix, str(tmp_path / "planted"))
    assert len(results) == 2
    for result in results:
        assert result.verified_against.startswith("the user's graph")
        assert not result.ok and result.largest_difference > 100 * TOLERANCE


def test_deepqas_model_translates_whole_its_decoder_starting_from_the_encoders_state(
        tmp_path, monkeypatch):
    """`convert --outputs=logits:0` of DeepQA's graph: one Keras model of the encoder ids and the
    decoder ids, the decoder block started from the encoder block's final states (which tensor
    is which level's c or h: matched by value, the one order whose steps match the graph's),
    checked end to end against the user's graph, outputs and gradients. Planted: the two
    levels' initial states swapped, which the end-to-end check refuses."""
    from legacy_rnn.conversion import whole
    prefix = build_deepqa_graph(str(tmp_path / "model.ckpt"))
    result = whole.to_keras_model(prefix, ["logits:0"])
    assert result.ok, (result.forward_difference, result.gradient_difference)
    assert result.forward_difference <= TOLERANCE and result.gradient_difference <= TOLERANCE
    assert sorted(result.inputs) == sorted([f"encoder{i}" for i in range(SOURCE)]
                                           + [f"decoder{i}" for i in range(TARGET)])
    real = whole._step_boundaries

    def levels_swapped(*args):  # after the matching: level 1's (h, c) first, then level 0's
        return {k: dataclasses.replace(b, initial=(b.initial[0], b.initial[1][2:]
                                                   + b.initial[1][:2]))
                if isinstance(b, whole.StepBoundary) and b.initial else b
                for k, b in real(*args).items()}

    monkeypatch.setattr(whole, "_step_boundaries", levels_swapped)
    planted = whole.to_keras_model(prefix, ["logits:0"])
    assert not planted.ok and planted.forward_difference > 100 * TOLERANCE


@pytest.mark.parametrize("kind", ["basic_rnn_seq2seq", "tied_rnn_seq2seq"])
def test_the_basic_and_tied_models_translate_whole(tmp_path, kind, monkeypatch):
    """basic_rnn_seq2seq (two cells: the decoder block started from the encoder's final state)
    and tied_rnn_seq2seq (one cell over the encoder's then the decoder's steps: one block of
    both), BasicLSTMCell(forget_bias=0.3), a training graph: translated whole and checked end to
    end against the user's graph; a planted forget_bias misread fails the blocks' own check."""
    from legacy_rnn.conversion import whole
    from legacy_rnn.zoo import FAMILIES
    prefix = str(tmp_path / "model.ckpt")
    with tf.Graph().as_default() as graph:
        v1.set_random_seed(9)
        encoder = [v1.placeholder(tf.float32, [None, EMB], f"encoder{i}") for i in range(SOURCE)]
        decoder = [v1.placeholder(tf.float32, [None, EMB], f"decoder{i}") for i in range(TARGET)]

        def cell():
            return v1.nn.rnn_cell.BasicLSTMCell(UNITS, forget_bias=0.3)

        if kind == "tied_rnn_seq2seq":
            outputs, _ = legacy.tied_rnn_seq2seq(encoder, decoder, cell())
        else:
            outputs, _ = legacy.basic_rnn_seq2seq(encoder, decoder, cell(), encoder_cell=cell())
        y = tf.stack(outputs, 1, name="y")
        v1.train.AdamOptimizer(0.01).minimize(tf.reduce_sum(tf.square(y)))
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            v1.train.Saver().save(sess, prefix)
    result = whole.to_keras_model(prefix, ["y:0"])
    assert result.ok and result.forward_difference <= TOLERANCE
    assert [b.block.prefix for b in result.blocks] == (
        ["combined_tied_rnn_seq2seq/tied_rnn_seq2seq"] if kind == "tied_rnn_seq2seq" else
        ["basic_rnn_seq2seq/rnn", "basic_rnn_seq2seq/rnn_decoder"])
    assert all(b.verified_against.startswith("the user's graph") for b in result.blocks)
    family = FAMILIES["basic_lstm"]
    honest = family.options_in_graph
    monkeypatch.setattr(family, "options_in_graph",
                        lambda view, p: {**honest(view, p), "forget_bias": 1.0})
    with pytest.raises(UserError, match="failed their own check against the graph"):
        whole.to_keras_model(prefix, ["y:0"])
