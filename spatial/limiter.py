"""Soft limiting: a mix of many loud voices must still fit in [−1, 1] without hard clipping.

A memoryless soft knee: below `threshold` samples pass untouched; above it the excess is
squashed by tanh into the remaining headroom,

    y = sign(x) · (T + (1 − T)·tanh((|x| − T)/(1 − T))),

which is continuous with slope 1 at the knee (no corner, so no harsh harmonics) and approaches
but never passes full scale. Being memoryless it needs no per-listener state, so listeners that
share a mix still share its limited output exactly.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def soft_limit(buffers: NDArray[np.float32], threshold: float = 0.8) -> int:
    """Limit (M, ..., N) float32 `buffers` in place, buffer by buffer; returns how many needed it.

    Buffers whose peak is under the threshold (the common case for a distant crowd) are not
    touched, which keeps the cost near one max/min pass.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must be in (0, 1)")
    if buffers.size == 0:
        return 0
    flat = buffers.reshape(len(buffers), -1)
    peak = np.maximum(flat.max(axis=1), -flat.min(axis=1))
    hot = np.flatnonzero(~(peak <= threshold))  # also catches NaN, which then becomes 0 below
    if len(hot) == 0:
        return 0
    x = flat[hot]
    x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    mag = np.abs(x)
    over = mag > threshold
    headroom = 1.0 - threshold
    squashed = threshold + headroom * np.tanh((mag - threshold) / headroom)
    y = np.where(over, np.copysign(squashed, x), x)
    flat[hot] = np.clip(y, -1.0, 1.0)
    return len(hot)
