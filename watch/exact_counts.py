"""Floats that lie on a grid (whole or half watt-hours, half-hours) stored as integer counts of
its step, exactly: a value is only ever stored so if decoding gives it back bit for bit.

Detector state is mostly such floats (a week of slot kWh, stretch lengths), and where it is
written in bulk (the resident snapshot, ``watch.resident_snapshot``; the rows of quiet homes'
checkpoints, ``watch.state_rows``) the bytes are the cost: int16 counts are a quarter of float64.
"""

from __future__ import annotations

import numpy as np


def as_counts(array: np.ndarray, scale: int, dtype: type[np.integer]) -> np.ndarray | None:
    """``array`` as counts of ``1 / scale`` in ``dtype`` (NaN and infinities as its sentinels),
    or None unless ``from_counts`` gives back every value bit for bit: that check alone decides,
    so values off the grid, out of range, a -0.0 or an unusual NaN all just give None.

    >>> kwh = np.array([0.123, 0.0615, np.nan, 16.0])
    >>> counts = as_counts(kwh, 2000, np.int16)
    >>> counts.tolist(), from_counts(counts, 2000, kwh.dtype).tolist()[:2]
    ([246, 123, -32768, 32000], [0.123, 0.0615])
    >>> as_counts(kwh + 1e-7, 2000, np.int16) is None, as_counts(kwh * 2, 2000, np.int16) is None
    (True, True)
    """
    counts = array * array.dtype.type(scale)
    np.rint(counts, out=counts)
    with np.errstate(invalid="ignore"):  # NaN and what does not fit: caught by the check
        encoded = counts.astype(dtype)
    odd = ~np.isfinite(counts)
    if odd.any():
        nan, minus_infinity, infinity = sentinels(dtype)
        values = counts[odd]
        encoded[odd] = np.where(
            np.isnan(values), nan, np.where(values > 0, infinity, minus_infinity)
        )
    bits = f"u{array.dtype.itemsize}"
    back = from_counts(encoded, scale, array.dtype)
    return encoded if np.array_equal(back.view(bits), array.view(bits)) else None


def from_counts(counts: np.ndarray, scale: int, dtype: np.dtype) -> np.ndarray:
    values = counts.astype(dtype)
    values /= dtype.type(scale)
    nan, minus_infinity, infinity = sentinels(counts.dtype)
    values[counts == nan] = np.nan
    values[counts == minus_infinity] = -np.inf
    values[counts == infinity] = np.inf
    return values


def sentinels(dtype: type[np.integer] | np.dtype) -> tuple[int, int, int]:
    """The counts that stand for NaN, -inf and +inf: the integer type's ends."""
    info = np.iinfo(dtype)
    return info.min, info.min + 1, info.max
