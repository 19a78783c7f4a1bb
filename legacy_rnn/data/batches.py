"""Shuffled epochs of training batches, as Keras's `fit(shuffle=True)` draws them.

`next_batch(n)` is the interface every experiment's training data has (`training.py` draws the
batches already used again to resume); `steps_per_epoch(n)` is what epoch-trained experiments add.
"""
import numpy as np

from legacy_rnn.errors import UserError


class EpochBatches:
    """Batches of the arrays `arrays` (examples on axis 0), a new permutation from `rng` each
    epoch. `drop_remainder`: every batch full, the examples left over at an epoch's end unused
    (tf.data's `batch(..., drop_remainder=True)`); otherwise a last, smaller batch (Keras `fit`)."""

    def __init__(self, arrays, rng, drop_remainder=False):
        self.arrays = tuple(arrays)
        self.n = len(self.arrays[0])
        self.rng = rng
        self.drop_remainder = drop_remainder
        self.order = np.empty(0, np.int64)
        self.position = 0

    def steps_per_epoch(self, batch_size):
        steps = self.n // batch_size if self.drop_remainder else -(-self.n // batch_size)
        if steps == 0:
            raise UserError(f"--batch_size={batch_size} is more than the {self.n} training "
                            "examples, and batches are full ones: use a smaller --batch_size.")
        return steps

    def next_batch(self, batch_size):
        left = len(self.order) - self.position
        if left == 0 or (self.drop_remainder and left < batch_size):
            self.order = self.rng.permutation(self.n)
            self.position = 0
        index = self.order[self.position:self.position + batch_size]
        self.position += len(index)
        return tuple(a[index] for a in self.arrays)
