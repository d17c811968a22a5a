"""The world tick: run interest over the pose table, tell each listener who entered/left its view and
where its peers are (near peers more often), then hand the decisions to the media backend."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from world import protocol
from world.media import FLAG_AUDIO, FLAG_VIDEO, ListenerView, TickFrame

if TYPE_CHECKING:
    from world.room import World

log = logging.getLogger("hubbub.tick")


class TickLoop:
    def __init__(self, world: World) -> None:
        self.world = world
        self.tick = 0
        self.period = 1.0 / world.cfg.tick_rate
        self._task: asyncio.Task[None] | None = None
        self._views: dict[int, ListenerView] = {}
        self.last_duration = 0.0

    def set_rate(self, hz: float) -> None:
        self.period = 1.0 / hz

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"tick-{self.world.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            started = time.perf_counter()
            try:
                self.step()
            except Exception:  # a bug in one tick must not stop the world
                log.exception("%s: tick %d failed", self.world.name, self.tick)
            self.last_duration = time.perf_counter() - started
            self.world.metrics.tick_seconds.labels(self.world.name).observe(self.last_duration)
            next_at += self.period
            now = loop.time()
            if next_at < now - self.period:  # fell behind: skip ticks instead of bursting
                next_at = now
            await asyncio.sleep(max(0.0, next_at - now))

    def step(self) -> TickFrame:
        w = self.world
        self.tick += 1
        tick = self.tick
        ids, positions, quats, flags = w.table.snapshot()
        listening = np.array([w.participants[int(pid)].session is not None for pid in ids], dtype=bool)
        levels = w.media.audio_levels(ids)
        if levels is None or len(levels) != len(ids):
            levels = np.zeros(len(ids), dtype=np.float32)
        result = w.interest.step(ids, positions, quats, flags, levels, listening)

        row_of = {int(pid): r for r, pid in enumerate(ids)}
        views: dict[int, ListenerView] = {}
        tick_rate = 1.0 / self.period
        for lid, li in result.items():
            p = w.participants.get(lid)
            if p is None or p.session is None:
                continue
            views[lid] = li.view if p.grants.can_subscribe else ListenerView()
            known = p.known
            exits = p.pending_exits + [pid for pid in known if pid not in li.positions]
            p.pending_exits = []
            if exits:
                for pid in exits:
                    known.pop(pid, None)
                w.deliver(p, {"t": "exit", "ids": exits})
            entering = [pid for pid in li.positions if pid not in known]
            if entering:
                described = [self._describe(pid, row_of, positions, quats, flags) for pid in entering]
                w.deliver(p, {"t": "enter", "participants": described})
                for pid in entering:
                    known[pid] = tick
            due_rows = []
            for pid, rate in li.positions.items():
                last = known[pid]
                if last != tick and tick - last >= max(1, round(tick_rate / rate)):
                    known[pid] = tick
                    due_rows.append(row_of[pid])
            if due_rows:
                rows = np.asarray(due_rows, dtype=np.intp)
                msg = protocol.pack_poses(tick, ids[rows], positions[rows], quats[rows])
                w.deliver(p, msg, channel="state", droppable=True)

        changed = frozenset(lid for lid, v in views.items() if self._views.get(lid) != v) | frozenset(
            lid for lid in self._views if lid not in views
        )
        self._views = views
        frame = TickFrame(tick, w.name, ids, positions, quats, flags, views, changed)
        try:
            w.media.apply_tick(frame)
        except Exception:
            log.exception("%s: media backend failed in apply_tick", w.name)
        return frame

    def _describe(
        self, pid: int, row_of: dict[int, int], positions: np.ndarray, quats: np.ndarray, flags: np.ndarray
    ) -> dict[str, Any]:
        r = row_of[pid]
        peer = self.world.participants[pid]
        return {
            "id": pid,
            "identity": peer.identity,
            "name": peer.name,
            "p": [round(float(x), 3) for x in positions[r]],
            "q": [round(float(x), 5) for x in quats[r]],
            "audio": bool(flags[r] & FLAG_AUDIO),
            "video": bool(flags[r] & FLAG_VIDEO),
        }
