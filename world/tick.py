"""The world tick: run interest over the pose table, tell each listener who entered/left its view and
where its peers are (near peers more often), then hand the decisions to the media backend.

Bookkeeping is done on sorted arrays of (listener, peer) pair keys, ``listener_id << 32 | peer_id``:
this tick's pairs against last tick's give every `enter` and `exit` in two vectorised set operations,
so the per-tick Python work is one short loop over listeners that actually get a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from interest.pairs import sorted_member
from world import protocol
from world.interest_bridge import changed_listeners, peer_pairs
from world.media import FLAG_AUDIO, FLAG_VIDEO, TickFrame
from world.pose_batch import encode_batches

if TYPE_CHECKING:
    from world.room import World

log = logging.getLogger("hubbub.tick")

LOW32 = np.int64(0xFFFF_FFFF)


class TickLoop:
    def __init__(self, world: World) -> None:
        self.world = world
        self.tick = 0
        self.period = 1.0 / world.cfg.tick_rate
        self._task: asyncio.Task[None] | None = None
        self._pairs = np.zeros(0, dtype=np.int64)  # last tick's announced (listener, peer) keys
        self._departed: set[int] = set()  # ids that left since the last tick (they may be reused)
        self._reset: set[int] = set()  # listeners that must be told about everyone again (resume)
        self.last_duration = 0.0

    def set_rate(self, hz: float) -> None:
        self.period = 1.0 / hz

    def departed(self, pid: int) -> None:
        """`pid` left the world: announce its exit next tick even if the id is reused by then."""
        self._departed.add(pid)

    def reset_listener(self, pid: int) -> None:
        """The listener lost its view (reconnected): announce every peer again."""
        self._reset.add(pid)

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
            metrics = self.world.metrics
            metrics.tick_seconds.labels(self.world.name).observe(self.last_duration)
            for kind, count in self.world.interest.engine.counters.items():
                if count:
                    metrics.interest.labels(self.world.name, kind).inc(count)
            next_at += self.period
            now = loop.time()
            if next_at < now - self.period:  # fell behind: skip ticks instead of bursting
                next_at = now
            await asyncio.sleep(max(0.0, next_at - now))

    # ------------------------------------------------------------------ one tick

    def step(self) -> TickFrame:
        w = self.world
        self.tick += 1
        tick = self.tick
        ids, positions, quats, flags = w.table.snapshot()
        n = len(ids)
        parts = [w.participants[pid] for pid in ids.tolist()]
        listening = np.fromiter((p.session is not None for p in parts), dtype=bool, count=n)
        subscribed = listening & np.fromiter((p.grants.can_subscribe for p in parts), dtype=bool, count=n)
        levels = w.media.audio_levels(ids)
        if levels is None or len(levels) != n:
            levels = np.zeros(n, dtype=np.float32)
        res = w.interest.step(ids, positions, quats, flags, levels)

        tiers = w.interest.params.position_tiers
        pairs, tier = peer_pairs(res, listening, len(tiers) - 1)
        prev, forced = self._drop_stale(self._pairs)
        entered = ~_sorted_member(pairs, prev)
        exits = prev[~_sorted_member(prev, pairs)]
        if len(forced):
            exits = np.union1d(exits, forced)
        self._pairs = pairs

        listening_ids = ids[listening].astype(np.int64)
        if len(exits):
            exits = exits[np.isin(exits >> 32, listening_ids)]  # nobody to tell if not connected
            groups = _groups(exits)
            for lid, peers in groups:
                w.deliver(w.participants[lid], {"t": "exit", "ids": peers.tolist()}, counted=False)
            w.count_out("exit", len(groups))
        row_of_id = np.full(int(ids.max()) + 1 if n else 0, -1, dtype=np.int64)
        row_of_id[ids] = np.arange(n)
        if entered.any():
            # every peer that enters somebody's view is described and encoded once (from one
            # gather), and its bytes joined into each listener's frame
            entering = pairs[entered]
            newcomers = np.unique(entering & LOW32)
            rows = row_of_id[newcomers]
            described = {
                pid: protocol.encode_item(self._describe(pid, p, q, f))
                for pid, p, q, f in zip(
                    newcomers.tolist(), np.round(positions[rows].astype(np.float64), 3).tolist(),
                    np.round(quats[rows].astype(np.float64), 5).tolist(), flags[rows].tolist(), strict=True,
                )
            }  # fmt: skip
            groups = _groups(entering)
            for lid, peers in groups:
                people = [described[pid] for pid in peers.tolist()]
                w.deliver_frame(w.participants[lid], protocol.list_frame("enter", "participants", people))
            w.count_out("enter", len(groups))

        # Poses: each peer at its tier's rate, staggered by id so a tier's load spreads over ticks.
        tick_rate = 1.0 / self.period
        periods = np.array([max(1, round(tick_rate / t.rate_hz)) for t in tiers], dtype=np.int64)
        peer = pairs & LOW32
        # (tick + peer) % period == 0, looked up in a (tier, id) table: ids are small, and a
        # modulo per pair cost 7 ms a tick at 5,000 avatars (flat indices: numpy's 2-D fancy
        # indexing took 3 ms of it, a `take` at tier * top + peer 1 ms)
        top = int(peer.max()) + 1 if len(peer) else 0
        due_ids = ((tick + np.arange(top))[None, :] % periods[:, None] == 0).ravel()
        at = tier.astype(np.int64)
        at *= top
        at += peer
        due = np.take(due_ids, at)
        due &= ~entered
        if due.any():
            pos_q = np.clip(np.rint(positions * protocol.POS_SCALE), -(2**31), 2**31 - 1).astype("<i4")
            rot_q = np.clip(np.rint(quats * protocol.ROT_SCALE), -32767, 32767).astype("<i2")
            # One gather for every due pair, then a slice per listener (a gather per listener
            # cost more than the messages' encoding at 5,000 listeners).
            due_pairs = pairs[due]
            peers = due_pairs & LOW32
            rows = row_of_id[peers]
            # (np.take and an int64 view of the 8-byte quaternions: 2-D fancy indexing was 5x slower)
            pos_b = np.take(pos_q, rows, axis=0)
            rot_b = np.take(rot_q.view("<i8").ravel(), rows)
            ids_b = peers.astype("<u4")
            frames = encode_batches(tick, due_pairs, ids_b, pos_b, rot_b)
            for lid, data in frames:
                w.deliver_poses(w.participants[lid], data)
            w.count_out("poses", len(frames))

        frame = TickFrame(
            tick, w.name, ids, positions, quats, flags, res, subscribed, changed_listeners(res, subscribed)
        )
        try:
            w.media.apply_tick(frame)
        except Exception:
            log.exception("%s: media backend failed in apply_tick", w.name)
        return frame

    def _drop_stale(self, prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forget last tick's pairs of listeners that reset or left, and of peers that left.
        Returns (remaining pairs, exits owed for departed peers)."""
        gone = self._departed | self._reset
        departed = np.fromiter(self._departed, dtype=np.int64)
        self._departed.clear()
        self._reset.clear()
        if not gone or not len(prev):
            return prev, np.zeros(0, dtype=np.int64)
        stale_listener = np.isin(prev >> 32, np.fromiter(gone, dtype=np.int64))
        departed_peer = np.isin(prev & LOW32, departed)
        return prev[~(stale_listener | departed_peer)], prev[departed_peer & ~stale_listener]

    def _describe(self, pid: int, p: list[float], q: list[float], flags: int) -> dict[str, Any]:
        """An `enter` entry; p (rounded to mm), q (to 1e-5) and flags are the peer's row as Python
        values."""
        peer = self.world.participants[pid]
        return {
            "id": pid,
            "identity": peer.identity,
            "name": peer.name,
            "p": p,
            "q": q,
            "audio": bool(flags & FLAG_AUDIO),
            "video": bool(flags & FLAG_VIDEO),
        }


def _sorted_member(needles: np.ndarray, haystack: np.ndarray) -> np.ndarray:
    """`np.isin(needles, haystack)` for sorted needles and haystack (pair keys are kept sorted, and
    this runs over every pair of every tick): one merge (`interest.pairs.sorted_member`)."""
    as_i64 = np.ascontiguousarray
    return np.asarray(sorted_member(as_i64(needles, np.int64), as_i64(haystack, np.int64)))


def _spans(keys: np.ndarray) -> list[tuple[int, int, int]]:
    """Sorted pair keys as (listener id, start, end) runs, one per listener."""
    if len(keys) == 0:
        return []
    lids = keys >> 32
    starts = np.flatnonzero(np.concatenate(([True], lids[1:] != lids[:-1])))
    bounds = [*starts.tolist(), len(keys)]
    return list(zip(lids[starts].tolist(), bounds, bounds[1:], strict=False))


def _groups(keys: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Split sorted pair keys into (listener id, peer ids) groups."""
    peers = keys & LOW32
    return [(lid, peers[a:b]) for lid, a, b in _spans(keys)]
