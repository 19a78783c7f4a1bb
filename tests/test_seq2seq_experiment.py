"""The seq2seq_attention experiment on its smoke configuration: the data is what it says, the
model trains, and its Keras twin (the zoo's encoder block and the attention decoder twin)
computes the TF1 graph's logits and decodes its tokens; the program's run survives a signal and
resumes to the same weights; its golden numbers hold."""
import dataclasses
import json
import os
import signal

import numpy as np
import pytest
from absl import flags

from legacy_rnn.cli import interrupts
from legacy_rnn.errors import UserError
from legacy_rnn.seq2seq import experiment
from program_harness import tool_output

CONFIG = dataclasses.replace(experiment.SMOKE, steps=12, eval_examples=30,
                             length_penalty_weight=0.5)
TOLERANCE = 1e-5  # issue 25


def test_the_targets_are_the_sources_reversed_then_end():
    data = experiment.make_data(CONFIG, 50, np.random.default_rng(1))
    for row in range(50):
        length = data["source_lengths"][row]
        digits = data["source"][row, :length]
        assert CONFIG.min_length <= length <= CONFIG.max_length
        assert np.all(digits >= experiment.FIRST_DIGIT) and np.all(
            data["source"][row, length:] == experiment.PAD)
        assert list(data["targets"][row, :length + 1]) == list(digits[::-1]) + [experiment.END]
        assert list(data["decoder_inputs"][row, :length + 1]) == [experiment.START] + list(
            digits[::-1])
        assert data["target_lengths"][row] == length + 1
    # Scoring: a perfect decode scores 1, one wrong token breaks its row's exact match.
    ids = data["targets"].copy()
    assert experiment.accuracy(ids, data) == (1.0, 1.0)
    ids[0, 0] = experiment.PAD
    exact, token = experiment.accuracy(ids, data)
    assert exact == pytest.approx(49 / 50)
    assert token == pytest.approx(1 - 1 / data["target_lengths"].sum())


def _initial_values(seed):
    graph = experiment.build_graph(dataclasses.replace(CONFIG, seed=seed), "greedy")
    with graph.graph.as_default():
        init = experiment.tf.compat.v1.global_variables_initializer()
    with experiment.tf.compat.v1.Session(graph=graph.graph) as sess:
        sess.run(init)
        return experiment.trainable_values(graph, sess)


def test_the_seed_fixes_every_initial_value_and_another_seed_changes_each():
    # The decoder's kernels (cell, memory_layer, attention_layer, projection) used to take
    # tf-keras's default initializer, seeded from Python's `random`: same seed, other values.
    first, again, other = _initial_values(3), _initial_values(3), _initial_values(4)
    assert any(name.startswith("decoder/") for name in first)
    for name, value in first.items():
        np.testing.assert_array_equal(value, again[name], err_msg=name)
        if np.unique(value).size > 1:  # drawn, not a constant initializer (attention_g, biases)
            assert not np.array_equal(value, other[name]), name


@pytest.fixture(scope="module")
def trained():
    return experiment.train_model(CONFIG)


def test_training_lowers_the_loss_and_evaluates_both_decoders(trained):
    assert trained["loss"] < trained["first_loss"] and trained["global_step"] == CONFIG.steps
    for mode in ("greedy", "beam"):
        assert 0.0 <= trained[f"{mode}_exact_match"] <= trained[f"{mode}_token_accuracy"] <= 1.0
    # The trained variables are contrib's names (those a converter reads in a checkpoint).
    names = set(trained["values"])
    assert {"memory_layer/kernel", "decoder/attention_wrapper/lstm_cell/kernel",
            "decoder/attention_wrapper/bahdanau_attention/attention_g",
            "decoder/attention_wrapper/attention_layer/kernel",
            "decoder/output_projection/kernel", "encoder/fw/lstm_cell/kernel",
            "encoder/bw/lstm_cell/kernel", "source_embedding", "target_embedding"} <= names


def test_the_twin_computes_the_graphs_logits_and_decodes_its_tokens(trained):
    import tensorflow as tf
    values = trained["values"]
    data = experiment.make_data(CONFIG, 40, np.random.default_rng(9))
    graph = experiment.build_graph(CONFIG, "train")
    with tf.compat.v1.Session(graph=graph.graph) as sess:
        experiment.load(graph, sess, values)
        logits = sess.run(graph.fetches["logits"], experiment.feed(graph, data))
    twin = experiment.keras_twin(CONFIG, values)
    twin_logits = np.asarray(experiment.twin_run(twin, CONFIG, data, "teacher"))
    assert np.max(np.abs(twin_logits - logits)) <= TOLERANCE
    for mode in ("greedy", "beam"):
        expected = experiment.decode_graph(CONFIG, mode, values, data)
        got = experiment.twin_run(twin, CONFIG, data, mode)
        np.testing.assert_array_equal(got, expected[:, :got.shape[1]])
        assert np.all(expected[:, got.shape[1]:] == experiment.END)


def test_the_twins_training_steps_eager_and_traced_follow_the_tf1_graphs(trained):
    """Three Adam steps from the trained weights: the TF1 graph's train_op, and the twin's
    `twin_train_step` eager and traced (the decoder run over the batch's whole width, the
    steps past the longest target weighing nothing): the same losses, step after step."""
    import tensorflow as tf
    batches = experiment.Batches(CONFIG)
    batches = [batches.next_batch(CONFIG.batch_size) for _ in range(3)]
    graph = experiment.build_graph(CONFIG, "train")
    with tf.compat.v1.Session(graph=graph.graph) as sess:
        experiment.load(graph, sess, trained["values"])
        expected = [sess.run((graph.model.loss, graph.model.train_op),
                             dict(zip(graph.model.inputs, batch)))[0] for batch in batches]
    for traced in (False, True):
        step = experiment.twin_train_step(experiment.keras_twin(CONFIG, trained["values"]),
                                          CONFIG, traced=traced)
        losses = [float(step(*batch)) for batch in batches]
        assert np.max(np.abs(np.array(losses) - expected)) <= TOLERANCE, (traced, losses,
                                                                         expected)
    assert expected[0] != expected[-1]  # the steps moved the weights


def test_bad_settings_are_refused_before_tensorflow_is_needed():
    with pytest.raises(UserError, match="min_length <= max_length"):
        dataclasses.replace(CONFIG, min_length=6, max_length=5).check()
    with pytest.raises(UserError, match="attention_units .* must equal --units"):
        dataclasses.replace(CONFIG, attention="luong", attention_units=8).check()
    values = flags.FlagValues()
    holders = experiment.define_flags(values)
    with pytest.raises(flags.IllegalFlagValueError):
        values(["prog", "--steps=0"])
    values(["prog", "--attention=luong", "--attention_units=64"])
    assert experiment.config_from(holders).attention == "luong"


def test_the_exported_signatures_decode_as_the_graphs_do(trained, tmp_path):
    """The four SavedModels (TF1 greedy and beam graphs, the twin's) answer the same signature
    with the same ids, those the graphs decode, end_token past each length."""
    from legacy_rnn.seq2seq import serving
    paths = serving.export_all(CONFIG, trained["values"], str(tmp_path / "export"))
    data = experiment.make_data(CONFIG, 25, np.random.default_rng(4))
    for mode in ("greedy", "beam"):
        expected = experiment.decode_graph(CONFIG, mode, trained["values"], data)
        answers = [serving.call(paths[f"{side}_{mode}"], data["source"], data["source_lengths"])
                   for side in ("tf1", "keras")]
        np.testing.assert_array_equal(answers[0]["ids"], answers[1]["ids"])
        np.testing.assert_array_equal(answers[0]["lengths"], answers[1]["lengths"])
        ids, lengths = answers[0]["ids"], answers[0]["lengths"]
        assert ids.shape == (25, CONFIG.maximum_iterations)
        for row in range(25):
            n = lengths[row]
            np.testing.assert_array_equal(ids[row, :n], expected[row, :n])
            assert np.all(ids[row, n:] == experiment.END)


# The program's flags for CONFIG.
ARGV = ["--flagfile=flags/seq2seq_attention_smoke.cfg", f"--steps={CONFIG.steps}",
        f"--eval_examples={CONFIG.eval_examples}",
        f"--length_penalty_weight={CONFIG.length_penalty_weight}"]


@pytest.fixture
def signals_installed():
    previous = interrupts.install()
    yield
    interrupts.restore(previous)


def test_a_run_stopped_by_sigterm_resumes_to_the_weights_of_the_uninterrupted_one(
        trained, tmp_path, monkeypatch, capsys, signals_installed):
    import tensorflow as tf
    model_dir = tmp_path / "run"
    argv = [*ARGV, f"--model_dir={model_dir}", "--checkpoint_steps=3"]
    draw = experiment.Batches.next_batch

    def next_batch(self, n):  # SIGTERM while step 5 trains (the 5th batch of this process)
        if self.drawn == 4:
            os.kill(os.getpid(), signal.SIGTERM)
        return draw(self, n)

    monkeypatch.setattr(experiment.Batches, "next_batch", next_batch)
    status, _, err = tool_output(experiment, "seq2seq_attention", argv, capsys)
    assert status == 128 + signal.SIGTERM, err
    assert (f"SIGTERM received: stopped after step 5 of {CONFIG.steps}. Saved "
            f"{model_dir / 'model.ckpt-5'}; rerun the same command to resume.") in err
    assert json.loads((model_dir / "metrics.json").read_text())["status"] == "interrupted"

    monkeypatch.setattr(experiment.Batches, "next_batch", draw)
    status, out, err = tool_output(experiment, "seq2seq_attention", argv, capsys)
    assert status == 0, err
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["status"] == "complete" and metrics["global_step"] == CONFIG.steps
    # The resumed run trained on the batches the uninterrupted one did, bitwise (one process).
    reader = tf.train.load_checkpoint(str(model_dir))
    for name, value in trained["values"].items():
        np.testing.assert_array_equal(reader.get_tensor(name), value, err_msg=name)
    for key in ("test_loss", "greedy_token_accuracy", "beam_exact_match", "beam_token_accuracy"):
        assert metrics[key] == trained[key], key
    assert f"beam_token_accuracy: {trained['beam_token_accuracy']:.4f}" in out

    # Another model in the same model_dir is refused, naming the setting; nothing is touched.
    before = {p: p.stat().st_mtime_ns for p in model_dir.iterdir()}
    status, _, err = tool_output(experiment, "seq2seq_attention", [*argv, "--units=8"], capsys)
    assert status == 1 and "holds a run with other settings (units: 16 there, 8 now)" in err
    assert before == {p: p.stat().st_mtime_ns for p in model_dir.iterdir()}


def test_the_golden_numbers_hold_here():
    """tests/golden/seq2seq_attention.json (`golden --update`): exact where it was recorded,
    float32 rounding elsewhere; the beam decoder's accuracy is a number that can move."""
    from legacy_rnn.regression import drift, golden
    name = "seq2seq_attention"
    recorded = golden.load(golden.golden_path(golden.DEFAULT_DIR, name), name)
    assert 0 <= recorded["metrics"]["greedy_token_accuracy"] < 1
    assert 0 < recorded["metrics"]["beam_token_accuracy"] < 1
    comparison = golden.compare(recorded, golden.run(name))
    assert comparison.ok, "\n".join(comparison.lines())
    if not comparison.environment_differs:
        assert comparison.verdict == drift.IDENTICAL


def test_unusable_directories_are_refused_before_anything_trains(tmp_path, capsys):
    """The program's --model_dir and --export_dir are checked as every program's are
    (`programs.preflight`), before TensorFlow's start-up and the training they would follow;
    nothing in them is touched."""
    file, full = tmp_path / "file", tmp_path / "full"
    file.write_text("not a directory")
    full.mkdir()
    (full / "saved_model.pb").write_bytes(b"an earlier export")
    for flag, message in ((f"--model_dir={file}", f"--model_dir={file} is not a writable "
                                                   "directory"),
                          (f"--export_dir={full}", f"--export_dir={full} exists and is not "
                                                   "empty")):
        status, out, err = tool_output(experiment, "seq2seq_attention", [*ARGV, flag], capsys)
        assert status == 1 and message in err and "step 1/" not in err + out, err
    assert file.read_text() == "not a directory"
    assert (full / "saved_model.pb").read_bytes() == b"an earlier export"
