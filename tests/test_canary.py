"""The upgrade canary, without a second TensorFlow install and without network: the project's own
environment as the candidate is identical everywhere; a planted change is CHANGED, named; a
candidate that cannot install or import gets status 2 and a message."""
import json
import subprocess
import sys

import numpy as np
import pytest
from absl import flags

from legacy_rnn import experiments
from legacy_rnn.regression import canary
from legacy_rnn.regression import canary_suite
from legacy_rnn.regression import drift


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """The quick suite computed in this process (the baseline side)."""
    return canary_suite.compute(quick=True)


def test_the_projects_own_environment_as_candidate_is_identical_everywhere(baseline, tmp_path):
    # The candidate side in a fresh process, as the canary runs it.
    found, environment = canary.run_suite(sys.executable, str(tmp_path / "c.npz"), quick=True)
    rows = canary.compare(baseline, found)
    assert len(rows) == len(baseline) == 11
    assert {r["verdict"] for r in rows} == {drift.IDENTICAL}
    assert all(r["max_abs"] == 0 and r["max_ulps"] == 0 for r in rows)
    assert {r["case"].split("/")[0] for r in rows} == {"golden", "zoo", "keras", "convert"}
    assert canary.summary(rows) == "11 identical, 0 within rounding, 0 CHANGED"
    canary.write_reports(str(tmp_path / "out"), "self", rows,
                         {"baseline": environment, "candidate": environment}, 1.0)
    report = json.loads((tmp_path / "out" / "canary.json").read_text())
    assert report["summary"] == canary.summary(rows) and len(report["rows"]) == 11
    markdown = (tmp_path / "out" / "canary.md").read_text()
    assert "| golden/toy_dynamic_rnn | training losses | 0 | 0 | identical |" in markdown


@pytest.mark.parametrize("plant, first", [
    ("forget_bias=1.5", ("zoo/BasicLSTMCell/forward/dynamic/lengths", "outputs")),
    ("learning_rate_scale=1.01", ("golden/toy_dynamic_rnn", "training losses")),
])
def test_a_planted_change_is_changed_naming_the_case_and_the_first_quantity(
        baseline, monkeypatch, plant, first):
    monkeypatch.setenv(canary_suite.PLANT, plant)
    rows = canary.compare(baseline, canary_suite.compute(quick=True))
    changed = [(r["case"], r["quantity"]) for r in rows if r["verdict"] == drift.CHANGED]
    assert changed and changed[0] == first
    assert f"first CHANGED: {first[0]}: {first[1]}" in canary.summary(rows)
    # What the plant does not touch stays identical.
    untouched = "GRUCell" if "forget_bias" in plant else "zoo/"
    assert all(r["verdict"] == drift.IDENTICAL for r in rows if untouched in r["case"])


def test_rounding_is_reported_with_its_size():
    base = {"zoo/x|outputs": np.array([1.0, 2.0], np.float32)}
    nudged = {"zoo/x|outputs": np.nextafter(base["zoo/x|outputs"], np.float32(3))}
    (row,) = canary.compare(base, nudged)
    assert row["verdict"] == drift.ROUNDING and row["max_ulps"] == 1
    assert "largest rounding difference 2.38e-07 (1 ulps at most)" in canary.summary([row])


def _main(argv, tmp_path):
    flag_values = flags.FlagValues()
    holders = canary.define_flags(flag_values)
    flag_values(["canary", *argv, f"--out_dir={tmp_path / 'out'}",
                 f"--cache_dir={tmp_path / 'cache'}"])
    from legacy_rnn.cli import entry
    return entry.guarded("canary", lambda: canary.main(holders, ["canary"]))


def test_a_candidate_that_cannot_install_gets_status_2(tmp_path, monkeypatch, capsys):
    def no_registry(command, log, timeout):
        with open(log, "a") as f:
            f.write("ERROR: No matching distribution found for tensorflow==9.99.0\n")
        return 1 if "pip" in command else subprocess.run(command).returncode

    monkeypatch.setattr(canary, "_run", no_registry)
    assert _main(["--candidate=tensorflow==9.99.0 tf-keras==9.99.0"], tmp_path) == 2
    err = capsys.readouterr().err
    assert "canary: The candidate tensorflow==9.99.0 tf-keras==9.99.0 could not be installed" in err
    assert "No matching distribution found for tensorflow==9.99.0" in err
    assert "must share a minor version" in err and "Traceback" not in err


def test_a_candidate_that_cannot_import_gets_status_2(tmp_path, capsys):
    # An environment with nothing installed: the suite cannot even import numpy.
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    from legacy_rnn.cli import entry
    status = entry.guarded("canary", lambda: canary.run_suite(
        str(bare / "bin" / "python"), str(tmp_path / "c.npz"), quick=True))
    err = capsys.readouterr().err
    assert status == 2 and "cannot import or run this project's code" in err
    assert "ModuleNotFoundError" in err


def test_candidates_are_parsed():
    assert canary.requirements("nightly") == ["tf-nightly", "tf-keras-nightly", "keras-nightly"]
    assert canary.requirements(" tensorflow==2.20.0  tf-keras==2.20.1 ") == [
        "tensorflow==2.20.0", "tf-keras==2.20.1"]
    assert canary.requirements("self") is None
    assert canary.venv_name(["tensorflow==2.20.0", "tf-keras==2.20.1"]) == \
        "tensorflow==2.20.0_tf-keras==2.20.1"


@pytest.mark.parametrize("name", list(experiments.EXPERIMENTS))
def test_the_full_suites_twin_case_runs_for_every_experiment(name):
    # The tests run the quick suite (toy only); this case of the full one for every experiment
    # (an embedding's gradient is IndexedSlices: the IMDB twin once broke it).
    experiment = experiments.get(name)
    config = experiment.resolved(experiment.golden)
    values = canary_suite.keras_case(name)
    n_params = sum(int(np.prod(shape)) for shape in experiment.variables(config).values())
    assert values["gradients"].shape == (n_params,)
    assert np.isfinite(values["gradients"]).all() and np.abs(values["gradients"]).max() > 0
    assert values["logits"].shape == (8, experiment.output_size(config))
