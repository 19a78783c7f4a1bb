"""The canary suite: the numbers legacy RNN code produces, computed in whichever environment
(TensorFlow / tf-keras / Keras versions) runs this module.

    python -m legacy_rnn.canary_suite OUT.npz [--quick]

Cases, each a few named quantities (float32 arrays):

- `golden/<experiment>`: the golden runs (20 training steps; seq2seq_attention's too):
  training losses, probe logits, final weights;
- `zoo/<cell>/<driver>[/lengths]`: every cell family of the zoo through every TF1 driver, with
  and without `sequence_length`: outputs and gradients (of `sum(sin(outputs) * w)` with respect
  to every variable and the input) on fixed weights and inputs;
- `keras/<experiment>`: each Keras 3 twin (so a Keras upgrade is covered): logits and gradients;
- `convert/<block>`: a checkpoint converted to a Keras block and back: the block's outputs and
  the round-tripped TF1 weights.

Weights and inputs come from numpy generators seeded by name, not from TensorFlow's random ops,
so a change in TF's RNG cannot pass for a change in arithmetic. `--quick` computes a small subset
(the canary's own tests).

Test hook (the canary's tests only): `LEGACY_RNN_CANARY_TEST_PLANT=forget_bias=1.5` or
`learning_rate_scale=1.01` plants a change in what this environment computes.
"""
import json
import os
import platform
import sys
import tempfile
import zlib

import numpy as np

PLANT = "LEGACY_RNN_CANARY_TEST_PLANT"


def _planted():
    value = os.environ.get(PLANT)
    if not value:
        return {}
    key, _, number = value.partition("=")
    return {key: float(number)}


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _fixed(name, shape, scale=0.4):
    return (_rng(name).normal(size=shape) * scale).astype(np.float32)


def _zoo_blocks(quick):
    from legacy_rnn import zoo
    plant = _planted()

    def planted(spec):
        """The spec with the planted option values, where its family has those options."""
        options = {**dict(spec.options),
                   **{k: v for k, v in plant.items() if k in spec.family.defaults}}
        return zoo.CellSpec.make(spec.kind, spec.units, **options)

    drivers = [(d, v) for d in zoo.blocks.DIRECTIONS for v in zoo.blocks.DRIVERS]
    if quick:  # two plain cells of the families' cases, the first one with a forget_bias
        every = zoo.canonical_cases()
        return [("BasicLSTMCell", "forward", "dynamic", True,
                 zoo.Block([planted(every["BasicLSTMCell"])], "forward", "dynamic")),
                ("GRUCell", "bidirectional", "static", False,
                 zoo.Block([planted(every["GRUCell"])], "bidirectional", "static"))]
    # Each family's representative case (`CellFamily.cases`).
    cells = {label: (lambda spec=spec: planted(spec))
             for label, spec in zoo.canonical_cases(True).items()}
    out = []
    for cell, make_cell in cells.items():
        for direction, driver in drivers:
            levels = [make_cell(), make_cell()] if direction == "stack_bidirectional" else \
                [make_cell()]
            for lengths in (True, False):
                out.append((cell, direction, driver, lengths, zoo.Block(levels, direction,
                                                                         driver)))
    return out


X_SHAPE, LENGTHS = (4, 5, 3), np.array([5, 1, 3, 0], np.int32)


def zoo_case(name, block, lengths):
    """Outputs and gradients of `block` on fixed weights and inputs."""
    import tensorflow as tf
    x = _fixed(name + "/x", X_SHAPE, 1.0)
    w = _fixed(name + "/w", (1, 1, block.output_size), 1.0)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        xs = tf.constant(x)
        from legacy_rnn import zoo
        outputs, _ = zoo.tf1_block(block, xs, tf.constant(LENGTHS) if lengths else None)
        variables = {v.op.name: v for v in tf.compat.v1.trainable_variables()}
        loss = tf.reduce_sum(tf.sin(outputs) * w)
        grads = tf.gradients(loss, [*variables.values(), xs])
        # Every weight set in one run: each Session.run of a new signature prunes and optimises
        # the graph again (44 `Variable.load` runs cost a third of a stacked layer-norm case).
        values = {tf.compat.v1.placeholder(v.dtype.base_dtype, v.shape): _fixed(v_name, v.shape)
                  for v_name, v in variables.items()}
        load = tf.group(*[v.assign(p) for v, p in zip(variables.values(), values)])
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(load, values)
            out, *g = sess.run([outputs, *grads])
    return {"outputs": out, "gradients": np.concatenate([a.ravel() for a in g])}


def golden_case(name):
    from legacy_rnn.regression import golden
    result = golden.train_golden(name, _planted().get("learning_rate_scale", 1.0),
                                 final_weights=True)
    weights = result["final_weights"]
    return {"training losses": np.array(result["step_losses"], np.float32),
            "logits": np.asarray(result["probe_logits"], np.float32),
            "final weights": np.concatenate([weights[k].ravel() for k in sorted(weights)])}


def keras_case(name):
    """The Keras 3 twin of experiment `name` with fixed weights: logits and gradients."""
    import tensorflow as tf
    from legacy_rnn import experiments
    from legacy_rnn.experiments import graphs
    experiment = experiments.get(name)
    config = experiment.resolved(experiment.golden)
    shapes = experiment.variables(config)
    tf1 = {k: _fixed(f"keras/{name}/{k}", shape) for k, shape in shapes.items()}
    model = experiment.to_keras(config, tf1)
    feeds = experiment.random_feeds(config, 8, _rng(f"keras/{name}/feeds"))
    inputs, labels = experiment.keras_inputs(feeds), feeds[1]
    variables = experiment.keras_variables(model)
    with tf.GradientTape() as tape:
        logits = model(inputs)
        loss = graphs.head_ops(experiment.head, logits, labels)[0]
    # Dense: an embedding's gradient is IndexedSlices.
    grads = experiment.to_tf1(config, {k: [tf.convert_to_tensor(g).numpy() for g in v]
                                       for k, v in tape.gradient(loss, variables).items()},
                              gradients=True)
    return {"logits": logits.numpy(),
            "gradients": np.concatenate([grads[k].ravel() for k in sorted(grads)])}


def convert_case(name, block):
    """A checkpoint of `block` converted to Keras and back."""
    import keras
    import tensorflow as tf
    from legacy_rnn import zoo
    from legacy_rnn.conversion import blockwise as conversion
    x = _fixed(name + "/x", X_SHAPE, 1.0)
    with tempfile.TemporaryDirectory() as tmp:
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.set_random_seed(0)
            xs = tf.compat.v1.placeholder(tf.float32, [None, X_SHAPE[1], X_SHAPE[2]])
            zoo.tf1_block(block, xs, tf.constant(LENGTHS))
            with tf.compat.v1.Session(graph=graph) as sess:
                for v in tf.compat.v1.trainable_variables():
                    v.load(_fixed(v.op.name, v.shape), sess)
                tf.compat.v1.train.Saver().save(sess, os.path.join(tmp, "model.ckpt"))
        results, _ = conversion.to_keras_blocks(os.path.join(tmp, "model.ckpt"),
                                                os.path.join(tmp, "out"))
        model = keras.saving.load_model(os.path.join(tmp, "out", results[0].file))
        outputs = np.asarray(model([x, LENGTHS]))
        names, _ = conversion.to_tf1_checkpoint(os.path.join(tmp, "out", results[0].file),
                                                os.path.join(tmp, "back"))
        reader = tf.train.load_checkpoint(os.path.join(tmp, "back"))
        back = np.concatenate([reader.get_tensor(k).ravel() for k in sorted(names)])
    return {"outputs": outputs, "round-trip weights": back}


def cases(quick=False):
    """[(case name, function computing its quantities)], in a stable order."""
    from legacy_rnn import experiments, zoo
    from legacy_rnn.regression import golden
    names = ["toy_dynamic_rnn"] if quick else list(experiments.EXPERIMENTS)
    out = [(f"golden/{n}", lambda n=n: golden_case(n))
           for n in (names if quick else golden.NAMES)]
    for cell, direction, driver, lengths, block in _zoo_blocks(quick):
        case = f"zoo/{cell}/{direction}/{driver}{'/lengths' if lengths else ''}"
        out.append((case, lambda c=case, b=block, l=lengths: zoo_case(c, b, l)))
    out += [(f"keras/{n}", lambda n=n: keras_case(n)) for n in names]
    C = zoo.CellSpec.make
    forget = _planted().get("forget_bias", 1.0)
    converted = {"BiLSTM(peepholes, projection)": zoo.Block(
        [C("lstm", 4, use_peepholes=True, num_proj=3, forget_bias=forget)], "bidirectional")}
    if not quick:
        converted["MultiRNNCell([GRUCell, BasicLSTMCell])"] = zoo.Block(
            [C("gru", 3), C("basic_lstm", 4, forget_bias=forget)])
    out += [(f"convert/{n}", lambda n=n, b=b: convert_case(n, b)) for n, b in converted.items()]
    return out


def environment():
    import keras
    import tensorflow as tf
    import tf_keras
    from legacy_rnn.regression import golden
    return {**golden.environment(), "tensorflow": tf.__version__, "tf_keras": tf_keras.__version__,
            "keras": keras.__version__, "python": platform.python_version()}


def compute(quick=False, progress=None, seconds=None):
    """{"case|quantity": float32 array} in this environment; `seconds` (a dict), if given, gets
    each case's wall time."""
    import time
    from legacy_rnn.cli import programs
    results = {}
    with programs.progress_lines_off():
        for case, fn in cases(quick):
            if progress:
                progress(case)
            start = time.perf_counter()
            for quantity, value in fn().items():
                results[f"{case}|{quantity}"] = np.asarray(value, np.float32)
            if seconds is not None:
                seconds[case] = time.perf_counter() - start
    return results


def main(argv):
    out = argv[1]
    quick = "--quick" in argv[2:]
    import legacy_rnn  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
    from legacy_rnn.cli import programs
    programs.start_tensorflow()
    seconds = {}
    results = compute(quick, progress=lambda case: print(f"canary_suite: {case}",
                                                         file=sys.stderr, flush=True),
                      seconds=seconds)
    np.savez(out, **results)
    with open(out + ".json", "w") as f:
        json.dump({"environment": environment(), "quick": quick, "planted": _planted(),
                   "seconds": seconds}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
