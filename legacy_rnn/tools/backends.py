"""Leaving TensorFlow: converted models and Keras 3 twins on the JAX and PyTorch backends,
checked against the TF1 graphs.

    python -m legacy_rnn.backends [--backend=jax|torch] [--keep=DIR]

This process (TensorFlow) builds the cases: each experiment's TF1 graph and each zoo cell's TF1
block with random weights, their outputs on random inputs, their converted `.keras` files, and
ten training steps of the TF1 programs (losses per step). A fresh process with `KERAS_BACKEND`
set and no TensorFlow import (`legacy_rnn.backend_check`) loads the files, computes the same
outputs and trains the converted models on the same batches with the original's optimizer
settings. The attention decoders of `legacy_rnn.seq2seq` decode the same 200 inputs to the same
tokens, and each experiment's graph translated whole from its `.meta` computes its logits. Tolerances: forward rtol 1e-6 / atol 1e-5, training losses atol 1e-5 per step (the TF
migration guide). PyTorch is an optional extra: `pip install -e '.[torch]'`.
"""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf
from absl import app, flags

from legacy_rnn import experiments, zoo
from legacy_rnn.cli import programs
from legacy_rnn.errors import UserError
from legacy_rnn.zoo import blocks

RTOL, ATOL = 1e-6, 1e-5
TRAIN_STEPS = 10
INSTALL = {"jax": "pip install -e '.[test]' (jax is a test dependency)",
           "torch": "pip install -e '.[torch]'"}
C = zoo.CellSpec.make
# Each family's representative case (`CellFamily.cases`), two structures, and the wrappers.
ZOO_CASES = {
    **{label: zoo.Block([spec]) for label, spec in zoo.canonical_cases(True).items()},
    "bidirectional MultiRNNCell([GRUCell, LSTMCell])": zoo.Block(
        [C("gru", 3), C("lstm", 4)], "bidirectional"),
    "stack_bidirectional_dynamic_rnn([BasicLSTMCell, GRUCell])": zoo.Block(
        [C("basic_lstm", 3), C("gru", 3)], "stack_bidirectional"),
    "OutputProjectionWrapper(InputProjectionWrapper(GRUCell), tanh)": zoo.Block(
        [C("gru", 3)], wrappers=[zoo.WrapperSpec("output_projection", 2, "tanh"),
                                 zoo.WrapperSpec("input_projection", 4, "relu")]),
    "EmbeddingWrapper(BasicLSTMCell), over ids": zoo.Block(
        [C("basic_lstm", 3)], wrappers=[zoo.WrapperSpec("embedding", 4, classes=9)]),
}


def _bumped_session(graph, seed):
    """A Session of `graph` with every trainable variable moved off its initial value."""
    with graph.as_default():
        bumps = [v.assign_add(tf.random.normal(v.shape, stddev=0.3, seed=seed + i))
                 for i, v in enumerate(tf.compat.v1.trainable_variables())]
        init = tf.compat.v1.global_variables_initializer()
    sess = tf.compat.v1.Session(graph=graph)
    sess.run(init)
    sess.run(bumps)
    return sess


def _save_inputs(path, inputs, **arrays):
    inputs = inputs if isinstance(inputs, list) else [inputs]
    np.savez(path, **{f"in_{i}": a for i, a in enumerate(inputs)}, **arrays)


def _experiment_cases(directory, rng):
    cases = []
    for name, experiment in experiments.EXPERIMENTS.items():
        config = experiment.resolved(experiment.golden)
        model = experiment.build_graph(config)
        sess = _bumped_session(model.graph, 1)
        with model.graph.as_default():
            variables = {v.op.name: v for v in tf.compat.v1.trainable_variables()}
        feeds = experiment.random_feeds(config, 16, rng)
        logits = sess.run(model.logits, dict(zip(model.inputs, feeds)))
        experiment.to_keras(config, sess.run(variables)).save(
            os.path.join(directory, f"{name}.keras"))
        _save_inputs(os.path.join(directory, f"{name}.npz"), experiment.keras_inputs(feeds),
                     expected=logits)
        cases.append({"name": f"{name}: logits", "kind": "forward", "file": f"{name}.keras",
                      "data": f"{name}.npz", "rtol": RTOL, "atol": ATOL})
        sess.close()
    return cases


def _zoo_cases(directory, rng, zoo_cases):
    cases = []
    for k, (name, block) in enumerate(zoo_cases.items()):
        classes = block.id_classes  # a block over an EmbeddingWrapper reads ids
        x = (rng.integers(0, classes, (5, 6, 1)).astype(np.int32) if classes else
             rng.normal(size=(5, 6, 3)).astype(np.float32))
        lengths = np.array([6, 1, 4, 0, 3], np.int32)
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.set_random_seed(k)
            outputs, _ = zoo.tf1_block(block, tf.constant(x), tf.constant(lengths))
            variables = {v.op.name: v for v in tf.compat.v1.trainable_variables()}
        sess = _bumped_session(graph, 2)
        expected, weights = sess.run([outputs, variables])
        sess.close()
        model = zoo.keras_block(block, x.shape[-1], name=f"zoo_{k}")
        blocks.to_keras(block, model, weights)
        model.save(os.path.join(directory, f"zoo_{k}.keras"))
        _save_inputs(os.path.join(directory, f"zoo_{k}.npz"), [x, lengths], expected=expected)
        cases.append({"name": f"zoo {name}", "kind": "forward", "file": f"zoo_{k}.keras",
                      "data": f"zoo_{k}.npz", "rtol": RTOL, "atol": ATOL})
    return cases


def _training_case(directory, rng, name="mnist_birnn"):
    """TF1's Adam program for TRAIN_STEPS steps: its losses, and its converted initial weights
    (the experiment's parity configuration: `train_on_batch` trains with dropout on)."""
    experiment = experiments.get(name)
    config = experiment.parity_config(experiment.resolved(experiment.golden))
    model = experiment.build_graph(config)
    with model.graph.as_default():
        variables = {v.op.name: v for v in tf.compat.v1.trainable_variables()}
        init = tf.compat.v1.global_variables_initializer()
    arrays, losses = {}, []
    sess = tf.compat.v1.Session(graph=model.graph)  # not as a context: Keras runs eagerly below
    try:
        sess.run(init)
        experiment.to_keras(config, sess.run(variables)).save(
            os.path.join(directory, f"{name}_train.keras"))
        for step in range(TRAIN_STEPS):
            feeds = experiment.random_feeds(config, 16, rng)
            _, loss = sess.run([model.train_op, model.loss], dict(zip(model.inputs, feeds)))
            losses.append(float(loss))
            inputs = experiment.keras_inputs(feeds)
            for i, a in enumerate(inputs if isinstance(inputs, list) else [inputs]):
                arrays[f"in{step:03d}_{i}"] = a
            arrays[f"labels{step:03d}"] = feeds[1]
    finally:
        sess.close()
    np.savez(os.path.join(directory, f"{name}_train.npz"), losses=np.array(losses), **arrays)
    return [{"name": f"{name}: {TRAIN_STEPS} Adam steps (epsilon 1e-8)", "kind": "train",
             "file": f"{name}_train.keras", "data": f"{name}_train.npz",
             "learning_rate": config.learning_rate, "steps": TRAIN_STEPS, "atol": ATOL,
             "head": experiment.head}]


def whole_case(directory, name, model, inputs, expected, tf1_gradient_difference, output=0,
               seed=0):
    """A case of a model translated whole from a TF1 graph (`conversion.whole`): `model` saved
    as `<name>.keras`, called on {input name: array}, its output number `output` against the
    graph's `expected`; and the gradients of sum(output * w) (w drawn from `seed`) for each of
    `model.trainable_weights`, computed here on TensorFlow. The translation compared these with
    the TF1 graph's (`tf1_gradient_difference`, by TF1 variable name), so the other backend's
    are checked against the graph through them."""
    file = name.replace(" ", "_").replace(":", "") + ".keras"
    model.save(os.path.join(directory, file))
    with tf.GradientTape() as tape:
        out = model(inputs, training=False)
        out = out[output] if isinstance(out, (list, tuple)) else out
        w = np.random.default_rng(seed).normal(size=out.shape).astype(np.float32)
        loss = tf.reduce_sum(out * w)
    grads = tape.gradient(loss, model.trainable_weights)
    arrays = {f"grad_{i}": np.zeros(v.shape, np.float32) if g is None else
              np.asarray(tf.convert_to_tensor(g)) for i, (v, g) in
              enumerate(zip(model.trainable_weights, grads))}
    data = file[:-len(".keras")] + ".npz"
    np.savez(os.path.join(directory, data), **{f"in_{k}": v for k, v in inputs.items()}, w=w,
             expected=expected, **arrays)
    return {"name": name, "kind": "whole", "file": file, "data": data, "rtol": RTOL,
            "atol": ATOL, "input_names": sorted(inputs), "output": output,
            "weights": len(grads), "tf1_gradient_difference": tf1_gradient_difference}


def whole_model_cases(directory, rng):
    """Each experiment's training graph saved with its `.meta` and translated whole from it
    (`conversion.whole`, as `convert --outputs` does), against the graph's logits on new
    inputs."""
    from legacy_rnn.conversion import whole
    cases = []
    for name, experiment in experiments.EXPERIMENTS.items():
        config = experiment.resolved(experiment.golden)
        model = experiment.build_graph(config)
        sess = _bumped_session(model.graph, 3)
        prefix = os.path.join(directory, f"whole_{name}", "model.ckpt")
        with model.graph.as_default():
            tf.compat.v1.train.Saver().save(sess, prefix)
        feeds = experiment.random_feeds(config, 8, rng)
        expected = sess.run(model.logits, dict(zip(model.inputs, feeds)))
        sess.close()
        result = whole.to_keras_model(prefix, [model.logits.name])
        if not result.ok:
            raise UserError(f"The whole-model translation of {name} does not compute its graph "
                            f"(outputs {result.forward_difference:.1e}): see "
                            "tests/test_whole_model.py.")
        inputs = {whole._keras_name(t.op.name): f for t, f in zip(model.inputs, feeds)
                  if t.op.name in result.inputs}
        cases.append(whole_case(directory, f"whole {name}: logits and gradients", result.model,
                                inputs, expected, result.gradient_difference))
    return cases


def build_cases(directory, seed=0, zoo_cases=ZOO_CASES, train=("mnist_birnn",), extra=()):
    """Writes the cases (files, inputs, TF1 outputs and losses) and `cases.json`: every
    experiment, `zoo_cases`, TRAIN_STEPS Adam steps of each experiment in `train`, and the
    `extra` cases already written (`whole_case`, `legacy_rnn.seq2seq.parity.save_case`)."""
    rng = np.random.default_rng(seed)
    cases = (_experiment_cases(directory, rng) + _zoo_cases(directory, rng, zoo_cases)
             + list(extra))
    for name in train:
        cases += _training_case(directory, rng, name)
    with open(os.path.join(directory, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
    return cases


def seq2seq_cases(directory, batch=200):
    """Every attention decoder of `legacy_rnn.seq2seq.parity.CASES`: teacher-forced logits,
    greedy and beam-search decoding on `batch` inputs, against the TF1 graphs."""
    from legacy_rnn.seq2seq import parity
    return [parity.save_case(directory, f"seq2seq {name}", parity.Problem(spec, batch=batch))
            for name, spec in parity.CASES.items()]


def available(backend):
    return importlib.util.find_spec(backend) is not None


def run_check(directory, backend, timeout=600):
    """The report of `legacy_rnn.backend_check` on `directory` under `backend` (a fresh process
    without TF_USE_LEGACY_KERAS, so nothing routes Keras to tf-keras)."""
    if not available(backend):
        raise UserError(f"The {backend} backend is not installed: {INSTALL[backend]}.")
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env.update(KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-m", "legacy_rnn.tools.backend_check", directory],
                            env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode:
        raise UserError(f"The {backend} check process failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def format_report(report):
    lines = [f"backend {report['backend']} (Keras {report['keras']}; TensorFlow imported: "
             f"{report['tensorflow_imported']})"]
    for name, result in report["cases"].items():
        if "failed" in result:
            lines.append(f"  FAILED {name}: {' '.join(result['failed'])[:300]}")
        else:
            line = f"  ok     {name}: largest difference {result['largest_difference']:.1e}"
            if "tf1_gradient_difference" in result:
                line = (f"  ok     {name}: outputs {result['outputs']:.1e}, gradients "
                        f"{result['gradients']:.1e} against TF's, which differ from the TF1 "
                        f"graph's by {result['tf1_gradient_difference']:.1e}")
            if result.get("beam_rows_decided_by_a_tie"):
                line += (f"; {result['beam_rows_decided_by_a_tie']} of {result['rows']} beam "
                         "rows differ after a tie within 1e-5")
            if "seconds" in result:
                line += f" ({result['seconds']:.1f} s)"
            lines.append(line)
    return "\n".join(lines)


def define_flags(flag_values=flags.FLAGS):
    return {
        "backend": flags.DEFINE_enum("backend", "jax", ["jax", "torch"],
                                     "The Keras 3 backend to check.", flag_values=flag_values),
        "keep": flags.DEFINE_string("keep", None, "Write the cases here and keep them (default: "
                                    "a temporary directory).", flag_values=flag_values),
    }


def main(holders, argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    backend = holders["backend"].value
    if not available(backend):
        raise UserError(f"The {backend} backend is not installed: {INSTALL[backend]}.")
    programs.start_tensorflow()  # imported with this module already; quiets its notices
    # The experiments' graphs switch it on anyway; first, so that the attention cases (built
    # before them) are the same numbers on every run.
    tf.config.experimental.enable_op_determinism()
    with tempfile.TemporaryDirectory() as tmp:
        directory = holders["keep"].value or tmp
        os.makedirs(directory, exist_ok=True)
        build_cases(directory, extra=seq2seq_cases(directory) + whole_model_cases(
            directory, np.random.default_rng(7)))
        report = run_check(directory, backend)
    print(format_report(report))
    failed = [n for n, r in report["cases"].items() if "failed" in r]
    return 1 if failed or report["tensorflow_imported"] else 0

