"""Checkpoint -> .keras conversion, tutorial-layout checkpoints, and starting runs from them."""
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tutorial_graphs
from legacy_rnn import experiments
from legacy_rnn.training import checkpoints
from legacy_rnn.training import loop as training
from legacy_rnn.experiments.toy import TOY as TOY_EXPERIMENT, ToyConfig, toy_data_sets
from legacy_rnn.conversion.convert import convert_checkpoint
from legacy_rnn.errors import UserError
from zoo_harness import ATOL, RTOL
from program_harness import run_program_module
TOY_LEN = 6
TUTORIALS = ("mnist_rnn", "mnist_birnn", "toy_dynamic_rnn")  # those with a tutorial script


def feeds_for(model_name, rng, n=9):
    """(graph feeds incl. labels, keras inputs)."""
    if model_name == "toy_dynamic_rnn":
        seqlen = rng.integers(1, TOY_LEN + 1, n).astype(np.int32)
        x = rng.random((n, TOY_LEN, 1)).astype(np.float32)
        x[np.arange(TOY_LEN) >= seqlen[:, None]] = 0.0
        return (x, np.eye(2, dtype=np.float32)[rng.integers(0, 2, n)], seqlen), [x, seqlen]
    images = rng.random((n, 28, 28)).astype(np.float32)
    return (images, np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]), images


@pytest.fixture(scope="module")
def tutorial_checkpoints(tmp_path_factory):
    """{model: (prefix, keras inputs, graph logits)} of tutorial-layout checkpoints, n_hidden 5."""
    out = {}
    for i, name in enumerate(TUTORIALS):
        prefix = str(tmp_path_factory.mktemp(name) / "model.ckpt")
        feeds, inputs = feeds_for(name, np.random.default_rng(i))
        logits = tutorial_graphs.train_and_save(name, 5, prefix, feeds, TOY_LEN)
        out[name] = (prefix, inputs, logits)
    return out


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_checkpoint_converts_and_reproduces_the_graph(name, tutorial_checkpoints, tmp_path):
    prefix, inputs, logits = tutorial_checkpoints[name]
    assert {"Variable", "Variable_1"} <= set(dict(tf.train.list_variables(prefix)))
    config = convert_checkpoint(prefix, name, str(tmp_path / "m.keras"))
    assert config.n_hidden == 5
    model = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(model(inputs).numpy(), logits, rtol=RTOL, atol=ATOL)


def test_cli_output_loads_in_a_clean_process_with_safe_mode(tutorial_checkpoints, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for name in ("mnist_birnn", "toy_dynamic_rnn"):
        prefix, inputs, logits = tutorial_checkpoints[name]
        if name == "toy_dynamic_rnn":  # one through the command line, as a user runs it
            result = run_program_module("legacy_rnn.convert", f"--checkpoint={prefix}",
                                        f"--model={name}", f"--output={tmp_path / name}.keras")
            assert result.returncode == 0, result.stderr[-2000:]
            assert f"{name}, n_hidden 5" in result.stdout
        else:
            convert_checkpoint(prefix, name, f"{tmp_path / name}.keras")
        np.savez(tmp_path / f"{name}.npz", *([inputs] if name != "toy_dynamic_rnn" else inputs),
                 logits=logits)
    # Nothing of this project is importable here: not on the path, not installed as a module.
    loader = (
        "import sys, numpy as np, keras\n"
        "assert 'legacy_rnn' not in sys.modules\n"
        "for name in ('mnist_birnn', 'toy_dynamic_rnn'):\n"
        f"    data = np.load(r'{tmp_path}/' + name + '.npz')\n"
        "    inputs = [data[k] for k in sorted(data.files) if k.startswith('arr_')]\n"
        f"    model = keras.saving.load_model(r'{tmp_path}/' + name + '.keras', safe_mode=True)\n"
        "    out = model(inputs if len(inputs) > 1 else inputs[0])\n"
        "    np.testing.assert_allclose(np.asarray(out), data['logits'], rtol=1e-6, atol=1e-5)\n"
        "    print(name, 'ok', tuple(out.shape))\n")
    clean_env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "TF_USE_LEGACY_KERAS")}
    result = subprocess.run([sys.executable, "-I", "-c", loader], cwd=str(tmp_path), env=clean_env,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "mnist_birnn ok (9, 10)" in result.stdout and "toy_dynamic_rnn ok (9, 2)" in result.stdout


@pytest.mark.parametrize("source, model, message", [
    ("mnist_birnn", "mnist_rnn", "is not a mnist_rnn checkpoint: it has no rnn/basic_lstm_cell/"
                                 "kernel, rnn/basic_lstm_cell/bias. It holds the variables of "
                                 "mnist_birnn"),
    ("toy_dynamic_rnn", "mnist_rnn", "does not fit mnist_rnn: the cell reads 1 inputs per step, "
                                     "mnist_rnn feeds 28"),
    ("mnist_rnn", "toy_dynamic_rnn", "the output weights have shape [5, 10], toy_dynamic_rnn "
                                     "needs [5, 2]"),
])
def test_a_checkpoint_of_another_model_is_named(source, model, message, tutorial_checkpoints,
                                                 tmp_path):
    with pytest.raises(UserError) as e:
        convert_checkpoint(tutorial_checkpoints[source][0], model, str(tmp_path / "m.keras"))
    assert message in str(e.value)
    assert not (tmp_path / "m.keras").exists()


def test_bad_paths_are_explained(tutorial_checkpoints, tmp_path):
    prefix = tutorial_checkpoints["mnist_rnn"][0]
    with pytest.raises(UserError, match="Cannot read a checkpoint at"):
        convert_checkpoint(str(tmp_path / "nothing"), "mnist_rnn", str(tmp_path / "m.keras"))
    with pytest.raises(UserError, match="is a directory without a checkpoint"):
        convert_checkpoint(str(tmp_path), "mnist_rnn", str(tmp_path / "m.keras"))
    with pytest.raises(UserError, match="must end in .keras"):
        convert_checkpoint(prefix, "mnist_rnn", str(tmp_path / "m.h5"))
    existing = tmp_path / "kept.keras"
    existing.write_text("a user's file")
    with pytest.raises(UserError, match="exists. Choose another --output, or pass --overwrite"):
        convert_checkpoint(prefix, "mnist_rnn", str(existing))
    assert existing.read_text() == "a user's file"


def test_missing_variable_is_named(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        tf.Variable(tf.zeros([29, 4]), name="rnn/basic_lstm_cell/kernel")
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, str(tmp_path / "partial"))
    with pytest.raises(UserError, match="it has no rnn/basic_lstm_cell/bias, output/weights, "
                                        "output/biases. It holds: rnn/basic_lstm_cell/kernel"):
        checkpoints.read_weights(str(tmp_path / "partial"), experiments.MNIST_RNN)


TOY = ToyConfig(n_hidden=5, seq_max_len=TOY_LEN, min_len=1, max_value=50, n_train=16,
                            n_test=40)


def test_eval_only_from_a_tutorial_checkpoint_matches_keras(tutorial_checkpoints, tmp_path):
    prefix = tutorial_checkpoints["toy_dynamic_rnn"][0]
    train = training.TrainConfig(init_checkpoint=os.path.dirname(prefix), eval_only=True,
                                 model_dir=str(tmp_path / "eval"))
    metrics = TOY_EXPERIMENT.run(TOY, train)
    assert metrics["global_step"] == 0 and metrics["train_examples"] == 0

    _, test = toy_data_sets(TOY)
    keras_model = keras.saving.load_model(
        _converted(prefix, "toy_dynamic_rnn", tmp_path / "toy.keras"))
    logits = keras_model([test.data, test.seqlen]).numpy()
    accuracy = (logits.argmax(1) == test.labels.argmax(1)).mean()
    loss = float(tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(test.labels, logits)))
    assert metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-9)
    assert metrics["test_loss"] == pytest.approx(loss, rel=1e-5)
    assert (tmp_path / "eval" / "metrics.json").exists()
    assert not list((tmp_path / "eval").glob("model.ckpt*"))  # evaluation saves no new weights


def _converted(prefix, name, output):
    convert_checkpoint(prefix, name, str(output))
    return output


def test_init_checkpoint_needs_matching_sizes(tutorial_checkpoints):
    prefix = tutorial_checkpoints["toy_dynamic_rnn"][0]
    train = training.TrainConfig(init_checkpoint=prefix, eval_only=True)
    with pytest.raises(UserError, match="holds a recurrent layer of 5 units, and this run builds "
                                        "7. Pass --n_hidden=5"):
        TOY_EXPERIMENT.run(ToyConfig(**{**TOY.__dict__, "n_hidden": 7}), train)
    with pytest.raises(UserError, match="--eval_only evaluates the weights of --init_checkpoint"):
        TOY_EXPERIMENT.run(TOY, training.TrainConfig(eval_only=True))


def test_training_continues_from_an_init_checkpoint(tutorial_checkpoints, tmp_path):
    prefix = tutorial_checkpoints["toy_dynamic_rnn"][0]
    trained = TOY_EXPERIMENT.run(TOY, training.TrainConfig(init_checkpoint=prefix, batch_size=8,
                                                            training_iters=17))
    assert trained["global_step"] == 2
    # The first step's loss is computed before its update: the checkpoint's loss on batch one.
    x, labels, seqlen = toy_data_sets(TOY)[0].next_batch(8)
    model = keras.saving.load_model(_converted(prefix, "toy_dynamic_rnn", tmp_path / "t.keras"))
    first = float(tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(
        labels, model([x, seqlen]))))
    assert trained["step_losses"][0] == pytest.approx(first, abs=1e-5)
