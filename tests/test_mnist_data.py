import gzip

import numpy as np
import pytest

import idx_files
from legacy_rnn.data import mnist as mnist_data
from legacy_rnn.errors import UserError

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"


@pytest.mark.parametrize("gz", [True, False])
def test_read_data_sets_from_idx_dir(tmp_path, gz):
    splits = idx_files.write_mnist_dir(tmp_path, n_train=30, n_test=12, seed=1, gz=gz)
    data = mnist_data.read_data_sets(data_dir=str(tmp_path), validation_size=10)

    train_images, train_labels = splits["train"]
    assert data.train.images.shape == (20, 784) and data.train.images.dtype == np.float32
    assert data.validation.images.shape == (10, 784)
    np.testing.assert_array_equal(data.validation.images,
                                  train_images[:10].reshape(10, 784) / np.float32(255))
    np.testing.assert_array_equal(data.train.labels.argmax(1), train_labels[10:])
    assert data.train.labels.shape == (20, 10) and set(data.train.labels.sum(1)) == {1.0}
    test_images, test_labels = splits["test"]
    np.testing.assert_array_equal(data.test.images * 255, test_images.reshape(12, 784))
    np.testing.assert_array_equal(data.test.labels.argmax(1), test_labels)


def test_next_batch_covers_each_epoch_once_and_reshuffles(tmp_path):
    idx_files.write_mnist_dir(tmp_path, n_train=10, n_test=2, seed=2)
    train = mnist_data.read_data_sets(data_dir=str(tmp_path), validation_size=0, seed=5).train
    # Identify examples by their pixels: 10 random images are distinct.
    keys = {img.tobytes(): k for k, img in enumerate(train.images)}
    seen = [keys[img.tobytes()] for _ in range(5) for img in train.next_batch(4)[0]]
    epochs = [seen[0:10], seen[10:20]]
    assert all(sorted(e) == list(range(10)) for e in epochs)
    assert epochs[0] != epochs[1]
    # As in TF1, an epoch counts as completed when a batch first crosses its end.
    assert train.epochs_completed == 1
    train.next_batch(1)
    assert train.epochs_completed == 2

    again = mnist_data.read_data_sets(data_dir=str(tmp_path), validation_size=0, seed=5).train
    other = mnist_data.read_data_sets(data_dir=str(tmp_path), validation_size=0, seed=6).train
    first = [keys[img.tobytes()] for _ in range(5) for img in again.next_batch(4)[0]]
    assert first == seen
    assert [keys[img.tobytes()] for img in other.next_batch(10)[0]] != epochs[0]


def _write_train(tmp_path, images_bytes=None, labels_bytes=None, gz=True):
    images, labels = idx_files.random_split(np.random.default_rng(0), 5)
    suffix = ".gz" if gz else ""
    idx_files.write(tmp_path / (TRAIN_IMAGES + suffix),
                    idx_files.idx_bytes(images) if images_bytes is None else images_bytes, gz)
    idx_files.write(tmp_path / (TRAIN_LABELS + suffix),
                    idx_files.idx_bytes(labels) if labels_bytes is None else labels_bytes, gz)
    return images, labels


def test_valid_files_parse(tmp_path):
    images, labels = _write_train(tmp_path, gz=False)
    got_images, got_labels = mnist_data.load_idx_split(str(tmp_path), "train")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


CORRUPTIONS = {
    "bad image magic": (dict(images_bytes=idx_files.idx_bytes(np.zeros((5, 28, 28)), magic=2049)),
                        "magic number 2049, expected 2051", TRAIN_IMAGES),
    "swapped files": (dict(labels_bytes=idx_files.idx_bytes(np.zeros((5, 28, 28)))),
                      "magic number 2051, expected 2049", TRAIN_LABELS),
    "truncated images": (dict(images_bytes=idx_files.idx_bytes(np.zeros((5, 28, 28)))[:-100]),
                         "truncated", TRAIN_IMAGES),
    "header only part": (dict(labels_bytes=b"\x00\x00\x08"), "too short", TRAIN_LABELS),
    "trailing bytes": (dict(labels_bytes=idx_files.idx_bytes(np.zeros(5)) + b"\x00"),
                       "longer than its header says", TRAIN_LABELS),
    "wrong image size": (dict(images_bytes=idx_files.idx_bytes(np.zeros((5, 32, 32)))),
                         "32x32 images", TRAIN_IMAGES),
    "count mismatch": (dict(labels_bytes=idx_files.idx_bytes(np.zeros(4))),
                       "holds 5 images but", TRAIN_IMAGES),
    "label out of range": (dict(labels_bytes=idx_files.idx_bytes(np.full(5, 12))),
                           "label 12", TRAIN_LABELS),
}


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corrupt_files_get_a_clear_error_naming_the_file(tmp_path, name):
    kwargs, message, culprit = CORRUPTIONS[name]
    _write_train(tmp_path, **kwargs)
    with pytest.raises(mnist_data.IdxError) as e:
        mnist_data.load_idx_split(str(tmp_path), "train")
    assert message in str(e.value)
    assert culprit in str(e.value)


def test_truncated_gzip_gets_a_clear_error(tmp_path):
    _write_train(tmp_path)
    path = tmp_path / (TRAIN_IMAGES + ".gz")
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(mnist_data.IdxError, match="not a readable gzip file"):
        mnist_data.load_idx_split(str(tmp_path), "train")


def test_missing_file_names_what_is_expected(tmp_path):
    _write_train(tmp_path)
    (tmp_path / (TRAIN_LABELS + ".gz")).unlink()
    with pytest.raises(UserError, match=f"no {TRAIN_LABELS}.gz"):
        mnist_data.load_idx_split(str(tmp_path), "train")
    with pytest.raises(UserError, match="not a directory"):
        mnist_data.read_data_sets(data_dir=str(tmp_path / "nowhere"))


def test_tfds_source_reads_mock_data_offline(tmp_path):
    import tensorflow_datasets as tfds
    # mock_data replaces download_and_prepare and as_dataset: nothing touches the network.
    with tfds.testing.mock_data(num_examples=7):
        images, labels = mnist_data.load_tfds_split("fashion_mnist", "test", str(tmp_path),
                                                    can_download=lambda: True)
    assert images.shape == (7, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (7,) and labels.max() < 10


def test_no_network_and_no_local_data_says_what_to_do(tmp_path):
    with pytest.raises(UserError) as e:
        mnist_data.read_data_sets("mnist", tfds_data_dir=str(tmp_path),
                                  can_download=lambda: False)
    message = str(e.value)
    assert "cannot reach its download server" in message
    assert str(tmp_path) in message and "--data_dir" in message


def test_gzip_detected_by_content_not_name(tmp_path):
    images, labels = idx_files.random_split(np.random.default_rng(3), 4)
    # A gzipped file without the .gz suffix still reads.
    with gzip.open(tmp_path / TRAIN_IMAGES, "wb") as f:
        f.write(idx_files.idx_bytes(images))
    idx_files.write(tmp_path / TRAIN_LABELS, idx_files.idx_bytes(labels), gz=False)
    np.testing.assert_array_equal(mnist_data.load_idx_split(str(tmp_path), "train")[0], images)
