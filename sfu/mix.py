"""The mixed track: each listener's stereo bed of the sources it hears but does not get forwarded.

One asyncio task runs a drift-free 20 ms clock for all listeners. Each tick it takes one 20 ms frame
from every decoded source and hands frames, poses and each listener's source list (CSR) to
`spatial.Mixer`, which computes every listener's bed (distance model, pan law, gain ramps) and
returns one buffer per *distinct* bed (e.g. everyone far from a stage hears only the stage, flat).
Each distinct bed is encoded once (48 kHz stereo Opus) and the packet fanned out through every
member's mixed slot, which rewrites it into that listener's RTP stream.

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

from spatial import Mixer

from .forward import OutSlot

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48000
FRAME = 960  # samples per 20 ms
TICK = FRAME / SAMPLE_RATE
_MAX_BUFFER = 6 * FRAME  # per-source decoded backlog bound (120 ms)
_PREFETCH = 2 * FRAME  # start (or restart after an underrun) with 40 ms in hand
_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)

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


# A bed for PCM listeners (WebSocket voice): (planar float32 (2, FRAME) bed, member pids, tick).
BedSink = Callable[[NDArray[np.float32], list[int], int], None]


@dataclass
class MixListener:
    pid: int
    slot: OutSlot | None  # None: a PCM listener, its bed goes to `MixEngine.bed_sink` instead
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

    def __init__(self, *, bitrate: int, complexity: int, mixer: Mixer | None = None) -> None:
        self.bitrate = bitrate
        self.complexity = complexity
        self.mixer = mixer or Mixer()
        self.listeners: dict[int, MixListener] = {}
        self.decoders: dict[int, SourceDecoder] = {}
        self._pose_index: dict[int, int] = {}
        self._positions = np.zeros((0, 3))
        self._quats = np.zeros((0, 4))
        self.tick_count = 0
        self.encodes = 0
        self.last = TickReport()
        self._task: asyncio.Task[None] | None = None
        # Receives each distinct bed that has PCM listeners, once per tick (set by the SFU).
        self.bed_sink: BedSink | None = None

    # -- configuration from the SFU ------------------------------------------------------------

    def set_listener(
        self, pid: int, slot: OutSlot | None, sources: Iterable[int], flat: frozenset[int]
    ) -> None:
        """`slot` None makes pid a PCM listener: its bed is handed to `bed_sink`, not Opus-encoded."""
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
        report = TickReport(listeners=len(self.listeners))
        source_ids = list(self.decoders)
        frames = np.zeros((len(source_ids), FRAME), np.float32)
        present = np.zeros(len(source_ids), bool)
        for row, pid in enumerate(source_ids):
            frame = self.decoders[pid].pop()
            if frame is not None:
                frames[row] = frame
                present[row] = True
        if not self.listeners or not present.any():
            report.seconds = time.perf_counter() - t0
            self.last = report
            return report
        row_of: dict[int, int] = {pid: row for row, pid in enumerate(source_ids)}
        entries = list(self.listeners.values())
        indptr = [0]
        indices: list[int] = []
        flat: list[bool] = []
        for entry in entries:
            for s in entry.sources:
                if s in row_of:
                    indices.append(row_of[s])
                    flat.append(s in entry.flat)
            indptr.append(len(indices))
        result = self.mixer.mix(
            frames,
            self._pose_rows(source_ids)[0],
            *self._pose_rows([e.pid for e in entries]),
            np.array(indptr),
            np.array(indices, dtype=np.int64),
            flat=np.array(flat, dtype=bool),
            present=present,
            source_ids=np.array(source_ids, dtype=np.uint32),
            listener_ids=np.array([e.pid for e in entries], dtype=np.uint32),
        )
        members_of: dict[int, list[MixListener]] = {}
        for entry, buffer in zip(entries, result.listener_buffer.tolist(), strict=True):
            members_of.setdefault(buffer, []).append(entry)
        for buffer, members in members_of.items():
            bed = result.buffers[buffer]
            if not bed.any():
                continue  # nothing audible: send nothing (the client hears silence)
            pcm_members = [m.pid for m in members if m.slot is None]
            if pcm_members and self.bed_sink is not None:
                try:
                    self.bed_sink(bed, pcm_members, tick)
                except Exception:
                    logger.exception("bed sink failed")
                members = [m for m in members if m.slot is not None]
                if not members:
                    continue
            leader = min(members, key=lambda m: m.pid)
            payloads = self._encode(leader, bed, tick)
            report.encodes += 1
            for payload in payloads:
                for member in members:
                    slot = member.slot
                    assert slot is not None
                    marker = 0
                    if member.last_tick != tick - 1:
                        slot.switch(slot.source)  # resume after silence: continue seq, advance ts
                        marker = 1
                    slot.send_payload(payload, tick & 0xFFFF, (tick * FRAME) & 0xFFFFFFFF, marker, now)
                    member.last_tick = tick
                    member.beds += 1
                    report.packets += 1
        report.beds = report.encodes
        report.groups = [len(m) for m in members_of.values()]
        report.seconds = time.perf_counter() - t0
        self.encodes += report.encodes
        self.last = report
        return report

    def _pose_rows(self, pids: list[int]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Positions and orientations of `pids` (origin / identity for one without a pose yet)."""
        pos = np.zeros((len(pids), 3))
        quat = np.zeros((len(pids), 4))
        quat[:, 3] = 1.0
        rows = [self._pose_index.get(p, -1) for p in pids]
        have = [i for i, r in enumerate(rows) if r >= 0]
        if have:
            idx = [rows[i] for i in have]
            pos[have] = self._positions[idx]
            quat[have] = self._quats[idx]
        return pos, quat

    def _encode(self, leader: MixListener, bed: NDArray[np.float32], tick: int) -> list[bytes]:
        enc = leader.encoder
        if enc is None:
            enc = leader.encoder = self._new_encoder()
        # The mixer's planar float bed (2, N), already soft-limited, to interleaved s16.
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
