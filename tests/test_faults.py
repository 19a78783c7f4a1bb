"""Determinism across processes, interrupt and resume, and faults: each leaves saved work intact."""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from legacy_rnn import atomic, experiments
from legacy_rnn.cli import entry
from legacy_rnn.cli import interrupts
from legacy_rnn.cli import programs
from legacy_rnn.data import toy as toy_data
from legacy_rnn.regression import golden
from legacy_rnn.training import checkpoints
from legacy_rnn.training import loop as training
from legacy_rnn.training import store
from legacy_rnn.conversion.convert import convert_checkpoint
from legacy_rnn.experiments.toy import TOY as TOY_EXPERIMENT, ToyConfig, toy_data_sets
from legacy_rnn.errors import UserError
from program_harness import REPO, program_in_process, run_program

SMOKE = "--flagfile=flags/toy_dynamic_rnn_smoke.cfg"


def snapshot(directory):
    """{relative path: sha256} of every file under `directory`: 'nothing saved was touched'."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def checkpoint_values(model_dir):
    reader = tf.train.load_checkpoint(str(model_dir))
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(str(model_dir))}


def assert_same_checkpoints(a, b):
    values_a, values_b = checkpoint_values(a), checkpoint_values(b)
    assert values_a.keys() == values_b.keys()
    for name in values_a:
        np.testing.assert_array_equal(values_a[name], values_b[name], err_msg=name)


def test_two_processes_give_bitwise_identical_losses_and_checkpoints(tmp_path, capsys):
    # One run in a fresh process, the other in this one (after whatever this worker ran before).
    result = run_program("toy_dynamic_rnn", SMOKE, "--display_step=1", f"--model_dir={tmp_path / 'a'}")
    assert result.returncode == 0, result.stderr[-2000:]
    status, err = program_in_process("toy_dynamic_rnn", [SMOKE, "--display_step=1",
                                                         f"--model_dir={tmp_path / 'b'}"], capsys)
    assert status == 0, err
    losses = [[h["loss"] for h in json.loads((tmp_path / r / "metrics.json").read_text())
               ["train_history"]] for r in ("a", "b")]
    assert len(losses[0]) == 10 and losses[0] == losses[1]
    assert_same_checkpoints(tmp_path / "a", tmp_path / "b")


LONG = [SMOKE, "--training_iters=7201", "--display_step=25", "--checkpoint_steps=1000"]
LONG_STEPS = 450


def interrupt(model_dir, signum, after_step):
    """Starts the long toy run, sends `signum` once it has logged `after_step`; returns the result."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "legacy_rnn.toy_dynamic_rnn", *LONG,
                             f"--model_dir={model_dir}"], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if f"step {after_step}/{LONG_STEPS} " in line:
            proc.send_signal(signum)
            break
    stdout, rest = proc.communicate(timeout=120)
    return proc.returncode, "".join(seen) + rest


def test_interrupted_and_resumed_run_ends_with_the_uninterrupted_weights(tmp_path, capsys,
                                                                          caplog):
    # The two interruptions are real signals to real processes; the reference and the final
    # resume run in this process (bitwise the same: see the two-processes test).
    status, err = program_in_process("toy_dynamic_rnn", [*LONG, f"--model_dir={tmp_path / 'whole'}"],
                                     capsys)
    assert status == 0, err

    run = tmp_path / "interrupted"
    code, stderr = interrupt(run, signal.SIGTERM, 100)
    assert code == 128 + signal.SIGTERM, stderr[-2000:]
    assert "SIGTERM received: stopped after step" in stderr
    assert "rerun the same command to resume" in stderr and "Traceback" not in stderr
    stopped = json.loads((run / "metrics.json").read_text())
    assert stopped["status"] == "interrupted" and 100 <= stopped["global_step"] < LONG_STEPS

    code, stderr = interrupt(run, signal.SIGINT, 300)
    assert code == 128 + signal.SIGINT, stderr[-2000:]
    assert f"resuming from step {stopped['global_step']} " in stderr
    assert "SIGINT received" in stderr and "Traceback" not in stderr

    with caplog.at_level("INFO", logger="absl"):  # whatever another test left it at
        status, err = program_in_process("toy_dynamic_rnn", [*LONG, f"--model_dir={run}"], capsys)
    assert status == 0, err
    assert "resuming from step" in caplog.text
    final = json.loads((run / "metrics.json").read_text())
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert final["status"] == "complete" and final["global_step"] == LONG_STEPS
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


def disk_full_after_the_first_save(monkeypatch):
    """Saver.save saves once, then fails as on a full disk; returns the real save."""
    real_save = tf.compat.v1.train.Saver.save
    calls = []

    def save_then_fail(self, *args, **kwargs):
        calls.append(kwargs.get("global_step"))
        if len(calls) > 1:
            raise OSError(28, "No space left on device")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(tf.compat.v1.train.Saver, "save", save_then_fail)
    return real_save


def test_a_failing_save_is_reported_and_the_previous_files_stay_readable(tmp_path, monkeypatch):
    disk_full_after_the_first_save(monkeypatch)
    with pytest.raises(UserError) as e:
        toy_run(tmp_path)
    assert ("Saving the checkpoint of step 4 in" in str(e.value) and "No space left on device"
            in str(e.value) and f"The last good checkpoint, {tmp_path / 'model.ckpt-2'}, is kept"
            in str(e.value))
    assert checkpoint_values(tmp_path)["global_step"] == 2
    assert json.loads((tmp_path / "metrics.json").read_text())["global_step"] == 2


def test_a_full_disk_at_a_save_is_one_paragraph_even_when_the_summaries_cannot_flush(
        tmp_path, monkeypatch, caplog):
    # Issue 21 #5: the writer's close, failing on the same full disk, raised its own error (80
    # lines of traceback) over the save's paragraph.
    real_save = disk_full_after_the_first_save(monkeypatch)

    def close_fails(self):
        raise tf.errors.ResourceExhaustedError(None, None, "events file: No space left on device")

    monkeypatch.setattr(tf.compat.v1.summary.FileWriter, "close", close_fails)
    with pytest.raises(UserError) as e, caplog.at_level("WARNING", logger="absl"):
        toy_run(tmp_path)
    assert "Saving the checkpoint of step 4" in str(e.value)
    assert "summaries" in caplog.text and "could not be flushed" in caplog.text
    # After a good run the same failure is said, and what was saved is named.
    monkeypatch.setattr(tf.compat.v1.train.Saver, "save", real_save)
    with pytest.raises(UserError, match="Flushing the TensorBoard summaries in .* failed .*The "
                                        "checkpoint and metrics.json were written first"):
        toy_run(tmp_path / "good")
    assert json.loads((tmp_path / "good" / "metrics.json").read_text())["status"] == "complete"


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


def test_program_refuses_a_checkpoint_of_another_model(tmp_path, capsys):
    assert program_in_process("toy_dynamic_rnn", [SMOKE, f"--model_dir={tmp_path}"], capsys)[0] == 0
    status, err = program_in_process("mnist_rnn", ["--n_hidden=8", "--data_dir=/nonexistent",
                                                   f"--init_checkpoint={tmp_path}"], capsys)
    assert status == 1
    assert "does not fit mnist_rnn: the cell reads 1 inputs per step, mnist_rnn feeds 28" in err


# --- The fault matrix: every file a program reads, resources, interruption, concurrency -------
# In-process where the fault can be injected (the entry point's own error handling is called
# directly: `entry.guarded`), one subprocess per signal-at-import case.

TOY_FLAGS = ["--n_hidden=4", "--seq_max_len=5", "--min_len=1", "--max_value=30", "--n_train=40",
             "--n_test=8", "--batch_size=8", "--training_iters=49", "--checkpoint_steps=2"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished toy run's --model_dir (checkpoints at steps 2, 4, 6; metrics.json)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    experiment = experiments.get("toy_dynamic_rnn")
    flag_values = flags.FlagValues()
    holders = programs.define(experiment, flag_values)
    flag_values(["prog", *TOY_FLAGS, f"--model_dir={run}"])
    assert programs.run(experiment, holders, ["prog"]) == 0
    return run


@pytest.fixture
def saved_run(finished_run, tmp_path):
    """A copy of `finished_run` this test may damage."""
    return shutil.copytree(finished_run, tmp_path / "run")


def _damage(run, what):
    prefix = checkpoints.resolve_prefix(str(run))
    if what == "checkpoint index garbage":
        (run / "checkpoint").write_bytes(b"\x00\xffnot a checkpoint state\n")
    elif what == "checkpoint index names missing files":
        for f in run.glob("model.ckpt-6.*"):
            f.unlink()
    elif what == ".index truncated":
        path = run / "model.ckpt-6.index"
        path.write_bytes(path.read_bytes()[:40])
    elif what == ".index empty":
        (run / "model.ckpt-6.index").write_bytes(b"")
    elif what == ".data truncated":
        path = next(run.glob("model.ckpt-6.data-*"))
        path.write_bytes(path.read_bytes()[:100])
    return prefix


DAMAGES = ["checkpoint index garbage", "checkpoint index names missing files", ".index truncated",
           ".index empty", ".data truncated"]
MESSAGES = {"checkpoint index garbage": "is unreadable",
            "checkpoint index names missing files": "names a checkpoint whose files are missing",
            ".index truncated": "Cannot read a checkpoint at",
            ".index empty": "Cannot read a checkpoint at",
            ".data truncated": "is damaged: its variables cannot be read"}


# Resume and --init_checkpoint build a graph each: three damages (the index, the .index, the
# .data) stand for all; convert, which builds none, meets all five.
PROGRAM_DAMAGES = ("checkpoint index garbage", ".index truncated", ".data truncated")


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_checkpoint_is_named_for_resume_init_and_convert(saved_run, damage, tmp_path,
                                                                    capsys):
    _damage(saved_run, damage)
    before = snapshot(saved_run)
    longer = [*TOY_FLAGS[:-2], "--training_iters=97", "--checkpoint_steps=2"]
    consumers = {} if damage not in PROGRAM_DAMAGES else {
        "resume": lambda: program_in_process("toy_dynamic_rnn",
                                             [*longer, f"--model_dir={saved_run}"], capsys),
        "--init_checkpoint": lambda: program_in_process(
            "toy_dynamic_rnn", [*TOY_FLAGS, f"--init_checkpoint={saved_run}", "--eval_only"],
            capsys),
    }
    for consumer, run in consumers.items():
        status, err = run()
        assert status == 1, (consumer, err)
        assert err.startswith("toy_dynamic_rnn: ") and "Traceback" not in err, (consumer, err)
        assert MESSAGES[damage] in err or "cannot resume from" in err or \
            "cannot be read" in err, (consumer, err)
        assert str(saved_run) in err, (consumer, err)
    with pytest.raises(UserError) as e:
        convert_checkpoint(str(saved_run), "toy_dynamic_rnn", str(tmp_path / "out.keras"))
    assert MESSAGES[damage] in str(e.value) and str(saved_run) in str(e.value)
    assert not (tmp_path / "out.keras").exists()
    assert snapshot(saved_run) == before  # nothing already saved was touched


def test_a_foreign_file_as_a_checkpoint_is_named(tmp_path, capsys):
    foreign = tmp_path / "notes.txt"
    foreign.write_text("not a checkpoint")
    status, err = program_in_process("toy_dynamic_rnn",
                                     [*TOY_FLAGS, f"--init_checkpoint={foreign}"], capsys)
    assert status == 1 and f"Cannot read a checkpoint at {foreign}" in err


@pytest.mark.parametrize("content", ['{"status": "training", "global_step"', "", "[1, 2, 3]",
                                     '{"config": "not a dict"}', '{"train_history": [{"x": 1}]}',
                                     '{"epoch_history": 7}'])
def test_a_half_written_metrics_json_stops_the_resume_with_the_fix(saved_run, content, capsys):
    (saved_run / "metrics.json").write_text(content)
    before = snapshot(saved_run)
    status, err = program_in_process("toy_dynamic_rnn",
                                     [*TOY_FLAGS[:-2], "--training_iters=97",
                                      f"--model_dir={saved_run}"], capsys)
    assert status == 1 and "Traceback" not in err
    assert f"{saved_run / 'metrics.json'} is damaged" in err and "Delete it to resume" in err
    assert snapshot(saved_run) == before


def test_an_unreadable_idx_file_is_named(idx_dir, capsys, monkeypatch):
    from legacy_rnn.data import mnist as mnist_data
    real_open = open

    def unreadable(path, *args, **kwargs):  # the tests run as root: chmod would not stop a read
        if str(path).endswith("t10k-labels-idx1-ubyte.gz"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(mnist_data, "open", unreadable, raising=False)
    status, err = program_in_process("mnist_rnn", ["--n_hidden=4", f"--data_dir={idx_dir}",
                                                   "--validation_size=0"], capsys)
    assert status == 1 and "Traceback" not in err
    assert "t10k-labels-idx1-ubyte.gz cannot be read (Permission denied)" in err


@pytest.mark.parametrize("content, message", [
    (b"--n_hidden=4\ngarbage\n", "Line 2 of --flagfile="),
    (b"\xff\xfe\x00", "is not a text file of flags"),
    (None, "cannot be read (No such file or directory)"),
])
def test_a_bad_flagfile_is_named(tmp_path, content, message):
    path = tmp_path / "preset.cfg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=re.escape(message)):
        entry.check_flagfiles([f"--flagfile={path}"])
    entry.check_flagfiles(["--flagfile=flags/toy_dynamic_rnn_smoke.cfg"])  # the presets pass


# Resources ---------------------------------------------------------------------------------

def test_out_of_memory_in_a_training_step_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    real_run = tf.compat.v1.Session.run
    calls = []

    def run(self, fetches, *args, **kwargs):
        if isinstance(fetches, list) and len(fetches) >= 2 and len(calls) == 2:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
        if isinstance(fetches, list) and len(fetches) >= 2:
            calls.append(1)
        return real_run(self, fetches, *args, **kwargs)

    monkeypatch.setattr(tf.compat.v1.Session, "run", run)
    with pytest.raises(UserError) as e:
        toy_run(tmp_path)
    assert "Out of memory at training step 3 (OOM when allocating tensor)" in str(e.value)
    assert f"the last good checkpoint, {tmp_path / 'model.ckpt-2'}, is kept" in str(e.value)
    assert checkpoint_values(tmp_path)["global_step"] == 2


def test_out_of_memory_while_building_or_loading_is_one_paragraph(monkeypatch, capsys):
    def too_big(*args, **kwargs):
        raise MemoryError("Unable to allocate 92.4 GiB for an array")

    monkeypatch.setattr(TOY_EXPERIMENT, "build_graph", too_big)
    status, err = program_in_process("toy_dynamic_rnn", TOY_FLAGS, capsys)
    assert status == 1 and "Traceback" not in err
    assert ("Out of memory while building the TF1 graph (Unable to allocate 92.4 GiB for an "
            "array)" in err and "smaller --batch_size or --n_hidden" in err)


def test_disk_full_writing_metrics_keeps_the_previous_ones(saved_run, monkeypatch, capsys):
    before = snapshot(saved_run)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    status, err = program_in_process("toy_dynamic_rnn", [
        *TOY_FLAGS, f"--model_dir={saved_run}", f"--init_checkpoint={saved_run}", "--eval_only"],
        capsys)
    assert status == 1 and "Writing" in err and "(No space left on device)" in err
    assert "the previous metrics.json is unchanged" in err
    after = snapshot(saved_run)
    assert {k: after[k] for k in before} == before  # (a new TensorBoard event file aside)
    assert not list(saved_run.glob("*.tmp"))


def test_a_full_disk_is_never_called_out_of_memory_and_names_where_it_was_writing():
    # Issue 21 #10: TensorFlow's writers report ENOSPC as RESOURCE_EXHAUSTED, which was taken
    # for memory ("use a smaller --batch_size"); an OSError without a file name named nothing.
    with pytest.raises(tf.errors.ResourceExhaustedError) as e, \
            interrupts.phase("exporting the SavedModel to /exports/m"):
        raise tf.errors.ResourceExhaustedError(
            None, None, "/exports/.partial-x/new/variables/variables.data-00000-of-00001.tempstate"
                        "123; No space left on device")
    message = entry.resource_failure(e.value)
    assert message.startswith("The disk is full while exporting the SavedModel to /exports/m (")
    assert "variables.data-00000-of-00001" in message and "batch_size" not in message
    with interrupts.phase("starting up (importing TensorFlow)"):
        message = entry.resource_failure(OSError(28, "No space left on device"))
    assert "while starting up (importing TensorFlow): a file the system did not name" in message
    assert tempfile.gettempdir() in message
    still_memory = entry.resource_failure(tf.errors.ResourceExhaustedError(
        None, None, "OOM when allocating tensor with shape[100000,100000]"))
    assert still_memory.startswith("Out of memory while")


def test_a_model_dir_that_disappears_mid_run_is_reported(tmp_path, monkeypatch):
    real_next = toy_data.ToySequenceData.next_batch
    calls = []

    def next_batch(self, n):
        calls.append(1)
        if len(calls) == 3:
            shutil.rmtree(tmp_path / "run")
        return real_next(self, n)

    monkeypatch.setattr(toy_data.ToySequenceData, "next_batch", next_batch)
    with pytest.raises(UserError) as e:
        toy_run(tmp_path / "run")
    assert f"--model_dir={tmp_path / 'run'} disappeared during the run (before saving step 4)" \
        in str(e.value)
    assert not (tmp_path / "run").exists()  # not recreated behind the user's back


def test_disk_full_while_converting_leaves_no_file(saved_run, tmp_path, monkeypatch):
    import keras

    def full(self, path, *args, **kwargs):
        open(path, "wb").write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", full)
    with pytest.raises(UserError, match=r"Cannot write .*out.keras \(No space left on device\)"):
        convert_checkpoint(str(saved_run), "toy_dynamic_rnn", str(tmp_path / "out.keras"))
    assert not list(tmp_path.glob("*.keras"))


def test_disk_full_while_updating_golden_files_keeps_them(tmp_path, monkeypatch, capsys):
    for name in golden.NAMES:
        (tmp_path / f"{name}.json").write_text("{}")
    before = snapshot(tmp_path)
    monkeypatch.setattr(golden, "record", lambda name: {"experiment": name})
    monkeypatch.setattr(atomic.json, "dump", lambda *a, **k: (_ for _ in ()).throw(
        OSError(28, "No space left on device")))
    status = entry.guarded("golden", lambda: golden.update(str(tmp_path)))
    err = capsys.readouterr().err
    assert status == 1 and "golden: The disk is full while" in err
    assert snapshot(tmp_path) == before


# Interruption --------------------------------------------------------------------------------

@pytest.fixture
def signals_installed():
    previous = interrupts.install()
    yield
    interrupts.restore(previous)


def _send(signum):
    os.kill(os.getpid(), signum)


# A program whose TensorFlow (and Keras) cannot be imported: whatever it refuses this way, it
# refused before loading them (issue 21: 8-15 s of start-up, 52 s on a loaded machine, came first).
WITHOUT_TENSORFLOW = """
import sys
class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(name + " was imported before the flags were checked")
sys.meta_path.insert(0, NoTensorFlow())
sys.argv = sys.argv[1:]
from legacy_rnn.cli import entry
entry.program(sys.argv[0])
"""


@pytest.mark.parametrize("program, flag, message", [
    ("toy_dynamic_rnn", "--n_hidden=-1", "flag --n_hidden=-1: --n_hidden must be a positive "
                                         "integer."),
    ("mnist_birnn", "--learning_rate=0", "--learning_rate must be a positive number."),
    ("toy_dynamic_rnn", "--export_dir={full}", "--export_dir={full} exists and is not empty. "
                                               "Choose another directory, or pass --overwrite"),
    ("imdb_rnn", "--model_dir={file}", "--model_dir={file} is not a writable directory"),
    ("series_rnn", "--model_dir={held}", "--model_dir={held} is in use by process"),
])
def test_bad_flags_and_unusable_directories_are_refused_before_tensorflow_loads(
        tmp_path, program, flag, message):
    paths = {"full": tmp_path / "full", "file": tmp_path / "file", "held": tmp_path / "held"}
    (paths["full"]).mkdir()
    (paths["full"] / "saved_model.pb").write_bytes(b"an earlier export")
    paths["file"].write_text("not a directory")
    paths["held"].mkdir()
    flag, message = flag.format(**paths), message.format(**paths)
    with store.ModelDirLock(str(paths["held"])):  # a live run holds it
        result = subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW, program, flag],
                                cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert (paths["full"] / "saved_model.pb").read_bytes() == b"an earlier export"


# A program and two tools (issue 21 #7: the tools imported TensorFlow before the handlers).
@pytest.mark.parametrize("command, signum", [
    (["toy_dynamic_rnn", "--flagfile=flags/toy_dynamic_rnn.cfg"], signal.SIGTERM),
    (["inspect", "no/such/model.ckpt"], signal.SIGINT),
    (["convert", "--checkpoint=no/such/model.ckpt", "--output=out"], signal.SIGTERM)])
def test_signal_during_import_stops_at_once_with_its_status(command, signum):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", f"legacy_rnn.{command[0]}", *command[1:]],
                            cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            start_new_session=True)  # like a background job: SIGINT not special
    time.sleep(0.5)  # Python is up; TensorFlow's import takes seconds
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err[-2000:]
    name = signal.Signals(signum).name
    assert f"{command[0]}: {name} received while starting up" in err
    assert "nothing was written" in err and "Traceback" not in err


def test_a_signal_raised_inside_a_gc_callback_still_stops_the_program(signals_installed):
    # Issue 21 #8: JAX's gc callback caught SIGTERM's Interrupted ("Exception ignored ...
    # Interrupted") about 3 times in 25, and the run went on to exit 0.
    import gc
    fired = []

    def callback(phase, info):
        if phase == "start" and not fired:
            fired.append(phase)
            _send(signal.SIGTERM)
            sum(range(1000))  # the handler runs here, inside the callback

    gc.callbacks.append(callback)
    try:
        with pytest.raises(interrupts.Interrupted) as e:
            gc.collect()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the program goes on after the collection
                pass
    finally:
        gc.callbacks.remove(callback)
    assert fired and e.value.signum == signal.SIGTERM


def test_a_signal_that_c_code_caught_and_printed_still_stops_the_program(signals_installed,
                                                                         monkeypatch, capsys):
    # Seen in the suite: SIGTERM landed while protobuf's descriptor pool ran Python from C++
    # during TensorFlow's import; it printed "Traceback ... Interrupted" and the import went on,
    # and convert ran to its end. Here a catch-all plays that C code.
    def import_swallowing_the_signal():
        try:
            _send(signal.SIGTERM)
            sum(range(1000))  # the handler raises here
        except BaseException as e:  # noqa: BLE001 - what the C extension did
            print(f"Traceback (most recent call last): ... {type(e).__name__}", file=sys.stderr)
        return (lambda: []), (lambda holders, argv: 0)

    monkeypatch.setattr(sys, "argv", ["convert"])
    status = entry.guarded("convert", lambda: entry._start("convert",
                                                           import_swallowing_the_signal))
    err = capsys.readouterr().err
    assert status == 128 + signal.SIGTERM, err
    assert "convert: SIGTERM received while starting up (importing TensorFlow)" in err
    # Reported: a rerun in this process starts clean.
    assert entry.guarded("convert", lambda: interrupts.raise_swallowed() or 0) == 0


@pytest.mark.parametrize("phase, target", [("loading the data", "load_data"),
                                           ("building the TF1 graph", "build_graph")])
def test_signal_while_loading_or_building_stops_with_143(phase, target, monkeypatch, capsys,
                                                         signals_installed, tmp_path):
    real = getattr(TOY_EXPERIMENT, target)

    def interrupted(*args, **kwargs):
        _send(signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(TOY_EXPERIMENT, target, interrupted)
    status, err = program_in_process("toy_dynamic_rnn", [*TOY_FLAGS,
                                                         f"--model_dir={tmp_path / 'run'}"],
                                     capsys)
    assert status == 143
    assert f"SIGTERM received while {phase}: stopped; nothing was written." in err
    assert not list((tmp_path / "run").glob("model.ckpt*"))


def test_signal_while_evaluating_saves_the_trained_steps_and_rerun_evaluates(
        tmp_path, monkeypatch, capsys, signals_installed):
    real = training.evaluate
    monkeypatch.setattr(training, "evaluate", lambda *a: (_send(signal.SIGINT), real(*a))[1])
    run = tmp_path / "run"
    args = [*TOY_FLAGS[:-1], "--checkpoint_steps=100", f"--model_dir={run}"]
    status, err = program_in_process("toy_dynamic_rnn", args, capsys)
    assert status == 130, err
    assert (f"SIGINT received: stopped while evaluating, after training step 6 of 6. Saved "
            f"{run / 'model.ckpt-6'}; rerun the same command to evaluate it.") in err
    monkeypatch.setattr(training, "evaluate", real)
    status, err = program_in_process("toy_dynamic_rnn", args, capsys)
    assert status == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "complete" and metrics["global_step"] == 6


def test_signal_while_exporting_says_what_was_kept_and_a_rerun_exports(
        tmp_path, monkeypatch, capsys, signals_installed):
    # Issue 21 #9: this said "nothing was written" with the checkpoint and metrics.json saved.
    from legacy_rnn.training import serving
    real = serving.export_tf1

    def export(*args, **kwargs):
        _send(signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(serving, "export_tf1", export)
    run, export_dir = tmp_path / "run", tmp_path / "export"
    args = [*TOY_FLAGS, f"--model_dir={run}", f"--export_dir={export_dir}"]
    status, err = program_in_process("toy_dynamic_rnn", args, capsys)
    assert status == 143, err
    assert (f"SIGTERM received: stopped while exporting the SavedModel to {export_dir} (not "
            f"written; what was there before is unchanged). The run completed and {run} holds "
            "its checkpoint and metrics.json; rerun the same command to export it") in err
    assert "nothing was written" not in err and not export_dir.exists()
    assert json.loads((run / "metrics.json").read_text())["status"] == "complete"
    monkeypatch.setattr(serving, "export_tf1", real)
    status, err = program_in_process("toy_dynamic_rnn", args, capsys)
    assert status == 0, err
    assert (export_dir / "saved_model.pb").exists()


def test_a_second_ctrl_c_while_saving_does_not_corrupt_the_checkpoint(
        tmp_path, monkeypatch, capsys, signals_installed):
    real_save = tf.compat.v1.train.Saver.save

    def save(self, *args, **kwargs):
        _send(signal.SIGINT)
        _send(signal.SIGINT)  # impatient
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(tf.compat.v1.train.Saver, "save", save)
    run = tmp_path / "run"
    status, err = program_in_process("toy_dynamic_rnn", [*TOY_FLAGS, f"--model_dir={run}"], capsys)
    assert status == 130, err
    assert f"SIGINT received: stopped after step 2 of 6. Saved {run / 'model.ckpt-2'}" in err
    values = checkpoint_values(run)
    assert values["global_step"] == 2 and all(np.all(np.isfinite(v)) for v in values.values())
    assert json.loads((run / "metrics.json").read_text())["status"] == "interrupted"


def test_signal_while_converting_leaves_no_file(saved_run, tmp_path, monkeypatch, capsys,
                                                signals_installed):
    import keras
    real_save = keras.Model.save

    def save(self, path, *args, **kwargs):
        _send(signal.SIGTERM)
        return real_save(self, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", save)
    status = entry.guarded("convert", lambda: convert_checkpoint(
        str(saved_run), "toy_dynamic_rnn", str(tmp_path / "out.keras")))
    assert status == 143
    assert (f"convert: SIGTERM received while writing {tmp_path / 'out.keras'}: stopped; nothing "
            "was written.") in capsys.readouterr().err  # not "while starting up" (issue 21)
    assert not list(tmp_path.glob("*.keras")) and not list(tmp_path.glob(".*.keras"))


def test_signal_during_golden_update_leaves_the_files(tmp_path, monkeypatch, capsys,
                                                      signals_installed):
    for name in golden.NAMES:
        (tmp_path / f"{name}.json").write_text("{}")
    before = snapshot(tmp_path)
    monkeypatch.setattr(golden, "record", lambda name: (_send(signal.SIGINT), {})[1])
    assert entry.guarded("golden", lambda: golden.update(str(tmp_path))) == 130
    assert snapshot(tmp_path) == before


# Concurrency -------------------------------------------------------------------------------

def test_a_model_dir_held_by_a_live_run_is_refused_naming_it(saved_run, capsys):
    before = snapshot(saved_run)
    with training.ModelDirLock(str(saved_run)):  # a live run: this process holds the lock
        status, err = program_in_process(
            "toy_dynamic_rnn", [*TOY_FLAGS[:-2], "--training_iters=97",
                                f"--model_dir={saved_run}"], capsys)
    assert status == 1
    assert f"--model_dir={saved_run} is in use by process {os.getpid()} on" in err
    assert "two runs writing one directory would mix their checkpoints" in err
    assert {k: v for k, v in snapshot(saved_run).items() if k != ".lock"} == before


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_warning(saved_run, capsys, caplog):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (saved_run / ".lock").write_text(json.dumps({"pid": int(dead), "host": socket.gethostname(),
                                                 "command": "toy_dynamic_rnn", "started": "x"}))
    with caplog.at_level("WARNING"):
        status, err = program_in_process(
            "toy_dynamic_rnn", [*TOY_FLAGS[:-2], "--training_iters=97",
                                f"--model_dir={saved_run}"], capsys)
    assert status == 0, err
    assert f"left by process {dead}, which no longer exists" in caplog.text
    assert not (saved_run / ".lock").exists()  # released at the end


def test_a_copied_model_dir_resumes_from_its_own_files(saved_run, finished_run, capsys):
    for f in finished_run.glob("model.ckpt-6.*"):  # the original loses its latest checkpoint
        f.rename(finished_run.parent / f.name)
    try:
        status, err = program_in_process("toy_dynamic_rnn", [
            *TOY_FLAGS[:-2], "--training_iters=97", f"--model_dir={saved_run}"], capsys)
    finally:
        for f in finished_run.parent.glob("model.ckpt-6.*"):
            f.rename(finished_run / f.name)
    assert status == 0, err
    assert json.loads((saved_run / "metrics.json").read_text())["global_step"] == 12
