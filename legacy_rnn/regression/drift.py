"""How far apart two runs' numbers are, and what that means: identical, rounding, or CHANGED.

Used by the golden check (a run against a recorded file) and the upgrade canary (a baseline
environment against a candidate). Both report the largest difference even when it is harmless, so
"passed" always says how close: bitwise, or within a few float32 ulps.

The rounding bound: different CPUs (oneDNN picks kernels per CPU) and TensorFlow builds round
float32 differently. Measured on this project's tiny golden runs (20 training steps): Intel vs AMD
<= 4.8e-7, TF 2.21 vs tf-nightly 2.23 on one CPU <= 2.4e-7 (losses) and 4.8e-7 (logits).
`|a - b| <= ROUNDING_ATOL + ROUNDING_RTOL * |a|` leaves a factor of 4 to 20 above that, and is still
below what a real change makes: a learning rate 1% high moves the toy losses by 1.2e-5 at
step 2 (tests/test_golden.py, tests/test_canary.py).
"""
import dataclasses

import numpy as np

IDENTICAL, ROUNDING, CHANGED = "identical", "rounding", "CHANGED"
ROUNDING_RTOL, ROUNDING_ATOL = 1e-5, 2e-6


def float32_ulps(a, b):
    """Elementwise distance in float32 units in the last place (0 for bitwise-equal values).

    The bit patterns are mapped to a line on which adjacent floats are adjacent integers
    (negative floats mirrored), so the distance counts the representable floats between them.
    NaN against anything is reported as the largest distance.
    """
    a32, b32 = (np.asarray(v, np.float32) for v in (a, b))
    ia, ib = (v.view(np.int32).astype(np.int64) for v in (a32, b32))
    oa, ob = (np.where(i < 0, -(i & 0x7FFFFFFF), i) for i in (ia, ib))
    ulps = np.abs(oa - ob)
    either_nan = np.isnan(a32) | np.isnan(b32)
    return np.where(either_nan & ~(np.isnan(a32) & np.isnan(b32)), np.iinfo(np.int32).max, ulps)


@dataclasses.dataclass(frozen=True)
class Difference:
    """One quantity (a list of losses, a logits array, ...) of a run against its reference."""
    quantity: str
    max_abs: float  # largest |actual - expected|; inf when the shapes differ
    max_ulps: int
    outside: int  # entries beyond the rounding bound
    first_outside: tuple | None  # (index tuple, expected, actual) of the first such entry
    shapes: tuple  # (expected shape, actual shape)

    @property
    def identical(self):
        return self.max_ulps == 0 and self.shapes[0] == self.shapes[1]

    @property
    def within_rounding(self):
        return self.outside == 0 and self.shapes[0] == self.shapes[1]

    def describe(self):
        """`largest 4.8e-07 (3 ulps)`, or what is out of bounds and where."""
        if self.shapes[0] != self.shapes[1]:
            return f"shape {list(self.shapes[1])}, reference {list(self.shapes[0])}"
        text = ("bitwise identical" if self.identical else
                f"largest {self.max_abs:.2e} ({self.max_ulps} ulps)")
        if self.first_outside:
            index, expected, actual = self.first_outside
            where = f"{self.outside} beyond rounding, first at {list(index)}: " if index else ""
            text += (f"; {where}reference {expected!r}, now {actual!r} "
                     f"(diff {actual - expected:+.3e})")
        return text


def difference(quantity, expected, actual, rtol=ROUNDING_RTOL, atol=ROUNDING_ATOL):
    expected, actual = np.asarray(expected, np.float64), np.asarray(actual, np.float64)
    if expected.shape != actual.shape:
        return Difference(quantity, float("inf"), np.iinfo(np.int32).max, expected.size,
                          None, (expected.shape, actual.shape))
    if expected.size == 0:
        return Difference(quantity, 0.0, 0, 0, None, (expected.shape, actual.shape))
    gap = np.abs(actual - expected)
    # NaN where only one side is NaN, or infinities that differ: outside any rounding bound.
    gap = np.where(np.isnan(gap) & ~(np.isnan(actual) & np.isnan(expected)), np.inf, gap)
    gap = np.nan_to_num(gap, nan=0.0, posinf=np.inf)
    bound = atol + rtol * np.abs(np.nan_to_num(expected, nan=0.0, posinf=0.0, neginf=0.0))
    bad = np.argwhere(gap > bound)
    first = None
    if len(bad):
        index = tuple(int(i) for i in bad[0])
        first = (index, float(expected[index]), float(actual[index]))
    return Difference(quantity, float(gap.max()), int(float32_ulps(expected, actual).max()),
                      len(bad), first, (expected.shape, actual.shape))


def verdict(differences, exact=False):
    """IDENTICAL if every quantity is bitwise equal; else ROUNDING if each is within the bound
    (and `exact` is False: where bitwise equality is promised, any difference is a change);
    else CHANGED."""
    if all(d.identical for d in differences):
        return IDENTICAL
    if not exact and all(d.within_rounding for d in differences):
        return ROUNDING
    return CHANGED
