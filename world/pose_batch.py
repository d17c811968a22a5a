"""Every listener's ``poses`` frame of a tick, encoded in one compiled pass.

Each tick a listener gets one ``poses`` message with its due peers: ids, quantised positions and
rotations (`protocol.pack_poses`). At 5,000 listeners, joining each frame in Python from slices of
shared buffers still cost ~3 µs a listener (16 ms a tick); here one pass over the due pairs
writes every frame into one buffer, and Python only cuts it into ``bytes`` per listener. Each frame
is byte for byte ``protocol.encode`` of the message (the test checks every bin header size).
"""

from __future__ import annotations

import msgpack
import numpy as np
import numpy.typing as npt
from numba import njit

_KEYS = tuple(np.frombuffer(msgpack.packb(k), np.uint8) for k in ("ids", "pos", "rot"))


def encode_batches(
    tick: int, keys: npt.NDArray[np.int64], ids: np.ndarray, pos: np.ndarray, rot: np.ndarray
) -> list[tuple[int, bytes]]:
    """``(listener id, frame)`` per listener in `keys`, the sorted ``listener << 32 | peer`` keys of
    the due pairs; row i of ``ids`` (``<u4``), ``pos`` (``<i4`` (n, 3)) and ``rot`` (``<i2`` (n, 4),
    or its ``<i8`` view) is the peer of ``keys[i]``."""
    if len(keys) == 0:
        return []
    lids = keys >> 32
    starts = np.flatnonzero(np.concatenate(([True], lids[1:] != lids[:-1])))
    ends = np.append(starts[1:], len(keys))
    head = b"\x85" + b"".join(msgpack.packb(v) for v in ("t", "poses", "tick", int(tick)))
    rows = [np.ascontiguousarray(a).view(np.uint8).reshape(-1) for a in (ids, pos, rot)]
    buf, offs = _write(np.frombuffer(head, np.uint8), starts, ends, *rows, *_KEYS)
    view = memoryview(buf)
    bounds = offs.tolist()
    return [(lid, view[bounds[i] : bounds[i + 1]].tobytes()) for i, lid in enumerate(lids[starts].tolist())]


@njit(cache=True, nogil=True, inline="always")
def _bin_len(n):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Bytes of msgpack's header for a binary of n bytes (bin 8, 16 or 32)."""
    return 2 if n < 256 else (3 if n < 65536 else 5)


@njit(cache=True, nogil=True, inline="always")
def _put(buf, o, key, data, lo, hi):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Write a key, then data[lo:hi] as a msgpack binary, at o; returns the end."""
    for j in range(len(key)):
        buf[o + j] = key[j]
    o += len(key)
    n = hi - lo
    if n < 256:
        buf[o] = 0xC4
        buf[o + 1] = n
        o += 2
    elif n < 65536:
        buf[o] = 0xC5
        buf[o + 1] = n >> 8
        buf[o + 2] = n & 0xFF
        o += 3
    else:
        buf[o] = 0xC6
        for j in range(4):
            buf[o + 1 + j] = (n >> (24 - 8 * j)) & 0xFF
        o += 5
    buf[o : o + n] = data[lo:hi]
    return o + n


@njit(cache=True, nogil=True)
def _write(head, starts, ends, ids, pos, rot, k_ids, k_pos, k_rot):  # type: ignore[no-untyped-def]  # pragma: no cover
    """All frames into one buffer; frame i is buf[offs[i]:offs[i + 1]]."""
    m = len(starts)
    offs = np.zeros(m + 1, np.int64)
    fixed = len(head) + len(k_ids) + len(k_pos) + len(k_rot)
    for i in range(m):
        k = ends[i] - starts[i]
        size = fixed + _bin_len(4 * k) + _bin_len(12 * k) + _bin_len(8 * k) + 24 * k
        offs[i + 1] = offs[i] + size
    buf = np.empty(offs[m], np.uint8)
    for i in range(m):
        o = offs[i]
        a = starts[i]
        b = ends[i]
        buf[o : o + len(head)] = head
        o += len(head)
        o = _put(buf, o, k_ids, ids, 4 * a, 4 * b)
        o = _put(buf, o, k_pos, pos, 12 * a, 12 * b)
        _put(buf, o, k_rot, rot, 8 * a, 8 * b)
    return buf, offs
