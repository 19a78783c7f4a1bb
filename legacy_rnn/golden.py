"""Golden-number regression check: the legacy graphs must keep producing the same numbers.

    python -m legacy_rnn.golden --check     # compare fresh runs with tests/golden/*.json
    python -m legacy_rnn.golden --update    # rewrite the files from fresh runs

Each experiment runs a tiny fixed configuration (8 units, 20 steps) on generated data, so no
network is needed, and records its per-step training losses, its logits on a fixed batch after
training, its final metrics, and the environment that produced them.
"""
import dataclasses
import json
import os
import platform
import sys

import numpy as np
from absl import app, flags, logging

from legacy_rnn import experiments, mnist_data, training
from legacy_rnn.cli import quiet_tf1_notices

DEFAULT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "tests", "golden")
# Same TensorFlow/Keras/numpy/Python versions on the same CPU model: TF's op determinism
# (enabled by training.train_and_evaluate) makes CPU results bitwise reproducible, so any
# difference at all is a regression. Across versions or CPUs, kernels may round differently
# (oneDNN picks code paths per CPU); float32 rounding differences of ~1e-7 per op grow over 20
# training steps, and 1e-4 relative (plus 1e-6 absolute for values near zero) is far below what
# a real change makes (a learning rate off by 1% moves the toy losses by 1.2e-5 at step 2 and
# up to 3.9e-4 by step 20, the probe logits by 9e-4; tests/test_golden.py checks it is caught).
CROSS_ENVIRONMENT_RTOL, CROSS_ENVIRONMENT_ATOL = 1e-4, 1e-6

N_HIDDEN, BATCH, STEPS, PROBE = 8, 8, 20, 8
TRAIN = training.TrainConfig(batch_size=BATCH, training_iters=STEPS * BATCH + 1, display_step=5)
CONFIGS = {
    "mnist_rnn": experiments.MnistConfig(n_hidden=N_HIDDEN, validation_size=0),
    "mnist_birnn": experiments.MnistConfig(n_hidden=N_HIDDEN, bidirectional=True,
                                           validation_size=0),
    "toy_dynamic_rnn": experiments.ToyConfig(n_hidden=N_HIDDEN, seq_max_len=8, min_len=1,
                                             max_value=100, n_train=64, n_test=32),
}


def environment():
    """What the numbers depend on besides the code."""
    import keras
    import tensorflow as tf
    import tf_keras

    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    return {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__,
            "keras": keras.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "cpu": cpu,
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset)")}


def synthetic_mnist(seed, n_train=160, n_test=40):
    """MNIST-shaped DataSets whose classes differ (a template per class plus noise)."""
    rng = np.random.default_rng([seed, 99])
    templates = rng.random((10, 28, 28))

    def split(n):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        noisy = 0.6 * templates[labels] + 0.4 * rng.random((n, 28, 28))
        return (noisy * 255).astype(np.uint8), labels

    (train_x, train_y), (test_x, test_y) = split(n_train), split(n_test)
    rngs = [np.random.default_rng([seed, i]) for i in range(3)]
    return mnist_data.DataSets(
        train=mnist_data.DataSet(train_x, train_y, rngs[0]),
        validation=mnist_data.DataSet(train_x[:0], train_y[:0], rngs[1]),
        test=mnist_data.DataSet(test_x, test_y, rngs[2]))


def run(name, learning_rate_scale=1.0):
    """A fresh golden record of experiment `name` (learning_rate_scale plants a change)."""
    config = CONFIGS[name]
    config = dataclasses.replace(config, learning_rate=config.learning_rate * learning_rate_scale)
    if name == "toy_dynamic_rnn":
        result = experiments.run_toy(config, TRAIN, probe_size=PROBE)
    else:
        result = experiments.run_mnist(config, TRAIN, data_sets=synthetic_mnist(config.seed),
                                       probe_size=PROBE)
    return {
        "experiment": name,
        "environment": environment(),
        "step_losses": result["step_losses"],
        "probe_logits": result["probe_logits"].tolist(),
        "metrics": {k: result[k] for k in ("test_accuracy", "test_loss", "global_step")},
    }


def _first_difference(golden, fresh, rtol, atol):
    """(index, golden value, fresh value) of the first entry out of tolerance, or None."""
    golden, fresh = np.asarray(golden, np.float64).ravel(), np.asarray(fresh, np.float64).ravel()
    bad = np.flatnonzero(np.abs(fresh - golden) > atol + rtol * np.abs(golden))
    return (int(bad[0]), float(golden[bad[0]]), float(fresh[bad[0]])) if bad.size else None


def compare(golden, fresh):
    """A readable report of where `fresh` departs from `golden` (empty list: they agree)."""
    name = golden["experiment"]
    same_env = golden["environment"] == fresh["environment"]
    rtol, atol = (0.0, 0.0) if same_env else (CROSS_ENVIRONMENT_RTOL, CROSS_ENVIRONMENT_ATOL)
    problems = []
    if len(golden["step_losses"]) != len(fresh["step_losses"]):
        problems.append(f"ran {len(fresh['step_losses'])} steps, the golden run "
                        f"{len(golden['step_losses'])}")
    else:
        first = _first_difference(golden["step_losses"], fresh["step_losses"], rtol, atol)
        if first:
            i, g, f = first
            largest = np.max(np.abs(np.subtract(fresh["step_losses"], golden["step_losses"])))
            problems.append(f"training loss first diverged at step {i + 1}: golden {g!r}, now "
                            f"{f!r} (diff {f - g:+.3e}); largest step difference {largest:.3e}")
    logits_g, logits_f = np.asarray(golden["probe_logits"]), np.asarray(fresh["probe_logits"])
    if logits_g.shape != logits_f.shape:
        problems.append(f"probe logits have shape {logits_f.shape}, golden {logits_g.shape}")
    else:
        first = _first_difference(logits_g, logits_f, rtol, atol)
        if first:
            i, g, f = first
            row, col = divmod(i, logits_g.shape[1])
            problems.append(f"probe logits differ, first at example {row} class {col}: golden "
                            f"{g!r}, now {f!r}; largest difference "
                            f"{np.max(np.abs(logits_f - logits_g)):.3e}")
    for key, g in golden["metrics"].items():
        f = fresh["metrics"].get(key)
        if f is None or abs(f - g) > atol + rtol * abs(g):
            problems.append(f"{key}: golden {g!r}, now {f!r}")
    if not problems:
        return []
    tolerance = ("exact (same environment)" if same_env else
                 f"rtol {rtol:g}, atol {atol:g} (environment differs)")
    lines = [f"{name}: {len(problems)} difference(s), tolerance {tolerance}"]
    lines += [f"  - {p}" for p in problems]
    env_g, env_f = golden["environment"], fresh["environment"]
    for key in sorted(set(env_g) | set(env_f)):
        mark = "" if env_g.get(key) == env_f.get(key) else "   <-- differs"
        lines.append(f"    {key:22s} golden: {env_g.get(key)!s:30s} now: {env_f.get(key)!s}{mark}")
    return lines


def golden_path(directory, name):
    return os.path.join(directory, f"{name}.json")


def check(directory=DEFAULT_DIR, names=tuple(CONFIGS)):
    """Report lines for every experiment whose fresh run departs from its golden file."""
    report = []
    for name in names:
        path = golden_path(directory, name)
        if not os.path.exists(path):
            report.append(f"{name}: no golden file at {path}; create it with "
                          "`python -m legacy_rnn.golden --update`.")
            continue
        with open(path) as f:
            report += compare(json.load(f), run(name))
    return report


def update(directory=DEFAULT_DIR, names=tuple(CONFIGS)):
    os.makedirs(directory, exist_ok=True)
    for name in names:
        training.write_json_atomically(golden_path(directory, name), run(name))


_UPDATE = flags.DEFINE_bool("update", False, "Rewrite the golden files from fresh runs.")
_CHECK = flags.DEFINE_bool("check", False, "Compare fresh runs with the golden files (default).")
_GOLDEN_DIR = flags.DEFINE_string("golden_dir", DEFAULT_DIR, "Where the golden files are.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if _UPDATE.value and _CHECK.value:
        raise app.UsageError("--check and --update exclude each other.")
    if _UPDATE.value:
        update(_GOLDEN_DIR.value)
        print(f"golden: rewrote {len(CONFIGS)} files in {_GOLDEN_DIR.value}")
        return 0
    report = check(_GOLDEN_DIR.value)
    if report:
        print("\n".join(["golden: MISMATCH", *report]), file=sys.stderr)
        return 1
    print(f"golden: {len(CONFIGS)} experiments match {_GOLDEN_DIR.value}")
    return 0


if __name__ == "__main__":
    quiet_tf1_notices()
    logging.set_verbosity(logging.WARNING)  # the tiny runs' progress lines say nothing here
    app.run(main)
