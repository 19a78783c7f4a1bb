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


def uv_binary():
    """uv's executable (the `uv` package beside this Python, or on PATH), or None: then pip."""
    import shutil
    try:
        import uv
        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def ensure_venv(reqs, cache_dir, timeout=3600):
    """The Python of the candidate's cached environment, built if missing."""
    directory = os.path.abspath(os.path.join(cache_dir, venv_name(reqs)))
    python = os.path.join(directory, "bin", "python")
    stamp = os.path.join(directory, ".installed")
    if os.path.exists(stamp):
        return python
    os.makedirs(directory, exist_ok=True)
    log = os.path.join(directory, "install.log")
    # First a look at the registry (2 s for a version that does not exist, and pip lists the
    # ones that do), before a venv and gigabytes of downloads.
    look = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps",
            "--ignore-installed", "--quiet", *reqs]
    uv = uv_binary()
    if uv:  # 15 s where pip takes 65 s for TensorFlow and its dependencies (3 s from uv's cache)
        steps = [look, [uv, "venv", "--quiet", "--allow-existing", "--python", sys.executable,
                        directory],
                 [uv, "pip", "install", "--quiet", "--python", python, *reqs, *RUNTIME],
                 [uv, "pip", "install", "--quiet", "--python", python, "--no-deps", "-e", REPO]]
    else:
        steps = [look, [sys.executable, "-m", "venv", directory],
                 [python, "-m", "pip", "install", "--quiet", *reqs, *RUNTIME],
                 [python, "-m", "pip", "install", "--quiet", "--no-deps", "-e", REPO]]
    for step in steps:
        if _run(step, log, timeout):
            what = ("a look at the registry (pip install --dry-run)" if "--dry-run" in step
                    else f"`{' '.join(step[-3:])}`")
            raise _fail(f"The candidate {' '.join(reqs)} could not be installed ({what} "
                        f"failed; the log is {log}):\n{_tail(log)}\nCheck the version "
                        "specifiers (TensorFlow and tf-keras must share a minor version) and "
                        "that the package registry is reachable.")
    with open(stamp, "w") as f:
        json.dump(reqs, f)
    return python


def _launch(python, args, env_extra=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env_extra or {})}
    return subprocess.Popen([python, "-m", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)


def _finish(process, python, out, timeout):
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise _fail(f"The suite did not finish within {timeout} s with {python}.") from None
    if process.returncode:
        raise _fail(f"The suite did not run with {python} (status {process.returncode}); the "
                    "environment cannot import or run this project's code:\n"
                    f"{stderr[-2500:]}")
    with np.load(out) as data:
        results = {k: data[k] for k in data.files}
    with open(out + ".json") as f:
        return results, json.load(f)["environment"]


class Suite:
    """What one environment computes: the built-in suite (`canary_suite`) and the user's golden
    models (`user_model.run_recorded`), each in a process of its own, started by `start` and
    collected by `results`, so that two environments can run side by side."""

    def __init__(self, python, out_dir, quick=False, golden=(), builtin=True, env_extra=None):
        self.python, self.out_dir = python, out_dir
        os.makedirs(out_dir, exist_ok=True)
        self.parts = []
        if builtin:
            self.parts.append((["legacy_rnn.regression.canary_suite", self.builtin_out,
                                *(["--quick"] if quick else [])], self.builtin_out))
        if golden:
            self.parts.append((["legacy_rnn.regression.user_model", self.models_out,
                                *map(os.path.abspath, golden)], self.models_out))
        self.env_extra, self.processes = env_extra, []

    @property
    def builtin_out(self):
        return os.path.join(self.out_dir, "builtin.npz")

    @property
    def models_out(self):
        return os.path.join(self.out_dir, "models.npz")

    def start(self):
        self.processes = [_launch(self.python, args, self.env_extra) for args, _ in self.parts]
        return self

    def cached(self):
        """The results a finished earlier run left in `out_dir`."""
        results, environment = {}, {}
        for _, out in self.parts:
            with np.load(out) as data:
                results.update({k: data[k] for k in data.files})
            with open(out + ".json") as f:
                environment = json.load(f)["environment"]
        return results, environment

    def seconds_per_part(self):
        """{part: seconds} of the cases this suite ran (golden, zoo, keras, convert, model):
        what each part of the canary costs in this environment."""
        parts = {}
        for _, out in self.parts:
            with open(out + ".json") as f:
                for case, spent in json.load(f).get("seconds", {}).items():
                    part = case.split("/")[0]
                    parts[part] = parts.get(part, 0.0) + spent
        return parts

    def results(self, timeout=3600):
        results, environment = {}, {}
        for process, (_, out) in zip(self.processes, self.parts):
            found, environment = _finish(process, self.python, out, timeout)
            results.update(found)
        return results, environment


def run_suite(python, out, quick=False, env_extra=None, timeout=3600):
    """The built-in suite run with `python`; returns (results {key: array}, environment)."""
    process = _launch(python, ["legacy_rnn.regression.canary_suite", out,
                               *(["--quick"] if quick else [])], env_extra)
    return _finish(process, python, out, timeout)


def baseline_key(quick, golden, builtin):
    """The fingerprint a cached baseline is reused under: this environment's TensorFlow,
    tf-keras, Keras, numpy and Python versions, its CPU, the project's code and the golden
    files."""
    import hashlib
    import platform
    from importlib import metadata
    from legacy_rnn.regression import golden as golden_module
    digest = hashlib.sha256()
    versions = {}
    for package in ("tensorflow", "tf-keras", "keras", "numpy", "absl-py"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    digest.update(json.dumps([versions, platform.python_version(), sys.executable,
                              golden_module.cpu_identity(), quick, builtin,
                              os.environ.get("TF_ENABLE_ONEDNN_OPTS")]).encode())
    package = os.path.join(REPO, "legacy_rnn")
    for root, _, files in sorted(os.walk(package)):
        for name in sorted(f for f in files if f.endswith(".py")):
            with open(os.path.join(root, name), "rb") as f:
                digest.update(name.encode() + f.read())
    for path in golden:
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:20]


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


def write_reports(out_dir, candidate, rows, environments, seconds, costs=None):
    os.makedirs(out_dir, exist_ok=True)
    report = {"candidate": candidate, "environments": environments, "summary": summary(rows),
              "rounding_bound": {"rtol": drift.ROUNDING_RTOL, "atol": drift.ROUNDING_ATOL},
              "seconds": seconds, "seconds_per_part": costs or {}, "rows": rows}
    with open(os.path.join(out_dir, "canary.json"), "w") as f:
        json.dump(report, f, indent=1)
    env_lines = [f"| {k} | {environments['baseline'].get(k)} | {environments['candidate'].get(k)} |"
                 for k in sorted(environments["baseline"])]
    with open(os.path.join(out_dir, "canary.md"), "w") as f:
        f.write(f"# Canary: {candidate}\n\n{summary(rows)}\n\n"
                "| | baseline | candidate |\n|---|---|---|\n" + "\n".join(env_lines) +
                f"\n\n{table(rows, 'md')}\n")


def write_junit(path, candidate, rows, seconds):
    """One test case per quantity (classname: the case); CHANGED rows fail, rounding rows say
    their size in system-out. The JUnit XML that CI servers read (Jenkins, GitLab, GitHub
    actions' test reporters)."""
    from xml.etree import ElementTree as ET
    failures = sum(r["verdict"] == drift.CHANGED for r in rows)
    suites = ET.Element("testsuites", name="legacy_rnn canary", tests=str(len(rows)),
                        failures=str(failures), errors="0", time=f"{seconds:.1f}")
    suite = ET.SubElement(suites, "testsuite", name=f"canary: {candidate}",
                          tests=str(len(rows)), failures=str(failures), errors="0",
                          skipped="0", time=f"{seconds:.1f}")
    for r in rows:
        case = ET.SubElement(suite, "testcase", classname=r["case"], name=r["quantity"],
                             time="0")
        size = "-" if r["max_abs"] is None else f"{r['max_abs']:.3e} ({r['max_ulps']} ulps)"
        if r["verdict"] == drift.CHANGED:
            failure = ET.SubElement(case, "failure", message=f"CHANGED: largest difference "
                                    f"{size}", type="CHANGED")
            failure.text = "\n".join(x for x in (r.get("note"), r.get("first_op")) if x)
        else:
            ET.SubElement(case, "system-out").text = f"{r['verdict']}: largest difference {size}"
    tmp = path + ".tmp"
    ET.ElementTree(suites).write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)


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
        "golden": flags.DEFINE_list("golden", [], "Golden files of the user's own models "
                                    "(`golden --record`) to run in both environments too.",
                                    flag_values=fv),
        "no_builtin": flags.DEFINE_bool("no_builtin", False, "Leave the built-in suite out: "
                                        "only the --golden models.", flag_values=fv),
        "junit_xml": flags.DEFINE_string("junit_xml", None, "Also write a JUnit XML report "
                                         "there (one test case per quantity).", flag_values=fv),
        "cache_baseline": flags.DEFINE_bool("cache_baseline", True, "Reuse the baseline's "
                                            "results computed under the same fingerprint "
                                            "(versions, CPU, code, golden files).",
                                            flag_values=fv),
        "side_by_side": flags.DEFINE_bool("side_by_side", None, "Run baseline and candidate "
                                          "at once (default: when there are 4 cores or more).",
                                          flag_values=fv),
    }


def main(holders, argv):
    candidate = holders["candidate"].value or (argv[1] if len(argv) == 2 else None)
    if not candidate or (holders["candidate"].value and len(argv) > 1):
        raise app.UsageError("Pass one candidate: --candidate=\"tensorflow==2.20.0 "
                             "tf-keras==2.20.1\" (or nightly, or self).")
    golden, builtin = holders["golden"].value, not holders["no_builtin"].value
    if not golden and not builtin:
        raise app.UsageError("--no_builtin leaves nothing to run: add --golden=FILE[,FILE].")
    from legacy_rnn.regression import user_model
    for path in golden:  # answered before any install or run
        user_model.load(path)
    start = time.perf_counter()
    reqs = requirements(candidate)
    python = sys.executable if reqs is None else ensure_venv(reqs, holders["cache_dir"].value)
    environment_seconds = time.perf_counter() - start
    out_dir = holders["out_dir"].value
    os.makedirs(out_dir, exist_ok=True)
    quick = holders["quick"].value
    base_dir = os.path.join(holders["cache_dir"].value,
                            "baseline-" + baseline_key(quick, golden, builtin))
    cached = holders["cache_baseline"].value and os.path.exists(os.path.join(base_dir, "done"))
    baseline = Suite(sys.executable, base_dir, quick, golden, builtin)
    candidate_suite = Suite(python, os.path.join(out_dir, "candidate"), quick, golden, builtin)
    side_by_side = holders["side_by_side"].value
    if side_by_side is None:
        side_by_side = (os.cpu_count() or 1) >= 4
    print(f"canary: baseline ({sys.executable}) " +
          (f"cached in {base_dir}" if cached else "...") , file=sys.stderr, flush=True)
    if not cached:
        baseline.start()
        if not side_by_side:
            found_b = baseline.results()
    print(f"canary: candidate ({python}) ...", file=sys.stderr, flush=True)
    candidate_suite.start()
    if cached:
        found_b = Suite.cached(baseline)
    elif side_by_side:
        found_b = baseline.results()
    if not cached:
        with open(os.path.join(base_dir, "done"), "w") as f:
            f.write(json.dumps(found_b[1]))
    (base_results, env_b), (found, env_c) = found_b, candidate_suite.results()
    rows = compare(base_results, found)
    for row in rows:
        if row["verdict"] == drift.CHANGED and row["case"].startswith("model/") and \
                not any(r.get("first_op") for r in rows if r["case"] == row["case"]):
            row["first_op"] = user_model.localise(baseline.models_out,
                                                  candidate_suite.models_out, row["case"])
    seconds = time.perf_counter() - start
    costs = {"environment (found or built)": environment_seconds,
             **{f"candidate {k}": v for k, v in candidate_suite.seconds_per_part().items()},
             **({} if cached else {f"baseline {k}": v
                                   for k, v in baseline.seconds_per_part().items()})}
    write_reports(out_dir, candidate, rows, {"baseline": env_b, "candidate": env_c}, seconds,
                  costs)
    if holders["junit_xml"].value:
        write_junit(holders["junit_xml"].value, candidate, rows, seconds)
    print(table(rows))
    for row in rows:
        if row.get("first_op"):
            print(f"  {row['case']}: {row['first_op']}")
    for key in sorted(set(env_b) | set(env_c)):
        mark = "" if env_b.get(key) == env_c.get(key) else "   <-- differs"
        print(f"  {key:22s} baseline: {env_b.get(key)!s:30s} candidate: {env_c.get(key)!s}{mark}")
    print("canary: seconds per part: " + ", ".join(f"{k} {v:.0f}" for k, v in costs.items()))
    print(f"canary: {summary(rows)} ({seconds:.0f} s; baseline "
          f"{'cached' if cached else 'computed'}; {out_dir}/canary.json, canary.md)")
    return 1 if any(r["verdict"] == drift.CHANGED for r in rows) else 0
