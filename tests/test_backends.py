"""Converted models and Keras 3 twins on the JAX backend, in a process without TensorFlow, against
the TF1 graphs: forward (rtol 1e-6, atol 1e-5) and training (atol 1e-5 per step for 10 steps, the
TF migration guide). The same check for PyTorch: `./run.sh backends --backend=torch`."""
import sys

import numpy as np
import pytest

import user_graphs
from legacy_rnn import experiments
from legacy_rnn.conversion import whole
from legacy_rnn.seq2seq import parity
from legacy_rnn.tools import backends



def _one_per_twin(cases):
    """The single-cell cases, one per Keras twin class (and one wrapped in projections): what
    runs on JAX is the twin (the weight maps are backend-free and checked on TF);
    `./run.sh backends` runs every family."""
    out, seen = {}, set()
    for name, block in cases.items():
        spec = block.levels[0].cell
        twin = (type(spec.family.keras_cell(spec)).__name__,
                tuple(w.kind for w in block.wrappers))
        if len(block.levels) == 1 and twin not in seen:
            seen.add(twin)
            out[name] = block
    return out


FAMILIES = _one_per_twin(backends.ZOO_CASES)


def _whole_model_cases(directory):
    """The two user-style graphs of tests/test_whole_model.py translated whole, their graphs'
    logits (run by hand) the expected values."""
    rng = np.random.default_rng(5)
    ids = lambda *shape: rng.integers(0, user_graphs.VOCAB, shape).astype(np.int32)  # noqa: E731
    lengths = np.array([7, 2, 0], np.int32)
    models = {  # name: (builder, output, inputs, TF1 loops)
        "lm": (user_graphs.build_lm, "logits:0", {"input_ids": ids(3, user_graphs.TIME)}, True),
        "tagger": (user_graphs.build_tagger, "logits:0",
                   {"word_ids": ids(3, 7), "sequence_lengths": lengths}, False),
        "ner": (user_graphs.build_ner_tagger, "proj/logits:0", {  # char, then word BiLSTM
            "word_ids": ids(3, 7), "sequence_lengths": lengths,
            "char_ids": rng.integers(0, 9, (3, 7, 4)).astype(np.int32),
            "word_lengths": rng.integers(0, 5, (3, 7)).astype(np.int32)}, False),
        "deepspeech": (lambda prefix: user_graphs.build_deepspeech(prefix, cudnn_names=True),
                       "raw_logits:0", {  # time-major, a fused LSTM
                           "input_node": rng.normal(size=(3, 7, 4)).astype(np.float32),
                           "input_lengths": lengths}, False)}
    cases = []
    for i, (name, (builder, output, inputs, v1_loops)) in enumerate(models.items()):
        prefix = f"{directory}/whole_{i}/model.ckpt"
        builder(prefix)
        result = whole.to_keras_model(prefix, [output])
        assert result.ok
        (expected,) = user_graphs.run_graph(prefix, [output], inputs, v1_loops=v1_loops)
        cases.append(backends.whole_case(directory, f"whole {name}", result.model,
                                         {whole._keras_name(k): v for k, v in inputs.items()},
                                         expected, result.gradient_difference))
    # Planted: the last model's expected gradient of one weight 1% off must be caught.
    planted = dict(cases[-1], name=PLANTED, data="planted_gradients.npz")
    arrays = dict(np.load(f"{directory}/{cases[-1]['data']}"))
    arrays["grad_0"] = arrays["grad_0"] * 1.01 + 1e-3
    np.savez(f"{directory}/planted_gradients.npz", **arrays)
    return cases + [planted]


PLANTED = "planted: one gradient 1% off"
WHOLE = ("whole lm", "whole tagger", "whole ner", "whole deepspeech")


SEQ2SEQ = "seq2seq Bahdanau normalize: teacher-forced, greedy and beam on 200 inputs"


@pytest.fixture(scope="module")
def jax_report(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("backend_cases"))
    seq2seq = parity.Problem(parity.CASES[parity.BEAM_CASE], batch=200)
    cases = backends.build_cases(directory, zoo_cases=FAMILIES, train=("mnist_rnn", "imdb_rnn"),
                                 extra=_whole_model_cases(directory) + [parity.save_case(
                                     directory, SEQ2SEQ, seq2seq)])
    return cases, backends.run_check(directory, "jax")


def test_every_experiment_and_cell_family_on_jax_matches_the_tf1_graph(jax_report):
    cases, report = jax_report
    assert report["backend"] == "jax" and report["tensorflow_imported"] is False
    assert {c["name"] for c in cases} == set(report["cases"])
    forward = {c["name"] for c in cases if c["kind"] == "forward"}
    assert {f"{name}: logits" for name in experiments.EXPERIMENTS} <= forward
    assert len(forward) == len(experiments.EXPERIMENTS) + len(FAMILIES)
    # Whole models translated from a graph (a computed reshape: static shapes on JAX).
    assert {c["name"] for c in cases if c["kind"] == "whole"} == {*WHOLE, PLANTED}
    assert "failed" in report["cases"][PLANTED]
    for name, result in report["cases"].items():
        if name == PLANTED:
            continue
        assert "failed" not in result, (name, result)
        assert result["largest_difference"] <= backends.ATOL, name
        print(f"jax {name}: largest difference {result['largest_difference']:.1e}")


def test_whole_models_gradients_on_jax_are_the_tf1_graphs(jax_report):
    # Against the same model's on TF, which conversion.whole compared with the TF1 graph's by
    # variable name: the two differences add up to at most the guide's 1e-5.
    _, report = jax_report
    for name in WHOLE:
        result = report["cases"][name]
        assert result["gradients"] + result["tf1_gradient_difference"] <= backends.ATOL
        print(f"jax {name}: outputs {result['outputs']:.1e}; gradients {result['gradients']:.1e} "
              f"against TF's, TF's against the graph's {result['tf1_gradient_difference']:.1e}")


def test_training_continues_on_jax_with_the_tf1_losses(jax_report):
    # imdb_rnn: Keras's Adam on JAX gets the embedding's gradient dense, as TF1's AdamOptimizer
    # applies it (on the TF backend it would not: docs/migration.md, trap 17).
    _, report = jax_report
    trained = sorted(n for n in report["cases"] if "Adam steps" in n)
    assert [n.split(":")[0] for n in trained] == ["imdb_rnn", "mnist_rnn"]
    for name in trained:
        result = report["cases"][name]
        assert len(result["losses"]) == backends.TRAIN_STEPS
        assert result["largest_difference"] <= backends.ATOL, name
        assert result["losses"][0] != result["losses"][-1]  # it did train
        print(f"jax {name}: largest loss difference {result['largest_difference']:.1e}")


def test_the_cells_module_imports_without_tensorflow(tmp_path):
    import subprocess
    code = ("import sys; sys.modules['tensorflow'] = None; sys.modules['tf_keras'] = None\n"
            "import legacy_rnn.keras_cells as k\n"
            "print(k.TF1LSTMCell.__name__, k.LNSimpleRNNCell.__name__)")
    import os
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["KERAS_BACKEND"] = "jax"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["TF1LSTMCell", "LNSimpleRNNCell"]


def test_a_missing_backend_is_named_with_the_install_command(monkeypatch):
    monkeypatch.setattr(backends, "available", lambda backend: False)
    with pytest.raises(backends.UserError, match=r"pip install -e '.\[torch\]'"):
        backends.run_check("unused", "torch")
