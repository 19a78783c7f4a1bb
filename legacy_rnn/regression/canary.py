"""The TensorFlow-upgrade canary: does a candidate TF / tf-keras / Keras release change the numbers
of legacy RNN code?

    ./run.sh canary "tensorflow==2.20.0 tf-keras==2.20.1"     # pip requirement specifiers
    ./run.sh canary nightly                                   # tf-nightly, tf-keras-nightly,
                                                              # keras-nightly

The candidate gets a virtual environment of its own, built once and cached in
`.venv-canary/NAME` (the project installed there without its pins). The canary suite
(`legacy_rnn.canary_suite`) runs in the project's own environment (the baseline) and in the
candidate's, on this machine, and every quantity is compared:

    identical   bitwise equal
    rounding    within float32 rounding (|a - b| <= 2e-6 + 1e-5 |a|, `drift`)
    CHANGED     anything more

The table goes to stdout, `OUT/canary.json` and `OUT/canary.md`. Exit status 0 unless something
CHANGED (1); 2 when the candidate cannot be installed or cannot run the suite.
"""
import json
import os
import re
import shlex
import subprocess
import sys
import time

import numpy as np
from absl import app, flags

from legacy_rnn.regression import drift
from legacy_rnn.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NIGHTLY = ("tf-nightly", "tf-keras-nightly", "keras-nightly")
# The project's own runtime dependencies, unpinned: TensorFlow brings Keras; tfds is not needed.
RUNTIME = ("numpy", "absl-py")
CANDIDATE_FAILED = 2


def requirements(candidate):
    """pip requirement specifiers of `candidate`, or None for "self" (this environment)."""
    candidate = candidate.strip()
    if candidate == "self":
        return None
    if candidate == "nightly":
        return list(NIGHTLY)
    reqs = shlex.split(candidate)
    if not reqs:
        raise UserError("--candidate is empty: pass pip requirement specifiers "
                        "(\"tensorflow==2.20.0 tf-keras==2.20.1\") or nightly.")
    return reqs


def venv_name(reqs):
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", "+".join(reqs))[:120]


def _fail(message):
    error = UserError(message)
    error.exit_code = CANDIDATE_FAILED
    return error


def _run(command, log, timeout):
    with open(log, "a") as f:
        f.write(f"$ {' '.join(command)}\n")
        f.flush()
        return subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, timeout=timeout).returncode


def _tail(path, lines=15):
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


def ensure_venv(reqs, cache_dir, timeout=3600):
    """The Python of the candidate's cached environment, built if missing."""
    directory = os.path.abspath(os.path.join(cache_dir, venv_name(reqs)))
    python = os.path.join(directory, "bin", "python")
    stamp = os.path.join(directory, ".installed")
    if os.path.exists(stamp):
        return python
    os.makedirs(directory, exist_ok=True)
    log = os.path.join(directory, "install.log")
    steps = [[sys.executable, "-m", "venv", directory],
             [python, "-m", "pip", "install", "--quiet", *reqs, *RUNTIME],
             [python, "-m", "pip", "install", "--quiet", "--no-deps", "-e", REPO]]
    for step in steps:
        if _run(step, log, timeout):
            raise _fail(f"The candidate {' '.join(reqs)} could not be installed (`{' '.join(step[-3:])}` "
                        f"failed; the log is {log}):\n{_tail(log)}\nCheck the version "
                        "specifiers (TensorFlow and tf-keras must share a minor version) and "
                        "that the package registry is reachable.")
    with open(stamp, "w") as f:
        json.dump(reqs, f)
    return python


def run_suite(python, out, quick=False, env_extra=None, timeout=3600):
    """Runs the canary suite with `python`; returns (results {key: array}, environment)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env_extra or {})}
    command = [python, "-m", "legacy_rnn.regression.canary_suite", out, *(["--quick"] if quick else [])]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                            cwd=REPO)
    if result.returncode:
        raise _fail(f"The suite did not run with {python} (status {result.returncode}); the "
                    "environment cannot import or run this project's code:\n"
                    f"{result.stderr[-2500:]}")
    with np.load(out) as data:
        results = {k: data[k] for k in data.files}
    with open(out + ".json") as f:
        return results, json.load(f)["environment"]


def compare(baseline, candidate):
    """Rows {case, quantity, max_abs, max_ulps, verdict} in the suite's order."""
    rows = []
    for key in list(baseline) + [k for k in candidate if k not in baseline]:
        case, quantity = key.split("|", 1)
        if key not in candidate or key not in baseline:
            rows.append({"case": case, "quantity": quantity, "max_abs": None, "max_ulps": None,
                         "verdict": drift.CHANGED,
                         "note": "missing in the " + ("candidate" if key not in candidate
                                                      else "baseline")})
            continue
        d = drift.difference(quantity, baseline[key], candidate[key])
        rows.append({"case": case, "quantity": quantity,
                     "max_abs": None if d.shapes[0] != d.shapes[1] else d.max_abs,
                     "max_ulps": None if d.shapes[0] != d.shapes[1] else d.max_ulps,
                     "verdict": drift.verdict([d]),
                     "note": d.describe() if not d.within_rounding else ""})
    return rows


def summary(rows):
    changed = [r for r in rows if r["verdict"] == drift.CHANGED]
    rounding = [r for r in rows if r["verdict"] == drift.ROUNDING]
    text = (f"{len(rows) - len(changed) - len(rounding)} identical, {len(rounding)} within "
            f"rounding, {len(changed)} CHANGED")
    if rounding:
        worst = max(rounding, key=lambda r: r["max_abs"])
        text += (f"; largest rounding difference {worst['max_abs']:.2e} "
                 f"({max(r['max_ulps'] for r in rounding)} ulps at most)")
    if changed:
        first = changed[0]
        text += f"; first CHANGED: {first['case']}: {first['quantity']}"
    return text


def table(rows, fmt="text"):
    header = ("case", "quantity", "largest abs diff", "largest ulps", "verdict")
    cells = [(r["case"], r["quantity"],
              "-" if r["max_abs"] is None else ("0" if r["max_abs"] == 0 else f"{r['max_abs']:.2e}"),
              "-" if r["max_ulps"] is None else str(r["max_ulps"]), r["verdict"]) for r in rows]
    if fmt == "md":
        return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] +
                         ["| " + " | ".join(c) + " |" for c in cells])
    widths = [max(len(x) for x in col) for col in zip(header, *cells)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(row, widths))
                     for row in [header, *cells])


def write_reports(out_dir, candidate, rows, environments, seconds):
    os.makedirs(out_dir, exist_ok=True)
    report = {"candidate": candidate, "environments": environments, "summary": summary(rows),
              "rounding_bound": {"rtol": drift.ROUNDING_RTOL, "atol": drift.ROUNDING_ATOL},
              "seconds": seconds, "rows": rows}
    with open(os.path.join(out_dir, "canary.json"), "w") as f:
        json.dump(report, f, indent=1)
    env_lines = [f"| {k} | {environments['baseline'].get(k)} | {environments['candidate'].get(k)} |"
                 for k in sorted(environments["baseline"])]
    with open(os.path.join(out_dir, "canary.md"), "w") as f:
        f.write(f"# Canary: {candidate}\n\n{summary(rows)}\n\n"
                "| | baseline | candidate |\n|---|---|---|\n" + "\n".join(env_lines) +
                f"\n\n{table(rows, 'md')}\n")


def define_flags(flag_values=flags.FLAGS):
    fv = flag_values
    return {
        "candidate": flags.DEFINE_string("candidate", None, "pip requirement specifiers of the "
                                         "candidate (\"tensorflow==2.20.0 tf-keras==2.20.1\"), "
                                         "nightly, or self (this environment).", flag_values=fv),
        "out_dir": flags.DEFINE_string("out_dir", "runs/canary", "Where canary.json and "
                                       "canary.md go.", flag_values=fv),
        "cache_dir": flags.DEFINE_string("cache_dir", os.path.join(REPO, ".venv-canary"),
                                         "Where candidate environments are cached.",
                                         flag_values=fv),
        "quick": flags.DEFINE_bool("quick", False, "A small subset of the suite (seconds).",
                                   flag_values=fv),
    }


def main(holders, argv):
    candidate = holders["candidate"].value or (argv[1] if len(argv) == 2 else None)
    if not candidate or (holders["candidate"].value and len(argv) > 1):
        raise app.UsageError("Pass one candidate: --candidate=\"tensorflow==2.20.0 "
                             "tf-keras==2.20.1\" (or nightly, or self).")
    start = time.perf_counter()
    reqs = requirements(candidate)
    python = sys.executable if reqs is None else ensure_venv(reqs, holders["cache_dir"].value)
    out_dir = holders["out_dir"].value
    os.makedirs(out_dir, exist_ok=True)
    quick = holders["quick"].value
    print(f"canary: baseline ({sys.executable}) ...", file=sys.stderr, flush=True)
    baseline, env_b = run_suite(sys.executable, os.path.join(out_dir, "baseline.npz"), quick)
    print(f"canary: candidate ({python}) ...", file=sys.stderr, flush=True)
    found, env_c = run_suite(python, os.path.join(out_dir, "candidate.npz"), quick)
    rows = compare(baseline, found)
    write_reports(out_dir, candidate, rows, {"baseline": env_b, "candidate": env_c},
                  time.perf_counter() - start)
    print(table(rows))
    for key in sorted(set(env_b) | set(env_c)):
        mark = "" if env_b.get(key) == env_c.get(key) else "   <-- differs"
        print(f"  {key:22s} baseline: {env_b.get(key)!s:30s} candidate: {env_c.get(key)!s}{mark}")
    print(f"canary: {summary(rows)} ({time.perf_counter() - start:.0f} s; "
          f"{out_dir}/canary.json, canary.md)")
    return 1 if any(r["verdict"] == drift.CHANGED for r in rows) else 0

