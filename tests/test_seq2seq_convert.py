"""A user's attention seq2seq checkpoint (contrib's names, written as TF1 code wrote it) through
the converter: the decoder is found with options that differ from contrib's defaults
(LSTMCell forget_bias 0.0 in the graph, LuongAttention scale, output_attention=False where the
shapes cannot tell), and its twin is checked against the user's own graph; planted misreads of
those options fail that check."""
import dataclasses
import json
import os
import zlib

import numpy as np
import pytest
import tensorflow as tf

from legacy_rnn.conversion import blockwise, metagraph
from legacy_rnn.errors import UserError
from legacy_rnn.regression import user_model
from legacy_rnn.seq2seq import checkpoint, keras_decoder, tf1
from legacy_rnn.training import checkpoints

v1 = tf.compat.v1
TOLERANCE = checkpoint.TOLERANCE
VOCAB, EMBED, UNITS = 9, 3, 4
MAX_STEPS = 7
GREEDY_SCALE, END_BIAS = 1.2, 0.6  # the greedy graph's weights: one row of four ends at once
LENGTH_PENALTY = 0.7


def build_user_graph(prefix, v1_loops=False, forget_bias=0.0, output_attention=False,
                     stack=False, nmt=False, greedy=False, beam_width=0):
    """embedding -> dynamic_rnn(LSTMCell) encoder -> AttentionWrapper(LSTMCell(forget_bias),
    LuongAttention(scale=True), attention_layer_size=UNITS, output_attention) from the encoder's
    state, TrainingHelper, Dense("output_projection"), sequence_loss, Adam; saved with its .meta.
    `stack`: both cells `MultiRNNCell([LSTMCell, GRUCell])`, as nmt builds a multi-layer model
    (the decoder's levels start from the encoder's); `nmt`: also nmt's names, the wrapper's
    `name="attention"` and an output projection without a bias. `greedy`: the inference graph
    instead (GreedyEmbeddingHelper from start token 1 to end token 2, at most MAX_STEPS steps,
    impute_finished), as nmt's inference model is saved, with weights drawn by name (the same
    for both kinds of loop); `beam_width`: the beam-search inference graph (BeamSearchDecoder,
    length_penalty_weight LENGTH_PENALTY, the memory, its lengths and the initial state
    tile_batch'ed), likewise."""
    greedy = greedy or bool(beam_width)
    if v1_loops:
        v1.disable_control_flow_v2()
    try:
        with tf.Graph().as_default() as graph:
            v1.set_random_seed(7)
            source = v1.placeholder(tf.int32, [None, None], "source")
            source_lengths = v1.placeholder(tf.int32, [None], "source_lengths")
            decoder_ids = v1.placeholder(tf.int32, [None, None], "decoder_inputs")
            target_lengths = v1.placeholder(tf.int32, [None], "target_lengths")
            targets = v1.placeholder(tf.int32, [None, None], "targets")
            source_embedding = v1.get_variable("source_embedding", [VOCAB, EMBED])
            target_embedding = v1.get_variable("target_embedding", [VOCAB, EMBED])
            def cell_of(forget_bias=1.0):
                lstm = v1.nn.rnn_cell.LSTMCell(UNITS, forget_bias=forget_bias)
                return v1.nn.rnn_cell.MultiRNNCell([lstm, v1.nn.rnn_cell.GRUCell(UNITS)]) \
                    if stack else lstm
            memory, state = v1.nn.dynamic_rnn(
                cell_of(), tf.nn.embedding_lookup(source_embedding, source),
                source_lengths, dtype=tf.float32, scope="encoder")
            batch = tf.shape(source)[0]
            if beam_width:
                memory, source_lengths, state = (
                    tf.nest.map_structure(lambda t: tf1.tile_batch(t, beam_width), x)
                    for x in (memory, source_lengths, state))
            mechanism = tf1.LuongAttention(UNITS, memory, source_lengths, scale=True)
            cell = tf1.AttentionWrapper(cell_of(forget_bias), mechanism,
                                        attention_layer_size=UNITS,
                                        output_attention=output_attention,
                                        name="attention" if nmt else None)
            initial = cell.zero_state(batch * max(1, beam_width), tf.float32)._replace(
                cell_state=state)
            projection = v1.layers.Dense(VOCAB, name="output_projection", use_bias=not nmt)
            if beam_width:
                decoder = tf1.BeamSearchDecoder(
                    cell, target_embedding, tf.fill([batch], 1), 2, initial, beam_width,
                    projection, length_penalty_weight=LENGTH_PENALTY)
            elif greedy:
                helper = tf1.GreedyEmbeddingHelper(
                    target_embedding, tf.fill([tf.shape(source)[0]], 1), 2)
            else:
                helper = tf1.TrainingHelper(
                    tf.nn.embedding_lookup(target_embedding, decoder_ids), target_lengths)
            if not beam_width:
                decoder = tf1.BasicDecoder(cell, helper, initial, projection)
            outputs, _, _ = tf1.dynamic_decode(decoder, impute_finished=greedy and not beam_width,
                                               maximum_iterations=MAX_STEPS if greedy else None)
            if beam_width:
                tf.identity(outputs.predicted_ids, "predicted_ids")
                logits = tf.identity(outputs.beam_search_decoder_output.scores, "scores")
            else:
                logits = tf.identity(outputs.rnn_output, "logits")
            steps = tf.shape(logits)[1]
            train = None if greedy else v1.train.AdamOptimizer(0.01).minimize(tf1.sequence_loss(
                logits, targets[:, :steps], tf.sequence_mask(target_lengths, steps, tf.float32)))
            with v1.Session(graph=graph) as sess:
                sess.run(v1.global_variables_initializer())
                if greedy:  # weights of its own, whichever loops: rows end at different steps
                    for v in v1.trainable_variables():
                        rng = np.random.default_rng(zlib.crc32(v.op.name.encode()))
                        value = rng.normal(scale=GREEDY_SCALE, size=v.shape)
                        if v.op.name == "decoder/output_projection/bias":
                            value[2] += END_BIAS
                        v.load(value, sess)
                # The attention scale off its initial 1.0, as training leaves it.
                scale = [v for v in v1.global_variables() if v.op.name.endswith("attention_g")]
                sess.run(scale[0].assign(1.6))
                del train
                v1.train.Saver().save(sess, prefix)
    finally:
        if v1_loops:
            v1.enable_control_flow_v2()
    return prefix


def _found(prefix):
    shapes = checkpoints.list_variables(prefix)
    view = metagraph.GraphView(metagraph.read_graph(prefix + ".meta"))
    (found,) = checkpoint.find_decoders(shapes, view)
    return found, checkpoints.load_tensors(prefix, found.variables)


@pytest.mark.parametrize("loops", ["TF2 While", "TF1 Enter/Exit"])
def test_the_decoder_is_read_from_the_graph_and_its_twin_matches_the_users_graph(tmp_path,
                                                                                  loops):
    prefix = build_user_graph(str(tmp_path / "model.ckpt"), v1_loops=loops != "TF2 While")
    found, weights = _found(prefix)
    spec = found.spec
    assert spec.cell.kind == "lstm" and spec.cell.get("forget_bias") == 0.0
    assert spec.attention.kind == "luong" and spec.attention.scale
    assert spec.attention_layer_size == UNITS and spec.output_attention is False
    assert found.sources["output_attention"].startswith("the .meta graph")
    assert (found.input_depth, found.memory_depth) == (EMBED, UNITS)
    difference, inputs, compared = checkpoint.check_against_graph(prefix, found, weights)
    assert difference <= TOLERANCE and compared.startswith("the teacher-forced logits")
    assert set(inputs) == {"source", "source_lengths", "decoder_inputs", "target_lengths"}
    # Planted misreads, each caught by the same check.
    for wrong in (dataclasses.replace(spec, output_attention=True),
                  dataclasses.replace(spec, cell=type(spec.cell).make("lstm", UNITS))):
        planted = dataclasses.replace(found, spec=wrong)
        assert checkpoint.check_against_graph(prefix, planted, weights)[0] > 100 * TOLERANCE


@pytest.mark.parametrize("loops", ["TF2 While", "TF1 Enter/Exit"])
def test_an_inference_graph_is_checked_by_decoding_greedily_as_it_does(tmp_path, loops):
    """The .meta beside the checkpoint is the greedy inference graph (GreedyEmbeddingHelper,
    impute_finished, maximum_iterations): the twin decodes from the loop's start tokens with the
    embedding the loop looks up and the end token it compares with, and must emit the graph's
    tokens with its logits; the misreads planted in the teacher-forced test fail here too."""
    prefix = build_user_graph(str(tmp_path / "model.ckpt"), v1_loops=loops != "TF2 While",
                              greedy=True)
    found, weights = _found(prefix)
    assert found.spec.cell.get("forget_bias") == 0.0 and found.spec.output_attention is False
    difference, inputs, compared = checkpoint.check_against_graph(prefix, found, weights)
    assert difference <= TOLERANCE, compared
    assert compared.startswith("the greedy decoding of its dynamic_decode") and \
        "target_embedding looked up in the loop, end token 2" in compared
    assert set(inputs) == {"source", "source_lengths"}
    # A row ends (at its first step) while the others are cut at MAX_STEPS: the graph's stop and
    # its impute_finished are exercised.
    model = user_model.Model(prefix)
    logits = model.graph.get_tensor_by_name("logits:0")
    feed = user_model.generate_inputs(model, model.placeholders([logits]))
    with model.session() as sess:
        logits = sess.run(logits, {f"{k}:0": v for k, v in feed.items()})
    ends = [list(row).index(2) + 1 if 2 in row else None for row in np.argmax(logits, -1)]
    assert len(set(ends)) >= 2
    assert logits.shape[1] == (MAX_STEPS if None in ends else max(ends))
    for wrong in (dataclasses.replace(found.spec, output_attention=True),
                  dataclasses.replace(found.spec, cell=type(found.spec.cell).make("lstm", UNITS))):
        planted = dataclasses.replace(found, spec=wrong)
        assert checkpoint.check_against_graph(prefix, planted, weights)[0] > 100 * TOLERANCE


@pytest.mark.parametrize("loops", ["TF2 While", "TF1 Enter/Exit"])
def test_a_beam_search_graph_is_checked_by_searching_as_it_does(tmp_path, loops, monkeypatch):
    """The .meta is the beam-search inference graph: the twin searches from the loop's own tiled
    memory and state with the beam width and length penalty read from the graph; each step's
    word ids and parents must be the graph's, its scores within the tolerance. Planted misreads
    (output_attention, forget_bias) and a length penalty read wrong fail."""
    prefix = build_user_graph(str(tmp_path / "model.ckpt"), v1_loops=loops != "TF2 While",
                              beam_width=3)
    found, weights = _found(prefix)
    difference, inputs, compared = checkpoint.check_against_graph(prefix, found, weights)
    assert difference <= TOLERANCE, compared
    assert compared.startswith("the beam search of its dynamic_decode (BeamSearchDecoder: beam "
                               f"width 3 and length_penalty_weight {LENGTH_PENALTY:g}"), compared
    assert set(inputs) == {"source", "source_lengths"}
    for wrong in (dataclasses.replace(found.spec, output_attention=True),
                  dataclasses.replace(found.spec, cell=type(found.spec.cell).make("lstm", UNITS))):
        planted = dataclasses.replace(found, spec=wrong)
        assert checkpoint.check_against_graph(prefix, planted, weights)[0] > 100 * TOLERANCE
    read = checkpoint._sampling_problem
    monkeypatch.setattr(checkpoint, "_sampling_problem",
                        lambda *args: {**read(*args), "length_penalty_weight": 0.0})
    assert checkpoint.check_against_graph(prefix, found, weights)[0] > 100 * TOLERANCE


@pytest.mark.parametrize("nmt", [False, True], ids=["contrib's names", "nmt's names"])
def test_a_multi_rnn_cell_decoder_is_read_checked_and_converted(tmp_path, nmt):
    """nmt's multi-layer decoder: AttentionWrapper(MultiRNNCell([LSTMCell(forget_bias 0), GRUCell])),
    its levels' initial states the encoder's; with nmt's names too (the wrapper's scope
    `attention/`, a projection without a bias), its cell never taken for a block of its own."""
    prefix = build_user_graph(str(tmp_path / "model.ckpt"), stack=True, nmt=nmt)
    found, weights = _found(prefix)
    spec = found.spec
    assert spec.cell.describe() == "MultiRNNCell([LSTMCell(4, forget_bias=0.0), GRUCell(4)])"
    assert (spec.wrapper_name, spec.output_bias) == (("attention", False) if nmt else
                                                     ("attention_wrapper", True))
    assert found.sources["cell_0.forget_bias"] == "the .meta graph"
    difference, _, _ = checkpoint.check_against_graph(prefix, found, weights)
    assert difference <= TOLERANCE
    # Planted: the bottom level's forget_bias at LSTMCell's default.
    wrong = type(spec.cell).make(spec.cell.kind, UNITS, **{**dict(spec.cell.options),
                                                          "cell_0.forget_bias": 1.0})
    planted = dataclasses.replace(found, spec=dataclasses.replace(spec, cell=wrong))
    assert checkpoint.check_against_graph(prefix, planted, weights)[0] > 100 * TOLERANCE
    out = str(tmp_path / "out")
    results, _ = blockwise.to_keras_blocks(prefix, out)
    assert [r.block.prefix for r in results] == ["encoder"]  # the decoder's cell is no block
    with open(os.path.join(out, "blocks.json")) as f:
        (report,) = json.load(f)["decoders"]
    assert report["ok"] and report["largest_difference"] <= TOLERANCE
    layers = keras_decoder.load_layers(os.path.join(out, report["file"][:-len(".json")]))
    back = spec.to_tf1(layers["cell"], layers["projection"])
    assert set(back) == set(weights)
    assert max(np.max(np.abs(back[k] - weights[k])) for k in back) <= 1e-7  # forget_bias fold


def test_convert_writes_the_decoder_beside_the_blocks_and_it_loads_back(tmp_path):
    prefix = build_user_graph(str(tmp_path / "model.ckpt"), output_attention=True)
    out = str(tmp_path / "out")
    results, others = blockwise.to_keras_blocks(prefix, out)
    assert [r.block.prefix for r in results] == ["encoder"] and results[0].ok
    with open(os.path.join(out, "blocks.json")) as f:
        (report,) = json.load(f)["decoders"]
    assert report["ok"] and report["largest_difference"] <= TOLERANCE
    assert report["options"]["output_attention"]["value"] is True
    assert report["options"]["forget_bias"] == {"value": 0.0, "source": "the .meta graph"}
    layers = keras_decoder.load_layers(os.path.join(out, report["file"][:-len(".json")]))
    found, weights = _found(prefix)
    back = found.spec.to_tf1(layers["cell"], layers["projection"])
    assert set(back) == set(weights)
    assert max(np.max(np.abs(back[k] - weights[k])) for k in back) <= 1e-7  # forget_bias fold
    # The decoder's variables are not listed as unconverted.
    assert not any(o["name"] in found.variables and "not converted" in o["guess"]
                   for o in others)


def test_without_the_meta_the_decoder_is_refused_and_nothing_is_written(tmp_path):
    prefix = build_user_graph(str(tmp_path / "model.ckpt"))
    os.remove(prefix + ".meta")
    with pytest.raises(UserError, match=r"converted only with the \.meta"):
        blockwise.to_keras_blocks(prefix, str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")
    shapes = checkpoints.list_variables(prefix)
    with pytest.raises(UserError, match="both 4 wide"):  # output_attention: shapes cannot tell
        checkpoint.find_decoders(shapes, None)


def test_a_damaged_decoder_file_is_refused_with_a_paragraph(tmp_path):
    stem = str(tmp_path / "decoder.decoder")
    with open(stem + ".json", "w") as f:
        f.write('{"layers": {}, "depths": [3, 4], "weights": "decoder.decoder.npz"}')
    with open(stem + ".npz", "wb") as f:
        f.write(b"not a zip")
    with pytest.raises(UserError, match="cannot be read as a converted decoder"):
        keras_decoder.load_layers(stem)


def test_an_attention_wrapper_at_the_top_scope_leaves_the_encoder_a_block():
    """A decoder built outside any scope (`attention_wrapper/`, `memory_layer/`, `dense/` at the
    top): its cell is the seq2seq converter's, the encoder beside it still a block (the whole
    checkpoint was once taken for the decoder's, and the encoder skipped)."""
    from legacy_rnn.conversion import discover
    shapes = {"encoder/lstm_cell/kernel": (EMBED + UNITS, 4 * UNITS),
              "encoder/lstm_cell/bias": (4 * UNITS,),
              "attention_wrapper/lstm_cell/kernel": (EMBED + 5 + UNITS, 4 * UNITS),
              "attention_wrapper/lstm_cell/bias": (4 * UNITS,),
              "attention_wrapper/attention_layer/kernel": (2 * UNITS, 5),
              "memory_layer/kernel": (UNITS, UNITS), "dense/kernel": (5, VOCAB),
              "dense/bias": (VOCAB,)}
    found, _ = discover.discover(shapes)
    assert [f.block.prefix for f in found] == ["encoder"]
    (decoder,) = checkpoint.find_decoders(shapes, None)
    assert decoder.spec.scope == "" and decoder.spec.cell.kind == "lstm"
