"""The golden check: exact where the numbers were recorded, float32 rounding elsewhere, and a real
change caught in both cases. Nothing here depends on which CPU recorded the files."""
import json
import re

import numpy as np
import pytest
from absl import flags

from legacy_rnn import experiments
from legacy_rnn.cli import entry
from legacy_rnn.regression import drift
from legacy_rnn.regression import golden
from legacy_rnn.errors import UserError
from program_harness import run_program_module


def _golden(name):
    return golden.load(golden.golden_path(golden.DEFAULT_DIR, name), name)


@pytest.fixture(scope="module")
def toy_runs():
    """A fresh toy record, and one with the learning rate planted 1% high, in this process."""
    return golden.run("toy_dynamic_rnn"), golden.run("toy_dynamic_rnn", learning_rate_scale=1.01)


def test_golden_files_say_where_they_came_from_and_what_they_promise():
    for name in golden.NAMES:
        record = _golden(name)
        assert record["recorded_with"] == "python -m legacy_rnn.golden --update"
        assert "Bitwise identical when rerun in the recording environment" in record["promise"]
        assert {"tensorflow", "tf_keras", "keras", "numpy", "python", "cpu"} <= set(
            record["environment"])
        assert len(record["step_losses"]) == golden.STEPS
        if name in golden.OTHER_PROGRAMS:  # seq2seq: [probe, steps * vocab]
            assert np.shape(record["probe_logits"])[0] == golden.PROBE
            continue
        experiment = experiments.get(name)
        assert np.shape(record["probe_logits"]) == (golden.PROBE,
                                                    experiment.output_size(experiment.golden))


def test_a_fresh_run_keeps_the_golden_promise(toy_runs):
    fresh, _ = toy_runs
    comparison = golden.compare(_golden("toy_dynamic_rnn"), fresh)
    # Exact where recorded, rounding elsewhere: either way not CHANGED, and the report says how
    # close it came.
    assert comparison.ok, "\n".join(comparison.lines())
    if not comparison.environment_differs:
        assert comparison.verdict == drift.IDENTICAL
    first = comparison.lines()[0]
    assert first.startswith(f"toy_dynamic_rnn: {comparison.verdict} (recorded ")
    if comparison.verdict == drift.ROUNDING:
        assert "largest " in first and " ulps)" in first


def test_a_learning_rate_off_by_one_percent_is_caught_exactly_and_against_the_file(toy_runs):
    fresh, planted = toy_runs
    # Against an unplanted run of this same process: the same environment, so exact.
    here = golden.compare(fresh, planted)
    assert here.verdict == drift.CHANGED and not here.environment_differs
    text = "\n".join(here.lines())
    # Step 1's loss is computed before the first update, so it cannot differ; step 2's must.
    assert planted["step_losses"][0] == fresh["step_losses"][0]
    assert "first diverged at step 2" in text
    assert "probe logits: largest" in text and "beyond rounding, first at [" in text
    assert "tensorflow" in text and "golden: " in text and "now: " in text

    # Against the golden file, under whichever tolerance applies on this machine.
    against_file = golden.compare(_golden("toy_dynamic_rnn"), planted)
    assert against_file.verdict == drift.CHANGED, "\n".join(against_file.lines())
    assert "step losses: largest" in "\n".join(against_file.lines())


def test_the_rounding_bound_still_catches_the_planted_change(toy_runs):
    fresh, planted = toy_runs
    # The same comparison as if the file had been recorded on another CPU: rounding tolerance.
    elsewhere = {**fresh, "environment": {**fresh["environment"], "cpu": "another CPU"}}
    comparison = golden.compare(elsewhere, planted)
    assert comparison.environment_differs == ("cpu",)
    assert comparison.verdict == drift.CHANGED
    text = "\n".join(comparison.lines())
    assert "recorded on another environment: cpu" in text and "first diverged at step" in text
    assert "cpu                    golden: another CPU" in text and "<-- differs" in text


def test_rounding_on_another_cpu_passes_and_is_reported_with_its_size():
    expected = _golden("mnist_rnn")
    # What another CPU's rounding looks like: a relative 1e-6 change everywhere.
    nudged = {**expected,
              "environment": {**expected["environment"], "cpu": "another CPU"},
              "step_losses": [v * (1 + 1e-6) for v in expected["step_losses"]],
              "probe_logits": [[v * (1 + 1e-6) for v in row] for row in expected["probe_logits"]]}
    comparison = golden.compare(expected, nudged)
    assert comparison.verdict == drift.ROUNDING
    largest = max(abs(v) for v in expected["step_losses"]) * 1e-6
    losses = comparison.differences[0]
    assert losses.max_abs == pytest.approx(largest, rel=1e-3) and 1 <= losses.max_ulps <= 20
    assert f"step losses largest {losses.max_abs:.2e}" in comparison.lines()[0]
    # ... while in the recording environment any difference at all is a change.
    same_env = golden.compare(expected, {**nudged, "environment": expected["environment"]})
    assert same_env.verdict == drift.CHANGED
    assert "first diverged at step 1" in "\n".join(same_env.lines())


# Two of the five in a fresh process (every experiment is checked in this one by
# test_a_fresh_run_keeps_the_golden_promise): a static and a dynamic_rnn graph.
FRESH = ("mnist_rnn", "toy_dynamic_rnn")


def test_files_recorded_on_another_cpu_check_in_a_fresh_process(tmp_path):
    # A copy of the golden files as if another machine had recorded them: the check must pass
    # whatever CPU recorded them, and say how close it came. Also proves that the first graph of
    # a process matches (op determinism is switched on before any graph is built).
    for name in FRESH:
        record = _golden(name)
        record["environment"]["cpu"] = "A CPU this suite never runs on"
        (tmp_path / f"{name}.json").write_text(json.dumps(record))
    result = run_program_module("legacy_rnn.golden", "--check", f"--golden_dir={tmp_path}",
                                f"--experiments={','.join(FRESH)}")
    assert result.returncode == 0, result.stderr[-3000:]
    for name in FRESH:
        # cpu differs, and under another TensorFlow build its versions too.
        assert re.search(rf"{name}: (identical|rounding) \(recorded on another environment: "
                         rf"[^)]*\bcpu\b", result.stdout), result.stdout
    assert f"golden: {len(FRESH)} experiments match" in result.stdout


@pytest.mark.parametrize("content, message", [
    ("", "is not a readable golden file (JSONDecodeError"),
    ('{"experiment": "mnist_rnn", "step_losses": [1.0', "is not a readable golden file"),
    ('[1, 2]', "is not a golden file of mnist_rnn: experiment, environment"),
    ('{"experiment": "toy_dynamic_rnn", "environment": {}, "step_losses": [], '
     '"probe_logits": [], "metrics": {}}', "is not a golden file of mnist_rnn: experiment"),
    (b"\xff\xfe\x00binary", "is not a readable golden file (UnicodeDecodeError"),
    ('{"experiment": "mnist_rnn", "environment": {}, "step_losses": ["x"], "probe_logits": [], '
     '"metrics": {"test_accuracy": 1, "test_loss": 1, "global_step": 1}}',
     "is not a golden file of mnist_rnn: step losses missing or malformed"),
])
def test_a_damaged_golden_file_is_named_with_the_fix(tmp_path, content, message):
    path = tmp_path / "mnist_rnn.json"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    with pytest.raises(UserError) as e:
        golden.load(str(path), "mnist_rnn")
    assert message in str(e.value) and str(path) in str(e.value)
    assert "git checkout --" in str(e.value)


def test_float32_ulps_counts_representable_floats():
    one = np.float32(1.0)
    assert drift.float32_ulps(one, np.nextafter(one, np.float32(2))) == 1
    assert drift.float32_ulps(-one, np.nextafter(-one, np.float32(0))) == 1
    smallest = np.float32(1e-45)
    assert drift.float32_ulps(-smallest, smallest) == 2  # -tiny, 0, +tiny
    assert drift.float32_ulps(0.0, -0.0) == 0
    assert drift.float32_ulps(np.nan, 1.0) == np.iinfo(np.int32).max


ZEN2 = "model name\t: AMD EPYC\ncpu family\t: 23\nmodel\t\t: 49\nflags\t\t: fpu sse2 avx avx2 fma\n"
ZEN4 = ("model name\t: AMD EPYC\ncpu family\t: 25\nmodel\t\t: 17\n"
        "flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512vl avx512_bf16\n")


def test_two_cpus_with_one_brand_string_are_different_environments(tmp_path):
    # Zen 2 and Zen 4 both say "AMD EPYC"; they round differently (AVX2 vs AVX-512 kernels).
    keys = []
    for name, text in (("zen2", ZEN2), ("zen4", ZEN4)):
        (tmp_path / name).write_text(text)
        keys.append(golden.cpu_identity(str(tmp_path / name)))
    assert keys[0][0] == keys[1][0] == "AMD EPYC"
    assert keys[0][1] == "family 23 model 49: avx2 fma"
    assert keys[1][1] == "family 25 model 17: avx2 fma avx512f avx512bw avx512vl avx512_bf16"
    expected = _golden("mnist_rnn")
    recorded = {**expected, "environment": {**expected["environment"], "cpu_isa": keys[1][1]}}
    here = {**recorded, "environment": {**recorded["environment"], "cpu_isa": keys[0][1]},
            "step_losses": [v * (1 + 1e-6) for v in expected["step_losses"]]}
    comparison = golden.compare(recorded, here)
    assert comparison.environment_differs == ("cpu_isa",)
    assert comparison.verdict == drift.ROUNDING  # not the bitwise promise of the same CPU


def test_a_nan_in_a_golden_file_is_refused_not_passed(tmp_path):
    record = _golden("toy_dynamic_rnn")
    record["step_losses"][3] = float("nan")
    path = tmp_path / "toy_dynamic_rnn.json"
    path.write_text(json.dumps(record))
    with pytest.raises(UserError, match="step losses missing or malformed"):
        golden.load(str(path), "toy_dynamic_rnn")
    # And a NaN reached in a comparison is a difference, never rounding.
    d = drift.difference("losses", [1.0, float("nan")], [1.0, 0.5])
    assert not d.within_rounding and d.outside == 1


def test_an_unknown_experiment_is_named_before_anything_runs(capsys):
    fv = flags.FlagValues()
    holders = golden.define_flags(fv)
    fv(["golden", "--experiments=mnist_rnn,mnist_lstm"])
    status = entry.guarded("golden", lambda: golden.main(holders, ["golden"]))
    err = capsys.readouterr().err
    assert status == 1 and "--experiments=mnist_rnn,mnist_lstm: no such experiment mnist_lstm" \
        in err and "imdb_rnn" in err
