"""Runs saved parity cases on whichever Keras 3 backend this process has, as if TensorFlow were
not installed (its import is blocked before Keras is imported).

    KERAS_BACKEND=jax python -m legacy_rnn.backend_check CASES_DIR      # prints a JSON report

`legacy_rnn.backends` writes CASES_DIR with TensorFlow (the TF1 graphs' outputs and training
losses, the converted `.keras` files) and reads the report. Each case in `CASES_DIR/cases.json`:

- `forward`: load `file`, call it on the saved inputs, largest |Keras - TF1| difference;
- `train`: load `file`, compile with Adam(learning_rate, epsilon=1e-8) (TF1's AdamOptimizer) and
  the loss of the experiment's `head` (softmax or sigmoid cross-entropy on logits, or MSE),
  `train_on_batch` on each saved batch; the losses (each before its update, as TF1's
  `sess.run([train_op, loss])` reports them) against the TF1 program's;
- `whole`: load `file` (a whole model translated from a graph; inputs by `input_names`), its
  output number `output` against the graph's, and the gradients of `sum(output * w)` for each
  trainable weight by the backend's autodiff against the same model's on TensorFlow, which
  the translation checked against the TF1 graph's;
- `time`: median seconds of `train_on_batch` on the saved batch after warm-up;
- `seq2seq`: an attention decoder's twin (`legacy_rnn.seq2seq.parity.save_case`): its layers
  rebuilt from their configs and weights, then teacher-forced logits (largest difference),
  greedy and beam-search tokens and lengths (equal) and beam scores (largest difference) against
  the TF1 graphs'. A beam row may differ only from a step where its beams score as TF1's did
  within 1e-5 (a tie that rounding decides), in at most 10% of the rows; such rows are counted
  and left out of the comparison.
"""
import json
import os
import statistics
import sys
import time

# As if TensorFlow and tf-keras were not installed: `import tensorflow` raises ImportError, so
# Keras (which would otherwise use TensorFlow for its data utilities) runs without it.
sys.modules["tensorflow"] = None
sys.modules["tf_keras"] = None

import keras  # noqa: E402
import numpy as np  # noqa: E402

from legacy_rnn import keras_cells  # noqa: E402,F401  (registers the cells the files use)
from legacy_rnn import keras_graph  # noqa: E402,F401  (and a translated model's ops)
from legacy_rnn.seq2seq import keras_decoder  # noqa: E402  (and the attention decoder)
from legacy_rnn.seq2seq import ties  # noqa: E402


def _inputs(data, prefix, names=None):
    if names:  # a whole model translated from a graph takes {placeholder: array}
        return {name: data[f"{prefix}{name}"] for name in names}
    keys = sorted(k for k in data.files if k.startswith(prefix))
    arrays = [data[k] for k in keys]
    return arrays if len(arrays) > 1 else arrays[0]


def forward(case, directory):
    model = keras.saving.load_model(os.path.join(directory, case["file"]))
    data = np.load(os.path.join(directory, case["data"]))
    out = model(_inputs(data, "in_", case.get("input_names")))
    out = np.asarray(keras.ops.convert_to_numpy(out[case.get("output", 0)] if isinstance(
        out, (list, tuple)) else out))
    expected = data["expected"]
    np.testing.assert_allclose(out, expected, rtol=case["rtol"], atol=case["atol"])
    return {"largest_difference": float(np.max(np.abs(out - expected)))}


def _outputs_and_gradients(model, inputs, w, output):
    """The model's output number `output` and d sum(output * w) / d model.trainable_variables,
    in inference mode, by the backend's own autodiff (Keras 3 has no backend-free gradient
    call)."""
    def pick(out):
        return out[output] if isinstance(out, (list, tuple)) else out
    if keras.backend.backend() == "jax":
        import jax
        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss(trainable):
            out, _ = model.stateless_call(trainable, non_trainable, inputs, training=False)
            return jax.numpy.sum(pick(out) * w), pick(out)
        (_, out), grads = jax.value_and_grad(loss, has_aux=True)(
            [v.value for v in model.trainable_variables])
        return out, grads
    import torch
    model.zero_grad()
    out = pick(model(inputs, training=False))
    torch.sum(out * torch.as_tensor(w)).backward()
    return out.detach(), [v.value.grad for v in model.trainable_variables]


def whole(case, directory):
    """A model translated whole from a TF1 graph: its outputs against the graph's, and the
    gradients of `sum(output * w)` for every trainable weight against the same model's on
    TensorFlow (which `conversion.whole` checked against the TF1 graph's by variable name: the
    case's `tf1_gradient_difference`)."""
    model = keras.saving.load_model(os.path.join(directory, case["file"]))
    data = np.load(os.path.join(directory, case["data"]))
    out, grads = _outputs_and_gradients(model, _inputs(data, "in_", case["input_names"]),
                                        data["w"], case["output"])
    out = np.asarray(keras.ops.convert_to_numpy(out))
    np.testing.assert_allclose(out, data["expected"], rtol=case["rtol"], atol=case["atol"],
                               err_msg="outputs")
    assert len(grads) == case["weights"], (len(grads), case["weights"])
    largest = 0.0
    for i, (variable, grad) in enumerate(zip(model.trainable_variables, grads)):
        expected = data[f"grad_{i}"]
        got = np.zeros_like(expected) if grad is None else np.asarray(
            keras.ops.convert_to_numpy(grad))
        np.testing.assert_allclose(got, expected, rtol=0, atol=case["atol"],
                                   err_msg=variable.path)
        largest = max(largest, float(np.max(np.abs(got - expected), initial=0.0)))
    outputs = float(np.max(np.abs(out - data["expected"])))
    return {"largest_difference": max(outputs, largest), "outputs": outputs,
            "gradients": largest, "tf1_gradient_difference": case["tf1_gradient_difference"]}


def _compiled(case, directory):
    model = keras.saving.load_model(os.path.join(directory, case["file"]))
    losses = {"softmax": keras.losses.CategoricalCrossentropy(from_logits=True),
              "sigmoid": keras.losses.BinaryCrossentropy(from_logits=True),
              "regression": keras.losses.MeanSquaredError()}
    model.compile(optimizer=keras.optimizers.Adam(case["learning_rate"], epsilon=1e-8),
                  loss=losses[case.get("head", "softmax")])
    return model


def train(case, directory):
    model = _compiled(case, directory)
    data = np.load(os.path.join(directory, case["data"]))
    losses = []
    for step in range(case["steps"]):
        inputs = _inputs(data, f"in{step:03d}_")
        losses.append(float(model.train_on_batch(inputs, data[f"labels{step:03d}"])))
    expected = data["losses"]
    np.testing.assert_allclose(losses, expected, rtol=0, atol=case["atol"])
    return {"largest_difference": float(np.max(np.abs(np.subtract(losses, expected)))),
            "losses": losses}


def timed(case, directory):
    model = _compiled(case, directory)
    data = np.load(os.path.join(directory, case["data"]))
    inputs, labels = _inputs(data, "in000_"), data["labels000"]
    for _ in range(case["warmup"]):
        model.train_on_batch(inputs, labels)
    times = []
    for _ in range(case["repeats"]):
        start = time.perf_counter()
        model.train_on_batch(inputs, labels)
        times.append(time.perf_counter() - start)
    return {"step_ms": statistics.median(times) * 1e3}


def seq2seq(case, directory):
    data = np.load(os.path.join(directory, case["data"]))
    layers = keras_decoder.load_layers(os.path.join(directory, case["layers"]))
    arrays = {k[len("in_"):]: data[k] for k in data.files
              if k.startswith("in_") and not k.startswith("in_state")}
    arrays["states"] = [data[k] for k in sorted(data.files) if k.startswith("in_state")]
    largest, tied = 0.0, []
    for mode in ("teacher", "greedy", "beam"):
        out = {key: np.asarray(keras.ops.convert_to_numpy(value)) for key, value in
               keras_decoder.run(layers["cell"], layers["projection"], layers["embedding"],
                                 arrays, mode, case["problem"]).items()}
        if mode == "beam":
            tied, untied = ties.tied_rows(out["ids"], out["scores"], data["expected_beam_ids"],
                                          data["expected_beam_scores"], 1e-5)
            assert not untied, (f"beam ids differ in rows {untied[:10]} where the beams' "
                                "scores differ from TF1's beyond 1e-5")
            assert len(tied) <= ties.MOST_TIED * len(out["ids"]), (
                f"beam ids differ in {len(tied)} of {len(out['ids'])} rows: more than ties "
                "explain")
            keep = np.setdiff1d(np.arange(len(out["ids"])), tied)
            out = {key: value[keep] for key, value in out.items()}
        for key, value in out.items():
            expected = data[f"expected_{mode}_{key}"]
            if mode == "beam":
                expected = expected[keep]
            if key in ("ids", "lengths"):
                np.testing.assert_array_equal(value, expected, err_msg=f"{mode} {key}")
            else:
                np.testing.assert_allclose(value, expected, rtol=0, atol=1e-5,
                                           err_msg=f"{mode} {key}")
                largest = max(largest, float(np.max(np.abs(value - expected))))
    return {"largest_difference": largest, "rows": int(arrays["memory"].shape[0]),
            "beam_rows_decided_by_a_tie": len(tied)}


KINDS = {"forward": forward, "train": train, "time": timed, "seq2seq": seq2seq,
         "whole": whole}


def main(directory):
    with open(os.path.join(directory, "cases.json")) as f:
        cases = json.load(f)
    report = {"backend": keras.backend.backend(), "keras": keras.__version__,
              "tensorflow_imported": sys.modules.get("tensorflow") is not None, "cases": {}}
    for case in cases:
        start = time.perf_counter()
        try:
            report["cases"][case["name"]] = KINDS[case["kind"]](case, directory)
        except AssertionError as e:
            report["cases"][case["name"]] = {"failed": str(e).strip().splitlines()[:8]}
        report["cases"][case["name"]]["seconds"] = time.perf_counter() - start  # what it costs
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
