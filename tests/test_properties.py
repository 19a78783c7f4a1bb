"""Property-based tests: any input gives parsed data or the project's own clear error."""
import gzip
import os
import struct
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from legacy_rnn.data import mnist as mnist_data
from legacy_rnn.data import toy as toy_data
from legacy_rnn.errors import UserError

PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Near-valid headers reach the deep checks more often than random bytes alone would.
headers = st.builds(
    lambda magic, dims, body: struct.pack(f">{1 + len(dims)}I", magic, *dims) + body,
    st.sampled_from([2049, 2051, 2050, 0]),
    st.lists(st.one_of(st.integers(0, 40), st.integers(0, 2**32 - 1)), min_size=1, max_size=3),
    st.binary(max_size=4000))
idx_like = st.one_of(st.binary(max_size=200), headers)


IDX_NAME = "t10k-labels-q7zx.idx"  # a name no message holds unless it names the file


def _read(reader, data, gz):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, IDX_NAME)
        with (gzip.open if gz else open)(path, "wb") as f:
            f.write(data)
        if gz and data:
            # Also a damaged gzip stream.
            with open(path, "r+b") as f:
                f.truncate(max(2, os.path.getsize(path) - len(data) % 7))
        return reader(path)


@PROPERTY
@given(data=idx_like, gz=st.booleans(), labels=st.booleans())
def test_idx_reader_returns_arrays_or_raises_idx_error(data, gz, labels):
    reader = mnist_data.read_idx_labels if labels else mnist_data.read_idx_images
    try:
        array = _read(reader, data, gz)
    except mnist_data.IdxError as e:
        assert IDX_NAME in str(e)
        return
    assert array.dtype == np.uint8
    if labels:
        assert array.ndim == 1 and (array.size == 0 or array.max() < 10)
    else:
        assert array.shape[1:] == (28, 28)


@PROPERTY
@given(n=st.integers(1, 60), seq_max_len=st.integers(-2, 30), min_len=st.integers(-2, 30),
       max_value=st.integers(-5, 200), seed=st.integers(0, 2**32 - 1))
def test_toy_generator_gives_valid_data_or_a_user_error(n, seq_max_len, min_len, max_value, seed):
    try:
        data = toy_data.ToySequenceData(np.random.default_rng(seed), n, seq_max_len, min_len,
                                        max_value)
    except UserError:
        assert not (1 <= min_len <= seq_max_len <= max_value)
        return
    assert data.data.shape == (n, seq_max_len, 1)
    assert np.all((data.seqlen >= min_len) & (data.seqlen <= seq_max_len))
    x = data.data[:, :, 0]
    assert np.all(x[np.arange(seq_max_len) >= data.seqlen[:, None]] == 0)
    assert x.min() >= 0 and x.max() <= 1
    linear = data.labels[:, 0] == 1
    for row, length in zip(x[linear], data.seqlen[linear]):
        np.testing.assert_allclose(np.diff(row[:length]) * max_value, 1.0, atol=1e-3)
