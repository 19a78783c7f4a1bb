"""Golden-number regression check: the legacy graphs must keep producing the same numbers.

    python -m legacy_rnn.golden --check     # compare fresh runs with tests/golden/*.json
    python -m legacy_rnn.golden --update    # rewrite the files from fresh runs
    python -m legacy_rnn.golden --record --checkpoint=CKPT --outputs=NAME --output=F.json
    python -m legacy_rnn.golden --check F.json [F2.json ...]   # the user's own model
                                            # (legacy_rnn/regression/user_model.py)

Each experiment (and the seq2seq_attention program: `OTHER_PROGRAMS`) runs a tiny fixed
configuration (8 units, 20 steps) on generated data, so no network is needed, and records its
per-step training losses, its logits on a fixed batch after training, its final metrics (for
seq2seq, the greedy and beam decoders' token accuracies among them), and the environment that
produced them. Each file also states what it
promises (`PROMISE`): bitwise equality in the recording environment, float32 rounding elsewhere.
The check always says how close a run came, e.g. `mnist_rnn: rounding (recorded on another
environment: cpu) - step losses largest 2.38e-07 (2 ulps), ...`.
"""
import dataclasses
import importlib
import json
import os
import platform
import sys

import numpy as np
from absl import app, flags

from legacy_rnn import atomic, experiments
from legacy_rnn.cli import interrupts
from legacy_rnn.cli import programs
from legacy_rnn.regression import drift
from legacy_rnn.training import loop as training
from legacy_rnn.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DIR = os.path.join(REPO, "tests", "golden")
PROMISE = (
    "Bitwise identical when rerun in the recording environment (same TensorFlow, tf-keras, Keras, "
    "numpy and Python versions, same CPU model): TF op determinism makes CPU runs reproducible. "
    f"Elsewhere every value within float32 rounding: |now - recorded| <= {drift.ROUNDING_ATOL:g} + "
    f"{drift.ROUNDING_RTOL:g} * |recorded| (legacy_rnn/drift.py gives the measurements behind it).")
RECORDED_WITH = "python -m legacy_rnn.golden --update"

BATCH, STEPS, PROBE = 8, 20, 8
TRAIN = training.TrainConfig(batch_size=BATCH, training_iters=STEPS * BATCH + 1, display_step=5)
# Programs with golden numbers that are not an `Experiment` (no zoo block under a head): {name:
# the module giving `golden_run(learning_rate_scale, final_weights)` (a run result as
# `Experiment.run` returns it) and `GOLDEN_METRICS` (the keys of it a record keeps)}.
OTHER_PROGRAMS = {"seq2seq_attention": "legacy_rnn.seq2seq.experiment"}
NAMES = tuple(experiments.EXPERIMENTS) + tuple(OTHER_PROGRAMS)


def environment():
    """What the numbers depend on besides the code."""
    import keras
    import tensorflow as tf
    import tf_keras

    cpu, isa = cpu_identity()
    return {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__,
            "keras": keras.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "cpu": cpu, "cpu_isa": isa,
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset)")}


# The instruction sets oneDNN and Eigen choose their kernels by: two CPUs with one brand string
# (an AMD EPYC Zen 2 and a Zen 4) round differently when these differ.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
             "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")


def cpu_identity(cpuinfo="/proc/cpuinfo"):
    """(model name, "family F model M: the ISA_FLAGS it has") of this machine's CPU."""
    cpu = platform.processor() or platform.machine()
    fields = {}
    if os.path.exists(cpuinfo):
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() and key.strip() not in fields:
                    fields[key.strip()] = value.strip()
    cpu = fields.get("model name", cpu)
    flags_present = set(fields.get("flags", "").split())
    isa = " ".join(flag for flag in ISA_FLAGS if flag in flags_present) or "none of " + \
        "/".join(ISA_FLAGS[:3])
    return cpu, f"family {fields.get('cpu family', '?')} model {fields.get('model', '?')}: {isa}"


def train_golden(name, learning_rate_scale=1.0, final_weights=False):
    """The run result of experiment `name`'s tiny configuration trained for 20 steps on its
    golden data (`learning_rate_scale` plants a change)."""
    if name in OTHER_PROGRAMS:
        return importlib.import_module(OTHER_PROGRAMS[name]).golden_run(learning_rate_scale,
                                                                       final_weights)
    experiment = experiments.get(name)
    config = experiment.resolved(experiment.golden)
    config = dataclasses.replace(config, learning_rate=config.learning_rate * learning_rate_scale)
    return experiment.run(config, TRAIN, data=experiment.golden_data(config), probe_size=PROBE,
                          final_weights=final_weights)


def run(name, learning_rate_scale=1.0):
    """A fresh golden record of experiment `name` (learning_rate_scale plants a change)."""
    result = train_golden(name, learning_rate_scale)
    return {
        "experiment": name,
        "environment": environment(),
        "step_losses": result["step_losses"],
        "probe_logits": result["probe_logits"].tolist(),
        "metrics": {k: result[k] for k in metric_keys(name)},
    }


def metric_keys(name):
    """The run metrics a golden record of experiment `name` keeps."""
    if name in OTHER_PROGRAMS:
        return tuple(importlib.import_module(OTHER_PROGRAMS[name]).GOLDEN_METRICS)
    return (f"test_{experiments.get(name).metric_name}", "test_loss", "global_step")


def quantities(record):
    """(name, values) of everything a record holds that a regression could move."""
    return [("step losses", record["step_losses"]), ("probe logits", record["probe_logits"]),
            *((key, record["metrics"][key]) for key in sorted(record["metrics"]))]


@dataclasses.dataclass(frozen=True)
class Comparison:
    """A fresh run of one experiment against its golden record."""
    name: str
    verdict: str  # drift.IDENTICAL / ROUNDING / CHANGED
    environment_differs: tuple  # keys of the environment that differ from the recording one
    differences: tuple  # drift.Difference per quantity
    golden_environment: dict
    fresh_environment: dict

    @property
    def ok(self):
        return self.verdict != drift.CHANGED

    def lines(self):
        where = ("recorded in this environment: exact" if not self.environment_differs else
                 f"recorded on another environment: {', '.join(self.environment_differs)}")
        details = "; ".join(f"{d.quantity} {self._describe(d)}" for d in self.differences
                            if not d.identical)
        lines = [f"{self.name}: {self.verdict} ({where})" + (f" - {details}" if details and
                                                             self.ok else "")]
        if self.ok:
            return lines
        lines += [f"  - {d.quantity}: {self._describe(d)}" for d in self.differences
                  if not (d.within_rounding if self.environment_differs else d.identical)]
        env_g, env_f = self.golden_environment, self.fresh_environment
        for key in sorted(set(env_g) | set(env_f)):
            mark = "   <-- differs" if key in self.environment_differs else ""
            lines.append(f"    {key:22s} golden: {env_g.get(key)!s:30s} now: {env_f.get(key)!s}"
                         f"{mark}")
        return lines

    @staticmethod
    def _describe(d):
        text = d.describe()
        if d.quantity == "step losses" and d.first_outside:
            (index,), expected, actual = d.first_outside
            text += f"; first diverged at step {index + 1}"
        return text


def compare(golden, fresh):
    """`fresh` (a `run` record) against `golden`: exact where the environment is the recording
    one, float32 rounding elsewhere (`PROMISE`)."""
    env_g, env_f = golden["environment"], fresh["environment"]
    differs = tuple(sorted(k for k in set(env_g) | set(env_f) if env_g.get(k) != env_f.get(k)))
    same = not differs
    rtol, atol = (0.0, 0.0) if same else (drift.ROUNDING_RTOL, drift.ROUNDING_ATOL)
    differences = tuple(drift.difference(label, expected, actual, rtol=rtol, atol=atol)
                        for (label, expected), (_, actual) in zip(quantities(golden),
                                                                  quantities(fresh)))
    return Comparison(golden["experiment"], drift.verdict(differences, exact=same), differs,
                      differences, env_g, env_f)


def golden_path(directory, name):
    return os.path.join(directory, f"{name}.json")


GOLDEN_KEYS = {"experiment": str, "environment": dict, "step_losses": list, "probe_logits": list,
               "metrics": dict}


def load(path, name):
    """The golden record at `path`; UserError if it is missing, unreadable or malformed."""
    fix = (f"Restore it from version control (git checkout -- {path}), or record it afresh with "
           "`python -m legacy_rnn.golden --update` after reviewing why it changed.")
    if not os.path.exists(path):
        raise UserError(f"{name}: no golden file at {path}. {fix}")
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path} is not a readable golden file ({type(e).__name__}: {e}). "
                        f"{fix}") from None
    wrong = [k for k, kind in GOLDEN_KEYS.items()
             if not isinstance(record, dict) or not isinstance(record.get(k), kind)]
    if not wrong and (record["experiment"] != name
                      or set(record["metrics"]) != set(metric_keys(name))):
        wrong = ["experiment" if record["experiment"] != name else "metrics"]
    if not wrong:
        wrong = [label for label, values in quantities(record) if not _numeric(values)]
    if wrong:
        raise UserError(f"{path} is not a golden file of {name}: {', '.join(wrong)} missing or "
                        f"malformed. {fix}")
    return record


def _numeric(values):
    try:
        array = np.asarray(values, np.float64)
    except (TypeError, ValueError):
        return False
    # A NaN or an infinity is no reference: every comparison with it is false.
    return array.ndim <= 2 and bool(np.all(np.isfinite(array)))


def check(directory=DEFAULT_DIR, names=NAMES):
    """A Comparison per experiment, of a fresh run against its golden file."""
    records = {name: load(golden_path(directory, name), name) for name in names}
    return [compare(records[name], run(name)) for name in names]


def record(name):
    """What `--update` writes: a fresh run, and where it came from and what it promises."""
    return {**run(name), "recorded_with": RECORDED_WITH, "promise": PROMISE}


def update(directory=DEFAULT_DIR, names=NAMES):
    """Runs every experiment first, then writes all the files (each atomically, and a signal
    waits for the writes), so an interruption leaves the old set or the new one."""
    records = {name: record(name) for name in names}
    with interrupts.deferred():
        os.makedirs(directory, exist_ok=True)
        for name, fresh in records.items():
            atomic.write_json(golden_path(directory, name), fresh)
    interrupts.raise_pending("writing the golden files: all of them were written")


def define_flags(flag_values=flags.FLAGS):
    fv = flag_values
    return {
        "update": flags.DEFINE_bool("update", False, "Rewrite the golden files from fresh runs.",
                                    flag_values=fv),
        "check": flags.DEFINE_bool("check", False, "Compare fresh runs with the golden files "
                                   "(the default).", flag_values=fv),
        "golden_dir": flags.DEFINE_string("golden_dir", DEFAULT_DIR,
                                          "Where the golden files are.", flag_values=fv),
        "experiments": flags.DEFINE_list(
            "experiments", list(NAMES), f"Which experiments to run ({', '.join(NAMES)}); "
            "all by default.", flag_values=fv),
        # The user's own model (`user_model`).
        "record": flags.DEFINE_bool("record", False, "Record golden numbers of the model at "
                                    "--checkpoint (its .meta graph) into --output.",
                                    flag_values=fv),
        "checkpoint": flags.DEFINE_string("checkpoint", None, "With --record: the checkpoint "
                                          "prefix (the .meta beside it is the graph).",
                                          flag_values=fv),
        "outputs": flags.DEFINE_list("outputs", [], "With --record: the output tensors "
                                     "(op:0 names, comma-separated).", flag_values=fv),
        "output": flags.DEFINE_string("output", None, "With --record: the golden file to write "
                                      "(its trace goes beside it, .trace.npz).", flag_values=fv),
        "inputs_npz": flags.DEFINE_string("inputs_npz", None, "With --record: the placeholders' "
                                          "values (.npz, one array per placeholder name) instead "
                                          "of generated ones.", flag_values=fv),
        "loss": flags.DEFINE_string("loss", None, "With --record: the scalar whose gradients "
                                    "are recorded (default: the losses collection, else a "
                                    "scalar output, else sum(output * fixed weights)).",
                                    flag_values=fv),
        "train_op": flags.DEFINE_string("train_op", None, "With --record: the op one training "
                                        "step runs (default: the train_op collection, if any).",
                                        flag_values=fv),
    }


def record_user_model(holders):
    from legacy_rnn.regression import user_model
    checkpoint, outputs, output = (holders[k].value for k in ("checkpoint", "outputs", "output"))
    missing = [f"--{k}" for k, v in (("checkpoint", checkpoint), ("outputs", outputs),
                                     ("output", output)) if not v]
    if missing:
        raise app.UsageError(f"--record needs {', '.join(missing)}: --record "
                             "--checkpoint=CKPT --outputs=NAME[,NAME] --output=model.golden.json")
    if os.path.isdir(output) or not os.path.isdir(os.path.dirname(os.path.abspath(output))):
        raise UserError(f"--output={output} must be a file in an existing directory.")
    programs.start_tensorflow()
    with programs.progress_lines_off():
        fresh, trace = user_model.record(checkpoint, outputs, holders["inputs_npz"].value,
                                         holders["loss"].value, holders["train_op"].value)
    with interrupts.deferred():
        user_model.write(output, fresh, trace)
    interrupts.raise_pending("writing the golden file: it was written")
    for note in fresh["neutralised"]:
        print(f"golden: {note} (the numbers are of the model as it is evaluated)")
    print(f"golden: recorded {len(fresh['quantities'])} quantities of {checkpoint} "
          f"({len(trace)} traced op outputs) in {output}")
    return 0


def check_user_models(paths):
    from legacy_rnn.regression import user_model
    for path in paths:  # every file readable before TensorFlow's start-up
        user_model.load(path)
    programs.start_tensorflow()
    changed = []
    with programs.progress_lines_off():
        for path in paths:
            lines, ok = user_model.check(path)
            print("\n".join(lines), file=sys.stdout if ok else sys.stderr)
            if not ok:
                changed.append(path)
    if changed:
        print(f"golden: CHANGED: {', '.join(changed)} (details above)", file=sys.stderr)
        return 1
    print(f"golden: {len(paths)} model(s) match their golden files")
    return 0


def main(holders, argv):
    modes = [m for m in ("update", "check", "record") if holders[m].value]
    if len(modes) > 1:
        raise app.UsageError(f"--{' and --'.join(modes)} exclude each other.")
    if holders["record"].value:
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
        return record_user_model(holders)
    if len(argv) > 1:
        if holders["update"].value:
            raise app.UsageError("--update rewrites the experiments' files; a user model's "
                                 "golden file is recorded with --record.")
        return check_user_models(argv[1:])
    directory = holders["golden_dir"].value
    names = holders["experiments"].value
    unknown = [name for name in names if name not in NAMES]
    if unknown or not names:
        raise UserError(f"--experiments={','.join(names)}: "
                        f"{'no such experiment ' + ', '.join(unknown) if unknown else 'empty'}. "
                        f"Name some of {', '.join(NAMES)} (comma-separated), or leave it out "
                        "for all.")
    programs.start_tensorflow()
    if holders["update"].value:
        with programs.progress_lines_off():
            update(directory, names)
        print(f"golden: rewrote {len(names)} files in {directory}")
        return 0
    with programs.progress_lines_off():
        comparisons = check(directory, names)
    for comparison in comparisons:
        print("\n".join(comparison.lines()), file=sys.stdout if comparison.ok else sys.stderr)
    changed = [c.name for c in comparisons if not c.ok]
    if changed:
        print(f"golden: CHANGED: {', '.join(changed)} (details above)", file=sys.stderr)
        return 1
    print(f"golden: {len(comparisons)} experiments match {directory}")
    return 0

