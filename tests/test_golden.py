import json

from legacy_rnn import golden
from test_programs import run_program_module


def test_fresh_runs_match_the_golden_files():
    report = golden.check()
    assert report == [], "\n".join(report)


def _golden(name):
    with open(golden.golden_path(golden.DEFAULT_DIR, name)) as f:
        return json.load(f)


def test_a_learning_rate_off_by_one_percent_is_caught_and_reported():
    expected = _golden("toy_dynamic_rnn")
    planted = golden.run("toy_dynamic_rnn", learning_rate_scale=1.01)
    report = golden.compare(expected, planted)
    text = "\n".join(report)
    assert report[0].startswith("toy_dynamic_rnn: ") and "exact (same environment)" in report[0]
    # Step 1's loss is computed before the first update, so it still matches; step 2's cannot.
    assert planted["step_losses"][0] == expected["step_losses"][0]
    assert "training loss first diverged at step 2: golden" in text
    assert "probe logits differ, first at example" in text
    assert "tensorflow" in text and "golden: " in text and "now: " in text

    # The cross-environment tolerance still catches it ...
    elsewhere = {**planted, "environment": {**planted["environment"], "tensorflow": "9.9.9"}}
    text = "\n".join(golden.compare(expected, elsewhere))
    assert "environment differs" in text and "training loss first diverged" in text
    assert "tensorflow             golden: 2" in text and "now: 9.9.9   <-- differs" in text


def test_no_false_alarm_within_the_cross_environment_tolerance():
    expected = _golden("mnist_rnn")
    # What another CPU's rounding looks like: a relative 1e-6 change everywhere.
    nudged = {**expected,
              "environment": {**expected["environment"], "cpu": "another CPU"},
              "step_losses": [v * (1 + 1e-6) for v in expected["step_losses"]],
              "probe_logits": [[v * (1 + 1e-6) for v in row] for row in expected["probe_logits"]]}
    assert golden.compare(expected, nudged) == []
    # ... while in the same environment any difference at all is reported.
    same_env = {**nudged, "environment": expected["environment"]}
    assert "first diverged at step 1" in "\n".join(golden.compare(expected, same_env))


def test_the_check_command_passes_in_a_fresh_process():
    # The first graph of a process must match too (op determinism is switched on before any
    # graph is built; see graphs._new_graph).
    result = run_program_module("legacy_rnn.golden", "--check")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "golden: 3 experiments match" in result.stdout
