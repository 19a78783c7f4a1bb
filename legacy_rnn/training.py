"""Training and evaluation of a built `graphs.Model` in a tf.compat.v1 Session."""
import dataclasses
import json
import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from legacy_rnn.errors import UserError

CHECKPOINT_NAME = "model.ckpt"
METRICS_FILE = "metrics.json"
# Test examples per Session.run while evaluating: bounds memory for the 10,000 MNIST test images.
EVAL_CHUNK = 1000


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train, whatever the model. Defaults are the MNIST seed's."""
    batch_size: int = 128
    training_iters: int = 100000  # examples, as in the seeds: steps = (training_iters - 1) // batch
    display_step: int = 10
    model_dir: str | None = None
    init_checkpoint: str | None = None  # start from these weights (see checkpoints.py)
    eval_only: bool = False  # with init_checkpoint: evaluate it, train nothing


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


def write_json_atomically(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def train_and_evaluate(model, config, train_set, test_inputs, init_map=None, extra_metrics=None):
    """Trains `model` on batches of `train_set.next_batch`, then evaluates on `test_inputs`.

    With `config.init_checkpoint`, the variables named in `init_map` ({graph variable name:
    checkpoint variable name}) start from that checkpoint; `config.eval_only` then skips training.

    Returns the metrics dict (also written to `model_dir/metrics.json` when a model_dir is set),
    plus `step_losses`, the training loss of every step, which is kept out of the file.
    """
    steps = 0 if config.eval_only else num_steps(config.training_iters, config.batch_size)
    if config.model_dir:
        _prepare_model_dir(config.model_dir)
    tf.config.experimental.enable_op_determinism()
    with model.graph.as_default():
        init = tf.compat.v1.global_variables_initializer()
        saver = tf.compat.v1.train.Saver(max_to_keep=3)
        if config.init_checkpoint:
            variables = {v.op.name: v for v in tf.compat.v1.global_variables()}
            init_saver = tf.compat.v1.train.Saver(
                {ckpt: variables[name] for name, ckpt in init_map.items()})
        summaries = tf.compat.v1.summary.merge([
            tf.compat.v1.summary.scalar("loss", model.loss),
            tf.compat.v1.summary.scalar("accuracy", model.accuracy)])
        writer = (tf.compat.v1.summary.FileWriter(config.model_dir, model.graph)
                  if config.model_dir else None)
    model.graph.finalize()

    with tf.compat.v1.Session(graph=model.graph) as sess:
        sess.run(init)
        if config.init_checkpoint:
            init_saver.restore(sess, config.init_checkpoint)
            logging.info("started from %s", config.init_checkpoint)
        step_losses, history = [], []
        examples = 0
        start = window_start = time.perf_counter()
        window_examples = 0
        for step in range(1, steps + 1):
            batch = train_set.next_batch(config.batch_size)
            display = step == 1 or step % config.display_step == 0 or step == steps
            fetches = [model.train_op, model.loss, model.accuracy]
            if display and writer:
                fetches.append(summaries)
            _, loss, accuracy, *summary = sess.run(fetches, dict(zip(model.inputs, batch)))
            if not np.isfinite(loss):
                raise UserError(
                    f"The training loss became {loss} at step {step}. Lower --learning_rate (it is "
                    "probably too large for this model) and run again.")
            step_losses.append(float(loss))
            examples += len(batch[0])
            window_examples += len(batch[0])
            if display:
                now = time.perf_counter()
                rate = window_examples / (now - window_start)
                window_start, window_examples = now, 0
                logging.info("step %d/%d  examples %d  minibatch loss %.6f  accuracy %.4f  %.0f examples/s",
                             step, steps, examples, loss, accuracy, rate)
                history.append({"step": step, "examples": examples, "loss": float(loss),
                                "accuracy": float(accuracy)})
                if writer:
                    writer.add_summary(summary[0], step)
        train_seconds = time.perf_counter() - start

        test_loss, test_accuracy = evaluate(sess, model, test_inputs)
        metrics = {
            "test_accuracy": test_accuracy,
            "test_loss": test_loss,
            "test_examples": len(test_inputs[0]),
            "global_step": int(sess.run(model.global_step)),
            "train_examples": examples,
            "train_seconds": train_seconds,
            "examples_per_sec": examples / train_seconds if examples else None,
            "train_history": history,
            **(extra_metrics or {}),
        }
        if config.model_dir and not config.eval_only:
            saver.save(sess, os.path.join(config.model_dir, CHECKPOINT_NAME),
                       global_step=metrics["global_step"])
        if config.model_dir:
            for tag in ("test_accuracy", "test_loss"):
                writer.add_summary(tf.compat.v1.Summary(value=[
                    tf.compat.v1.Summary.Value(tag=tag, simple_value=metrics[tag])]),
                    metrics["global_step"])
            writer.close()
            write_json_atomically(os.path.join(config.model_dir, METRICS_FILE), metrics)
    return {**metrics, "step_losses": step_losses}
