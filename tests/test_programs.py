"""The three programs end to end, as a user runs them (one subprocess each), and in-process runs."""
import json
import re

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

import numpy_lstm
from program_harness import program_in_process, run_program
from legacy_rnn import experiments
from legacy_rnn.cli import programs
from legacy_rnn.data import mnist as mnist_data
from legacy_rnn.training import loop as training
from legacy_rnn.errors import UserError
from legacy_rnn.experiments.mnist import MNIST_BIRNN, MnistConfig
from legacy_rnn.experiments.toy import TOY, ToyConfig


def smoke(experiment, model_dir, *args):
    result = run_program(experiment, f"--flagfile=flags/{experiment}_smoke.cfg",
                         f"--model_dir={model_dir}", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert result.stdout.strip().splitlines()[-1] == f"test_accuracy: {metrics['test_accuracy']:.4f}"
    assert re.search(r"step 1/\d+ +examples \d+ +minibatch loss [\d.]+ +accuracy [\d.]+ +\d+ "
                     r"examples/s", result.stderr)
    assert list(model_dir.glob("events.out.tfevents.*"))
    for key in ("test_accuracy", "test_loss", "global_step", "train_seconds", "examples_per_sec"):
        assert key in metrics
    return metrics, dict(tf.train.list_variables(str(model_dir)))


def test_mnist_rnn_smoke_matches_a_numpy_evaluation_of_its_checkpoint(idx_dir, tmp_path):
    metrics, variables = smoke("mnist_rnn", tmp_path / "run", f"--data_dir={idx_dir}")
    # flags/mnist_rnn_smoke.cfg: batch 8, 41 examples -> 5 steps, display every 2 (and last).
    assert metrics["global_step"] == 5 and metrics["train_examples"] == 40
    assert [h["step"] for h in metrics["train_history"]] == [1, 2, 4, 5]
    assert metrics["test_examples"] == 20
    assert variables["rnn/basic_lstm_cell/kernel"] == [28 + 8, 32]
    assert variables["output/weights"] == [8, 10]

    reader = tf.train.load_checkpoint(str(tmp_path / "run"))
    kernel, bias, weights, biases = (reader.get_tensor(n) for n in (
        "rnn/basic_lstm_cell/kernel", "rnn/basic_lstm_cell/bias", "output/weights", "output/biases"))
    test = mnist_data.read_data_sets(data_dir=str(idx_dir), validation_size=0).test
    rows = test.images.reshape(-1, 28, 28).astype(np.float64)
    logits = numpy_lstm.lstm_outputs(rows, kernel, bias)[:, -1] @ weights + biases
    shifted = logits - logits.max(1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    loss = -(test.labels * log_softmax).sum(1).mean()
    accuracy = (logits.argmax(1) == test.labels.argmax(1)).mean()
    assert metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-9)
    assert metrics["test_loss"] == pytest.approx(loss, rel=1e-5)


def test_mnist_birnn_dynamic_in_process(idx_dir, tmp_path, capsys):
    status, err = program_in_process("mnist_birnn", [
        "--flagfile=flags/mnist_birnn_smoke.cfg", f"--data_dir={idx_dir}", "--rnn=dynamic",
        "--test_len=7", f"--model_dir={tmp_path / 'run'}"], capsys)
    assert status == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    variables = dict(tf.train.list_variables(str(tmp_path / "run")))
    assert metrics["test_examples"] == 7 and metrics["config"]["rnn"] == "dynamic"
    for direction in ("fw", "bw"):
        assert variables[f"bidirectional_rnn/{direction}/basic_lstm_cell/kernel"] == [28 + 8, 32]
    assert variables["output/weights"] == [16, 10]


def test_toy_smoke_is_offline_and_complete(tmp_path, capsys, caplog):
    # In-process: the toy's command line runs in subprocesses in tests/test_faults.py.

    run = tmp_path / "run"
    # The absl logger's own level: another test in this process may have left it at WARNING
    # (tf_keras's SavedModel writer does).
    with caplog.at_level("INFO", logger="absl"):
        status, err = program_in_process(
            "toy_dynamic_rnn", ["--flagfile=flags/toy_dynamic_rnn_smoke.cfg",
                                f"--model_dir={run}"], capsys)
    assert status == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert re.search(r"step 1/\d+ +examples \d+ +minibatch loss [\d.]+ +accuracy [\d.]+ +\d+ "
                     r"examples/s", caplog.text)
    assert list(run.glob("events.out.tfevents.*"))
    variables = dict(tf.train.list_variables(str(run)))
    # flags/toy_dynamic_rnn_smoke.cfg: 161 examples in batches of 16 -> 10 steps.
    assert metrics["global_step"] == 10 and metrics["test_examples"] == 24
    assert variables["rnn/basic_lstm_cell/kernel"] == [1 + 8, 32]
    assert variables["output/weights"] == [8, 2]


def test_bad_flags_exit_with_a_message_and_no_traceback():
    # One subprocess for the wiring (absl parsing, exit status); the validators in-process below.
    result = run_program("mnist_birnn", "--seq_max_len=5")
    assert result.returncode == 1
    assert "Unknown command line flag 'seq_max_len'" in result.stderr
    assert "Traceback" not in result.stderr


def _parse(experiment, argv):
    flag_values = flags.FlagValues()
    holders = programs.define(experiments.get(experiment), flag_values)
    flag_values(["prog", *argv])
    return programs.read(experiments.get(experiment), holders)


@pytest.mark.parametrize("experiment, argv, message", [
    ("mnist_rnn", ["--n_hidden=0"], "--n_hidden must be a positive integer"),
    ("toy_dynamic_rnn", ["--batch_size=-3"], "--batch_size must be a positive integer"),
    ("mnist_birnn", ["--learning_rate=0"], "--learning_rate must be a positive number"),
    ("toy_dynamic_rnn", ["--training_iters=0"], "--training_iters must be a positive integer"),
    ("mnist_rnn", ["--test_len=-1"], "--test_len must be 0 or more"),
    ("toy_dynamic_rnn", ["--min_len=8", "--seq_max_len=7"], "--min_len must not exceed --seq_max_len"),
    ("toy_dynamic_rnn", ["--max_value=10", "--seq_max_len=20"],
     "--max_value must be at least --seq_max_len"),
    ("mnist_rnn", ["--data_dir=a", "--tfds_data_dir=b"], "two different data sources"),
    ("mnist_birnn", ["--rnn=cudnn"], "value should be one of <static|dynamic>"),
])
def test_flag_validators_reject_bad_values(experiment, argv, message):
    with pytest.raises(flags.IllegalFlagValueError, match=re.escape(message)):
        _parse(experiment, argv)


def test_each_program_has_only_its_own_flags_with_its_seed_defaults():
    config, train = _parse("toy_dynamic_rnn", ["--n_hidden=1", "--min_len=20", "--seq_max_len=20"])
    assert config == ToyConfig(n_hidden=1, min_len=20, seq_max_len=20)
    assert train.training_iters == 1000000  # the toy seed's
    config, train = _parse("mnist_rnn", [])
    assert config == MnistConfig() and train.training_iters == 100000
    with pytest.raises(flags.UnrecognizedFlagError, match="seq_max_len"):
        _parse("mnist_rnn", ["--seq_max_len=5"])


TINY_TOY = ToyConfig(n_hidden=5, seq_max_len=6, min_len=1, max_value=30, n_train=40, n_test=16)
TINY_TRAIN = training.TrainConfig(batch_size=8, training_iters=97, display_step=100)


def test_same_seed_same_losses_other_seed_other_losses():
    runs = [TOY.run(TINY_TOY, TINY_TRAIN) for _ in range(2)]
    other = TOY.run(ToyConfig(**{**TINY_TOY.__dict__, "seed": 1}), TINY_TRAIN)
    assert len(runs[0]["step_losses"]) == 12
    assert runs[0]["step_losses"] == runs[1]["step_losses"]
    assert runs[0]["test_loss"] == runs[1]["test_loss"]
    assert other["step_losses"] != runs[0]["step_losses"]


def test_mnist_accepts_injected_data_sets(idx_dir):
    data = mnist_data.read_data_sets(data_dir=str(idx_dir), validation_size=0, seed=0)
    metrics = MNIST_BIRNN.run(MnistConfig(n_hidden=4), training.TrainConfig(
        batch_size=10, training_iters=31), data=experiments.Data(
            data.train, (data.test.images, data.test.labels)))
    assert metrics["global_step"] == 3 and metrics["test_examples"] == 20
    assert len(metrics["step_losses"]) == 3 and all(np.isfinite(metrics["step_losses"]))


def test_test_len_beyond_the_test_split_is_refused():
    with pytest.raises(UserError, match="--test_len=17 is more than the 16"):
        TOY.run(ToyConfig(**{**TINY_TOY.__dict__, "test_len": 17}), TINY_TRAIN)
