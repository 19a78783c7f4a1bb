"""imdb_rnn: reading imdb.npz safely and as Keras does, the TF1 graph against its Keras 3 twin,
dropout only while training, and the program on a small file of the real layout."""
import dataclasses
import json
import os
import zipfile

import keras
import numpy as np
import pytest
from absl import flags

import experiment_parity
from legacy_rnn.data import imdb as imdb_data
from legacy_rnn.conversion.convert import convert_checkpoint
from legacy_rnn.errors import UserError
from legacy_rnn.experiments.imdb import IMDB
from program_harness import program_output

SMALL = dataclasses.replace(IMDB.config, n_hidden=6, num_words=50, maxlen=9, embedding_size=5,
                            learning_rate=0.01)


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("imdb") / "imdb.npz"
    x_train, y_train = imdb_data.synthetic_reviews(1, 320)
    x_test, y_test = imdb_data.synthetic_reviews(2, 160)
    imdb_data.write_npz(path, x_train, y_train, x_test, y_test)
    return path


def test_reading_matches_keras_load_data_and_pad_sequences(small_npz, monkeypatch):
    ours = imdb_data.load_data(str(small_npz), 300)
    from keras.src.datasets import imdb as keras_imdb
    monkeypatch.setattr(keras_imdb, "get_file", lambda fname, **kwargs: str(small_npz))
    theirs = keras.datasets.imdb.load_data(num_words=300)
    for (x, y), (kx, ky) in zip(ours, theirs):
        assert [list(r) for r in kx] == x
        np.testing.assert_array_equal(ky, y)
        np.testing.assert_array_equal(imdb_data.pad(x, 80),
                                      keras.utils.pad_sequences(list(kx), maxlen=80))
    assert min(min(r) for r in ours[0][0]) == imdb_data.START
    assert imdb_data.OOV in {w for r in ours[0][0] for w in r}  # 300 words: many are out


class Payload:
    """What a tampered file carries: a pickle that runs a command when loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_file_carrying_a_code_executing_pickle_is_refused_without_running_it(small_npz,
                                                                               tmp_path):
    marker = tmp_path / "ran"
    tampered = tmp_path / "imdb.npz"
    with zipfile.ZipFile(small_npz) as original, zipfile.ZipFile(tampered, "w") as out:
        for name in original.namelist():
            data = original.read(name)
            if name == "x_train.npy":
                array = np.empty(1, dtype=object)
                array[0] = Payload(marker)
                with out.open(name, "w") as f:
                    np.lib.format.write_array(f, array, allow_pickle=True)
                continue
            out.writestr(name, data)
    # np.load(allow_pickle=True), as Keras read it before 3.15, runs it:
    np.load(tampered, allow_pickle=True)["x_train"]
    assert marker.exists()
    marker.unlink()
    with pytest.raises(UserError, match=r"was refused: its pickled arrays call (posix|os)\.system"):
        imdb_data.read_npz(str(tampered))
    assert not marker.exists()


@pytest.mark.parametrize("content, message", [
    (b"", "is not a readable imdb.npz"),
    (b"PK\x03\x04 truncated", "is not a readable imdb.npz"),
    (None, "no x_test"),
])
def test_damaged_or_foreign_files_are_named(tmp_path, content, message):
    path = tmp_path / "imdb.npz"
    if content is None:
        np.savez(path, x_train=np.array([1]), y_train=np.array([0]))
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        imdb_data.read_npz(str(path))


def test_a_header_declaring_more_values_than_the_file_holds_is_damage_not_memory(tmp_path):
    # Issue 21 #11: a header declaring 10^12 values got "Out of memory ... smaller --batch_size".
    import io
    import zipfile
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": "<i8", "fortran_order": False,
                                                  "shape": (10 ** 12,)})
    member.write(np.zeros(4, np.int64).tobytes())
    path = tmp_path / "imdb.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("y_train.npy", member.getvalue())
    with pytest.raises(UserError, match=r"imdb.npz is not a readable imdb.npz \(ValueError: an "
                                        r"array's header declares shape \(1000000000000,\) "
                                        r"\(8,000,000,000,000 bytes\) but the file holds 32: "
                                        r"it is damaged\)"):
        imdb_data.read_npz(str(path))


def test_a_damaged_cached_copy_is_named_with_deleting_it_as_the_fix(monkeypatch, tmp_path):
    cached = tmp_path / "imdb.npz"
    cached.write_bytes(b"PK\x03\x04 a download cut short")
    monkeypatch.setattr(imdb_data, "KERAS_CACHE", str(cached))
    assert imdb_data.locate(None, can_download=lambda: False) == str(cached)
    with pytest.raises(UserError, match=r"is not a readable imdb.npz .* Keras's cached copy: "
                                        r"delete it"):
        imdb_data.read_npz(str(cached))


def test_without_a_file_or_network_the_message_comes_at_once(monkeypatch, tmp_path):
    monkeypatch.setattr(imdb_data, "KERAS_CACHE", str(tmp_path / "absent.npz"))
    with pytest.raises(UserError, match="--data_path=PATH/imdb.npz"):
        imdb_data.locate(None, can_download=lambda: False)


def test_forward_gradients_and_twenty_adam_steps_match():
    rng = np.random.default_rng(0)
    forward, gradients = experiment_parity.forward_and_gradients(
        IMDB, SMALL, IMDB.random_feeds(SMALL, 16, rng))
    losses, weights = experiment_parity.adam_steps(
        IMDB, SMALL, [IMDB.random_feeds(SMALL, 8, rng) for _ in range(20)])
    print(f"imdb_rnn: forward {forward:.1e}, gradients {gradients:.1e}, 20 Adam steps: losses "
          f"{losses:.1e}, final weights {weights:.1e}")


def test_keras_adam_on_an_embeddings_sparse_gradient_is_not_tf1_adam():
    # Trap 17: the same steps with the IndexedSlices gradient applied as Keras 3 applies it.
    rng = np.random.default_rng(0)
    with pytest.raises(AssertionError, match="Mismatched elements"):
        experiment_parity.adam_steps(
            IMDB, SMALL, [IMDB.random_feeds(SMALL, 8, rng) for _ in range(20)], densify=False)


def test_dropout_is_on_while_training_only():
    model = IMDB.build_graph(SMALL)
    feeds = IMDB.random_feeds(SMALL, 16, np.random.default_rng(0))
    import tensorflow as tf
    with tf.compat.v1.Session(graph=model.graph) as sess:
        with model.graph.as_default():
            sess.run(tf.compat.v1.global_variables_initializer())
        feed = dict(zip(model.inputs, feeds))
        evaluation = [sess.run(model.logits, feed) for _ in range(2)]
        training = [sess.run(model.logits, {**feed, model.training: True}) for _ in range(2)]
    np.testing.assert_array_equal(*evaluation)  # no dropout: deterministic
    assert np.abs(training[0] - training[1]).max() > 1e-3  # a new mask per run
    assert np.abs(training[0] - evaluation[0]).max() > 1e-3


def run_in_process(argv, capsys):
    return program_output("imdb_rnn", argv, capsys)


def test_the_program_reports_each_epoch_and_its_accuracy_is_the_models(small_npz, tmp_path,
                                                                        capsys):
    run, export = tmp_path / "run", tmp_path / "export"
    status, out, err = run_in_process(["--flagfile=flags/imdb_rnn_smoke.cfg",
                                       f"--data_path={small_npz}", f"--model_dir={run}",
                                       f"--export_dir={export}"], capsys)
    assert status == 0, err
    accuracy = float(out.strip().splitlines()[-1].removeprefix("test_accuracy: "))
    record = json.loads((run / "metrics.json").read_text())
    assert [e["epoch"] for e in record["epoch_history"]] == [1, 2]
    assert set(record["epoch_history"][0]) == {"epoch", "step", "train_loss", "train_accuracy",
                                               "test_loss", "test_accuracy"}
    assert record["global_step"] == 2 * (320 // 32)  # full batches only
    # The checkpoint converted: the twin's accuracy on the test split, read as Keras does, on
    # the full batches of 32 the program evaluates.
    config = convert_checkpoint(str(run), "imdb_rnn", str(tmp_path / "imdb.keras"))
    twin = keras.saving.load_model(tmp_path / "imdb.keras")
    _, (x_test, y_test) = imdb_data.load_data(str(small_npz), config.num_words)
    tokens = imdb_data.pad(x_test, 12)  # the flagfile's maxlen (a checkpoint does not hold it)
    assert len(tokens) == 160  # 5 batches of 32
    logits = np.asarray(twin(tokens))[:, 0]
    assert accuracy == pytest.approx(float(np.mean((logits > 0) == (y_test == 1))), abs=1e-4)
    assert record["epoch_history"][-1]["test_accuracy"] == pytest.approx(accuracy, abs=1e-4)
    # The SavedModel's signature: tokens in (no training flag: dropout off), the same logits.
    import tensorflow as tf
    serve = tf.saved_model.load(str(export)).signatures["serving_default"]
    served = serve(tokens=tf.constant(tokens[:7]))
    np.testing.assert_allclose(served["logits"].numpy()[:, 0], logits[:7], rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(served["classes"].numpy(), (logits[:7] > 0).astype(np.int64))
    np.testing.assert_allclose(served["probabilities"].numpy()[:, 0],
                               1 / (1 + np.exp(-logits[:7])), rtol=1e-6, atol=1e-6)


def test_a_tampered_data_file_stops_the_program_with_status_1(tmp_path, capsys):
    path = tmp_path / "imdb.npz"
    np.savez(path, x_train=np.array([1]))
    status, out, err = run_in_process(["--flagfile=flags/imdb_rnn_smoke.cfg",
                                       f"--data_path={path}"], capsys)
    assert status == 1 and "is not an imdb.npz" in err and "Traceback" not in err


def test_imdb_data_answers_help_and_names_a_missing_directory(tmp_path, monkeypatch, capsys):
    from legacy_rnn.data import imdb
    monkeypatch.chdir(tmp_path)
    assert imdb.main(["imdb_data", "--help"]) == 0  # it used to write ./--help.npz
    assert "usage: python -m legacy_rnn.imdb_data" in capsys.readouterr().out
    assert imdb.main(["imdb_data", "--out=x.npz"]) == 2
    assert not list(tmp_path.iterdir())
    with pytest.raises(UserError, match=r"the directory .*no/such/dir does not exist"):
        imdb.main(["imdb_data", str(tmp_path / "no" / "such" / "dir" / "x.npz"), "10", "10"])


def test_a_vocabulary_below_three_ids_and_an_empty_test_split_are_one_paragraph(tmp_path,
                                                                                capsys):
    from legacy_rnn.cli import programs
    flag_values = flags.FlagValues()
    programs.define(IMDB, flag_values)
    with pytest.raises(flags.IllegalFlagValueError, match="--num_words must be 3 or more"):
        flag_values(["imdb_rnn", "--num_words=2"])  # embedding_lookup failed on id 2 before
    path = tmp_path / "imdb.npz"
    x, y = imdb_data.synthetic_reviews([0, 1], 64)
    imdb_data.write_npz(str(path), x, y, [], [])
    status, _, err = program_output("imdb_rnn", ["--flagfile=flags/imdb_rnn_smoke.cfg",
                                                 f"--data_path={path}"], capsys)
    assert status == 1 and "The test split is empty" in err and "Traceback" not in err
