"""A run's `--model_dir`: the lock that gives it to one run at a time, and what a run keeps there
(checkpoints, `metrics.json`, TensorBoard summaries), saved so that a kill at any moment leaves the
previous save readable, and resumed only into a run with the same settings.
"""
import contextlib
import fcntl
import json
import os
import signal
import socket
import sys
import time

from absl import logging

from legacy_rnn import atomic, lazy
from legacy_rnn.cli import interrupts
from legacy_rnn.errors import UserError

tf = lazy.module("tensorflow")  # loaded when used: the flags are checked first (lazy.py)

CHECKPOINT_NAME = "model.ckpt"
METRICS_FILE = "metrics.json"
LOCK_FILE = ".lock"
# Settings a resumed run may change: they do not alter the weights a step produces.
RESUMABLE_CHANGES = frozenset({"test_len", "rnn", "data_dir", "tfds_data_dir", "data_path",
                               "training_iters", "baselines"})


def prepare_model_dir(model_dir):
    try:
        os.makedirs(model_dir, exist_ok=True)
        probe = os.path.join(model_dir, ".write_test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise UserError(f"--model_dir={model_dir} is not a writable directory ({e.strerror}). "
                        "Choose a directory you can write to, or leave --model_dir out.") from None


def _is_history(records):
    """A train_history / epoch_history as a run writes it: a list of records with their step."""
    return isinstance(records, list) and all(
        isinstance(r, dict) and isinstance(r.get("step"), int) for r in records)


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ModelDirLock:
    """An exclusive `flock` on `model_dir/.lock`, which names the holder (pid, host, command).

    The kernel releases a flock when its process dies, so a lock left by a crashed or killed run
    never blocks: it is taken over, with a warning naming the dead process. A live holder makes
    the second run stop with a message naming it.
    """

    def __init__(self, model_dir):
        self.path = os.path.join(model_dir, LOCK_FILE)
        self.file = None

    def _holder(self):
        try:
            with open(self.path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def __enter__(self):
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder()
            self.file.close()
            who = (f"process {holder.get('pid', '?')} on {holder.get('host', '?')} "
                   f"(`{holder.get('command', '?')}`, started {holder.get('started', '?')})")
            raise UserError(f"--model_dir={os.path.dirname(self.path)} is in use by {who}. Wait "
                            "for it to finish or stop it, or pass another --model_dir; two runs "
                            "writing one directory would mix their checkpoints.") from None
        previous = self._holder()
        if previous.get("pid") and previous.get("host") == socket.gethostname() and \
                previous["pid"] != os.getpid() and not _process_alive(previous["pid"]):
            logging.warning("took over %s, left by process %d, which no longer exists",
                            self.path, previous["pid"])
        self.file.seek(0)
        self.file.truncate()
        json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                   "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])[:300],
                   "started": time.strftime("%Y-%m-%d %H:%M:%S")}, self.file)
        self.file.flush()
        return self

    def __exit__(self, *exc):
        with contextlib.suppress(OSError):
            os.remove(self.path)
        self.file.close()


class Persistence:
    """Checkpoints, summaries and metrics.json of one run in `model_dir` (all no-ops without)."""

    def __init__(self, model, config, signature):
        self.dir = config.model_dir
        self.signature = signature
        self.graph = model.graph
        with model.graph.as_default():
            # Relative paths in the `checkpoint` index: a model_dir moved or copied resumes from
            # its own files (with absolute ones, a copy would restore the original's).
            self.saver = tf.compat.v1.train.Saver(max_to_keep=3, save_relative_paths=True)
            self.summaries = tf.compat.v1.summary.merge([
                tf.compat.v1.summary.scalar("loss", model.loss),
                tf.compat.v1.summary.scalar(model.metric_name, model.metric)])
        self.writer = None
        self.metrics_path = os.path.join(self.dir, METRICS_FILE) if self.dir else None

    def open_writer(self):
        """TensorBoard's event file, opened once the run is known to go ahead."""
        if self.dir:
            self.writer = tf.compat.v1.summary.FileWriter(self.dir, self.graph)

    def latest(self):
        if not self.dir:
            return None
        from legacy_rnn.training.checkpoints import resolve_prefix  # the same reading for every path
        if not os.path.exists(os.path.join(self.dir, "checkpoint")):
            return None
        return resolve_prefix(self.dir)

    def previous_metrics(self):
        """metrics.json of the run being resumed; refuses one made with other settings."""
        if not (self.metrics_path and os.path.exists(self.metrics_path)):
            return {}
        try:
            with open(self.metrics_path, encoding="utf-8") as f:
                previous = json.load(f)
            if not isinstance(previous, dict) or not isinstance(previous.get("config", {}), dict)\
                    or not all(_is_history(previous.get(key, []))
                               for key in ("train_history", "epoch_history")):
                raise ValueError("not the object a run writes")
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise UserError(
                f"{self.metrics_path} is damaged ({type(e).__name__}: {str(e)[:200]}), so this "
                "run cannot check what it would resume. Delete it to resume from the latest "
                "checkpoint anyway (the progress history before it is lost), or pass another "
                "--model_dir to start a new run. Nothing was changed.") from None
        old = previous.get("config", {})
        changed = sorted(k for k in set(old) | set(self.signature)
                         if k not in RESUMABLE_CHANGES and old.get(k) != self.signature.get(k))
        if changed:
            diffs = ", ".join(f"{k}: {old.get(k)!r} there, {self.signature.get(k)!r} now"
                              for k in changed)
            raise UserError(f"--model_dir={self.dir} holds a run with other settings ({diffs}). "
                            "Rerun with that run's flags to resume it, or pass another "
                            "--model_dir to start a new run.")
        return previous

    def save(self, sess, step, metrics):
        """Saves checkpoint and metrics.json, uninterruptibly; the prefix, or None."""
        if not self.dir:
            return None
        if not os.path.isdir(self.dir):
            raise UserError(f"--model_dir={self.dir} disappeared during the run (before saving "
                            f"step {step}). Stopped without saving, rather than recreate a "
                            "directory someone removed; rerun to train again.")
        try:
            with interrupts.deferred():
                prefix = self.saver.save(sess, os.path.join(self.dir, CHECKPOINT_NAME),
                                         global_step=step)
                self.write_metrics(metrics)
        except (OSError, ValueError, tf.errors.OpError) as e:
            reason = (getattr(e, "strerror", None) or getattr(e, "message", None)
                      or str(e).splitlines()[0])
            kept = self.kept()
            raise UserError(
                f"Saving the checkpoint of step {step} in {self.dir} failed ({reason}). {kept}; "
                "free space or fix the directory, then rerun the same command to resume."
            ) from None
        return prefix

    def kept(self):
        try:
            kept = self.latest()
        except UserError:
            kept = None
        return (f"The last good checkpoint, {kept}, is kept" if kept
                else "No earlier checkpoint exists")

    def write_metrics(self, metrics):
        try:
            atomic.write_json(self.metrics_path, {**metrics, "config": self.signature})
        except OSError as e:
            raise UserError(f"Writing {self.metrics_path} failed ({e.strerror}). {self.kept()}, "
                            "and the previous metrics.json is unchanged; free space or fix the "
                            "directory, then rerun.") from None

    def scalars(self, step, **values):
        if self.writer:
            self.writer.add_summary(tf.compat.v1.Summary(value=[
                tf.compat.v1.Summary.Value(tag=k, simple_value=v) for k, v in values.items()]),
                step)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        """Closes the summary writer (flushing its last events). Failing to flush (a full disk)
        loses only TensorBoard events: over an error that already stops the run it is a warning,
        never a traceback raised in that error's place; after a good run it is said."""
        if not self.writer:
            return False
        try:
            self.writer.close()
        except (OSError, tf.errors.OpError) as e:
            reason = (getattr(e, "strerror", None) or getattr(e, "message", None)
                      or str(e).splitlines()[0])[:200]
            if exc is not None:
                logging.warning("the TensorBoard summaries in %s could not be flushed (%s)",
                                self.dir, reason)
                return False
            raise UserError(f"Flushing the TensorBoard summaries in {self.dir} failed ({reason}). "
                            "The checkpoint and metrics.json were written first and are kept; "
                            "only the summaries' last events are lost. Free space if the disk "
                            "is full.") from None
        return False



def save_at_stop(store, sess, step, metrics, last_saved, has_model_dir):
    """The one save-on-signal path: the checkpoint prefix holding step `step` (saved now unless
    the last save was this step, when only metrics.json is rewritten), or None without a
    model_dir."""
    if not has_model_dir:
        return None
    if last_saved != step:
        return store.save(sess, step, metrics)
    store.write_metrics(metrics)  # the signal came during this step's own save
    return store.latest()


def stopped_message(signum, what, prefix, rerun_to):
    return (f"{signal.Signals(signum).name} received: {what}. " +
            (f"Saved {prefix}; rerun the same command to {rerun_to}." if prefix
             else "Nothing was saved (no --model_dir)."))
