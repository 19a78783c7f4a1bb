"""The IMDB reviews of `keras.datasets.imdb`, read from its `imdb.npz` without running pickles.

The file holds `x_train`, `x_test` (numpy object arrays of lists of word indices, most frequent
word 1) and `y_train`, `y_test` (0/1 labels). Its object arrays can only be stored as pickles, and
`np.load(allow_pickle=True)` (what Keras did before 3.15) runs whatever a tampered file's pickle
carries. `read_npz` admits only what the real file holds: numpy's array reconstruction (three
globals), lists and ints; anything else is refused with a message, before it can run.

`load_data` then does what `keras.datasets.imdb.load_data(num_words=...)` does: shuffles each
split with `RandomState(113)`, prepends the start mark 1, shifts every index by 3 (`index_from`),
and replaces the words outside the `num_words` most frequent by the out-of-vocabulary mark 2;
`pad` is `keras.utils.pad_sequences(..., maxlen)` (pre-padding and pre-truncating with 0).
"""
import io
import os
import pickle
import socket
import zipfile

import numpy as np

from legacy_rnn.errors import UserError

ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz"
SHA256 = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
DOWNLOAD_HOST = ("storage.googleapis.com", 443)
KEYS = ("x_train", "y_train", "x_test", "y_test")
KERAS_CACHE = os.path.join(os.path.expanduser("~"), ".keras", "datasets", "imdb.npz")
START, OOV, INDEX_FROM, SHUFFLE_SEED = 1, 2, 3, 113
_ALLOWED = frozenset({("numpy", "ndarray"), ("numpy", "dtype"),
                      ("numpy.core.multiarray", "_reconstruct"),
                      ("numpy._core.multiarray", "_reconstruct")})


class _Refused(Exception):
    pass


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise _Refused(f"{module}.{name}")


def _read_member(raw):
    buffer = io.BytesIO(raw)
    version = np.lib.format.read_magic(buffer)
    shape, _, dtype = (np.lib.format.read_array_header_1_0 if version[0] == 1
                       else np.lib.format.read_array_header_2_0)(buffer)
    if not dtype.hasobject:
        # A damaged header can declare more values than the member holds (10^12 of them is an
        # "out of memory" before numpy notices): compared first, nothing allocated.
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        stored = len(raw) - buffer.tell()
        if declared > stored:
            raise ValueError(f"an array's header declares shape {tuple(shape)} ({declared:,} "
                             f"bytes) but the file holds {stored:,}: it is damaged")
        buffer.seek(0)
        return np.lib.format.read_array(buffer, allow_pickle=False)
    return _ArraysOnly(buffer).load()


def read_npz(path):
    """{"x_train": object array of int lists, "y_train": int array, ...} from an imdb.npz."""
    fix = ("Pass --data_path=imdb.npz as Keras downloads it (" + ORIGIN + "), or run without "
           "--data_path where the network is reachable.")
    if os.path.abspath(path) == os.path.abspath(KERAS_CACHE):
        fix = (f"It is Keras's cached copy: delete it and rerun where the network is reachable "
               f"to download it again, or pass --data_path=imdb.npz (from {ORIGIN}).")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name[:-len(".npy")]: archive.read(name) for name in archive.namelist()
                       if name.endswith(".npy")}
        arrays = {key: _read_member(members[key]) for key in KEYS if key in members}
    except _Refused as e:
        raise UserError(f"{path} was refused: its pickled arrays call {e}, which the real "
                        "imdb.npz never does (it holds lists of word indices), so the file may "
                        f"be tampered with; nothing in it was run. {fix}") from None
    except FileNotFoundError:
        raise UserError(f"--data_path={path} does not exist. {fix}") from None
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, pickle.UnpicklingError,
            KeyError, TypeError, AttributeError, IndexError) as e:
        raise UserError(f"{path} is not a readable imdb.npz ({type(e).__name__}: "
                        f"{str(e)[:200]}). {fix}") from None
    problems = [f"no {key}" for key in KEYS if key not in arrays]
    for split in ("train", "test"):
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if x is None or y is None:
            continue
        if not (isinstance(x, np.ndarray) and x.ndim == 1 and all(
                isinstance(r, list) and all(isinstance(w, int) and w >= 0 for w in r)
                for r in x)):
            problems.append(f"x_{split} is not an array of lists of word indices")
        elif not (y.ndim == 1 and len(y) == len(x) and np.isin(y, (0, 1)).all()):
            problems.append(f"y_{split} is not one 0/1 label per review")
    if problems:
        raise UserError(f"{path} is not an imdb.npz: {'; '.join(problems)}. {fix}")
    return arrays


def load_data(path, num_words):
    """((x_train, y_train), (x_test, y_test)) as `keras.datasets.imdb.load_data(num_words=...)`
    returns them from this file."""
    return as_keras_loads(read_npz(path), num_words)


def as_keras_loads(arrays, num_words):
    """The transformation of `load_data` on the arrays of a file."""
    rng = np.random.RandomState(SHUFFLE_SEED)
    splits = []
    for split in ("train", "test"):
        order = np.arange(len(arrays[f"x_{split}"]))
        rng.shuffle(order)
        reviews = [[START] + [w + INDEX_FROM for w in r] for r in arrays[f"x_{split}"][order]]
        reviews = [[w if w < num_words else OOV for w in r] for r in reviews]
        splits.append((reviews, arrays[f"y_{split}"][order]))
    return tuple(splits)


def pad(reviews, maxlen):
    """int32 `[n, maxlen]`: each review's last `maxlen` words, zeros before shorter ones."""
    out = np.zeros((len(reviews), maxlen), np.int32)
    for i, review in enumerate(reviews):
        kept = review[-maxlen:]
        if kept:
            out[i, maxlen - len(kept):] = kept
    return out


def download_possible(timeout=3.0):
    try:
        socket.create_connection(DOWNLOAD_HOST, timeout=timeout).close()
        return True
    except OSError:
        return False


def locate(data_path, can_download=download_possible):
    """The imdb.npz to read: `data_path`, else Keras's cached copy, else downloaded as Keras does
    (`keras.utils.get_file`, hash-checked); with neither a file nor network, a message in
    seconds."""
    if data_path:
        return data_path
    if os.path.exists(KERAS_CACHE):
        return KERAS_CACHE
    if not can_download():
        raise UserError("The IMDB reviews are not here and cannot be downloaded (no connection "
                        f"to {DOWNLOAD_HOST[0]}). Download {ORIGIN} where there is a network and "
                        "pass --data_path=PATH/imdb.npz.")
    import keras
    try:
        return keras.utils.get_file("imdb.npz", origin=ORIGIN, file_hash=SHA256)
    except Exception as e:  # noqa: BLE001 - get_file raises bare Exception for network errors
        raise UserError(f"Downloading {ORIGIN} failed ({type(e).__name__}: {str(e)[:200]}). "
                        "Rerun to try again, or download it elsewhere and pass "
                        "--data_path=PATH/imdb.npz.") from None


def ragged(reviews):
    """A 1-D object array of int lists, as the file holds them (np.array of equal-length lists
    would make a 2-D array instead)."""
    array = np.empty(len(reviews), dtype=object)
    array[:] = [list(map(int, r)) for r in reviews]
    return array


def write_npz(path, x_train, y_train, x_test, y_test):
    """An imdb.npz in the real file's layout (raw indices, most frequent word 1)."""
    np.savez(path, x_train=ragged(x_train), y_train=np.asarray(y_train, np.int64),
             x_test=ragged(x_test), y_test=np.asarray(y_test, np.int64))


def synthetic_reviews(seed, n, vocabulary=12000, mean_length=120):
    """(reviews, labels): `n` reviews of Zipf-distributed raw word indices whose label shows in
    which of two word sets (ranks 50-549 and 550-1049) they draw about a tenth of their words
    from: learnable, as real reviews are, though short reviews may carry no such word."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    reviews = []
    for label in labels:
        length = max(5, int(rng.exponential(mean_length)))
        words = np.minimum(rng.zipf(1.3, length), vocabulary - 1)
        marked = rng.random(length) < 0.1
        words[marked] = 50 + 500 * label + rng.integers(0, 500, marked.sum())
        reviews.append(words.tolist())
    return reviews, labels


def main(argv=None):
    """`python -m legacy_rnn.imdb_data OUT.npz [N_TRAIN N_TEST]`: writes synthetic reviews in
    the imdb.npz layout (default 25,000 + 25,000, the real file's sizes)."""
    import sys
    args = (sys.argv if argv is None else argv)[1:]
    usage = "usage: python -m legacy_rnn.imdb_data OUT.npz [N_TRAIN N_TEST]"
    if args and args[0] in ("-h", "--help", "-help", "--helpfull"):
        print(usage)
        return 0
    if not args or len(args) not in (1, 3) or not all(a.isdigit() for a in args[1:]) \
            or args[0].startswith("-"):
        print(usage, file=sys.stderr)
        return 2
    n_train, n_test = (int(args[1]), int(args[2])) if len(args) == 3 else (25000, 25000)
    directory = os.path.dirname(os.path.abspath(args[0]))
    if not os.path.isdir(directory):
        raise UserError(f"Cannot write {args[0]}: the directory {directory} does not exist. "
                        "Create it, or pass a path in an existing directory.")
    x_train, y_train = synthetic_reviews([0, 1], n_train)
    x_test, y_test = synthetic_reviews([0, 2], n_test)
    write_npz(args[0], x_train, y_train, x_test, y_test)
    print(f"wrote {args[0]}: {n_train} + {n_test} synthetic reviews")
    return 0

