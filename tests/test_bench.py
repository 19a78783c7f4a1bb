"""The benchmark runs end to end at tiny sizes (no timing is asserted anywhere)."""
import json

import pytest
from absl import flags

from legacy_rnn import experiments
from legacy_rnn.tools import bench


def test_flop_count_of_one_lstm_training_step_matches_tensorflows_profiler():
    # The forward matmuls of a real static_rnn graph, counted by TensorFlow's profiler (2*M*N*K
    # each); the benchmark's convention counts the backward pass as twice the forward.
    import tensorflow as tf
    batch, steps, n_input, n_hidden, n_classes = 2, 3, 5, 4, 6
    for directions in (1, 2):
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.set_random_seed(0)  # op determinism: initialisers need a seed
            x = tf.compat.v1.placeholder(tf.float32, [batch, steps, n_input])
            rows = tf.unstack(x, steps, 1)
            make = lambda: tf.compat.v1.nn.rnn_cell.BasicLSTMCell(n_hidden)  # noqa: E731
            if directions == 1:
                outputs, _ = tf.compat.v1.nn.static_rnn(make(), rows, dtype=tf.float32)
            else:
                outputs, _, _ = tf.compat.v1.nn.static_bidirectional_rnn(make(), make(), rows,
                                                                         dtype=tf.float32)
            w = tf.compat.v1.get_variable("w", [directions * n_hidden, n_classes])
            tf.matmul(outputs[-1], w)
            ops = tf.compat.v1.profiler.ProfileOptionBuilder(
                tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()).with_empty_output()
            stats = tf.compat.v1.profiler.profile(graph, options=ops.select(
                ["float_ops"]).account_displayed_op_only(False).with_node_names(
                    show_name_regexes=[".*MatMul.*"]).build())
        matmul_flops = sum(child.float_ops for child in stats.children)
        assert bench.lstm_train_flops(batch, steps, n_input, n_hidden, directions,
                                      n_classes) == 3 * matmul_flops


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
    assert [(p["rnn"], p["length"]) for p in results["scaling"]] == [("static", 4), ("dynamic", 4)]
    assert all(p["peak_rss_mib"] > 0 for p in results["scaling"])
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "matmul peak:" in stdout and "legacy/keras" in stdout
    # Each family's step, fused and block cells beside the cells they replace.
    assert [r["kind"] for r in results["families"]] == ["lstm", "lstm_block_fused", "gru"]
    assert set(bench.SMOKE.families) < set(bench.FAMILY_CASES) and not bench.FULL.families
    assert all(r["ms"] > 0 for r in results["families"])
    lstm = next(r for r in results["families"] if r["kind"] == "lstm")
    assert lstm["ratio"] == 1.0 and "LSTMBlockFusedCell" in stdout


def test_the_full_run_covers_every_experiment_and_rates_only_single_lstms():
    assert {case[0] for case in bench.FULL.step_cases} == set(experiments.EXPERIMENTS)
    row = {"model": "series_rnn", "n_hidden": 20, "rnn": "static", "legacy_ms": 3.0,
           "keras_ms": 12.0, "legacy_over_keras": 0.25, "legacy_examples_per_sec": 10667,
           "keras_examples_per_sec": 2667, "legacy_utilisation": None, "keras_utilisation": None}
    table = bench.format_table({"matmul_peak_gflops": 200.0, "steps": [row], "scaling": []})
    assert table.splitlines()[3].split()[-2:] == ["n/a", "n/a"]
    assert bench.LSTM_FLOPS == ("mnist_rnn", "mnist_birnn", "toy_dynamic_rnn")


def test_a_malformed_internal_scaling_point_is_a_flag_error_not_a_traceback():
    flag_values = flags.FlagValues()
    bench.define_flags(flag_values)
    with pytest.raises(flags.IllegalFlagValueError, match="RNN:LENGTH:N_HIDDEN:BATCH"):
        flag_values(["bench", "--scaling_point=static:ten"])
    flag_values(["bench", "--scaling_point=dynamic:20:64:128"])
