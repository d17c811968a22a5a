"""Stereo pan laws: listener-local unit direction → (left, right) gains.

Engines disagree, so each law is reproduced exactly and a world config picks one:

- ``equal_power``: Web Audio PannerNode, panningModel "equalpower". Azimuth on the horizontal
  plane folded to the front half, x = (az + 90°)/180°, (L, R) = (cos xπ/2, sin xπ/2).
  Ahead 0.707/0.707, hard right 0/1, behind = ahead.
- ``godot``: Godot 4's SPCAP for a stereo speaker pair at (∓1, 0, −1)/√2 with default panning
  strength: vol_i = (1 + d_i·s) / sqrt(Σ_j (1 + d_j·s)²). Ahead 0.707/0.707, hard right 0.169/0.986.
- ``openal``: OpenAL Soft 1.19 basic stereo (no HRTF, no UHJ): azimuth az = atan2(x, −z) is
  widened ×1.5 in front (reaching ±90° at ±60°, back half untouched), then a first-order
  ambisonic decode L,R = 0.5 ∓ 0.5·sin az'·cos el + 0.0957·cos az'·cos el, each gain clipped to
  [0, 1] as 1.19 does. Ahead 0.596/0.596, behind 0.404/0.404. Verified against the installed
  libopenal1 1.19.1 by tests/spatial/test_spatial_openal.py. The constants are 1.19's (Debian
  bookworm); other OpenAL Soft releases may pan differently, and that test would say so.

``hrtf`` is not a pan law: it needs delays and filters, see `spatial.hrtf`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .jit import kernel

PAN_LAWS = ("equal_power", "godot", "openal")

# OpenAL Soft 1.19 (Alc/panning.c) stereo decoder rows for ACN W, Y, Z, X with N3D-encoded
# sources; multiplying the first-order coefficients by √3 gives the gains directly.
_AL_W = 0.5
_AL_Y = 2.88675135e-1 * math.sqrt(3.0)
_AL_X = 5.52305643e-2 * math.sqrt(3.0)

_HALF_SQRT2 = math.sqrt(0.5)


@kernel
def pan_pair(law: int, dx: float, dy: float, dz: float) -> tuple[float, float]:
    """(left, right) gains of one listener-local unit direction; `law` indexes `PAN_LAWS`.

    Scalar and compiled, so the mixer evaluates it inside its per-entry loop; `pan_gains` is the
    same code over an array.
    """
    if law == 0:
        # Web Audio: L, R = cos, sin of (az + 90°)/2 with az folded to the front half. By the
        # half-angle formulas that is √((1 ∓ sin az)/2), and folding leaves sin az unchanged, so
        # no trigonometry is needed: sin az = x / |(x, z)| (0 straight up or down).
        h = math.sqrt(dx * dx + dz * dz)
        s = dx / h if h > 0.0 else 0.0
        return math.sqrt(max(0.0, 0.5 - 0.5 * s)), math.sqrt(max(0.0, 0.5 + 0.5 * s))
    if law == 1:
        # Godot SPCAP, speakers at (∓1, 0, −1)/√2.
        left = 1.0 + (-dx - dz) * _HALF_SQRT2
        right = 1.0 + (dx - dz) * _HALF_SQRT2
        norm = math.sqrt(left * left + right * right)
        if norm > 0.0:
            return left / norm, right / norm
        return left, right
    az = math.atan2(dx, -dz)
    cos_el = math.sqrt(max(0.0, 1.0 - min(max(dy, -1.0), 1.0) ** 2))
    if abs(az) < math.pi / 2:
        az = math.copysign(min(abs(az) * 1.5, math.pi / 2), az)
    side = _AL_Y * math.sin(az) * cos_el
    ahead = _AL_X * math.cos(az) * cos_el
    # The 1.19 panner keeps each channel gain inside [0, 1]; measured on the loopback device:
    # the raw formula reaches 1.0043 at 58° and −0.009 at 100°, OpenAL renders 1.0 and 0.
    return min(max(_AL_W - side + ahead, 0.0), 1.0), min(max(_AL_W + side + ahead, 0.0), 1.0)


@kernel
def _pan_many(law: int, d: NDArray[np.float64], out: NDArray[np.float64]) -> None:
    for i in range(d.shape[0]):
        out[i, 0], out[i, 1] = pan_pair(law, d[i, 0], d[i, 1], d[i, 2])


def law_code(law: str) -> int:
    """The integer `pan_pair` takes for a pan law name."""
    if law not in PAN_LAWS:
        raise ValueError(
            f"unknown pan law {law!r}; expected one of {', '.join(PAN_LAWS)} (or 'hrtf' in the mixer)"
        )
    return PAN_LAWS.index(law)


def pan_gains(law: str, directions: ArrayLike) -> NDArray[np.float64]:
    """(..., 3) listener-local unit directions → (..., 2) gains (left, right)."""
    code = law_code(law)
    d = np.asarray(directions, dtype=np.float64)
    if d.shape[-1:] != (3,):
        raise ValueError(f"directions must have shape (..., 3), got {d.shape}")
    flat = np.ascontiguousarray(d.reshape(-1, 3))
    out = np.empty((len(flat), 2))
    _pan_many(code, flat, out)
    return out.reshape(*d.shape[:-1], 2)


def centre_gains(law: str) -> NDArray[np.float64]:
    """The (left, right) gains of a source straight ahead: how a `flat` source is placed."""
    return pan_gains(law, np.array([0.0, 0.0, -1.0]))
