"""One whole world tick: interest + enter/exit + quantized pose batches at tier rates + encoding.

This is what the tick loop does every 1/tick_rate seconds besides media: `TickLoop.step()` on a plaza
world where every avatar is a connected listener and 10% of them move each tick. Messages are encoded
(msgpack) into a counting sink instead of sockets, so the figure is the world's own CPU per tick.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from world import protocol
from world.allocator import keep_freed_memory
from world.config import load_config
from world.media import NullMedia
from world.metrics import Metrics
from world.room import World
from world.state import Participant
from world.tokens import Grants

keep_freed_memory()  # as `hubbub serve` does: each tick's frames reuse freed memory (no page faults)

PLAZA = Path(__file__).resolve().parents[1] / "examples" / "plaza.toml"
SIZES = [n for n in (100, 1000, 5000) if n <= int(os.environ.get("HUBBUB_BENCH_MAX_AVATARS", "100000"))]
if os.environ.get("HUBBUB_BENCH_SMALL", "") not in ("", "0"):
    SIZES = [n for n in SIZES if n <= 1000]


class CountingSession:
    """Stands in for a WebSocket session: encodes what it is given and counts the bytes."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    def send(self, msg: dict[str, Any], *, droppable: bool = False) -> None:
        self.messages += 1
        self.bytes += len(protocol.encode(msg))

    def send_frame(self, data: bytes, *, droppable: bool, latest: bool = False) -> None:
        self.messages += 1  # (pose batches arrive encoded)
        self.bytes += len(data)


def make_world(avatars: int) -> tuple[World, list[CountingSession]]:
    cfg = load_config(PLAZA)
    wcfg = cfg.worlds[0].model_copy(update={"max_participants": avatars + 1})
    world = World(wcfg, cfg.server, NullMedia(), Metrics())
    rng = np.random.default_rng(1)
    side = float(np.sqrt(avatars * 36.0))  # 1 person per 36 m², as in the interest benchmark's plaza
    side = min(side, 190.0)
    sessions = []
    for pid in range(1, avatars + 1):
        session = CountingSession()
        p = Participant(pid, f"a{pid}", f"A{pid}", Grants(), "websocket", f"r{pid}", session=session)
        x, z = rng.uniform(-side / 2, side / 2, 2)
        world.table.add(pid, (float(x), 0.0, float(z)), (0.0, 0.0, 0.0, 1.0), world._flags(p))
        world.participants[pid] = p
        sessions.append(session)
    return world, sessions


@pytest.mark.parametrize("avatars", SIZES)
def bench_world_tick(benchmark: Any, avatars: int) -> None:
    world, sessions = make_world(avatars)
    loop = world.ticker
    rng = np.random.default_rng(2)
    n = world.table.n
    for _ in range(3):  # warm-up: everyone enters everyone's interest once
        loop.step()

    ticks = 0

    def tick() -> None:
        nonlocal ticks
        ticks += 1
        movers = rng.choice(n, size=max(1, n // 10), replace=False)
        step = rng.normal(0, 0.3, (len(movers), 2)).astype(np.float32)
        world.table.positions[movers[:, None], [0, 2]] += step
        loop.step()

    before = sum(s.messages for s in sessions)
    benchmark.pedantic(tick, rounds=10 if avatars <= 1000 else 3, iterations=1)
    sent = sum(s.messages for s in sessions) - before
    benchmark.extra_info["messages_per_tick"] = sent / max(1, ticks)
    assert sent > 0, "the tick delivered pose batches"
