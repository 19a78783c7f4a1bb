"""MNIST / Fashion-MNIST in the shape the TF1 tutorials used, without `tensorflow.examples`.

`read_data_sets` returns the object `tensorflow.examples.tutorials.mnist.input_data` gave:
`.train.next_batch(batch_size)` (reshuffled each epoch), `.validation`, and `.test.images/.labels`,
with images float32 `[n, 784]` in [0, 1] and one-hot float32 labels `[n, 10]`. Two sources:

- a directory of the classic IDX files (gzipped or not), the layout the TF1 tutorial downloaded;
- tensorflow-datasets (`mnist` or `fashion_mnist`), imported only when used.
"""
import dataclasses
import gzip
import math
import os
import socket
import struct
import zlib

import numpy as np

from legacy_rnn.errors import UserError

DATASETS = ("mnist", "fashion_mnist")
NUM_CLASSES = 10
IMAGE_ROWS = IMAGE_COLS = 28
# TF1's read_data_sets held the first 5,000 training images out as the validation split.
VALIDATION_SIZE = 5000

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Where tensorflow-datasets downloads both data sets from; probed before a download so that a
# machine without network fails in seconds instead of retrying for minutes.
TFDS_DOWNLOAD_HOST = ("storage.googleapis.com", 443)


class IdxError(UserError):
    """An IDX file that cannot be what it claims to be."""


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError as e:
        raise IdxError(f"{path} cannot be read ({e.strerror}). Check its permissions, or replace "
                       "it with a readable copy.") from None
    try:
        if head == b"\x1f\x8b":
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except (EOFError, OSError, zlib.error) as e:
        raise IdxError(
            f"{path} is not a readable gzip file ({e}). The download was probably cut short: "
            "delete it and fetch it again, or use the un-gzipped file.") from None


def _parse(path, data, magic, ndim):
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IdxError(f"{path} is too short to be an IDX file ({len(data)} bytes, the header alone "
                       f"is {header_size}). Replace it with a complete copy.")
    found_magic, *dims = struct.unpack(f">{1 + ndim}I", data[:header_size])
    if found_magic != magic:
        raise IdxError(
            f"{path} has magic number {found_magic}, expected {magic} for an IDX "
            f"{'image' if ndim == 3 else 'label'} file. Check that the file names are not swapped "
            "and that the file is the MNIST IDX file it is named after.")
    expected = header_size + math.prod(dims)  # Python ints: no overflow on absurd headers
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise IdxError(f"{path} is {what}: its header announces {dims} ({expected} bytes), the file "
                       f"has {len(data)} bytes. Replace it with a complete copy.")
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims)


def read_idx_images(path):
    """uint8 `[n, 28, 28]` from an IDX3 image file (gzipped or not)."""
    images = _parse(path, _read_bytes(path), IMAGES_MAGIC, 3)
    if images.shape[1:] != (IMAGE_ROWS, IMAGE_COLS):
        raise IdxError(f"{path} holds {images.shape[1]}x{images.shape[2]} images; the models read "
                       f"{IMAGE_ROWS} rows of {IMAGE_COLS} pixels. Use the 28x28 MNIST-layout files.")
    return images


def read_idx_labels(path):
    """uint8 `[n]` class indices from an IDX1 label file (gzipped or not)."""
    labels = _parse(path, _read_bytes(path), LABELS_MAGIC, 1)
    if labels.size and labels.max() >= NUM_CLASSES:
        raise IdxError(f"{path} contains label {labels.max()}, outside 0..{NUM_CLASSES - 1}. "
                       "Replace it with the MNIST-layout label file.")
    return labels


def _idx_path(data_dir, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    raise UserError(f"{data_dir} has no {stem}.gz (or un-gzipped {stem}). --data_dir must name a "
                    "directory holding the four MNIST IDX files: " +
                    ", ".join(f"{s}.gz" for pair in IDX_FILES.values() for s in pair) + ".")


def load_idx_split(data_dir, split):
    """(uint8 images `[n, 28, 28]`, uint8 labels `[n]`) of `split` ('train' or 'test')."""
    image_path, label_path = (_idx_path(data_dir, stem) for stem in IDX_FILES[split])
    images, labels = read_idx_images(image_path), read_idx_labels(label_path)
    if len(images) != len(labels):
        raise IdxError(f"{image_path} holds {len(images)} images but {label_path} holds "
                       f"{len(labels)} labels. The two files come from different downloads: "
                       "replace both.")
    return images, labels


def _tfds_download_possible(timeout=3.0):
    try:
        socket.create_connection(TFDS_DOWNLOAD_HOST, timeout=timeout).close()
        return True
    except OSError:
        return False


def load_tfds_split(dataset, split, data_dir=None, can_download=_tfds_download_possible):
    """(uint8 images `[n, 28, 28]`, uint8 labels `[n]`) from tensorflow-datasets."""
    import tensorflow_datasets as tfds  # Slow to import; only this source needs it.

    builder = tfds.builder(dataset, data_dir=data_dir)
    if not builder.is_prepared() and not can_download():
        raise UserError(
            f"No {dataset} data: tensorflow-datasets has no prepared copy in {builder.data_dir} "
            f"and cannot reach its download server ({TFDS_DOWNLOAD_HOST[0]}). Either pass "
            "--data_dir=DIR with the four MNIST IDX files (train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; "
            "on Debian, `apt-get install dataset-fashion-mnist` puts Fashion-MNIST in "
            "/usr/share/datasets/fashion-mnist), or --tfds_data_dir=DIR with a prepared "
            "tensorflow-datasets copy, or run once with network access.")
    ds = tfds.load(dataset, split=split, data_dir=data_dir, as_supervised=True)
    images, labels = [], []
    for image_batch, label_batch in tfds.as_numpy(ds.batch(10000)):
        images.append(image_batch.reshape(-1, IMAGE_ROWS, IMAGE_COLS))
        labels.append(label_batch)
    return np.concatenate(images).astype(np.uint8), np.concatenate(labels).astype(np.uint8)


class DataSet:
    """One split: `images` float32 `[n, 784]`, `labels` one-hot float32 `[n, 10]`, and batches.

    `next_batch` walks a permutation of the examples and draws a new one at each epoch, as TF1's
    DataSet did; a batch that crosses an epoch boundary takes the rest of the old epoch and the
    start of the new one. The permutations come from `rng`, so the order is fixed by the seed.
    """

    def __init__(self, images, labels, rng):
        self.images = images.reshape(len(images), IMAGE_ROWS * IMAGE_COLS).astype(np.float32) / 255.0
        self.labels = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
        self.num_examples = len(images)
        self.epochs_completed = 0
        self._rng = rng
        self._order = rng.permutation(self.num_examples)
        self._index_in_epoch = 0

    def next_batch(self, batch_size):
        if batch_size > self.num_examples:
            raise UserError(f"--batch_size={batch_size} is larger than the {self.num_examples} "
                            "training examples. Use a smaller --batch_size.")
        end = self._index_in_epoch + batch_size
        if end <= self.num_examples:
            idx = self._order[self._index_in_epoch:end]
            self._index_in_epoch = end
        else:
            rest = self._order[self._index_in_epoch:]
            self.epochs_completed += 1
            self._order = self._rng.permutation(self.num_examples)
            self._index_in_epoch = batch_size - len(rest)
            idx = np.concatenate([rest, self._order[:self._index_in_epoch]])
        return self.images[idx], self.labels[idx]


@dataclasses.dataclass(frozen=True)
class DataSets:
    train: DataSet
    validation: DataSet
    test: DataSet


def read_data_sets(dataset="mnist", data_dir=None, tfds_data_dir=None, seed=0,
                   validation_size=VALIDATION_SIZE, can_download=_tfds_download_possible):
    """MNIST-like data sets from IDX files in `data_dir`, else from tensorflow-datasets."""
    if dataset not in DATASETS:
        raise UserError(f"Unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}.")
    if data_dir:
        if not os.path.isdir(data_dir):
            raise UserError(f"--data_dir={data_dir} is not a directory. Pass the directory that "
                            "holds the four MNIST IDX files.")
        train, test = (load_idx_split(data_dir, split) for split in ("train", "test"))
    else:
        train, test = (load_tfds_split(dataset, split, tfds_data_dir, can_download)
                       for split in ("train", "test"))
    train_images, train_labels = train
    if not 0 <= validation_size < len(train_images):
        raise UserError(f"--validation_size={validation_size} must be at least 0 and leave training "
                        f"examples out of the {len(train_images)} in the training files.")
    train_rng, validation_rng, test_rng = (np.random.default_rng([seed, i]) for i in range(3))
    return DataSets(
        train=DataSet(train_images[validation_size:], train_labels[validation_size:], train_rng),
        validation=DataSet(train_images[:validation_size], train_labels[:validation_size],
                           validation_rng),
        test=DataSet(*test, test_rng))
