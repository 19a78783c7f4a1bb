import numpy as np
import pytest

from legacy_rnn.data import toy as toy_data
from legacy_rnn.errors import UserError


def make(seed=0, **kwargs):
    return toy_data.ToySequenceData(np.random.default_rng(seed), **kwargs)


def test_shapes_lengths_padding_and_labels():
    data = make(n_samples=400, seq_max_len=12, min_len=2, max_value=100)
    assert data.data.shape == (400, 12, 1) and data.data.dtype == np.float32
    assert data.labels.shape == (400, 2) and data.seqlen.dtype == np.int32
    assert data.seqlen.min() == 2 and data.seqlen.max() == 12
    np.testing.assert_array_equal(data.labels.sum(1), 1.0)
    # Both classes appear in roughly equal numbers (p = 0.5 each; 400 draws).
    assert 150 < data.labels[:, 0].sum() < 250

    x = data.data[:, :, 0]
    steps = np.arange(12)
    assert np.all(x[steps >= data.seqlen[:, None]] == 0.0)
    assert x.min() >= 0.0 and x.max() <= 1.0
    # Values are integers / max_value.
    np.testing.assert_allclose(x * 100, np.round(x * 100), atol=1e-4)


def test_class_0_is_a_linear_run_and_class_1_is_not():
    data = make(seed=3, n_samples=300, seq_max_len=10, min_len=3, max_value=1000)
    for x, label, n in zip(data.data[:, :, 0], data.labels, data.seqlen):
        diffs = np.diff(x[:n]) * 1000
        if label[0] == 1:
            np.testing.assert_allclose(diffs, 1.0, atol=1e-3)
        else:
            # Random integers in 0..1000: a run of consecutive ones is vanishingly unlikely.
            assert not np.allclose(diffs, 1.0, atol=1e-3)


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = make(seed=7), make(seed=7), make(seed=8)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.seqlen, b.seqlen)
    assert not np.array_equal(a.data, c.data)


def test_next_batch_walks_in_order_and_wraps_with_a_short_batch():
    data = make(n_samples=10, seq_max_len=5, min_len=1, max_value=20)
    sizes = [len(data.next_batch(4)[0]) for _ in range(4)]
    assert sizes == [4, 4, 2, 4]
    x, labels, seqlen = make(n_samples=10, seq_max_len=5, min_len=1, max_value=20).next_batch(4)
    np.testing.assert_array_equal(x, data.data[:4])
    np.testing.assert_array_equal(seqlen, data.seqlen[:4])


@pytest.mark.parametrize("kwargs, message", [
    (dict(seq_max_len=5, min_len=6), "--min_len=6 must be between 1 and --seq_max_len=5"),
    (dict(seq_max_len=5, min_len=0), "--min_len=0"),
    (dict(seq_max_len=50, max_value=20), "--max_value=20 is smaller than --seq_max_len=50"),
])
def test_impossible_sizes_are_rejected(kwargs, message):
    with pytest.raises(UserError, match=message):
        make(**kwargs)
