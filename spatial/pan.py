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

PAN_LAWS = ("equal_power", "godot", "openal")

# OpenAL Soft 1.19 (Alc/panning.c) stereo decoder rows for ACN W, Y, Z, X with N3D-encoded
# sources; multiplying the first-order coefficients by √3 gives the gains directly.
_AL_W = 0.5
_AL_Y = 2.88675135e-1 * math.sqrt(3.0)
_AL_X = 5.52305643e-2 * math.sqrt(3.0)

_GODOT_SPEAKERS = np.array([[-1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]) / math.sqrt(2.0)


def _azimuth(d: NDArray[np.float64]) -> NDArray[np.float64]:
    """Azimuth in radians, 0 ahead (−Z), positive to the right (+X), in (−π, π]."""
    return np.arctan2(d[..., 0], -d[..., 2])


def equal_power(d: NDArray[np.float64]) -> NDArray[np.float64]:
    # Web Audio projects onto the horizontal plane; straight up/down has azimuth 0.
    az = _azimuth(d)
    az = np.where(az < -np.pi / 2, -np.pi - az, az)
    az = np.where(az > np.pi / 2, np.pi - az, az)
    x = (az + np.pi / 2) / np.pi
    return np.stack([np.cos(x * np.pi / 2), np.sin(x * np.pi / 2)], axis=-1)


def godot(d: NDArray[np.float64]) -> NDArray[np.float64]:
    raw = 1.0 + d @ _GODOT_SPEAKERS.T
    norm = np.sqrt(np.sum(raw * raw, axis=-1, keepdims=True))
    return raw / np.where(norm > 0, norm, 1.0)


def openal(d: NDArray[np.float64]) -> NDArray[np.float64]:
    az = _azimuth(d)
    cos_el = np.sqrt(np.maximum(0.0, 1.0 - np.clip(d[..., 1], -1.0, 1.0) ** 2))
    front = np.abs(az) < np.pi / 2
    az = np.where(front, np.sign(az) * np.minimum(np.abs(az) * 1.5, np.pi / 2), az)
    side = _AL_Y * np.sin(az) * cos_el
    ahead = _AL_X * np.cos(az) * cos_el
    # The 1.19 panner keeps each channel gain inside [0, 1]; measured on the loopback device:
    # the raw formula reaches 1.0043 at 58° and −0.009 at 100°, OpenAL renders 1.0 and 0.
    return np.clip(np.stack([_AL_W - side + ahead, _AL_W + side + ahead], axis=-1), 0.0, 1.0)


_LAWS = {"equal_power": equal_power, "godot": godot, "openal": openal}


def pan_gains(law: str, directions: ArrayLike) -> NDArray[np.float64]:
    """(..., 3) listener-local unit directions → (..., 2) gains (left, right)."""
    fn = _LAWS.get(law)
    if fn is None:
        raise ValueError(
            f"unknown pan law {law!r}; expected one of {', '.join(PAN_LAWS)} (or 'hrtf' in the mixer)"
        )
    return fn(np.asarray(directions, dtype=np.float64))


def centre_gains(law: str) -> NDArray[np.float64]:
    """The (left, right) gains of a source straight ahead: how a `flat` source is placed."""
    return pan_gains(law, np.array([0.0, 0.0, -1.0]))
