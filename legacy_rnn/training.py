"""Training and evaluation of a built `graphs.Model` in a tf.compat.v1 Session.

With a model_dir, a run checkpoints every `checkpoint_steps`, on SIGINT/SIGTERM and at the end,
and rewrites `metrics.json` with each checkpoint. Rerunning the same command resumes from the
latest checkpoint; the batches already used are drawn again and skipped, so an interrupted and
resumed run ends with the same weights as an uninterrupted one. A kill at any moment leaves the
previous checkpoint and metrics.json readable: each save writes new files first (TF's Saver
updates its `checkpoint` index only after the new prefix is complete, and metrics.json is
replaced by rename).
"""
import contextlib
import dataclasses
import json
import os
import signal
import threading
import time

import numpy as np
import tensorflow as tf
from absl import logging

from legacy_rnn.errors import UserError

CHECKPOINT_NAME = "model.ckpt"
METRICS_FILE = "metrics.json"
# Test examples per Session.run while evaluating: bounds memory for the 10,000 MNIST test images.
EVAL_CHUNK = 1000
# Settings a resumed run may change: they do not alter the weights a step produces.
RESUMABLE_CHANGES = frozenset({"test_len", "rnn", "data_dir", "tfds_data_dir", "training_iters"})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train, whatever the model. Defaults are the MNIST seed's."""
    batch_size: int = 128
    training_iters: int = 100000  # examples, as in the seeds: steps = (training_iters - 1) // batch
    display_step: int = 10
    model_dir: str | None = None
    checkpoint_steps: int = 1000  # with a model_dir: save every this many steps (and at the end)
    init_checkpoint: str | None = None  # start from these weights (see checkpoints.py)
    eval_only: bool = False  # with init_checkpoint: evaluate it, train nothing


class Interrupted(UserError):
    """SIGINT or SIGTERM stopped training; the exit status is the shell's 128 + signal."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.exit_code = 128 + signum


def num_steps(training_iters, batch_size):
    """The seeds' `while step * batch_size < training_iters` loop, counted from step 1."""
    return max(0, (training_iters - 1) // batch_size)


def evaluate(sess, model, inputs):
    """(mean loss, accuracy) of `model` over the arrays `inputs`, fed in chunks."""
    n = len(inputs[0])
    loss_sum = correct = 0.0
    for start in range(0, n, EVAL_CHUNK):
        feed = {p: a[start:start + EVAL_CHUNK] for p, a in zip(model.inputs, inputs)}
        loss, accuracy = sess.run([model.loss, model.accuracy], feed)
        k = len(feed[model.inputs[0]])
        loss_sum += float(loss) * k
        correct += round(float(accuracy) * k)
    return loss_sum / n, correct / n


def write_json_atomically(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _prepare_model_dir(model_dir):
    try:
        os.makedirs(model_dir, exist_ok=True)
        probe = os.path.join(model_dir, ".write_test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise UserError(f"--model_dir={model_dir} is not a writable directory ({e.strerror}). "
                        "Choose a directory you can write to, or leave --model_dir out.") from None


@contextlib.contextmanager
def _signals_recorded(received):
    """While active, SIGINT/SIGTERM append to `received` instead of killing the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, lambda signum, _: received.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class _Persistence:
    """Checkpoints, summaries and metrics.json of one run in `model_dir` (all no-ops without)."""

    def __init__(self, model, config, signature):
        self.dir = config.model_dir
        self.signature = signature
        with model.graph.as_default():
            self.saver = tf.compat.v1.train.Saver(max_to_keep=3)
            self.summaries = tf.compat.v1.summary.merge([
                tf.compat.v1.summary.scalar("loss", model.loss),
                tf.compat.v1.summary.scalar("accuracy", model.accuracy)])
            self.writer = (tf.compat.v1.summary.FileWriter(self.dir, model.graph)
                           if self.dir else None)
        self.metrics_path = os.path.join(self.dir, METRICS_FILE) if self.dir else None

    def latest(self):
        return tf.train.latest_checkpoint(self.dir) if self.dir else None

    def previous_metrics(self):
        """metrics.json of the run being resumed; refuses one made with other settings."""
        if not (self.metrics_path and os.path.exists(self.metrics_path)):
            return {}
        with open(self.metrics_path) as f:
            previous = json.load(f)
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
        if not self.dir:
            return None
        try:
            prefix = self.saver.save(sess, os.path.join(self.dir, CHECKPOINT_NAME),
                                     global_step=step)
            self.write_metrics(metrics)
        except (OSError, tf.errors.OpError) as e:
            reason = getattr(e, "strerror", None) or getattr(e, "message", None) or str(e)
            kept = self.latest()
            kept = (f"The last good checkpoint, {kept}, is kept" if kept
                    else "No earlier checkpoint exists")
            raise UserError(
                f"Saving the checkpoint of step {step} in {self.dir} failed ({reason}). {kept}; "
                "free space or fix the directory, then rerun the same command to resume."
            ) from None
        return prefix

    def write_metrics(self, metrics):
        write_json_atomically(self.metrics_path, {**metrics, "config": self.signature})

    def scalars(self, step, **values):
        if self.writer:
            self.writer.add_summary(tf.compat.v1.Summary(value=[
                tf.compat.v1.Summary.Value(tag=k, simple_value=v) for k, v in values.items()]),
                step)

    def close(self):
        if self.writer:
            self.writer.close()


def train_and_evaluate(model, config, train_set, test_inputs, init_map=None, run_config=None,
                       probe_size=0):
    """Trains `model` on batches of `train_set.next_batch`, then evaluates on `test_inputs`.

    With `config.init_checkpoint`, the variables named in `init_map` ({graph variable name:
    checkpoint variable name}) start from that checkpoint; `config.eval_only` then skips training.
    A checkpoint already in `config.model_dir` takes precedence: the run resumes from it.
    `run_config` (a dict of the model's settings) identifies the run: resuming with other
    settings is refused. Returns the metrics (as written to metrics.json) plus `step_losses`
    (every step run in this process) and `probe_logits`, the trained model's logits on the first
    `probe_size` test examples.
    """
    steps = 0 if config.eval_only else num_steps(config.training_iters, config.batch_size)
    if config.model_dir:
        _prepare_model_dir(config.model_dir)
    signature = {**(run_config or {}), "batch_size": config.batch_size,
                 "training_iters": config.training_iters}
    store = _Persistence(model, config, signature)
    with model.graph.as_default():
        init = tf.compat.v1.global_variables_initializer()
        variables = {v.op.name: v for v in tf.compat.v1.global_variables()}
        init_saver = (tf.compat.v1.train.Saver({ckpt: variables[name]
                                                for name, ckpt in init_map.items()})
                      if config.init_checkpoint else None)
    model.graph.finalize()

    with tf.compat.v1.Session(graph=model.graph) as sess, contextlib.closing(store):
        sess.run(init)
        resume_from = None if config.eval_only else store.latest()
        history = []
        if resume_from:
            history = store.previous_metrics().get("train_history", [])
            try:
                store.saver.restore(sess, resume_from)
            except tf.errors.OpError as e:
                raise UserError(f"--model_dir={config.model_dir} holds a checkpoint this model "
                                f"cannot resume from ({e.message.splitlines()[0]}). Pass another "
                                "--model_dir, or the flags of the run that wrote it.") from None
            logging.info("resuming from step %d (%s)", sess.run(model.global_step), resume_from)
        elif config.init_checkpoint:
            init_saver.restore(sess, config.init_checkpoint)
            logging.info("started from %s", config.init_checkpoint)
        first_step = int(sess.run(model.global_step)) + 1
        history = [h for h in history if h["step"] < first_step]
        examples = skipped = sum(len(train_set.next_batch(config.batch_size)[0])
                                 for _ in range(first_step - 1))  # what the checkpoint has seen

        def progress_metrics(step, status):
            return {"status": status, "global_step": step, "train_examples": examples,
                    "train_history": history}

        step_losses, received = [], []
        start = window_start = time.perf_counter()
        window_examples = 0
        last_saved = first_step - 1
        with _signals_recorded(received):
            for step in range(first_step, steps + 1):
                batch = train_set.next_batch(config.batch_size)
                display = step == 1 or step % config.display_step == 0 or step == steps
                # Accuracy and summaries only where shown: ops not fetched are not run.
                fetches = [model.train_op, model.loss]
                if display:
                    fetches.append(model.accuracy)
                    if store.writer:
                        fetches.append(store.summaries)
                _, loss, *shown = sess.run(fetches, dict(zip(model.inputs, batch)))
                if not np.isfinite(loss):
                    kept = store.latest()
                    kept = f"last good checkpoint: {kept}" if kept else "no checkpoint was saved"
                    raise UserError(
                        f"The training loss became {loss} at step {step}; training stopped there "
                        f"and saved nothing more ({kept}). Check the input data for NaN/Inf "
                        "values, or lower --learning_rate.")
                step_losses.append(float(loss))
                examples += len(batch[0])
                window_examples += len(batch[0])
                if display:
                    accuracy, *summary = shown
                    now = time.perf_counter()
                    rate = window_examples / (now - window_start)
                    window_start, window_examples = now, 0
                    logging.info("step %d/%d  examples %d  minibatch loss %.6f  accuracy %.4f  "
                                 "%.0f examples/s", step, steps, examples, loss, accuracy, rate)
                    history.append({"step": step, "examples": examples, "loss": float(loss),
                                    "accuracy": float(accuracy)})
                    if summary:
                        store.writer.add_summary(summary[0], step)
                if received:
                    prefix = store.save(sess, step, progress_metrics(step, "interrupted"))
                    name = signal.Signals(received[0]).name
                    raise Interrupted(
                        f"{name} received: stopped after step {step} of {steps}. " +
                        (f"Saved {prefix}; rerun the same command to resume."
                         if prefix else "Nothing was saved (no --model_dir)."), received[0])
                if config.model_dir and step % config.checkpoint_steps == 0 and step < steps:
                    store.save(sess, step, progress_metrics(step, "training"))
                    last_saved = step
        train_seconds = time.perf_counter() - start

        test_loss, test_accuracy = evaluate(sess, model, test_inputs)
        final_step = int(sess.run(model.global_step))
        metrics = {
            **progress_metrics(final_step, "evaluated" if config.eval_only else "complete"),
            "test_accuracy": test_accuracy,
            "test_loss": test_loss,
            "test_examples": len(test_inputs[0]),
            "train_seconds": train_seconds,
            "examples_per_sec": ((examples - skipped) / train_seconds if examples > skipped
                                 else None),
        }
        if config.model_dir:
            if config.eval_only or final_step == last_saved:
                store.write_metrics(metrics)
            else:
                store.save(sess, final_step, metrics)
            store.scalars(final_step, test_accuracy=test_accuracy, test_loss=test_loss)
        result = {**metrics, "config": signature, "step_losses": step_losses}
        if probe_size:
            result["probe_logits"] = sess.run(
                model.logits, {p: a[:probe_size] for p, a in zip(model.inputs, test_inputs)})
    return result
