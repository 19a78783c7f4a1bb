"""SavedModels of the legacy graphs and of their Keras 3 twins: one signature, callable from a
process that imports TensorFlow only, equal to the program's own logits."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from legacy_rnn import experiments
from legacy_rnn.training import serving
from legacy_rnn.conversion.convert import convert_checkpoint
from legacy_rnn.errors import UserError
from program_harness import program_in_process

# The TF migration guide's forward tolerance.
ATOL = 1e-5
BATCHES = (1, 7, 300)
# mnist_rnn exports through the same code as mnist_birnn (one placeholder, one classifier):
# the two below cover both signatures. Measured for all three: docs/migration.md.
SMOKE = {"mnist_birnn": "flags/mnist_birnn_smoke.cfg",
         "toy_dynamic_rnn": "flags/toy_dynamic_rnn_smoke.cfg"}
TOY_LEN = 6  # flags/toy_dynamic_rnn_smoke.cfg


def serving_inputs(name, batch, rng):
    if name == "toy_dynamic_rnn":
        seqlen = (np.arange(batch) % TOY_LEN + 1).astype(np.int32)  # every length 1..seq_max_len
        x = rng.random((batch, TOY_LEN, 1)).astype(np.float32)
        x[np.arange(TOY_LEN) >= seqlen[:, None]] = 0.0
        return {"x": x, "seqlen": seqlen}
    return {"images": rng.random((batch, 784)).astype(np.float32)}


def program_logits(name, model_dir, batches):
    """The TF1 graph's logits from the run's checkpoint (what the program itself computes), for
    each of `batches` (a list of input dicts), from one graph."""
    experiment = experiments.get(name)
    config = json.loads((model_dir / "metrics.json").read_text())["config"]
    config = experiment.config.__class__(**{k: v for k, v in config.items()
                                            if k in experiment.config.__dataclass_fields__})
    model = experiment.build_graph(config)
    with model.graph.as_default(), tf.compat.v1.Session() as sess:
        tf.compat.v1.train.Saver().restore(sess, tf.train.latest_checkpoint(str(model_dir)))
        return [sess.run(model.logits, {model.serving_inputs[k]: v for k, v in inputs.items()})
                for inputs in batches]


CLIENT = """
import json, os, sys
import numpy as np
import tensorflow as tf
assert "legacy_rnn" not in sys.modules and "tf_keras" not in sys.modules
assert "TF_USE_LEGACY_KERAS" not in os.environ
cases = json.loads(sys.argv[1])
report = {}
for case in cases:
    serve = tf.saved_model.load(case["dir"]).signatures["serving_default"]
    data = np.load(case["data"])
    inputs = {k[3:]: tf.constant(data[k]) for k in data.files if k.startswith("in_")}
    out = serve(**inputs)
    assert out["classes"].dtype == tf.int64 and out["logits"].dtype == tf.float32
    np.testing.assert_array_equal(out["classes"].numpy(), out["logits"].numpy().argmax(1))
    np.testing.assert_allclose(out["probabilities"].numpy().sum(1), 1.0, rtol=0, atol=1e-5)
    report[case["label"]] = float(np.abs(out["logits"].numpy() - data["expected"]).max())
print(json.dumps(report))
"""


def test_legacy_and_keras_savedmodels_serve_the_programs_logits_in_a_clean_process(
        idx_dir, tmp_path, capsys):
    rng = np.random.default_rng(0)
    cases = []
    for name, flagfile in SMOKE.items():
        run, legacy, twin = tmp_path / name, tmp_path / f"{name}_tf1", tmp_path / f"{name}_keras"
        data = [f"--data_dir={idx_dir}"] if name != "toy_dynamic_rnn" else []
        status, err = program_in_process(name, [f"--flagfile={flagfile}", *data,
                                                f"--model_dir={run}", f"--export_dir={legacy}"],
                                         capsys)
        assert status == 0, err
        experiment = experiments.get(name)
        config = convert_checkpoint(str(run), name, str(tmp_path / f"{name}.keras"))
        import keras
        serving.export_keras(keras.saving.load_model(tmp_path / f"{name}.keras"),
                             experiment.serving_specs(
                                 config.__class__(**{**config.__dict__, "seq_max_len": TOY_LEN})
                                 if name == "toy_dynamic_rnn" else config),
                             experiment.keras_call, str(twin))
        batches = [serving_inputs(name, batch, rng) for batch in BATCHES]
        for batch, inputs, expected in zip(BATCHES, batches, program_logits(name, run, batches)):
            path = tmp_path / f"{name}_{batch}.npz"
            np.savez(path, expected=expected, **{f"in_{k}": v for k, v in inputs.items()})
            for kind, directory in (("tf1", legacy), ("keras", twin)):
                cases.append({"label": f"{name} {kind} batch {batch}", "dir": str(directory),
                              "data": str(path)})
    env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "PYTHONPATH")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    result = subprocess.run([sys.executable, "-I", "-c", CLIENT, json.dumps(cases)],
                            cwd=str(tmp_path), env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(report) == len(cases) == 12
    for label, difference in report.items():
        assert difference <= ATOL, label
        print(f"{label}: largest logit difference {difference:.1e}")


def test_the_signature_is_the_placeholders(idx_dir, tmp_path, capsys):
    export = tmp_path / "export"
    status, err = program_in_process("toy_dynamic_rnn", [
        "--flagfile=flags/toy_dynamic_rnn_smoke.cfg", f"--export_dir={export}"], capsys)
    assert status == 0, err
    serve = tf.saved_model.load(str(export)).signatures["serving_default"]
    _, specs = serve.structured_input_signature
    assert {k: (v.shape.as_list(), v.dtype) for k, v in specs.items()} == {
        "x": ([None, TOY_LEN, 1], tf.float32), "seqlen": ([None], tf.int32)}
    assert set(serve.structured_outputs) == {"logits", "probabilities", "classes"}
    assert serve.structured_outputs["classes"].dtype == tf.int64


def test_an_existing_export_dir_is_refused_before_training_unless_overwrite(tmp_path, capsys):
    export = tmp_path / "export"
    export.mkdir()
    (export / "saved_model.pb").write_text("a user's earlier export")
    run = tmp_path / "run"
    args = ["--flagfile=flags/toy_dynamic_rnn_smoke.cfg", f"--export_dir={export}",
            f"--model_dir={run}"]
    status, err = program_in_process("toy_dynamic_rnn", args, capsys)
    assert status == 1 and f"--export_dir={export} exists and is not empty" in err
    assert "--overwrite" in err and not run.exists()  # refused before any training
    assert (export / "saved_model.pb").read_text() == "a user's earlier export"
    status, err = program_in_process("toy_dynamic_rnn", [*args, "--overwrite"], capsys)
    assert status == 0, err
    assert tf.saved_model.load(str(export)).signatures["serving_default"] is not None


def test_an_export_dir_that_would_delete_the_model_dir_is_refused_even_with_overwrite(
        tmp_path, capsys):
    # It used to exit 0 with the run's checkpoints, metrics.json and summaries deleted.
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text('{"a finished run": true}')
    for export in (run, tmp_path):  # the model_dir itself, or a directory holding it
        status, err = program_in_process("toy_dynamic_rnn", [
            "--flagfile=flags/toy_dynamic_rnn_smoke.cfg", f"--model_dir={run}",
            f"--export_dir={export}", "--overwrite"], capsys)
        assert status == 1 and f"--export_dir={export} holds --model_dir={run}" in err, err
        assert (run / "metrics.json").read_text() == '{"a finished run": true}'
        assert sorted(p.name for p in run.iterdir()) == ["metrics.json"]  # refused before training


def test_a_failing_export_leaves_nothing_half_written(tmp_path, monkeypatch):
    def full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tf.compat.v1.saved_model.Builder, "save", full)
    from legacy_rnn.experiments.toy import TOY, ToyConfig
    from legacy_rnn.training import loop as training
    config = ToyConfig(n_hidden=4, seq_max_len=5, min_len=1, max_value=30, n_train=16, n_test=8)
    with pytest.raises(UserError, match=r"Writing .*export failed \(No space left on device\); "
                                        r"nothing was written"):
        TOY.run(config, training.TrainConfig(batch_size=8, training_iters=17,
                                             export_dir=str(tmp_path / "export")))
    assert os.listdir(tmp_path) == []  # no export, no temporary directory


def test_the_documents_savedmodel_failure_and_the_signature_that_avoids_it(tmp_path):
    # The documents' model (TF2 Keras, i.e. tf-keras): Input(shape=[75], name="input_wv"),
    # saved as a SavedModel; the restored object only has the functions traced at save time.
    import tf_keras
    inputs = tf_keras.Input(shape=[75], dtype="float32", name="input_wv")
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(1)(inputs))
    model.save(str(tmp_path / "documents"))  # the SavedModel format
    restored = tf.saved_model.load(str(tmp_path / "documents"))
    x = np.random.default_rng(0).random((3, 75)).astype(np.float32)
    # TF 2.21 says "concrete function"; the documents' TF said "function".
    message = "Could not find matching (concrete )?function to call loaded from the SavedModel"
    for wrong in ([tf.constant(x)],  # another argument structure: a list of one tensor
                  tf.constant(x[0]),  # another shape: one example without its batch axis
                  tf.constant(np.ones((3, 80), np.float32)),  # another width
                  tf.constant(x.astype(np.float64))):  # another dtype
        with pytest.raises(ValueError, match=message):
            restored(wrong)
    # The exported signature takes its named input, any batch:
    serve = restored.signatures["serving_default"]
    out = serve(input_wv=tf.constant(x))
    np.testing.assert_allclose(list(out.values())[0].numpy(), model(x).numpy(), rtol=0, atol=ATOL)
