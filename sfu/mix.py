"""The mixed track: each listener's stereo bed of the sources it hears but does not get forwarded.

One asyncio task runs a drift-free 20 ms clock for all listeners. Each tick it takes one 20 ms frame
from every decoded source, computes each listener's bed with the gains of its sources, groups the
listeners whose beds are identical (same sources, same gains: e.g. everyone far from a stage hears
only the stage, flat), encodes each distinct bed once (48 kHz stereo Opus) and fans the packet out
through every member's mixed slot, which rewrites it into that listener's RTP stream.

Sources are decoded only while at least one listener mixes them (`MixEngine.wanted_sources`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import av
import numpy as np
from numpy.typing import NDArray

from .forward import OutSlot

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48000
FRAME = 960  # samples per 20 ms
TICK = FRAME / SAMPLE_RATE
_MAX_BUFFER = 6 * FRAME  # per-source decoded backlog bound (120 ms)
_PREFETCH = 2 * FRAME  # start (or restart after an underrun) with 40 ms in hand
_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)

# gains(listener_position (3,), listener_quaternion (4,), source_positions (k, 3)) -> (k, 2) L/R gains
GainFunction = Callable[[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]


def simple_gains(
    reference_distance: float = 1.0, rolloff: float = 1.0, max_distance: float = 1e9
) -> GainFunction:
    """Inverse-clamped distance gain (OpenAL default model) with the Web Audio equal-power pan.

    Used when no `spatial` mixer is plugged in. Listener forward is -Z, right is +X.
    """

    def gains(
        lp: NDArray[np.float64], lq: NDArray[np.float64], sp: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        offsets = sp - lp
        dist = np.linalg.norm(offsets, axis=1)
        d = np.clip(dist, reference_distance, max_distance)
        g = reference_distance / (reference_distance + rolloff * (d - reference_distance))
        # Rotate world offsets into listener space: v' = R(q)^T v.
        x, y, z, w = lq
        rot = np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
            ]
        )
        local = offsets @ rot
        az = np.arctan2(local[:, 0], -local[:, 2])  # 0 ahead, +pi/2 right
        az = np.where(az > np.pi / 2, np.pi - az, az)
        az = np.where(az < -np.pi / 2, -np.pi - az, az)
        pos = (az + np.pi / 2) / np.pi
        pan = np.stack([np.cos(pos * np.pi / 2), np.sin(pos * np.pi / 2)], axis=1)
        pan[dist < 1e-6] = np.sqrt(0.5)
        out: NDArray[np.float64] = pan * g[:, None]
        return out

    return gains


FLAT_GAINS = np.array([np.sqrt(0.5), np.sqrt(0.5)])  # unattenuated, centred (equal power)


class SourceDecoder:
    """Decodes one publisher's Opus payloads into a bounded mono sample FIFO."""

    def __init__(self) -> None:
        self.codec = av.CodecContext.create("libopus", "r")
        self.codec.sample_rate = SAMPLE_RATE
        self.codec.layout = "mono"
        self.buffer = np.zeros(0, dtype=np.float32)
        self.primed = False
        self.decoded = 0
        self.errors = 0

    def push(self, payload: bytes) -> None:
        try:
            frames = self.codec.decode(av.Packet(payload))
        except av.FFmpegError:
            self.errors += 1
            return
        for frame in frames:
            pcm = frame.to_ndarray().reshape(-1)
            samples = (
                pcm.astype(np.float32) * (1 / 32768) if pcm.dtype == np.int16 else pcm.astype(np.float32)
            )
            self.buffer = np.concatenate((self.buffer, samples))[-_MAX_BUFFER:]
            self.decoded += 1

    def pop(self) -> NDArray[np.float32] | None:
        if not self.primed:
            if len(self.buffer) < _PREFETCH:
                return None
            self.primed = True
        if len(self.buffer) < FRAME:
            self.primed = False
            return None
        frame, self.buffer = self.buffer[:FRAME], self.buffer[FRAME:]
        return frame


@dataclass
class MixListener:
    pid: int
    slot: OutSlot
    sources: tuple[int, ...] = ()
    flat: frozenset[int] = frozenset()
    encoder: av.AudioCodecContext | None = None
    last_tick: int = -2
    beds: int = 0


@dataclass
class TickReport:
    listeners: int = 0
    beds: int = 0
    encodes: int = 0
    packets: int = 0
    seconds: float = 0.0
    groups: list[int] = field(default_factory=list)


class MixEngine:
    """All mixed beds of one SFU, on one 20 ms clock."""

    def __init__(self, *, bitrate: int, complexity: int, gains: GainFunction | None = None) -> None:
        self.bitrate = bitrate
        self.complexity = complexity
        self.gains = gains or simple_gains()
        self.listeners: dict[int, MixListener] = {}
        self.decoders: dict[int, SourceDecoder] = {}
        self._pose_index: dict[int, int] = {}
        self._positions = np.zeros((0, 3))
        self._quats = np.zeros((0, 4))
        self.tick_count = 0
        self.encodes = 0
        self.last = TickReport()
        self._task: asyncio.Task[None] | None = None

    # -- configuration from the SFU ------------------------------------------------------------

    def set_listener(self, pid: int, slot: OutSlot, sources: Iterable[int], flat: frozenset[int]) -> None:
        srcs = tuple(dict.fromkeys(s for s in sources if s != pid))
        entry = self.listeners.get(pid)
        if not srcs:
            self.listeners.pop(pid, None)
            return
        if entry is None:
            entry = self.listeners[pid] = MixListener(pid, slot)
        entry.sources = srcs
        entry.flat = frozenset(flat) & frozenset(srcs)

    def remove_listener(self, pid: int) -> None:
        self.listeners.pop(pid, None)

    def wanted_sources(self) -> set[int]:
        wanted: set[int] = set()
        for entry in self.listeners.values():
            wanted.update(entry.sources)
        return wanted

    def decoder_for(self, source: int) -> SourceDecoder:
        dec = self.decoders.get(source)
        if dec is None:
            dec = self.decoders[source] = SourceDecoder()
        return dec

    def drop_decoder(self, source: int) -> None:
        self.decoders.pop(source, None)

    def update_poses(
        self, ids: NDArray[np.integer], positions: NDArray[np.floating], quats: NDArray[np.floating]
    ) -> None:
        self._pose_index = {int(p): i for i, p in enumerate(ids.tolist())}
        self._positions = np.asarray(positions, dtype=np.float64)
        self._quats = np.asarray(quats, dtype=np.float64)

    # -- the clock -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="hubbub-mixer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = 0
        while True:
            n += 1
            delay = start + n * TICK - loop.time()
            if delay < -0.2:
                # Far behind (loop stalled): skip the lost ticks instead of bursting them out.
                start, n = loop.time(), 0
                delay = 0.0
            await asyncio.sleep(max(delay, 0.0))
            try:
                self.tick()
            except Exception:
                logger.exception("mixer tick failed")

    # -- one tick ------------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> TickReport:
        t0 = time.perf_counter()
        now = time.time() if now is None else now
        tick = self.tick_count
        self.tick_count += 1
        frames: dict[int, NDArray[np.float32]] = {}
        for pid, dec in self.decoders.items():
            frame = dec.pop()
            if frame is not None:
                frames[pid] = frame
        report = TickReport(listeners=len(self.listeners))
        groups: dict[tuple[object, ...], list[MixListener]] = {}
        gains_of: dict[tuple[object, ...], tuple[list[int], NDArray[np.float64]]] = {}
        for entry in self.listeners.values():
            active = [s for s in entry.sources if s in frames]
            if not active:
                continue
            g = self._gains(entry, active)
            key: tuple[object, ...] = (*active, *np.round(g * 1000).astype(np.int32).ravel().tolist())
            members = groups.get(key)
            if members is None:
                groups[key] = [entry]
                gains_of[key] = (active, g)
            else:
                members.append(entry)
        for key, members in groups.items():
            active, g = gains_of[key]
            stack = np.stack([frames[s] for s in active])  # (k, FRAME)
            bed = g.T.astype(np.float32) @ stack  # (2, FRAME)
            leader = min(members, key=lambda m: m.pid)
            payloads = self._encode(leader, bed, tick)
            report.encodes += 1
            for payload in payloads:
                for member in members:
                    slot = member.slot
                    marker = 0
                    if member.last_tick != tick - 1:
                        slot.switch(slot.source)  # resume after silence: continue seq, advance ts
                        marker = 1
                    slot.send_payload(payload, tick & 0xFFFF, (tick * FRAME) & 0xFFFFFFFF, marker, now)
                    member.last_tick = tick
                    member.beds += 1
                    report.packets += 1
        report.beds = len(groups)
        report.groups = [len(m) for m in groups.values()]
        report.seconds = time.perf_counter() - t0
        self.encodes += report.encodes
        self.last = report
        return report

    def _gains(self, entry: MixListener, active: list[int]) -> NDArray[np.float64]:
        g = np.empty((len(active), 2))
        flat = entry.flat
        li = self._pose_index.get(entry.pid)
        positional = [i for i, s in enumerate(active) if s not in flat and s in self._pose_index]
        g[:] = FLAT_GAINS
        if li is not None and positional:
            rows = [self._pose_index[active[i]] for i in positional]
            g[positional] = self.gains(self._positions[li], self._quats[li], self._positions[rows])
        return g

    def _encode(self, leader: MixListener, bed: NDArray[np.float32], tick: int) -> list[bytes]:
        enc = leader.encoder
        if enc is None:
            enc = leader.encoder = self._new_encoder()
        pcm = (np.clip(bed.T, -1.0, 1.0) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = tick * FRAME
        frame.time_base = _TIME_BASE
        try:
            return [bytes(p) for p in enc.encode(frame)]
        except av.FFmpegError:
            logger.exception("opus encode failed")
            leader.encoder = None
            return []

    def _new_encoder(self) -> av.AudioCodecContext:
        enc = av.CodecContext.create("libopus", "w")
        assert isinstance(enc, av.AudioCodecContext)
        enc.bit_rate = self.bitrate
        enc.sample_rate = SAMPLE_RATE
        enc.layout = "stereo"
        enc.format = "s16"
        enc.time_base = _TIME_BASE
        enc.options = {"application": "audio", "compression_level": str(self.complexity)}
        return enc
