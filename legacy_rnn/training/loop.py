"""Training and evaluation of a built `graphs.Model` in a tf.compat.v1 Session.

With a model_dir, a run checkpoints every `checkpoint_steps`, on SIGINT/SIGTERM and at the end,
and rewrites `metrics.json` with each checkpoint. Rerunning the same command resumes from the
latest checkpoint; the batches already used are drawn again and skipped, so an interrupted and
resumed run ends with the same weights as an uninterrupted one. A kill at any moment leaves the
previous checkpoint and metrics.json readable: each save writes new files first (TF's Saver
updates its `checkpoint` index only after the new prefix is complete, and metrics.json is
replaced by rename), and a signal waits for a save to finish. One run at a time holds a
model_dir (`store.ModelDirLock`); what is kept there, and how, is `store.py`.
"""
import dataclasses
import signal
import time

import numpy as np
from absl import logging

from legacy_rnn import lazy
from legacy_rnn.cli import interrupts
from legacy_rnn.training import serving
from legacy_rnn.training.config import TrainConfig  # noqa: F401  (training.TrainConfig)
from legacy_rnn.training.store import (ModelDirLock, Persistence, prepare_model_dir,
                                       save_at_stop, stopped_message)
from legacy_rnn.errors import UserError

tf = lazy.module("tensorflow")  # loaded when used: the flags are checked first (lazy.py)

# Test examples per Session.run while evaluating: bounds memory for the 10,000 MNIST test images.
EVAL_CHUNK = 1000


def train_steps(config, train_set):
    """Steps a run trains: `epochs` passes over `train_set` (whose `steps_per_epoch` says how many
    batches one is), or the seeds' count from `training_iters`."""
    if config.epochs:
        return config.epochs * train_set.steps_per_epoch(config.batch_size)
    return num_steps(config.training_iters, config.batch_size)


def num_steps(training_iters, batch_size):
    """The seeds' `while step * batch_size < training_iters` loop, counted from step 1."""
    return max(0, (training_iters - 1) // batch_size)


def evaluate(sess, model, inputs):
    """(mean loss, mean metric) of `model` over the arrays `inputs`, fed in chunks (an accuracy
    as a count of correct examples, exactly)."""
    n = len(inputs[0])
    loss_sum = metric_sum = 0.0
    for start in range(0, n, EVAL_CHUNK):
        feed = {p: a[start:start + EVAL_CHUNK] for p, a in zip(model.inputs, inputs)}
        loss, metric = sess.run([model.loss, model.metric], feed)
        k = len(feed[model.inputs[0]])
        loss_sum += float(loss) * k
        metric_sum += (round(float(metric) * k) if model.metric_name == "accuracy"
                       else float(metric) * k)
    return loss_sum / n, metric_sum / n


def train_and_evaluate(model, config, train_set, test_inputs, init_map=None, run_config=None,
                       probe_size=0, final_weights=False, valid_inputs=None,
                       more_metrics=None):
    """Trains `model` on batches of `train_set.next_batch`, then evaluates on `test_inputs`.

    With `config.init_checkpoint`, the variables named in `init_map` ({graph variable name:
    checkpoint variable name}) start from that checkpoint; `config.eval_only` then skips training.
    A checkpoint already in `config.model_dir` takes precedence: the run resumes from it.
    `run_config` (a dict of the model's settings) identifies the run: resuming with other
    settings is refused. Returns the metrics (as written to metrics.json) plus `step_losses`
    (every step run in this process) and `probe_logits`, the trained model's logits on the first
    `probe_size` test examples; with `final_weights`, also {variable name: trained value}.
    With `config.epochs`, each epoch ends with an evaluation on `valid_inputs` (the test inputs
    when None), logged and kept in `epoch_history`; `valid_inputs` are also evaluated at the end.
    `more_metrics(sess)`: metrics of the trained session beyond the loss and metric (a seq2seq
    model's decoding), computed while evaluating and kept in metrics.json with the others.
    """
    signature = {**(run_config or {}), "batch_size": config.batch_size,
                 "training_iters": config.training_iters}
    if not len(test_inputs[0]):
        raise UserError("The test split is empty: there is nothing to evaluate the model on. Use "
                        "data with test examples (or a --test_len of 0 for the whole split).")
    serving.check_export_dir(config.export_dir, config.overwrite,  # before any training
                             keep={"--model_dir": config.model_dir,
                                   "--init_checkpoint": config.init_checkpoint})
    if not config.model_dir:
        return _train_and_evaluate(model, config, train_set, test_inputs, valid_inputs, init_map,
                                   signature, probe_size, final_weights, more_metrics)
    prepare_model_dir(config.model_dir)
    with ModelDirLock(config.model_dir):
        return _train_and_evaluate(model, config, train_set, test_inputs, valid_inputs, init_map,
                                   signature, probe_size, final_weights, more_metrics)


def _train_and_evaluate(model, config, train_set, test_inputs, valid_inputs, init_map, signature,
                        probe_size, final_weights, more_metrics):
    steps = 0 if config.eval_only else train_steps(config, train_set)
    per_epoch = train_set.steps_per_epoch(config.batch_size) if config.epochs else 0
    name = model.metric_name
    store = Persistence(model, config, signature)
    with model.graph.as_default():
        init = tf.compat.v1.global_variables_initializer()
        variables = {v.op.name: v for v in tf.compat.v1.global_variables()}
        init_saver = (tf.compat.v1.train.Saver({ckpt: variables[name]
                                                for name, ckpt in init_map.items()})
                      if config.init_checkpoint else None)
        # The SavedModel holds the trained weights only (no optimizer state).
        export_saver = (tf.compat.v1.train.Saver(tf.compat.v1.trainable_variables(),
                                                 sharded=True) if config.export_dir else None)
    model.graph.finalize()

    with tf.compat.v1.Session(graph=model.graph) as sess, store:
        with interrupts.phase("initialising and restoring the weights"):
            sess.run(init)
            first_step, history, epoch_history = _restore(sess, model, config, store,
                                                          init_saver)
        store.open_writer()
        skipped = sum(len(train_set.next_batch(config.batch_size)[0])
                      for _ in range(first_step - 1))  # what the checkpoint has seen
        progress = _Progress(model, steps, per_epoch, skipped, history, epoch_history)
        start = time.perf_counter()
        last_saved = step = first_step - 1
        with interrupts.deferred():
            for step in range(first_step, steps + 1):
                batch = train_set.next_batch(config.batch_size)
                display = step == 1 or step % config.display_step == 0 or step == steps
                loss, *shown = _train_step(sess, model, progress.fetches(display, store), batch,
                                           step, store)
                progress.record(step, len(batch[0]), loss, shown, display, store)
                if per_epoch and step % per_epoch == 0:
                    progress.end_epoch(sess, step, config.epochs,
                                       *((test_inputs, "test") if valid_inputs is None
                                         else (valid_inputs, "valid")), store)
                if config.model_dir and step % config.checkpoint_steps == 0 and step < steps:
                    store.save(sess, step, progress.metrics(step, "training"))
                    last_saved = step
                if interrupts.pending():
                    signum = interrupts.take()
                    prefix = save_at_stop(store, sess, step, progress.metrics(step, "interrupted"),
                                          last_saved, bool(config.model_dir))
                    raise interrupts.Interrupted(signum, stopped_message(
                        signum, f"stopped after step {step} of {steps}", prefix, "resume"))
        train_seconds = time.perf_counter() - start
        final_step = int(sess.run(model.global_step))

        try:
            with interrupts.phase("evaluating"):
                test_loss, test_metric = evaluate(sess, model, test_inputs)
                more = {} if valid_inputs is None else dict(zip(
                    ("valid_loss", f"valid_{name}"), evaluate(sess, model, valid_inputs)))
                more.update(more_metrics(sess) if more_metrics else {})
        except interrupts.Interrupted as e:
            prefix = save_at_stop(store, sess, final_step, progress.metrics(final_step, "trained"),
                                  last_saved,
                                  bool(config.model_dir) and not config.eval_only)
            raise interrupts.Interrupted(e.signum, stopped_message(
                e.signum, f"stopped while evaluating, after training step {final_step} of "
                          f"{steps}", prefix, "evaluate it")) from None
        metrics = {
            **progress.metrics(final_step, "evaluated" if config.eval_only else "complete"),
            **more,
            f"test_{name}": test_metric,
            "test_loss": test_loss,
            "test_examples": len(test_inputs[0]),
            "train_seconds": train_seconds,
            "examples_per_sec": ((progress.examples - skipped) / train_seconds
                                 if progress.examples > skipped else None),
        }
        if config.model_dir:
            if config.eval_only or final_step == last_saved:
                with interrupts.deferred():
                    store.write_metrics(metrics)
            else:
                store.save(sess, final_step, metrics)
            store.scalars(final_step, **{f"test_{name}": test_metric, "test_loss": test_loss})
            interrupts.raise_pending("saving the final checkpoint and metrics.json: the run "
                                     "completed and both were written")
        if config.export_dir:
            try:
                with interrupts.phase(f"exporting the SavedModel to {config.export_dir}"):
                    serving.export_tf1(sess, model, export_saver, config.export_dir,
                                       config.overwrite)
            except interrupts.Interrupted as e:
                # The run itself is complete: say what was kept, not "nothing was written".
                kept = (f"the run completed and {config.model_dir} holds its checkpoint and "
                        "metrics.json; rerun the same command to export it (it resumes at the "
                        "last step: no training, an evaluation, the export)"
                        if config.model_dir else "the run completed, but without --model_dir "
                        "nothing of it was saved")
                raise interrupts.Interrupted(e.signum, (
                    f"{signal.Signals(e.signum).name} received: stopped while exporting the "
                    f"SavedModel to {config.export_dir} (not written; what was there before is "
                    f"unchanged). {kept[0].upper()}{kept[1:]}.")) from None
            logging.info("exported the inference graph to %s", config.export_dir)
        result = {**metrics, "config": signature, "step_losses": progress.step_losses}
        if probe_size:
            result["probe_logits"] = sess.run(
                model.logits, {p: a[:probe_size] for p, a in zip(model.inputs, test_inputs)})
        if final_weights:
            with model.graph.as_default():
                trainable = {v.op.name: v for v in tf.compat.v1.trainable_variables()}
            result["final_weights"] = sess.run(trainable)
    return result


def _restore(sess, model, config, store, init_saver):
    """Resumes from the model_dir's latest checkpoint, or starts from --init_checkpoint;
    returns (first step to run, the train_history so far)."""
    from legacy_rnn.training.checkpoints import load_tensors  # damaged-file messages, shared
    resume_from = None if config.eval_only else store.latest()
    history, epoch_history = [], []
    if resume_from:
        previous = store.previous_metrics()
        history = previous.get("train_history", [])
        epoch_history = previous.get("epoch_history", [])
        try:
            store.saver.restore(sess, resume_from)
        except (tf.errors.OpError, ValueError) as e:
            if isinstance(e, tf.errors.DataLossError):
                load_tensors(resume_from, [])  # raises the damaged-checkpoint message
            raise UserError(f"--model_dir={config.model_dir} holds a checkpoint this model "
                            f"cannot resume from ({str(e).splitlines()[0][:300]}). Pass another "
                            "--model_dir, or the flags of the run that wrote it.") from None
        logging.info("resuming from step %d (%s)", sess.run(model.global_step), resume_from)
    elif config.init_checkpoint:
        try:
            init_saver.restore(sess, config.init_checkpoint)
        except (tf.errors.OpError, ValueError) as e:
            raise UserError(f"--init_checkpoint={config.init_checkpoint} cannot be read "
                            f"({str(e).splitlines()[0][:300]}): its .data file is damaged or "
                            "missing. Use another checkpoint.") from None
        logging.info("started from %s", config.init_checkpoint)
    first_step = int(sess.run(model.global_step)) + 1
    return (first_step, [h for h in history if h["step"] < first_step],
            [h for h in epoch_history if h["step"] < first_step])


def _train_step(sess, model, fetches, batch, step, store):
    """Runs one training step; the fetched values after the train op's. Out of memory and a
    non-finite loss stop the run with a message naming what was kept."""
    feed = dict(zip(model.inputs, batch))
    if model.training is not None:
        feed[model.training] = True
    try:
        _, loss, *shown = sess.run(fetches, feed)
    except tf.errors.ResourceExhaustedError as e:
        raise UserError(
            f"Out of memory at training step {step} ({e.message.splitlines()[0][:200]}). The "
            "model or batch is too large for this machine: use a smaller --batch_size or "
            f"--n_hidden. Nothing more was saved ({store.kept().lower()}).") from None
    if not np.isfinite(loss):
        kept = store.latest()
        kept = f"last good checkpoint: {kept}" if kept else "no checkpoint was saved"
        raise UserError(
            f"The training loss became {loss} at step {step}; training stopped there and saved "
            f"nothing more ({kept}). Check the input data for NaN/Inf values, or lower "
            "--learning_rate.")
    return [loss, *shown]


class _Progress:
    """What a run has trained on and reported: every step's loss, the examples seen, the
    progress lines (with the rate over each display window), `train_history` and, in epoch runs,
    the epoch's sums and `epoch_history`."""

    def __init__(self, model, steps, per_epoch, examples, history, epoch_history):
        self.model, self.steps, self.per_epoch = model, steps, per_epoch
        self.examples = examples
        self.history, self.epoch_history = history, epoch_history
        self.step_losses = []
        self.window_start, self.window_examples = time.perf_counter(), 0
        self.epoch_sums = [0.0, 0.0, 0]  # loss and metric sums, examples: this epoch, here

    def fetches(self, display, store):
        """The metric and summaries only where shown (or averaged over an epoch): ops not
        fetched are not run."""
        fetches = [self.model.train_op, self.model.loss]
        if display or self.per_epoch:
            fetches.append(self.model.metric)
        if display and store.writer:
            fetches.append(store.summaries)
        return fetches

    def record(self, step, n, loss, shown, display, store):
        """Books a step of `n` examples whose fetches gave `loss` and `shown`."""
        name = self.model.metric_name
        self.step_losses.append(float(loss))
        self.examples += n
        self.window_examples += n
        if self.per_epoch:  # weighted by batch size, as Keras averages an epoch
            self.epoch_sums = [self.epoch_sums[0] + float(loss) * n,
                               self.epoch_sums[1] + float(shown[0]) * n, self.epoch_sums[2] + n]
        if display:
            metric, *summary = shown
            now = time.perf_counter()
            rate = self.window_examples / (now - self.window_start)
            self.window_start, self.window_examples = now, 0
            logging.info("step %d/%d  examples %d  minibatch loss %.6f  %s %.4f  "
                         "%.0f examples/s", step, self.steps, self.examples, loss, name, metric,
                         rate)
            self.history.append({"step": step, "examples": self.examples, "loss": float(loss),
                                 name: float(metric)})
            if summary:
                store.writer.add_summary(summary[0], step)

    def end_epoch(self, sess, step, epochs, inputs, split, store):
        """Logs and keeps the epoch's record: the mean training loss and metric over its steps
        (those this process ran, after a resume), and the loss and metric on `inputs`, the
        validation or the test `split`."""
        name = self.model.metric_name
        loss_sum, metric_sum, n = self.epoch_sums
        loss, metric = evaluate(sess, self.model, inputs)
        record = {"epoch": step // self.per_epoch, "step": step,
                  "train_loss": loss_sum / n if n else None,
                  f"train_{name}": metric_sum / n if n else None,
                  f"{split}_loss": loss, f"{split}_{name}": metric}
        hidden = {"epoch", "step"} | ({f"train_{name}", f"{split}_{name}"}
                                      if self.model.metric is self.model.loss
                                      else set())  # a regression's mse is its loss
        shown = "  ".join(f"{k} {v:.6f}" for k, v in record.items()
                          if k not in hidden and v is not None)
        logging.info("epoch %d/%d  %s", record["epoch"], epochs, shown)
        store.scalars(step, **{k: v for k, v in record.items()
                               if k not in ("epoch", "step") and v is not None})
        self.epoch_history.append(record)
        self.epoch_sums = [0.0, 0.0, 0]

    def metrics(self, step, status):
        """The progress part of metrics.json."""
        progress = {"status": status, "global_step": step, "train_examples": self.examples,
                    "train_history": self.history}
        return {**progress, "epoch_history": self.epoch_history} if self.per_epoch else progress
