"""tf.contrib.seq2seq's attention decoder (reproduced in `legacy_rnn.seq2seq.tf1`) against numpy
and against its Keras 3 twin: teacher-forced logits and gradients within 1e-5 (the issue's
tolerance), greedy and beam-search tokens equal on 200 inputs, beam scores within 1e-5."""
import numpy as np
import pytest
import tensorflow as tf

from legacy_rnn.seq2seq import keras_decoder, parity, tf1
from legacy_rnn.seq2seq.decoder import AttentionSpec, DecoderSpec
from legacy_rnn.zoo.cells import CellSpec

v1 = tf.compat.v1
TOLERANCE = 1e-5  # issue 25: teacher-forced logits and gradients, beam scores

VARIANTS = parity.CASES


def _max_difference(a, b):
    return max(float(np.max(np.abs(np.asarray(a[k]) - np.asarray(b[k])))) for k in a)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_teacher_forced_logits_and_gradients_of_the_twin_equal_the_tf1_graph(name):
    spec = VARIANTS[name]
    problem = parity.Problem(spec)
    weights, results = parity.tf1_results(problem, modes=("teacher",))
    # The graph's variables are contrib's names, as the spec lists them.
    assert set(weights) - {"embedding"} == set(spec.variables(3, 4))
    cell, projection, embedding = parity.keras_twin(problem, weights)
    arrays = problem.arrays()
    logits = keras_decoder.run(cell, projection, embedding, arrays, "teacher",
                               parity.problem_dict(problem))["logits"]
    expected = results["teacher"]
    assert np.max(np.abs(logits - expected["logits"])) <= TOLERANCE
    gradients = parity.keras_gradients(problem, cell, projection, arrays)
    assert set(gradients) == set(expected["gradients"])
    assert _max_difference(gradients, expected["gradients"]) <= TOLERANCE
    # Weights both ways: back to TF1 names, the same arrays.
    assert _max_difference(spec.to_tf1(cell, projection), {k: weights[k] for k in gradients}) \
        <= 1e-7  # one float32 addition where forget_bias is folded into the bias


@pytest.mark.parametrize("misread", ["output_attention", "normalize", "length_penalty"])
def test_a_misread_option_is_caught_by_the_comparison(misread):
    """Each planted misread of a TF1 option gives numbers far outside the tolerance."""
    spec = VARIANTS[parity.BEAM_CASE]
    spec = DecoderSpec(spec.cell, spec.attention, spec.vocab, attention_layer_size=4)
    problem = parity.Problem(spec, batch=20)
    weights, results = parity.tf1_results(problem, modes=("teacher", "beam"))
    wrong = {"output_attention": DecoderSpec(spec.cell, spec.attention, spec.vocab,
                                             attention_layer_size=4, output_attention=False),
             "normalize": DecoderSpec(spec.cell, AttentionSpec("bahdanau", 5), spec.vocab,
                                      attention_layer_size=4),
             "length_penalty": spec}[misread]
    twin_problem = parity.Problem(wrong, batch=20,
                                  length_penalty_weight=0.0 if misread == "length_penalty"
                                  else problem.length_penalty_weight)
    cell, projection, embedding = parity.keras_twin(twin_problem, weights)
    mode, key = ("beam", "scores") if misread == "length_penalty" else ("teacher", "logits")
    out = keras_decoder.run(cell, projection, embedding, problem.arrays(), mode,
                            parity.problem_dict(twin_problem))[key]
    assert np.max(np.abs(np.asarray(out) - results[mode][key])) > 100 * TOLERANCE


MULTI_CASE = next(name for name in VARIANTS if "MultiRNNCell" in name)


@pytest.mark.parametrize("case, impute_finished", [(parity.BEAM_CASE, False),
                                                   (parity.BEAM_CASE, True), (MULTI_CASE, False)])
def test_greedy_and_beam_search_give_the_tf1_tokens_on_200_inputs(case, impute_finished):
    spec = VARIANTS[case]
    problem = parity.Problem(spec, batch=200, impute_finished=impute_finished)
    weights, results = parity.tf1_results(problem, modes=("greedy", "beam"))
    cell, projection, embedding = parity.keras_twin(problem, weights)
    arrays = problem.arrays()
    greedy = keras_decoder.run(cell, projection, embedding, arrays, "greedy",
                               parity.problem_dict(problem))
    beam = keras_decoder.run(cell, projection, embedding, arrays, "beam",
                             parity.problem_dict(problem))
    expected_greedy, expected_beam = results["greedy"], results["beam"]
    np.testing.assert_array_equal(greedy["ids"], expected_greedy["ids"])
    np.testing.assert_array_equal(greedy["lengths"], expected_greedy["lengths"])
    assert np.max(np.abs(greedy["logits"] - expected_greedy["logits"])) <= TOLERANCE
    np.testing.assert_array_equal(beam["ids"], expected_beam["ids"])
    np.testing.assert_array_equal(beam["lengths"], expected_beam["lengths"])
    assert np.max(np.abs(beam["scores"] - expected_beam["scores"])) <= TOLERANCE
    # The inputs exercise stopping: rows end at many steps, some at maximum_iterations.
    lengths = expected_greedy["lengths"]
    assert len(set(lengths.tolist())) >= 5 and lengths.max() == problem.maximum_iterations
    # Beam search is not greedy search here: some rows' best beam differs.
    best = expected_beam["ids"][:, :, 0]
    steps = min(best.shape[1], expected_greedy["ids"].shape[1])
    assert np.any(best[:, :steps] != expected_greedy["ids"][:, :steps])
    if impute_finished:  # finished rows emit zeros
        rows, steps = np.nonzero(np.arange(lengths.max())[None] >= lengths[:, None])
        assert len(rows) and np.all(expected_greedy["logits"][rows, steps] == 0)


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("kind", ["bahdanau", "luong"])
def test_one_attention_step_equals_numpy_written_from_the_tf1_equations(kind):
    """One AttentionWrapper(BasicRNNCell) step with its projection, in float64 numpy: the cell
    reads concat([x, zero attention, h0]); a masked softmax over the scores; the attention layer
    over concat([cell output, context])."""
    rng = np.random.default_rng(3)
    b, t, d, e, units, vocab = 3, 4, 4, 2, 4, 5
    memory = rng.normal(size=(b, t, d)).astype(np.float32)
    lengths = np.array([4, 2, 1], np.int32)
    x = rng.normal(size=(b, 1, e)).astype(np.float32)
    h0 = rng.normal(size=(b, units)).astype(np.float32)
    att = (AttentionSpec("bahdanau", 3, normalize=True) if kind == "bahdanau"
           else AttentionSpec("luong", units, scale=True))
    spec = DecoderSpec(CellSpec.make("basic_rnn", units), att, vocab, attention_layer_size=3)
    with tf.Graph().as_default() as graph:
        v1.set_random_seed(1)
        out, _, _ = spec.tf1_decode(tf.constant(memory), tf.constant(lengths), tf.constant(h0),
                                    inputs=tf.constant(x), lengths=tf.constant([1, 1, 1]))
        names = {v.op.name: v for v in v1.global_variables()}
        scale = names[f"decoder/attention_wrapper/{att.scope}/attention_g"]
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(scale.assign(1.7))
            w = {k: sess.run(v).astype(np.float64) for k, v in names.items()}
            logits = sess.run(out.rnn_output)[:, 0]
    del graph
    wrapper = "decoder/attention_wrapper"
    cell_in = np.concatenate([x[:, 0], np.zeros((b, 3)), h0], 1)
    h1 = np.tanh(cell_in @ w[f"{wrapper}/basic_rnn_cell/kernel"]
                 + w[f"{wrapper}/basic_rnn_cell/bias"])
    mask = np.arange(t)[None] < lengths[:, None]
    values = memory * mask[:, :, None]
    keys = values @ w["memory_layer/kernel"]
    mech = f"{wrapper}/{att.scope}"
    if kind == "bahdanau":
        v = w[f"{mech}/attention_v"]
        v = w[f"{mech}/attention_g"] * v / np.sqrt(np.sum(v ** 2))
        query = h1 @ w[f"{mech}/query_layer/kernel"]
        score = np.sum(v * np.tanh(keys + query[:, None] + w[f"{mech}/attention_b"]), 2)
    else:
        score = w[f"{mech}/attention_g"] * np.einsum("bu,btu->bt", h1, keys)
    alignments = _softmax(np.where(mask, score, -np.inf))
    context = np.einsum("bt,btd->bd", alignments, values)
    attention = np.concatenate([h1, context], 1) @ w[f"{wrapper}/attention_layer/kernel"]
    expected = attention @ w["decoder/dense/kernel"] + w["decoder/dense/bias"]
    assert np.max(np.abs(logits - expected)) <= 1e-5


def test_gather_tree_follows_the_parents_and_pads_with_end_token():
    """A hand-worked case ([T=4, B=1, K=2], end_token 9, max length 3, so step 3 is padding).
    Beam 0: step 2 token 5, parent 1 -> step 1 token 9 (beam 1), parent 0 -> step 0 token 1;
    the 9 at step 1 then ends it: [1, 9, 9, 9]. Beam 1: step 2 token 6, parent 0 -> step 1
    token 3 (beam 0) -> step 0 token 1: [1, 3, 6, 9]."""
    step_ids = np.array([[[1, 2]], [[3, 9]], [[5, 6]], [[7, 8]]], np.int32)
    parent_ids = np.array([[[0, 0]], [[0, 0]], [[1, 0]], [[0, 0]]], np.int32)
    expected = np.array([[[1, 1]], [[9, 3]], [[9, 6]], [[9, 9]]], np.int32)
    with tf.Graph().as_default():
        with v1.Session() as sess:
            got = sess.run(tf1.gather_tree(tf.constant(step_ids), tf.constant(parent_ids),
                                           tf.constant([3]), 9))
    np.testing.assert_array_equal(got, expected)
    twin = keras_decoder.gather_tree(np.transpose(step_ids, [1, 0, 2]),
                                     np.transpose(parent_ids, [1, 0, 2]), np.array([3]), 9)
    np.testing.assert_array_equal(np.transpose(np.asarray(twin), [1, 0, 2]), expected)


def test_sequence_loss_is_the_weighted_mean_cross_entropy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 4)).astype(np.float32)
    targets = np.array([[1, 0, 3], [2, 2, 0]], np.int32)
    weights = np.array([[1, 1, 0], [1, 0, 0]], np.float32)
    with tf.Graph().as_default():
        with v1.Session() as sess:
            got = sess.run(tf1.sequence_loss(tf.constant(logits), tf.constant(targets),
                                             tf.constant(weights)))
    log_p = np.log(_softmax(logits.astype(np.float64)))
    crossent = -np.take_along_axis(log_p, targets[..., None], -1)[..., 0]
    assert abs(got - np.sum(crossent * weights) / np.sum(weights)) <= 1e-6


def test_beam_candidates_of_equal_score_are_taken_in_index_order_as_tf_does():
    # keras.ops.top_k on PyTorch is torch.topk, which may order a tie either way; TF's top_k
    # takes the lower index first, and beam search meets exact ties (a finished beam's rows).
    scores = np.array([[0.5, -1.0, 2.0, -1.0, 2.0, 2.0]], np.float32)
    values, indices = keras_decoder._top_k(scores, 4)
    expected_values, expected_indices = tf.math.top_k(scores, 4)
    np.testing.assert_array_equal(np.asarray(indices), [[2, 4, 5, 0]])
    np.testing.assert_array_equal(np.asarray(indices), expected_indices.numpy())
    np.testing.assert_array_equal(np.asarray(values), expected_values.numpy())


def test_a_beam_row_may_differ_only_by_a_tie_in_the_scores():
    from legacy_rnn.seq2seq import ties
    # (batch 3, time 2, beam 2). Row 1: two hypotheses 1e-7 apart at step 1 come out swapped
    # (rounding decides). Row 2: another word at step 0 with another score: a wrong search.
    expected = np.array([[[3, 4], [5, 6]], [[3, 4], [5, 6]], [[3, 4], [5, 6]]])
    expected_scores = np.array([[[-1.0, -1.5], [-2.0, -2.5]],
                                [[-1.0, -1.5], [-2.0, -2.0000001]],
                                [[-1.0, -1.5], [-2.0, -2.5]]], np.float32)
    ids, scores = expected.copy(), expected_scores.copy()
    ids[1, 1], scores[1, 1] = [6, 5], [-2.0000001, -2.0]
    ids[2, 0, 1], scores[2, 0, 1] = 7, -1.7
    rows, untied = ties.tied_rows(ids, scores, expected, expected_scores, 1e-5)
    assert rows == [1, 2] and untied == [2]
    assert ties.tied_rows(expected, expected_scores, expected, expected_scores, 1e-5) == ([], [])
