"""Message framing for the Hubbub wire protocol v1 (client side, sans-I/O).

The SDK keeps its own small codec instead of importing the server's `world.protocol`, so that a client
program needs nothing of the server. One message is one map with a type key ``t``: msgpack in binary
frames, JSON (bytes as base64) in text frames. The same encoding travels on the WebSocket and on the
``control`` and ``state`` data channels.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

PROTOCOL_VERSION = 1
POS_SCALE = 1000.0  # poses carry millimetres
ROT_SCALE = 32767.0  # and quaternion components scaled to int16

Message = dict[str, Any]

# Fields that are bytes in msgpack and base64 strings in JSON.
BYTES_FIELDS: dict[str, tuple[str, ...]] = {
    "data": ("payload",),
    "voice": ("pcm",),
    "poses": ("ids", "pos", "rot"),
}


class WireError(ValueError):
    """A frame that is not one well-formed message."""


def encode(msg: Mapping[str, Any]) -> bytes:
    """Encode one message as a msgpack binary frame."""
    return msgpack.packb(dict(msg), use_bin_type=True)


def decode(frame: bytes | str) -> Message:
    """Decode one binary (msgpack) or text (JSON) frame into a map with a string ``t``."""
    try:
        if isinstance(frame, str):
            obj = json.loads(frame)
        else:
            obj = msgpack.unpackb(frame, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise WireError(f"malformed frame: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("t"), str):
        raise WireError("a frame must hold one map with a string 't'")
    if isinstance(frame, str):
        for name in BYTES_FIELDS.get(obj["t"], ()):
            if isinstance(obj.get(name), str):
                obj[name] = base64.b64decode(obj[name])
    return obj


@dataclass(frozen=True)
class Pose:
    """Position (metres, Y up) and orientation quaternion (x, y, z, w)."""

    p: tuple[float, float, float]
    q: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)


def pose_message(pose: Pose, seq: int) -> Message:
    return {"t": "pose", "p": [float(v) for v in pose.p], "q": [float(v) for v in pose.q], "seq": seq}


def unpack_poses(msg: Mapping[str, Any]) -> dict[int, Pose]:
    """Decode a ``poses`` batch: ids uint32 LE, positions int32 LE mm ×3, rotations int16 LE ×4 / 32767."""
    ids = np.frombuffer(msg["ids"], dtype="<u4")
    pos = np.frombuffer(msg["pos"], dtype="<i4")
    rot = np.frombuffer(msg["rot"], dtype="<i2")
    n = len(ids)
    if len(pos) != 3 * n or len(rot) != 4 * n:
        raise WireError("poses: ids/pos/rot lengths disagree")
    p = pos.reshape(n, 3).astype(np.float64) / POS_SCALE
    q = rot.reshape(n, 4).astype(np.float64) / ROT_SCALE
    return {
        int(i): Pose(
            (float(a[0]), float(a[1]), float(a[2])),
            (float(b[0]), float(b[1]), float(b[2]), float(b[3])))
        for i, a, b in zip(ids, p, q, strict=True)
    }


def pack_poses(tick: int, poses: Mapping[int, Pose]) -> Message:
    """Inverse of unpack_poses (used by tests and tools that play the server's part)."""
    ids = np.array(list(poses), dtype="<u4")
    p = np.array([poses[i].p for i in poses], dtype=np.float64).reshape(-1, 3)
    q = np.array([poses[i].q for i in poses], dtype=np.float64).reshape(-1, 4)
    return {
        "t": "poses",
        "tick": tick,
        "ids": ids.tobytes(),
        "pos": np.rint(p * POS_SCALE).astype("<i4").tobytes(),
        "rot": np.clip(np.rint(q * ROT_SCALE), -32767, 32767).astype("<i2").tobytes(),
    }


def yaw_quaternion(yaw: float) -> tuple[float, float, float, float]:
    """Rotation about +Y by `yaw` radians (0 = facing -Z)."""
    import math

    return (0.0, math.sin(yaw / 2), 0.0, math.cos(yaw / 2))


def forward_vector(q: Sequence[float]) -> tuple[float, float, float]:
    """The avatar's forward direction: -Z rotated by quaternion q."""
    x, y, z, w = (float(v) for v in q)
    # Third column of the rotation matrix, negated.
    fx = -(2 * (x * z + w * y))
    fy = -(2 * (y * z - w * x))
    fz = -(1 - 2 * (x * x + y * y))
    return (fx, fy, fz)
