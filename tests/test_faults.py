"""Determinism across processes, interrupt and resume, and faults: each leaves saved work intact."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from legacy_rnn import toy_data, training
from legacy_rnn.experiments.toy import TOY as TOY_EXPERIMENT, ToyConfig, toy_data_sets
from legacy_rnn.errors import UserError
from test_programs import REPO, run_program

SMOKE = "--flagfile=flags/toy_dynamic_rnn_smoke.cfg"


def checkpoint_values(model_dir):
    reader = tf.train.load_checkpoint(str(model_dir))
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(str(model_dir))}


def assert_same_checkpoints(a, b):
    values_a, values_b = checkpoint_values(a), checkpoint_values(b)
    assert values_a.keys() == values_b.keys()
    for name in values_a:
        np.testing.assert_array_equal(values_a[name], values_b[name], err_msg=name)


def test_two_processes_give_bitwise_identical_losses_and_checkpoints(tmp_path):
    for run in ("a", "b"):
        result = run_program("toy_dynamic_rnn", SMOKE, "--display_step=1",
                             f"--model_dir={tmp_path / run}")
        assert result.returncode == 0, result.stderr[-2000:]
    losses = [[h["loss"] for h in json.loads((tmp_path / r / "metrics.json").read_text())
               ["train_history"]] for r in ("a", "b")]
    assert len(losses[0]) == 10 and losses[0] == losses[1]
    assert_same_checkpoints(tmp_path / "a", tmp_path / "b")


LONG = [SMOKE, "--training_iters=48001", "--display_step=50", "--checkpoint_steps=1000"]


def interrupt(model_dir, signum, after_step):
    """Starts the long toy run, sends `signum` once it has logged `after_step`; returns the result."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "legacy_rnn.toy_dynamic_rnn", *LONG,
                             f"--model_dir={model_dir}"], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if f"step {after_step}/3000 " in line:
            proc.send_signal(signum)
            break
    stdout, rest = proc.communicate(timeout=120)
    return proc.returncode, "".join(seen) + rest


def test_interrupted_and_resumed_run_ends_with_the_uninterrupted_weights(tmp_path):
    reference = run_program("toy_dynamic_rnn", *LONG, f"--model_dir={tmp_path / 'whole'}")
    assert reference.returncode == 0, reference.stderr[-2000:]

    run = tmp_path / "interrupted"
    code, stderr = interrupt(run, signal.SIGTERM, 500)
    assert code == 128 + signal.SIGTERM, stderr[-2000:]
    assert "SIGTERM received: stopped after step" in stderr
    assert "rerun the same command to resume" in stderr and "Traceback" not in stderr
    stopped = json.loads((run / "metrics.json").read_text())
    assert stopped["status"] == "interrupted" and 500 <= stopped["global_step"] < 3000

    code, stderr = interrupt(run, signal.SIGINT, 2000)
    assert code == 128 + signal.SIGINT, stderr[-2000:]
    assert f"resuming from step {stopped['global_step']} " in stderr
    assert "SIGINT received" in stderr and "Traceback" not in stderr

    resumed = run_program("toy_dynamic_rnn", *LONG, f"--model_dir={run}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from step" in resumed.stderr
    final = json.loads((run / "metrics.json").read_text())
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert final["status"] == "complete" and final["global_step"] == 3000
    assert final["train_history"] == whole["train_history"]
    assert final["test_loss"] == whole["test_loss"]
    assert_same_checkpoints(run, tmp_path / "whole")


TOY = ToyConfig(n_hidden=4, seq_max_len=5, min_len=1, max_value=30, n_train=40,
                            n_test=8)


def toy_run(model_dir, train_set=None, **train):
    """Runs the tiny toy model through training.train_and_evaluate with `train` settings."""
    model = TOY_EXPERIMENT.build_graph(TOY)
    train_data, test = toy_data_sets(TOY)
    config = training.TrainConfig(**{"batch_size": 8, "training_iters": 49, "model_dir":
                                     str(model_dir), "checkpoint_steps": 2, **train})
    return training.train_and_evaluate(model, config, train_set or train_data,
                                       (test.data, test.labels, test.seqlen))


def test_nan_loss_stops_at_the_first_bad_step_and_keeps_the_last_good_checkpoint(tmp_path):
    train = toy_data.ToySequenceData(np.random.default_rng(0), 40, 5, 1, 30)
    train.data[20, 0, 0] = np.nan  # in the third batch of 8
    with pytest.raises(UserError) as e:
        toy_run(tmp_path, train)
    assert "The training loss became nan at step 3" in str(e.value)
    assert f"last good checkpoint: {tmp_path / 'model.ckpt-2'}" in str(e.value)
    values = checkpoint_values(tmp_path)
    assert values["global_step"] == 2 and all(np.all(np.isfinite(v)) for v in values.values())
    assert json.loads((tmp_path / "metrics.json").read_text())["global_step"] == 2


def test_a_failing_save_is_reported_and_the_previous_files_stay_readable(tmp_path, monkeypatch):
    real_save = tf.compat.v1.train.Saver.save
    calls = []

    def save_then_fail(self, *args, **kwargs):
        calls.append(kwargs.get("global_step"))
        if len(calls) > 1:
            raise OSError(28, "No space left on device")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(tf.compat.v1.train.Saver, "save", save_then_fail)
    with pytest.raises(UserError) as e:
        toy_run(tmp_path)
    assert ("Saving the checkpoint of step 4 in" in str(e.value) and "No space left on device"
            in str(e.value) and f"The last good checkpoint, {tmp_path / 'model.ckpt-2'}, is kept"
            in str(e.value))
    assert checkpoint_values(tmp_path)["global_step"] == 2
    assert json.loads((tmp_path / "metrics.json").read_text())["global_step"] == 2


def test_resuming_with_other_settings_is_refused(tmp_path):
    toy_run(tmp_path)
    with pytest.raises(UserError, match=r"holds a run with other settings \(batch_size: 8 there, "
                                        r"4 now\)"):
        toy_run(tmp_path, batch_size=4)


def test_unwritable_model_dir_is_refused_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(UserError, match="is not a writable directory"):
        toy_run(blocker / "run")


def test_program_refuses_a_checkpoint_of_another_model(tmp_path):
    assert run_program("toy_dynamic_rnn", SMOKE, f"--model_dir={tmp_path}").returncode == 0
    result = run_program("mnist_rnn", "--data_dir=/nonexistent", f"--init_checkpoint={tmp_path}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "does not fit mnist_rnn: the cell reads 1 inputs per step, mnist_rnn feeds 28" in \
        result.stderr
