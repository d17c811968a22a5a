"""The pose table, pose rules and the tick loop (driven by hand, without sockets)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from world import protocol
from world.config import load_config, parse_config
from world.media import FLAG_AUDIO, FLAG_VIDEO, NullMedia
from world.metrics import Metrics
from world.room import World
from world.state import AvatarTable, IdAllocator, judge_pose
from world.tokens import Grants, TokenClaims

ROOT = Path(__file__).resolve().parents[2]


def test_table_swap_remove_keeps_rows_consistent() -> None:
    t = AvatarTable(capacity=2)
    for pid in range(5):
        t.add(pid, [pid, 0, 0], [0, 0, 0, 1], pid % 2)
    t.remove(1)
    t.remove(4)
    assert len(t) == 3 and set(t.row_of) == {0, 2, 3}
    for pid, r in t.row_of.items():
        assert t.ids[r] == pid and t.positions[r][0] == pid and t.flags[r] == pid % 2
    ids, pos, quats, _flags = t.snapshot()
    assert sorted(ids.tolist()) == [0, 2, 3] and pos.dtype == np.float32 and quats.shape == (3, 4)
    t.set_flag(3, 4, True)
    assert t.flags[t.row_of[3]] == 5
    with pytest.raises(KeyError):
        t.add(0, [0, 0, 0], [0, 0, 0, 1])


def test_ids_stay_small() -> None:
    ids = IdAllocator()
    assert [ids.take() for _ in range(4)] == [0, 1, 2, 3]
    ids.give_back(2)
    ids.give_back(0)
    assert [ids.take(), ids.take(), ids.take()] == [0, 2, 4]


def world_cfg(extra: dict[str, Any] | None = None) -> Any:
    w = {
        "name": "w",
        "bounds": {"min": [-10, -1, -10], "max": [10, 5, 10]},
        "spawn_points": [[0, 0, 0], [5, 0, 5]],
        "max_speed": 2.0,
        **(extra or {}),
    }
    return parse_config({"server": {"keys": {"k": "s"}}, "worlds": [w]}).worlds[0]


def test_judge_pose() -> None:
    w = world_cfg()
    assert judge_pose(w, [0, 0, 0], [math.nan, 0, 0], [0, 0, 0, 1], 1.0) is None
    assert judge_pose(w, [0, 0, 0], [0, 0, 0], [0, 0, 0, 0], 1.0) is None
    ok = judge_pose(w, [0, 0, 0], [1, 0, 0], [0, 0, 0, 2], 1.0)
    assert ok is not None and ok.reason is None and ok.q == (0, 0, 0, 1)
    fast = judge_pose(w, [0, 0, 0], [0, 0, 8], [0, 0, 0, 1], 0.95)
    assert fast is not None and fast.reason == "speed" and fast.p == pytest.approx((0, 0, 2.0))
    spawn = judge_pose(w, [-9, 0, -9], [5, 0, 5], [0, 0, 0, 1], 0.01)
    assert spawn is not None and spawn.reason is None and spawn.p == (5, 0, 5)
    out = judge_pose(w, [9.5, 0, 0], [10.5, 0, 0], [0, 0, 0, 1], 1.0)
    assert out is not None and out.reason == "bounds" and out.p == (10, 0, 0)


class FakeSession:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, msg: dict[str, Any], *, droppable: bool = False) -> bool:
        self.sent.append(msg)
        return True

    def send_frame(self, data: bytes, *, droppable: bool, latest: bool = False) -> bool:
        self.sent.append(dict(protocol.decode(data)))
        return True

    def send_error(self, code: Any, message: str, ref: str | None) -> None:
        self.sent.append(protocol.error(code, message, ref))

    def detach(self) -> None:
        pass

    def close_soon(self, code: int, reason: str) -> None:
        pass

    def take(self, t: str) -> list[dict[str, Any]]:
        got = [m for m in self.sent if m["t"] == t]
        self.sent = [m for m in self.sent if m["t"] != t]
        return got


async def join(world: World, identity: str, **grants: bool) -> tuple[int, FakeSession]:
    s = FakeSession()
    claims = TokenClaims(world=world.name, identity=identity, name=identity, grants=Grants(**grants))
    p, _ = await world.admit(claims, "websocket", None, s)  # type: ignore[arg-type]
    return p.pid, s


def make_world(path: Path) -> World:
    cfg = load_config(path)
    return World(cfg.worlds[0], cfg.server, NullMedia(), Metrics())


async def test_tick_of_an_empty_world_and_of_a_lone_listener() -> None:
    """The tick loop runs from server start: nobody there, then one avatar with nobody to see."""
    server = parse_config({"server": {"keys": {"k": "s"}}, "worlds": [{"name": "w"}]}).server
    w = World(world_cfg(), server, NullMedia(), Metrics())
    for _ in range(3):
        frame = w.ticker.step()
        assert len(frame.ids) == 0
    _, alone = await join(w, "alone")
    for _ in range(3):
        w.ticker.step()
    assert alone.take("poses") == [] and alone.take("enter") == []


async def test_tick_enter_poses_at_tier_rates_and_exit() -> None:
    w = World(
        world_cfg(
            {
                "tick_rate": 20,
                "interest": {
                    "audio": {"forward_radius": 7, "hearing_radius": 8},
                    "position": {
                        "radius": 8,
                        "tiers": [{"distance": 2, "rate_hz": 20}, {"distance": 8, "rate_hz": 5}],
                    },
                },
            }
        ),
        parse_config({"server": {"keys": {"k": "s"}}, "worlds": [{"name": "w"}]}).server,
        NullMedia(),
        Metrics(),
    )
    a, sa = await join(w, "a")
    near, _ = await join(w, "near")
    far, _ = await join(w, "far")
    w.table.set_pose(near, [1, 0.5, -0.25], [0, 0.6, 0, 0.8])
    w.table.set_pose(far, [0, 0, 6], [0, 0, 0, 1])
    w.ticker.step()
    (enter,) = sa.take("enter")
    assert {e["id"] for e in enter["participants"]} == {near, far}
    seen = {e["id"]: e for e in enter["participants"]}  # each described from its own row
    assert seen[near]["identity"] == "near" and seen[far]["identity"] == "far"
    assert seen[near]["p"] == [1.0, 0.5, -0.25] and seen[far]["p"] == [0.0, 0.0, 6.0]
    assert seen[near]["q"] == pytest.approx([0, 0.6, 0, 0.8], abs=1e-5) and seen[far]["q"] == [0, 0, 0, 1]
    for pid in (near, far):
        flags = int(w.table.flags[w.table.row_of[pid]])
        assert seen[pid]["audio"] == bool(flags & FLAG_AUDIO)
        assert seen[pid]["video"] == bool(flags & FLAG_VIDEO)
    counts = {near: 0, far: 0}
    for _ in range(20):
        w.ticker.step()
        for m in sa.take("poses"):
            ids, pos, rot = protocol.unpack_poses(m)
            for pid, p, q in zip(ids.tolist(), pos.tolist(), rot.tolist(), strict=True):
                counts[pid] += 1
                want = ([1, 0.5, -0.25], [0, 0.6, 0, 0.8]) if pid == near else ([0, 0, 6], [0, 0, 0, 1])
                assert p == pytest.approx(want[0], abs=1e-3) and q == pytest.approx(want[1], abs=1e-4)
    assert counts[near] == 20 and counts[far] == 5  # 20 Hz and 5 Hz over one second of ticks
    frame = w.media.last_frame  # type: ignore[attr-defined]
    assert frame is not None and a in frame.listeners
    assert set(frame.listeners[a].audio_forward) == {near, far}
    w.table.set_pose(far, [0, 0, 9.5], [0, 0, 0, 1])  # beyond 8 m * (1 + hysteresis)
    w.ticker.step()
    assert sa.take("exit") == [{"t": "exit", "ids": [far]}]
    await w.remove(near)
    w.ticker.step()
    assert sa.take("exit") == [{"t": "exit", "ids": [near]}]
    # An admin mute removes the source from everyone's audio.
    w.set_muted(w.participants[far], admin_muted=True)
    assert not w.table.flags[w.table.row_of[far]] & FLAG_AUDIO


async def test_town_hall_stage_reaches_audience_and_booth_is_private() -> None:
    w = make_world(ROOT / "examples" / "town_hall.toml")
    listener, sl = await join(w, "listener")
    speaker, _ = await join(w, "mayor")
    booth, sb = await join(w, "booth")
    neighbour, _ = await join(w, "neighbour")
    w.table.set_pose(listener, [0, 0, 30], [0, 0, 0, 1])  # back of the hall, in the audience area
    w.table.set_pose(speaker, [0, 0, -55], [0, 0, 0, 1])  # on stage, 85 m away
    w.table.set_pose(booth, [30, 0, 30], [0, 0, 0, 1])  # inside the private press booth
    w.table.set_pose(neighbour, [2, 0, 30], [0, 0, 0, 1])
    w.ticker.step()
    view = w.media.last_frame.listeners[listener]  # type: ignore[attr-defined]
    assert speaker in view.audio_forward and speaker in view.flat
    assert neighbour in view.audio_forward + view.audio_mixed and neighbour not in view.flat
    assert booth not in view.audio_forward + view.audio_mixed
    announced = {e["id"] for m in sl.take("enter") for e in m["participants"]}
    assert speaker in announced and booth not in announced
    booth_view = w.media.last_frame.listeners[booth]  # type: ignore[attr-defined]
    assert booth_view.audio_forward == () and booth_view.audio_mixed == ()
    assert not any(m["t"] == "enter" for m in sb.sent)


async def test_hot_reconfigure_applies_new_radii() -> None:
    w = make_world(ROOT / "examples" / "plaza.toml")
    a, _ = await join(w, "a")
    b, _ = await join(w, "b")
    w.table.set_pose(b, [12, 0, 0], [0, 0, 0, 1])
    w.ticker.step()
    assert w.media.last_frame.listeners[a].audio_forward == ()  # type: ignore[attr-defined]
    d = load_config(ROOT / "examples" / "plaza.toml").model_dump()
    d["worlds"][0]["interest"]["audio"]["forward_radius"] = 15.0
    d["server"]["keys"] = {"dev": "x"}
    new = parse_config(d)
    w.reconfigure(new.worlds[0], new.server)
    w.ticker.step()
    assert w.media.last_frame.listeners[a].audio_forward == (b,)  # type: ignore[attr-defined]
