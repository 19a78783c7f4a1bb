"""series_rnn: the chapter's data, every model's TF1 graph against its Keras 3 twin, and the
program's printed numbers against an independent evaluation."""
import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import experiment_parity
from legacy_rnn.data import series as series_data
from legacy_rnn.conversion.convert import convert_checkpoint
from legacy_rnn.experiments.series import MODELS, SERIES
from program_harness import program_output

SMALL = dataclasses.replace(SERIES.config, n_hidden=5, steps=9, n_train=48, n_valid=16,
                            n_test=16, baselines=False)


def chapter_generate_time_series(batch_size, n_steps):
    """The chapter's notebook, as printed (numpy's global generator)."""
    freq1, freq2, offsets1, offsets2 = np.random.rand(4, batch_size, 1)
    time = np.linspace(0, 1, n_steps)
    series = 0.5 * np.sin((time - offsets1) * (freq1 * 10 + 10))  # wave 1
    series += 0.2 * np.sin((time - offsets2) * (freq2 * 20 + 20))  # + wave 2
    series += 0.1 * (np.random.rand(batch_size, n_steps) - 0.5)  # + noise
    return series[..., np.newaxis].astype(np.float32)


@pytest.mark.parametrize("horizon", [1, 10])
def test_the_data_is_the_chapters(horizon):
    np.random.seed(42)
    series = chapter_generate_time_series(100, 50 + horizon)
    ours = series_data.make_splits(42, 70, 20, 10, 50, horizon)
    for (x, y), (a, b) in zip((ours.train, ours.valid, ours.test), ((0, 70), (70, 90), (90, 100))):
        assert x.shape == (b - a, 50, 1) and y.shape == (b - a, horizon)
        np.testing.assert_array_equal(x, series[a:b, :50])
        np.testing.assert_array_equal(y, series[a:b, 50:, 0])
    x, y = ours.valid
    naive = np.mean([(y[i, j] - x[i, -1, 0]) ** 2 for i in range(len(y)) for j in range(horizon)])
    assert series_data.naive_mse(x, y) == pytest.approx(naive, rel=1e-6)


# Training parity for two models (the chapter's deep RNN, without a dense layer; an LSTM stack
# forecasting 3 steps); forward and gradients for every model (the suite's time budget).
TRAINED = ("deep", "lstm")


@pytest.mark.parametrize("model", list(MODELS))
def test_forward_and_gradients_match_and_training_for_two(model):
    config = SERIES.resolved(dataclasses.replace(SMALL, model=model,
                                                 horizon=3 if model == "lstm" else 1))
    rng = np.random.default_rng(0)
    forward, gradients = experiment_parity.forward_and_gradients(
        SERIES, config, SERIES.random_feeds(config, 16, rng))
    line = f"series_rnn {model}: forward {forward:.1e}, gradients {gradients:.1e}"
    if model in TRAINED:
        losses, weights = experiment_parity.adam_steps(
            SERIES, config, [SERIES.random_feeds(config, 8, rng) for _ in range(20)])
        line += f", 20 Adam steps: losses {losses:.1e}, final weights {weights:.1e}"
    print(line)


def test_the_twin_is_the_chapters_keras_model():
    # keras.layers.SimpleRNN / LSTM / GRU are RNN layers of these cells.
    cells = {m: [type(getattr(layer, "cell", layer)).__name__ for layer in SERIES.keras_model(
        dataclasses.replace(SMALL, model=m)).layers[1:]] for m in MODELS}
    assert cells["simple"] == ["SimpleRNNCell"]
    assert cells["deep"] == ["SimpleRNNCell"] * 3
    assert cells["deep_dense"] == ["SimpleRNNCell", "SimpleRNNCell", "Dense"]
    assert cells["ln"] == ["LNSimpleRNNCell", "LNSimpleRNNCell", "Dense"]
    assert cells["lstm"] == ["LSTMCell", "LSTMCell", "Dense"]
    assert cells["gru"] == ["GRUCell", "GRUCell", "Dense"]
    deep = SERIES.keras_model(dataclasses.replace(SMALL, model="deep"))
    assert [layer.cell.units for layer in deep.layers[1:]] == [5, 5, 1]
    assert SERIES.resolved(dataclasses.replace(SMALL, model="simple")).learning_rate == 0.005
    assert SERIES.resolved(dataclasses.replace(SMALL, model="gru")).learning_rate == 0.001


def run_in_process(argv, capsys):
    return program_output("series_rnn", argv, capsys)


def test_the_printed_mses_are_the_models_and_the_baselines(tmp_path, capsys):
    run, export = tmp_path / "run", tmp_path / "export"
    status, out, err = run_in_process(["--flagfile=flags/series_rnn_smoke.cfg", "--model=gru",
                                       f"--model_dir={run}", f"--export_dir={export}"], capsys)
    assert status == 0, err
    lines = dict(line.split(": ") for line in out.strip().splitlines())
    assert list(lines)[-2:] == ["valid_mse", "test_mse"]
    # The trained checkpoint, converted, on the regenerated splits: the same numbers.
    config = convert_checkpoint(str(run), "series_rnn", str(tmp_path / "gru.keras"))
    assert (config.model, config.n_hidden, config.horizon) == ("gru", 8, 1)  # read from the names
    twin = keras.saving.load_model(tmp_path / "gru.keras")
    splits = series_data.make_splits(42, 256, 64, 64, 12, 1)
    for split, (x, y) in (("valid", splits.valid), ("test", splits.test)):
        mse = float(np.mean((np.asarray(twin(x)) - y) ** 2))
        assert float(lines[f"{split}_mse"]) == pytest.approx(mse, abs=2e-6)
        assert float(lines[f"naive_{split}_mse"]) == pytest.approx(
            float(np.mean((x[:, -1] - y) ** 2)), abs=2e-6)
    assert 0 < float(lines["linear_valid_mse"]) < 1
    # The SavedModel's signature: `series` in, `predictions` out, as the twin computes them.
    serve = tf.saved_model.load(str(export)).signatures["serving_default"]
    served = serve(series=tf.constant(splits.test[0][:7]))
    assert list(served) == ["predictions"]
    np.testing.assert_allclose(served["predictions"].numpy(), np.asarray(twin(splits.test[0][:7])),
                               rtol=1e-6, atol=1e-5)
    record = json.loads((run / "metrics.json").read_text())
    assert [e["epoch"] for e in record["epoch_history"]] == [1, 2]
    assert record["epoch_history"][-1]["valid_mse"] == pytest.approx(float(lines["valid_mse"]),
                                                                     abs=2e-6)
    assert record["global_step"] == 2 * 256 // 32


def test_an_epoch_run_resumed_ends_with_the_uninterrupted_weights(tmp_path, capsys):
    # One epoch, then the same command with two: the second resumes at step 3 (the batches of
    # epoch 1 are drawn again and skipped) and ends bitwise where a two-epoch run ends.
    small = ["--flagfile=flags/series_rnn_smoke.cfg", "--nobaselines", "--model=deep_dense",
             "--n_train=64", "--n_valid=32", "--n_test=32", "--checkpoint_steps=1000"]
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert run_in_process([*small, "--epochs=2", f"--model_dir={whole}"], capsys)[0] == 0
    assert run_in_process([*small, "--epochs=1", f"--model_dir={split}"], capsys)[0] == 0
    status, out, err = run_in_process([*small, "--epochs=2", f"--model_dir={split}"], capsys)
    assert status == 0, err
    records = [json.loads((d / "metrics.json").read_text()) for d in (whole, split)]
    assert [r["global_step"] for r in records] == [4, 4]
    assert records[1]["epoch_history"][0] == records[0]["epoch_history"][0]  # kept from run 1
    assert records[1]["epoch_history"][1]["valid_mse"] == records[0]["epoch_history"][1][
        "valid_mse"]
    reader = [tf.train.load_checkpoint(str(d)) for d in (whole, split)]
    for name, _ in tf.train.list_variables(str(whole)):
        np.testing.assert_array_equal(reader[0].get_tensor(name), reader[1].get_tensor(name),
                                      err_msg=name)
