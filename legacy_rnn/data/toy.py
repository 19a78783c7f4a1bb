"""The variable-length toy sequences of the dynamic_rnn tutorial (ToySequenceData).

Class 0 (label `[1, 0]`) is a linear run `[s, s+1, ...] / max_value`; class 1 (label `[0, 1]`) is
random integers in 0..max_value, divided by max_value. Lengths are uniform in min_len..seq_max_len
and every sequence is zero padded to seq_max_len.
"""
import numpy as np

from legacy_rnn.errors import UserError

NUM_CLASSES = 2


def check_toy_config(seq_max_len, min_len, max_value):
    """Raise UserError unless the generator can make sequences of these sizes."""
    if not 1 <= min_len <= seq_max_len:
        raise UserError(f"--min_len={min_len} must be between 1 and --seq_max_len={seq_max_len}.")
    if max_value < seq_max_len:
        raise UserError(f"--max_value={max_value} is smaller than --seq_max_len={seq_max_len}: a "
                        "linear run of the longest length would not fit in 0..max_value. "
                        "Raise --max_value.")


class ToySequenceData:
    """`n_samples` sequences: `data` float32 `[n, seq_max_len, 1]`, `labels` one-hot float32
    `[n, 2]`, `seqlen` int32 `[n]`.

    `next_batch` walks the samples in order and wraps around, returning a short batch at the end
    of each pass (1000 samples in batches of 128 end with one of 104), as the tutorial's `next` did.
    """

    def __init__(self, rng, n_samples=1000, seq_max_len=20, min_len=3, max_value=1000):
        check_toy_config(seq_max_len, min_len, max_value)
        self.seqlen = rng.integers(min_len, seq_max_len + 1, size=n_samples).astype(np.int32)
        is_linear = rng.random(n_samples) < 0.5
        starts = rng.integers(0, max_value - self.seqlen + 1)
        steps = np.arange(seq_max_len)
        linear = starts[:, None] + steps
        random = rng.integers(0, max_value + 1, size=(n_samples, seq_max_len))
        values = np.where(is_linear[:, None], linear, random) / max_value
        values[steps >= self.seqlen[:, None]] = 0.0
        self.data = values.astype(np.float32)[:, :, None]
        self.labels = np.eye(NUM_CLASSES, dtype=np.float32)[np.where(is_linear, 0, 1)]
        self.num_examples = n_samples
        self._batch_id = 0

    def next_batch(self, batch_size):
        if self._batch_id == self.num_examples:
            self._batch_id = 0
        batch = slice(self._batch_id, min(self._batch_id + batch_size, self.num_examples))
        self._batch_id = batch.stop
        return self.data[batch], self.labels[batch], self.seqlen[batch]
