"""Bots: many real WebRTC participants in one process that talk (synthetic voices) and move.

Used by `hubbub bots`, the benches and the tests to populate worlds. Each bot is a full SDK Client (its
own aiortc peer connection); to stay cheap they never decode the audio they receive (RTP is still
counted) unless asked, and they send poses at `pose_rate_hz` (10 Hz by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from . import audio
from .client import Client, JoinError
from .wire import yaw_quaternion

Pattern = Literal["wander", "crowd", "stage", "orbit", "still"]
PATTERNS: tuple[str, ...] = ("wander", "crowd", "stage", "orbit", "still")


@dataclass
class Area:
    """Where bots move: a disc of `radius` around (x, z) = `center`, clamped to the world's bounds."""

    center: tuple[float, float] = (0.0, 0.0)
    radius: float = 10.0
    bounds_min: tuple[float, float] = (-1e9, -1e9)
    bounds_max: tuple[float, float] = (1e9, 1e9)
    stage: tuple[float, float] | None = None  # centre of the first stage zone, if any

    @classmethod
    def from_world(cls, world: dict[str, Any], radius: float = 10.0) -> Area:
        spawn = (world.get("spawn_points") or [{"p": [0, 0, 0]}])[0]["p"]
        bounds = world.get("bounds") or {}
        bmin = bounds.get("min", [-1e9, 0, -1e9])
        bmax = bounds.get("max", [1e9, 0, 1e9])
        stage = None
        for zone in world.get("zones") or []:
            if zone.get("kind") == "stage":
                stage = _shape_center(zone.get("shape") or {})
                break
        return cls((float(spawn[0]), float(spawn[2])), radius, (bmin[0], bmin[2]), (bmax[0], bmax[2]), stage)

    def clamp(self, x: float, z: float) -> tuple[float, float]:
        margin = 0.5
        return (
            min(max(x, self.bounds_min[0] + margin), self.bounds_max[0] - margin),
            min(max(z, self.bounds_min[1] + margin), self.bounds_max[1] - margin),
        )


def _shape_center(shape: dict[str, Any]) -> tuple[float, float] | None:
    if shape.get("type") == "box":
        lo, hi = shape["min"], shape["max"]
        return ((lo[0] + hi[0]) / 2, (lo[2] + hi[2]) / 2)
    if "center" in shape:
        c = shape["center"]
        return (float(c[0]), float(c[1]))
    if shape.get("points"):
        pts = shape["points"]
        return (sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts))
    return None


class Mover:
    """The motion of one bot: `step(dt)` returns the next (x, z, yaw). Speeds stay under `speed` m/s so
    the server's speed limit never corrects a bot."""

    def __init__(self, pattern: str, index: int, count: int, area: Area, speed: float, seed: int) -> None:
        if pattern not in PATTERNS:
            raise ValueError(f"unknown pattern {pattern!r} (one of {', '.join(PATTERNS)})")
        self.pattern = pattern
        self.area = area
        self.speed = speed
        self.rng = random.Random(seed * 7919 + index)
        self.t = 0.0
        cx, cz = area.center
        golden = index * 2.399963  # golden angle: spreads bots evenly on a disc
        r = area.radius * math.sqrt((index + 0.5) / max(1, count))
        if pattern == "crowd":
            r *= 0.3
        if pattern == "stage" and area.stage is not None:
            # Audience rows in front of the stage (on its +Z side), everybody facing it.
            sx, sz = area.stage
            row, col = divmod(index, 10)
            self.x, self.z = area.clamp(sx + (col - 4.5) * 1.2, sz + 4.0 + row * 1.2)
        else:
            self.x, self.z = area.clamp(cx + r * math.cos(golden), cz + r * math.sin(golden))
        self.heading = self.rng.uniform(0, 2 * math.pi)
        self.orbit_r = max(1.0, math.hypot(self.x - cx, self.z - cz))
        self.orbit_a = math.atan2(self.z - cz, self.x - cx)

    def step(self, dt: float) -> tuple[float, float, float]:
        self.t += dt
        cx, cz = self.area.center
        if self.pattern == "wander":
            self.heading += self.rng.gauss(0.0, 0.6) * dt
            nx = self.x + math.cos(self.heading) * self.speed * dt
            nz = self.z + math.sin(self.heading) * self.speed * dt
            if math.hypot(nx - cx, nz - cz) > self.area.radius:  # turn back towards the centre
                self.heading = math.atan2(cz - self.z, cx - self.x) + self.rng.uniform(-0.5, 0.5)
                nx, nz = self.x, self.z
            self.x, self.z = self.area.clamp(nx, nz)
            yaw = math.atan2(-math.cos(self.heading), -math.sin(self.heading))
        elif self.pattern == "orbit":
            self.orbit_a += self.speed * dt / self.orbit_r
            self.x, self.z = self.area.clamp(
                cx + self.orbit_r * math.cos(self.orbit_a), cz + self.orbit_r * math.sin(self.orbit_a)
            )
            yaw = math.atan2(-(cx - self.x), -(cz - self.z))  # face the centre
        elif self.pattern == "crowd":
            # Shuffle in place around a point near the centre, facing it.
            jx = 0.3 * math.sin(self.t * 0.7 + self.heading)
            jz = 0.3 * math.cos(self.t * 0.5 + self.heading)
            yaw = math.atan2(-(cx - self.x), -(cz - self.z))
            return (self.x + jx, self.z + jz, yaw)
        elif self.pattern == "stage" and self.area.stage is not None:
            sx, sz = self.area.stage
            yaw = math.atan2(-(sx - self.x), -(sz - self.z))
        else:
            yaw = 0.0
        return (self.x, self.z, yaw)


@dataclass
class BotStats:
    joined: int = 0
    speaking: int = 0
    failed: int = 0
    packets_in: int = 0
    packets_out: int = 0
    poses_out: int = 0
    errors: int = 0
    reconnects: int = 0
    join_seconds: list[float] = field(default_factory=list)

    def line(self, elapsed: float, count: int) -> str:
        return (
            f"[{elapsed:5.1f}s] joined {self.joined}/{count}  speaking {self.speaking}  "
            f"packets in {self.packets_in} out {self.packets_out}  poses out {self.poses_out}  "
            f"errors {self.errors + self.failed}"
        )


class BotSwarm:
    """`tokens[i]` is bot i's access token. The first round(count·speakers) bots publish `voice`."""

    def __init__(
        self,
        url: str,
        tokens: Sequence[str],
        *,
        speakers: float = 0.5,
        pattern: str = "wander",
        voice: str = "speechlike",
        speed: float = 1.4,
        radius: float = 10.0,
        pose_rate_hz: float = 10.0,
        decode_audio: bool = False,
        join_concurrency: int = 8,
        seed: int = 0,
    ) -> None:
        if not 0.0 <= speakers <= 1.0:
            raise ValueError("speakers must be a fraction in [0, 1]")
        if pattern not in PATTERNS:
            raise ValueError(f"unknown pattern {pattern!r} (one of {', '.join(PATTERNS)})")
        self.url = url
        self.tokens = list(tokens)
        self.n_speakers = round(len(self.tokens) * speakers)
        self.pattern = pattern
        self.voice = voice
        self.speed = speed
        self.radius = radius
        self.pose_rate_hz = pose_rate_hz
        self.decode_audio = decode_audio
        self.join_concurrency = join_concurrency
        self.seed = seed
        self.clients: list[Client] = []
        self.movers: list[Mover] = []
        self.stats = BotStats()
        self.last_error: str | None = None
        self._move_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Join every bot (a few at a time, so the server's join path is not stampeded) and start moving."""
        sem = asyncio.Semaphore(self.join_concurrency)
        results: list[Client | None] = [None] * len(self.tokens)

        async def join(i: int) -> None:
            async with sem:
                speaks = i < self.n_speakers
                client = Client(
                    self.url,
                    self.tokens[i],
                    publish=audio.voice(self.voice, seed=self.seed + i) if speaks else False,
                    decode_audio=self.decode_audio,
                    pose_rate_hz=max(self.pose_rate_hz, 1.0),
                )
                t0 = time.monotonic()
                try:
                    await client.start()
                except (TimeoutError, JoinError, OSError) as exc:
                    self.stats.failed += 1
                    self.last_error = str(exc)
                    await client.close()
                    return
                self.stats.join_seconds.append(time.monotonic() - t0)
                results[i] = client

        await asyncio.gather(*(join(i) for i in range(len(self.tokens))))
        self.clients = [c for c in results if c is not None]
        self.stats.joined = len(self.clients)
        self.stats.speaking = sum(1 for c in self.clients if c.voice is not None)
        world = self.clients[0].world if self.clients else {}
        area = Area.from_world(world, self.radius)
        n = len(self.clients)
        self.movers = [Mover(self.pattern, i, n, area, self.speed, self.seed) for i in range(n)]
        self._move_task = asyncio.create_task(self._move())

    async def _move(self) -> None:
        dt = 1.0 / self.pose_rate_hz
        for client, mover in zip(self.clients, self.movers, strict=True):
            x, z, yaw = mover.step(0.0)
            client.set_pose((x, client.pose.p[1], z), yaw_quaternion(yaw))
        while True:
            await asyncio.sleep(dt)
            for client, mover in zip(self.clients, self.movers, strict=True):
                x, z, yaw = mover.step(dt)
                client.set_pose((x, client.pose.p[1], z), yaw_quaternion(yaw))

    async def refresh_stats(self) -> BotStats:
        totals = await asyncio.gather(*(c.stats() for c in self.clients))
        s = self.stats
        s.joined = sum(1 for c in self.clients if c.connected)
        s.packets_in = sum(t["packets_in"] for t in totals)
        s.packets_out = sum(t["packets_out"] for t in totals)
        s.poses_out = sum(t["poses_out"] for t in totals)
        s.errors = sum(t["errors"] for t in totals)
        s.reconnects = sum(t["reconnects"] for t in totals)
        return s

    async def run(
        self, duration: float | None, progress: Callable[[str], None] | None = None,
        tick: Callable[[], Awaitable[None]] | None = None,
    ) -> BotStats:
        """Keep the bots going for `duration` seconds (None: until cancelled), reporting once a second."""
        start = time.monotonic()
        while duration is None or time.monotonic() - start < duration:
            await asyncio.sleep(min(1.0, max(0.0, (duration or 1e9) - (time.monotonic() - start))))
            stats = await self.refresh_stats()
            if progress is not None:
                progress(stats.line(time.monotonic() - start, len(self.tokens)))
            if tick is not None:
                await tick()
        return await self.refresh_stats()

    async def close(self) -> None:
        if self._move_task is not None:
            self._move_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._move_task
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)

    async def __aenter__(self) -> BotSwarm:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
