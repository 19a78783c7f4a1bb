"""Benchmark: legacy training steps vs their Keras 3 equivalents, against the machine's peak.

    python -m legacy_rnn.bench [--out_dir=runs/bench] [--smoke]

Measures in one run:
- the dense float32 matmul peak (GFLOP/s) of this machine, through the same TF runtime;
- per model and size: the legacy training step (`static` and `dynamic`) and the Keras 3 step
  (`model.train_on_batch`, default compile settings): median ms/step after warm-up, examples/s,
  the LSTM matmul FLOP rate as a fraction of the peak, and the legacy/Keras time ratio;
- static vs dynamic as the sequence grows: graph build time, first-step time, steady step time
  and peak memory, each point in a fresh process so that its peak resident memory is its own.

Writes a table to stdout, `bench.json` and `scaling.png` (matplotlib) to --out_dir.
"""
import dataclasses
import json
import re
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
from absl import app, flags, logging

from legacy_rnn import atomic, experiments
from legacy_rnn.cli import programs
from legacy_rnn.experiments import graphs
from legacy_rnn.regression import golden


@dataclasses.dataclass(frozen=True)
class Sizes:
    step_cases: tuple  # (model name, n_hidden, batch, time steps, input size)
    seq_lens: tuple
    scaling_hidden: int
    scaling_batch: int
    warmup: int
    steps: int
    matmul_sizes: tuple
    # Each scaling point in a fresh process, so that its peak memory is its own; --smoke measures
    # them in this one (it checks that everything runs, not the numbers).
    scaling_in_subprocess: bool = True
    backends: tuple = ("jax", "torch")  # Keras 3 backends to time the twins on, where installed
    # The cell families' TF1 training steps: (units, batch, time steps, input size), and which.
    family_shape: tuple = (128, 64, 50, 32)
    families: tuple = ()  # FAMILY_CASES unless given


FULL = Sizes(step_cases=(("mnist_rnn", 512, 128, 28, 28), ("mnist_rnn", 128, 128, 28, 28),
                         ("mnist_birnn", 512, 128, 28, 28), ("mnist_birnn", 128, 128, 28, 28),
                         ("toy_dynamic_rnn", 64, 128, 20, 1), ("series_rnn", 20, 32, 50, 1),
                         ("imdb_rnn", 64, 128, 80, 100)),
             seq_lens=(28, 100, 300, 1000), scaling_hidden=128, scaling_batch=128,
             warmup=3, steps=15, matmul_sizes=(1024, 2048, 4096))
SMOKE = Sizes(step_cases=(("toy_dynamic_rnn", 8, 8, 20, 1),),
              seq_lens=(4,), scaling_hidden=4, scaling_batch=4, warmup=1, steps=2,
              matmul_sizes=(128,), scaling_in_subprocess=False, backends=("jax",),
              family_shape=(4, 2, 3, 2), families=("lstm", "lstm_block_fused", "gru"))

# The families users chose for speed (LSTMBlockCell, LSTMBlockFusedCell, GRUBlockCellV2, the
# cuDNN-compatible cells) beside the ones they replace, each as dynamic_rnn would run it (the
# fused cell: its own op over the whole sequence).
FAMILY_CASES = ("lstm", "basic_lstm", "lstm_block", "lstm_block_fused", "cudnn_lstm",
                "layer_norm_basic_lstm", "gru", "gru_block_v2", "cudnn_gru")


LSTM_FLOPS = ("mnist_rnn", "mnist_birnn", "toy_dynamic_rnn")  # one LSTM cell: lstm_train_flops


def lstm_train_flops(batch, steps, n_input, n_hidden, directions, n_classes):
    """Matmul FLOPs of one training step: forward 2*B*(in+U)*4U per cell step, backward twice
    that (gradients for the weights and for the inputs/state); the output layer likewise."""
    cell = 2 * batch * (n_input + n_hidden) * 4 * n_hidden * steps * directions
    output = 2 * batch * directions * n_hidden * n_classes
    return 3 * (cell + output)


def matmul_peak(sizes, repeats=10):
    """Best GFLOP/s of n x n float32 matmuls (n in `sizes`) in a tf.compat.v1 Session.

    Run it before any Session with a thread-limiting ConfigProto: the first Session of a
    process fixes how many threads oneDNN uses for the rest of it.
    """
    return max(_matmul_gflops(n, repeats) for n in sizes)


def _matmul_gflops(n, repeats):
    import tensorflow as tf
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)  # op determinism (on once any experiment graph exists)
        a = tf.Variable(tf.random.normal([n, n]))
        b = tf.Variable(tf.random.normal([n, n]))
        # A sum keeps the product from being fetched (a copy) while it still has to be computed.
        product = tf.reduce_sum(tf.matmul(a, b))
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(product)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                sess.run(product)
                times.append(time.perf_counter() - start)
    return 2 * n ** 3 / min(times) / 1e9


def _timed(fn, warmup, steps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _config(name, rnn, n_hidden):
    experiment = experiments.get(name)
    return experiment, dataclasses.replace(experiment.config, n_hidden=n_hidden, rnn=rnn)


def legacy_step(name, rnn, n_hidden, batch, warmup, repeats, **shape):
    """(build s, first step s, median step s) of the legacy graph's training step. `shape`:
    the experiment's own size arguments (n_steps for MNIST rows)."""
    import tensorflow as tf
    experiment, config = _config(name, rnn, n_hidden)
    start = time.perf_counter()
    model = experiment.build_graph(config, **shape)
    with model.graph.as_default():
        init = tf.compat.v1.global_variables_initializer()
    build = time.perf_counter() - start
    feeds = experiment.random_feeds(config, batch, np.random.default_rng(0), **shape)
    feed = dict(zip(model.inputs, feeds))
    if model.training is not None:  # dropout on, as in the program's training steps
        feed[model.training] = True
    with tf.compat.v1.Session(graph=model.graph) as sess:
        sess.run(init)
        start = time.perf_counter()
        sess.run(model.train_op, feed)
        first = time.perf_counter() - start
        median = _timed(lambda: sess.run(model.train_op, feed), warmup, repeats)
    return build, first, median


def family_step(kind, units, batch, steps, n_input, warmup, repeats):
    """Median seconds of one TF1 training step (Adam on sum(outputs * w)) of the zoo family
    `kind` over [batch, steps, n_input]."""
    import tensorflow as tf
    from legacy_rnn import zoo
    v1 = tf.compat.v1
    rng = np.random.default_rng(0)
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(0)
        x = tf.constant(rng.normal(size=(batch, steps, n_input)).astype(np.float32))
        outputs, _ = zoo.tf1_block(zoo.Block([zoo.CellSpec.make(kind, units)]), x)
        w = tf.constant(rng.normal(size=outputs.shape).astype(np.float32))
        train = v1.train.AdamOptimizer(1e-3).minimize(tf.reduce_sum(outputs * w))
        init = v1.global_variables_initializer()
    with v1.Session(graph=graph) as sess:
        sess.run(init)
        return _timed(lambda: sess.run(train), warmup, repeats)


def family_steps(sizes):
    """[{cell, kind, ms, ratio, relative_to}] for `sizes.families` (or FAMILY_CASES), timed one
    after the other; the ratio is to LSTMCell's step (GRUCell's for the GRU families)."""
    from legacy_rnn import zoo
    units, batch, steps, n_input = sizes.family_shape
    rows = []
    for kind in sizes.families or FAMILY_CASES:
        seconds = family_step(kind, units, batch, steps, n_input, sizes.warmup, sizes.steps)
        rows.append({"cell": zoo.FAMILIES[kind].tf1_name, "kind": kind, "ms": seconds * 1e3})
        logging.info("family %s: %.1f ms", kind, seconds * 1e3)
    base = next(r["ms"] for r in rows if r["kind"] == "lstm")
    gru = next(r["ms"] for r in rows if r["kind"] == "gru")
    for r in rows:
        r["relative_to"] = "GRUCell" if "gru" in r["kind"] else "LSTMCell"
        r["ratio"] = r["ms"] / (gru if "gru" in r["kind"] else base)
    return rows


def keras_step(name, n_hidden, batch, warmup, repeats):
    """Median seconds of the Keras 3 twin's `train_on_batch` (default compile settings)."""
    import keras
    experiment, config = _config(name, "static", n_hidden)
    model = experiment.keras_model(config)
    losses = {"softmax": keras.losses.CategoricalCrossentropy(from_logits=True),
              "sigmoid": keras.losses.BinaryCrossentropy(from_logits=True),
              "regression": keras.losses.MeanSquaredError()}
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=losses[experiment.head])
    feeds = experiment.random_feeds(config, batch, np.random.default_rng(0))
    inputs = experiment.keras_inputs(feeds)
    return _timed(lambda: model.train_on_batch(inputs, feeds[1]), warmup, repeats)


def backend_steps(sizes, names):
    """{(model, n_hidden): {backend: median ms}} of the Keras 3 twins' `train_on_batch` under each
    backend in `names`, each backend in one fresh process (`legacy_rnn.backend_check`)."""
    import tempfile
    from legacy_rnn.tools import backends
    times = {}
    with tempfile.TemporaryDirectory() as directory:
        cases = []
        for k, (name, n_hidden, batch, _, _) in enumerate(sizes.step_cases):
            experiment, config = _config(name, "static", n_hidden)
            experiment.keras_model(config).save(os.path.join(directory, f"{k}.keras"))
            feeds = experiment.random_feeds(config, batch, np.random.default_rng(0))
            inputs = experiment.keras_inputs(feeds)
            np.savez(os.path.join(directory, f"{k}.npz"), labels000=feeds[1],
                     **{f"in000_{i}": a for i, a in enumerate(
                         inputs if isinstance(inputs, list) else [inputs])})
            cases.append({"name": f"{name}:{n_hidden}", "kind": "time", "file": f"{k}.keras",
                          "data": f"{k}.npz", "learning_rate": 1e-3, "warmup": sizes.warmup,
                          "repeats": sizes.steps})
        with open(os.path.join(directory, "cases.json"), "w") as f:
            json.dump(cases, f)
        for backend in names:
            report = backends.run_check(directory, backend, timeout=3600)
            for case in cases:
                name, n_hidden = case["name"].split(":")
                times.setdefault((name, int(n_hidden)), {})[backend] = (
                    report["cases"][case["name"]]["step_ms"])
    return times


def scaling_point(rnn, length, n_hidden, batch, warmup=1, repeats=3):
    """One point of the scaling curves, measured in this (fresh) process."""
    build, first, median = legacy_step("mnist_rnn", rnn, n_hidden, batch, warmup, repeats,
                                       n_steps=length)
    # ru_maxrss is in KiB on Linux: the peak of this whole process, TF runtime included.
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rnn": rnn, "length": length, "build_s": build, "first_step_s": first,
            "step_ms": median * 1e3, "peak_rss_mib": peak_mib}


def _scaling_in_subprocess(rnn, length, sizes):
    spec = f"{rnn}:{length}:{sizes.scaling_hidden}:{sizes.scaling_batch}"
    result = subprocess.run([sys.executable, "-m", "legacy_rnn.bench", f"--scaling_point={spec}"],
                            capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if result.returncode:
        raise RuntimeError(f"scaling point {spec} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_benchmark(sizes, out_dir):
    """Runs everything; returns the results dict (also written to out_dir/bench.json)."""
    from legacy_rnn.tools import backends
    os.makedirs(out_dir, exist_ok=True)
    peak = matmul_peak(sizes.matmul_sizes)
    backend_names = [b for b in sizes.backends if backends.available(b)]
    on_backends = backend_steps(sizes, backend_names) if backend_names else {}
    logging.info("matmul peak %.1f GFLOP/s (n in %s)", peak, sizes.matmul_sizes)
    rows = []
    for name, n_hidden, batch, steps, n_input in sizes.step_cases:
        # The FLOP rate for the single-LSTM experiments; the others' rows give times only.
        flops = lstm_train_flops(batch, steps, n_input, n_hidden,
                                 2 if name == "mnist_birnn" else 1,
                                 2 if name == "toy_dynamic_rnn" else 10) if name in LSTM_FLOPS \
            else None
        keras_s = keras_step(name, n_hidden, batch, sizes.warmup, sizes.steps)
        for rnn in graphs.RNN_APIS:
            _, _, legacy_s = legacy_step(name, rnn, n_hidden, batch, sizes.warmup, sizes.steps)
            rows.append({"model": name, "n_hidden": n_hidden, "batch": batch, "rnn": rnn,
                         "legacy_ms": legacy_s * 1e3, "keras_ms": keras_s * 1e3,
                         "legacy_examples_per_sec": batch / legacy_s,
                         "keras_examples_per_sec": batch / keras_s,
                         "legacy_gflops": flops and flops / legacy_s / 1e9,
                         "legacy_utilisation": flops and flops / legacy_s / 1e9 / peak,
                         "keras_utilisation": flops and flops / keras_s / 1e9 / peak,
                         "legacy_over_keras": legacy_s / keras_s,
                         **{f"keras_{b}_ms": ms
                            for b, ms in on_backends.get((name, n_hidden), {}).items()}})
            logging.info("%s n_hidden %d %s: legacy %.1f ms, keras %.1f ms", name, n_hidden, rnn,
                         legacy_s * 1e3, keras_s * 1e3)
    scaling = []
    for rnn in graphs.RNN_APIS:
        for length in sizes.seq_lens:
            scaling.append(_scaling_in_subprocess(rnn, length, sizes)
                           if sizes.scaling_in_subprocess else
                           scaling_point(rnn, length, sizes.scaling_hidden, sizes.scaling_batch))
            logging.info("scaling %s length %d: %s", rnn, length, scaling[-1])
    families = family_steps(sizes)
    results = {"environment": golden.environment(), "matmul_peak_gflops": peak,
               "backends": ["tensorflow", *backend_names], "steps": rows,
               "scaling": scaling, "families": families,
               "family_shape": dict(zip(("units", "batch", "time", "input"),
                                        sizes.family_shape)),
               "scaling_model": {"model": "mnist_rnn", "n_hidden": sizes.scaling_hidden,
                                 "batch": sizes.scaling_batch, "input": 28},
               "sizes": dataclasses.asdict(sizes)}
    atomic.write_json(os.path.join(out_dir, "bench.json"), results)
    plot_scaling(scaling, os.path.join(out_dir, "scaling.png"), results["scaling_model"])
    return results


def plot_scaling(scaling, path, model):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = (("build_s", "graph build (s)"), ("first_step_s", "first step (s)"),
            ("step_ms", "later steps (ms)"), ("peak_rss_mib", "peak memory (MiB)"))
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.6))
    for ax, (key, label) in zip(axes, keys):
        for rnn in graphs.RNN_APIS:
            points = [p for p in scaling if p["rnn"] == rnn]
            ax.plot([p["length"] for p in points], [p[key] for p in points], "o-", label=rnn)
        ax.set_xscale("log")
        ax.set_xlabel("sequence length")
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"static_rnn vs dynamic_rnn: LSTM {model['n_hidden']} units, batch "
                 f"{model['batch']}, {model['input']} inputs per step, training step")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _percent(fraction):
    return "n/a" if fraction is None else f"{fraction:.0%}"


def format_table(results):
    others = [b for b in results.get("backends", []) if b != "tensorflow"]
    lines = [f"matmul peak: {results['matmul_peak_gflops']:.1f} GFLOP/s", "",
             f"{'model':16s} {'units':>5s} {'rnn':8s} {'legacy ms':>10s} {'keras ms':>9s} "
             f"{'legacy/keras':>12s} {'legacy ex/s':>11s} {'keras ex/s':>10s} {'legacy util':>11s} "
             f"{'keras util':>10s}" + "".join(f" {'keras ' + b + ' ms':>14s}" for b in others)]
    for r in results["steps"]:
        lines.append(f"{r['model']:16s} {r['n_hidden']:5d} {r['rnn']:8s} {r['legacy_ms']:10.1f} "
                     f"{r['keras_ms']:9.1f} {r['legacy_over_keras']:12.2f} "
                     f"{r['legacy_examples_per_sec']:11.0f} {r['keras_examples_per_sec']:10.0f} "
                     f"{_percent(r['legacy_utilisation']):>11s} "
                     f"{_percent(r['keras_utilisation']):>10s}" +
                     "".join(f" {r.get(f'keras_{b}_ms', float('nan')):14.1f}" for b in others))
    lines += ["", f"{'rnn':8s} {'length':>6s} {'build s':>8s} {'first step s':>12s} "
                  f"{'step ms':>8s} {'peak MiB':>9s}"]
    for p in results["scaling"]:
        lines.append(f"{p['rnn']:8s} {p['length']:6d} {p['build_s']:8.2f} {p['first_step_s']:12.2f} "
                     f"{p['step_ms']:8.1f} {p['peak_rss_mib']:9.0f}")
    if results.get("families"):
        shape = results["family_shape"]
        lines += ["", f"TF1 training step per cell family (dynamic_rnn, {shape['units']} units, "
                      f"batch {shape['batch']}, {shape['time']} steps, {shape['input']} inputs)",
                  f"{'cell':28s} {'ms':>8s} {'ratio':>6s}"]
        for r in results["families"]:
            lines.append(f"{r['cell']:28s} {r['ms']:8.1f} {r['ratio']:6.2f}  "
                         f"(to {r['relative_to']})")
    return "\n".join(lines)


def define_flags(flag_values=flags.FLAGS):
    holders = {
        "out_dir": flags.DEFINE_string("out_dir", "runs/bench",
                                       "Where bench.json and scaling.png go.",
                                       flag_values=flag_values),
        "smoke": flags.DEFINE_bool("smoke", False,
                                   "Tiny sizes: checks the benchmark runs, in seconds.",
                                   flag_values=flag_values),
        "scaling_point": flags.DEFINE_string(
            "scaling_point", None, "Internal: measure one scaling point (rnn:length:n_hidden:"
            "batch) in this process and print it as JSON.", flag_values=flag_values),
    }
    flags.register_validator(
        "scaling_point", lambda v: v is None or re.fullmatch(SCALING_POINT, v) is not None,
        message="--scaling_point is RNN:LENGTH:N_HIDDEN:BATCH with RNN static or dynamic and "
                "positive integers (e.g. static:20:64:128); it is the benchmark's own internal "
                "flag, which a plain run does not need.", flag_values=flag_values)
    return holders


SCALING_POINT = r"(static|dynamic):[1-9]\d*:[1-9]\d*:[1-9]\d*"


def main(holders, argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    programs.start_tensorflow()
    if holders["scaling_point"].value:
        rnn, length, n_hidden, batch = holders["scaling_point"].value.split(":")
        print(json.dumps(scaling_point(rnn, int(length), int(n_hidden), int(batch))))
        return 0
    out_dir = holders["out_dir"].value
    results = run_benchmark(SMOKE if holders["smoke"].value else FULL, out_dir)
    print(format_table(results))
    print(f"\nwrote {out_dir}/bench.json and {out_dir}/scaling.png")
    return 0

