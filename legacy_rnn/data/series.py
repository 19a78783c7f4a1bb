"""The time series of Geron's *Hands-On Machine Learning* (2nd ed.), chapter 15: fully offline.

Each series is `0.5 sin((t - o1)(10 f1 + 10)) + 0.2 sin((t - o2)(20 f2 + 20)) + 0.1 (u - 0.5)`
over `t = linspace(0, 1, steps + horizon)`, with `f1, f2, o1, o2` uniform per series and `u`
uniform per step, drawn in the chapter's order from `np.random.RandomState(seed)` (the chapter
seeds numpy's global generator with 42, the same stream). The first `steps` values are the input
and the next `horizon` the target.
"""
import dataclasses

import numpy as np


def generate_time_series(rng, batch_size, n_steps):
    """float32 `[batch_size, n_steps, 1]`: the chapter's `generate_time_series`, drawing from
    `rng` (a `np.random.RandomState`) instead of numpy's global generator."""
    freq1, freq2, offsets1, offsets2 = rng.rand(4, batch_size, 1)
    time = np.linspace(0, 1, n_steps)
    series = 0.5 * np.sin((time - offsets1) * (freq1 * 10 + 10))
    series += 0.2 * np.sin((time - offsets2) * (freq2 * 20 + 20))
    series += 0.1 * (rng.rand(batch_size, n_steps) - 0.5)
    return series[..., np.newaxis].astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Splits:
    """(x `[n, steps, 1]`, y `[n, horizon]`) per split."""
    train: tuple
    valid: tuple
    test: tuple


def make_splits(seed, n_train, n_valid, n_test, steps=50, horizon=1):
    """The chapter's splits: one draw of `n_train + n_valid + n_test` series, cut in that order."""
    series = generate_time_series(np.random.RandomState(seed), n_train + n_valid + n_test,
                                  steps + horizon)
    x, y = series[:, :steps], series[:, steps:, 0]
    cuts = np.cumsum([n_train, n_valid])
    return Splits(*((x[a:b], y[a:b]) for a, b in zip([0, *cuts], [*cuts, len(x)])))


def naive_mse(x, y):
    """The chapter's naive forecast: every future value is the last one seen."""
    return float(np.mean(np.square(y - x[:, -1, :])))
