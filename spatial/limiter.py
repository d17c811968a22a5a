"""Soft limiting: a mix of many loud voices must still fit in [−1, 1] without hard clipping.

A memoryless soft knee: below `threshold` samples pass untouched; above it the excess is
squashed by tanh into the remaining headroom,

    y = sign(x) · (T + (1 − T)·tanh((|x| − T)/(1 − T))),

which is continuous with slope 1 at the knee (no corner, so no harsh harmonics) and approaches
but never passes full scale. Being memoryless it needs no per-listener state, so listeners that
share a mix still share its limited output exactly.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .jit import sample_kernel


@sample_kernel
def needs_limit(x: NDArray[np.float32], threshold: float) -> bool:
    """Does any sample of `x` exceed the threshold (or is NaN/infinite)? One vectorized pass.

    A sum of excesses rather than a running max: a max reduction only vectorizes when NaN may be
    ignored, and here a NaN must propagate (it makes the sum NaN, and NaN is not <= 0).
    Compared in float32, as the samples are: a sample of exactly float32(threshold) is fine.
    """
    knee = np.float32(threshold)
    excess = np.float32(0.0)
    for i in range(x.shape[0]):
        excess += over_knee(x[i], knee)
    return not (excess <= 0.0)


@sample_kernel
def over_knee(v: np.float32, knee: np.float32) -> np.float32:
    """How far one sample is past the knee (0 if not; NaN for NaN): sum it, test `not sum <= 0`."""
    return max(abs(v) - knee, np.float32(0.0))


@sample_kernel
def limit_in_place(x: NDArray[np.float32], threshold: float) -> None:
    """Apply the soft knee to every sample of `x` (NaN becomes 0, ±infinity ±full scale first)."""
    knee = np.float32(threshold)
    headroom = 1.0 - threshold
    for i in range(x.shape[0]):
        v = x[i]
        if v != v:
            x[i] = 0.0
            continue
        a = 1.0 if math.isinf(v) else abs(v)
        if a > knee:
            y = min(threshold + headroom * math.tanh((a - threshold) / headroom), 1.0)
            x[i] = y if v > 0 else -y


@sample_kernel
def _limit_rows(rows: NDArray[np.float32], threshold: float) -> int:
    hot = 0
    for m in range(rows.shape[0]):
        if needs_limit(rows[m], threshold):
            limit_in_place(rows[m], threshold)
            hot += 1
    return hot


def soft_limit(buffers: NDArray[np.float32], threshold: float = 0.8) -> int:
    """Limit (M, ..., N) float32 `buffers` in place, buffer by buffer; returns how many needed it.

    Buffers whose peak is under the threshold (the common case for a distant crowd) are not
    touched, which keeps the cost near one max pass.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must be in (0, 1)")
    if buffers.dtype != np.float32:
        raise TypeError("soft_limit works on float32")
    if buffers.size == 0:
        return 0
    rows = buffers.reshape(len(buffers), -1)
    if not np.shares_memory(rows, buffers) or not rows.flags.c_contiguous:
        rows = np.ascontiguousarray(rows)
        hot = _limit_rows(rows, threshold)
        buffers[...] = rows.reshape(buffers.shape)
        return int(hot)
    return int(_limit_rows(rows, threshold))
