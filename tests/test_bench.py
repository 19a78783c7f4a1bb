"""The benchmark runs end to end at tiny sizes (no timing is asserted anywhere)."""
import json

from absl import flags

from legacy_rnn import experiments
from legacy_rnn.tools import bench


def test_flop_count_of_one_lstm_training_step():
    # One step, one cell: forward 2*B*(in+U)*4U, backward twice that; plus the output layer.
    assert bench.lstm_train_flops(batch=2, steps=1, n_input=3, n_hidden=4, directions=1,
                                  n_classes=5) == 3 * (2 * 2 * 7 * 16 + 2 * 2 * 4 * 5)
    assert bench.lstm_train_flops(2, 5, 3, 4, 2, 5) == 3 * (2 * 2 * 7 * 16 * 5 * 2 + 2 * 2 * 8 * 5)


def test_smoke_run_writes_table_json_and_plot(tmp_path, capsys):
    flag_values = flags.FlagValues()
    holders = bench.define_flags(flag_values)
    flag_values(["bench", "--smoke", f"--out_dir={tmp_path}"])
    assert bench.main(holders, ["bench"]) == 0
    stdout = capsys.readouterr().out
    results = json.loads((tmp_path / "bench.json").read_text())
    assert results["matmul_peak_gflops"] > 0
    assert {(r["model"], r["rnn"]) for r in results["steps"]} == {
        (m, rnn) for m in ("toy_dynamic_rnn",)
        for rnn in ("static", "dynamic")}
    assert results["backends"][:2] == ["tensorflow", "jax"]  # jax: a test dependency
    for row in results["steps"]:
        assert row["legacy_ms"] > 0 and row["keras_ms"] > 0 and row["keras_jax_ms"] > 0
        assert abs(row["legacy_over_keras"] - row["legacy_ms"] / row["keras_ms"]) < 1e-9
    assert [(p["rnn"], p["length"]) for p in results["scaling"]] == [("static", 4), ("dynamic", 4)]
    assert all(p["peak_rss_mib"] > 0 for p in results["scaling"])
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "matmul peak:" in stdout and "legacy/keras" in stdout


def test_the_full_run_covers_every_experiment_and_rates_only_single_lstms():
    assert {case[0] for case in bench.FULL.step_cases} == set(experiments.EXPERIMENTS)
    row = {"model": "series_rnn", "n_hidden": 20, "rnn": "static", "legacy_ms": 3.0,
           "keras_ms": 12.0, "legacy_over_keras": 0.25, "legacy_examples_per_sec": 10667,
           "keras_examples_per_sec": 2667, "legacy_utilisation": None, "keras_utilisation": None}
    table = bench.format_table({"matmul_peak_gflops": 200.0, "steps": [row], "scaling": []})
    assert table.splitlines()[3].split()[-2:] == ["n/a", "n/a"]
    assert bench.LSTM_FLOPS == ("mnist_rnn", "mnist_birnn", "toy_dynamic_rnn")
