"""Authoritative avatar state: the pose table and the pose rules (finite, in bounds, speed limit).

Poses live in dense numpy arrays (row per avatar) so a tick hands them to the interest engine without
copying per avatar; removal swaps the last row into the hole, so add/remove are O(1).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from world.config import WorldConfig
from world.ratelimit import TokenBucket
from world.tokens import Grants

IDENTITY_QUAT = (0.0, 0.0, 0.0, 1.0)

# A client pose may be ahead of the server's clock by network jitter; allow this much extra time
# when computing the largest legal step so that steady walking at max_speed is never corrected.
SPEED_JITTER_S = 0.05
# A pose within this distance of a spawn point counts as "at the spawn point" (quantisation slack).
SPAWN_EPS = 1e-3
POSE_RATE_HZ = 30.0
POSE_BURST = 4


class AvatarTable:
    """Rows of (id, position, quaternion, flags) with an id -> row map."""

    def __init__(self, capacity: int = 64) -> None:
        self.ids = np.zeros(capacity, dtype=np.uint32)
        self.positions = np.zeros((capacity, 3), dtype=np.float32)
        self.quats = np.zeros((capacity, 4), dtype=np.float32)
        self.flags = np.zeros(capacity, dtype=np.uint8)
        self.row_of: dict[int, int] = {}
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def __contains__(self, pid: int) -> bool:
        return pid in self.row_of

    def _grow(self) -> None:
        cap = max(2 * len(self.ids), 8)
        for name in ("ids", "positions", "quats", "flags"):
            old = getattr(self, name)
            new = np.zeros((cap, *old.shape[1:]), dtype=old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)

    def add(self, pid: int, p: Sequence[float], q: Sequence[float], flags: int = 0) -> None:
        if pid in self.row_of:
            raise KeyError(f"participant {pid} already in the table")
        if self.n == len(self.ids):
            self._grow()
        r = self.n
        self.ids[r] = pid
        self.positions[r] = p
        self.quats[r] = q
        self.flags[r] = flags
        self.row_of[pid] = r
        self.n += 1

    def remove(self, pid: int) -> None:
        r = self.row_of.pop(pid)
        last = self.n - 1
        if r != last:
            self.ids[r] = self.ids[last]
            self.positions[r] = self.positions[last]
            self.quats[r] = self.quats[last]
            self.flags[r] = self.flags[last]
            self.row_of[int(self.ids[r])] = r
        self.n = last

    def set_pose(self, pid: int, p: Sequence[float], q: Sequence[float]) -> None:
        r = self.row_of[pid]
        self.positions[r] = p
        self.quats[r] = q

    def pose(self, pid: int) -> tuple[list[float], list[float]]:
        r = self.row_of[pid]
        return [float(x) for x in self.positions[r]], [float(x) for x in self.quats[r]]

    def set_flag(self, pid: int, bit: int, on: bool) -> None:
        r = self.row_of[pid]
        # Python ints: under numpy 2, uint8 & ~bit (a negative int) overflows instead of masking.
        value = int(self.flags[r])
        self.flags[r] = (value | bit) if on else (value & ~bit & 0xFF)

    def snapshot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Copies of the live rows (safe to keep after the table changes)."""
        n = self.n
        return self.ids[:n].copy(), self.positions[:n].copy(), self.quats[:n].copy(), self.flags[:n].copy()


class IdAllocator:
    """Smallest free non-negative id first, so ids stay small (they may index arrays downstream)."""

    def __init__(self) -> None:
        self._next = 0
        self._free: list[int] = []

    def take(self) -> int:
        if self._free:
            return heapq.heappop(self._free)
        pid = self._next
        self._next += 1
        return pid

    def give_back(self, pid: int) -> None:
        heapq.heappush(self._free, pid)


@dataclass
class Participant:
    pid: int
    identity: str
    name: str
    grants: Grants
    transport: str
    resume_token: str
    session: Any = None  # the live Session, None while disconnected (within the reconnect grace)
    muted: bool = False
    admin_muted: bool = False
    # Whether the media backend sees audio actually arriving (None: not known, trust the grant).
    publishes_audio: bool | None = None
    last_pose_time: float = field(default_factory=time.monotonic)
    pose_bucket: TokenBucket = field(default_factory=lambda: TokenBucket(POSE_RATE_HZ, POSE_BURST))
    poses_dropped: int = 0
    grace_handle: Any = None  # asyncio.TimerHandle while disconnected


@dataclass(frozen=True)
class PoseVerdict:
    p: tuple[float, float, float]
    q: tuple[float, float, float, float]
    reason: str | None  # None = accepted as sent; "bounds" / "speed" = corrected


def normalise_quat(q: Sequence[float]) -> tuple[float, float, float, float] | None:
    n = math.sqrt(sum(x * x for x in q))
    if not math.isfinite(n) or n < 1e-6:
        return None
    return (q[0] / n, q[1] / n, q[2] / n, q[3] / n)


def judge_pose(
    world: WorldConfig,
    current: Sequence[float],
    target: Sequence[float],
    q: Sequence[float],
    dt: float,
) -> PoseVerdict | None:
    """Apply the pose rules; None means the pose is invalid (non-finite or zero quaternion).

    Order: finite -> spawn teleport (allowed from anywhere) -> speed (clamp the step toward the target)
    -> bounds (clamp into the box).
    """
    if not all(math.isfinite(x) for x in target):
        return None
    nq = normalise_quat(q)
    if nq is None:
        return None
    reason: str | None = None
    p = [float(x) for x in target]
    at_spawn = any(math.dist(p, s.p) <= SPAWN_EPS for s in world.spawn_points)
    if not at_spawn:
        step = math.dist(p, current)
        allowed = world.max_speed * (max(dt, 0.0) + SPEED_JITTER_S)
        if step > allowed:
            k = allowed / step
            p = [c + (t - c) * k for c, t in zip(current, p, strict=True)]
            reason = "speed"
    lo, hi = world.bounds.min, world.bounds.max
    clamped = [min(max(x, a), b) for x, a, b in zip(p, lo, hi, strict=True)]
    if clamped != p:
        p = clamped
        reason = reason or "bounds"
    return PoseVerdict((p[0], p[1], p[2]), nq, reason)
