"""Writes MNIST-layout IDX files for the tests (the format: big-endian magic, dims, uint8 data)."""
import gzip
import struct

import numpy as np


def idx_bytes(array, magic=None):
    array = np.asarray(array, dtype=np.uint8)
    if magic is None:
        magic = 2051 if array.ndim == 3 else 2049
    return struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.tobytes()


def write(path, data, gz):
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(data)


def random_split(rng, n, rows=28, cols=28):
    return (rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8),
            rng.integers(0, 10, size=n, dtype=np.uint8))


def write_mnist_dir(directory, n_train, n_test, seed, gz=True):
    """Writes the four files; returns {'train': (images, labels), 'test': (images, labels)}."""
    rng = np.random.default_rng(seed)
    splits = {"train": random_split(rng, n_train), "test": random_split(rng, n_test)}
    suffix = ".gz" if gz else ""
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = splits[split]
        write(directory / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images), gz)
        write(directory / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels), gz)
    return splits
