"""Listener-local geometry: where a source is as seen from a listener's head.

Conventions (Godot's): metres, Y up, ground plane X-Z. An orientation is a unit quaternion
(x, y, z, w) rotating listener-local vectors into the world; in listener-local space forward is
−Z, right is +X and up is +Y.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .jit import kernel


def rotation_matrices(quaternions: ArrayLike) -> NDArray[np.float64]:
    """(N, 4) quaternions (x, y, z, w) → (N, 3, 3) rotation matrices (local → world).

    Quaternions are normalised here; a zero or non-finite quaternion is an error because it
    names no orientation at all.
    """
    q = np.ascontiguousarray(quaternions, dtype=np.float64).reshape(-1, 4)
    r = np.empty((len(q), 3, 3))
    if not _rotations(q, r):
        raise ValueError("orientations must be finite, non-zero quaternions (x, y, z, w)")
    return r


@kernel
def _rotations(q: NDArray[np.float64], r: NDArray[np.float64]) -> bool:
    """Fill r with the rotations of q; False if any quaternion is not finite or (near) zero.

    Compiled because the mixer converts every listener's orientation every frame."""
    for i in range(q.shape[0]):
        norm = math.sqrt(q[i, 0] ** 2 + q[i, 1] ** 2 + q[i, 2] ** 2 + q[i, 3] ** 2)
        if not (norm > 1e-9 and math.isfinite(norm)):
            return False
        x, y, z, w = q[i, 0] / norm, q[i, 1] / norm, q[i, 2] / norm, q[i, 3] / norm
        r[i, 0, 0] = 1 - 2 * (y * y + z * z)
        r[i, 0, 1] = 2 * (x * y - z * w)
        r[i, 0, 2] = 2 * (x * z + y * w)
        r[i, 1, 0] = 2 * (x * y + z * w)
        r[i, 1, 1] = 1 - 2 * (x * x + z * z)
        r[i, 1, 2] = 2 * (y * z - x * w)
        r[i, 2, 0] = 2 * (x * z - y * w)
        r[i, 2, 1] = 2 * (y * z + x * w)
        r[i, 2, 2] = 1 - 2 * (x * x + y * y)
    return True


def to_listener_local(offsets: ArrayLike, rotations: ArrayLike) -> NDArray[np.float64]:
    """World-space offsets (source − listener), (N, 3), into each listener's frame.

    `rotations` is (N, 3, 3) local → world, so local = Rᵀ·offset.
    """
    return np.einsum(
        "nij,ni->nj", np.asarray(rotations, dtype=np.float64), np.asarray(offsets, dtype=np.float64)
    )


def unit_directions(local: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Split local offsets into (unit directions, distances).

    A source at the listener's own position has no direction; it is treated as straight ahead
    (0, 0, −1), which is what OpenAL Soft and Web Audio do.
    """
    v = np.asarray(local, dtype=np.float64)
    dist = np.linalg.norm(v, axis=-1)
    tiny = dist <= 1e-9
    safe = np.where(tiny, 1.0, dist)
    unit = v / safe[..., None]
    unit[tiny] = (0.0, 0.0, -1.0)
    return unit, dist


def quaternion_about_y(yaw_radians: ArrayLike) -> NDArray[np.float64]:
    """Quaternions (x, y, z, w) turning by `yaw` about +Y (positive turns forward toward −X, i.e. left)."""
    yaw = np.asarray(yaw_radians, dtype=np.float64)
    out = np.zeros((*yaw.shape, 4))
    out[..., 1] = np.sin(yaw / 2)
    out[..., 3] = np.cos(yaw / 2)
    return out
