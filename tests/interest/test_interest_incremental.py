"""The incremental path against the full recompute, on crowds big enough for every cap to bind.

Two engines see the same ticks; one is made to recompute every row in full each tick (a hot reload
with equal parameters does that). Their sets, attributes and diffs must be identical, tick after
tick, while avatars move, start and stop speaking, hide, stop publishing, cross a private wall,
join and leave.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from interest_helpers import ordered, quats, result_state

from interest import AvatarFlags, Box, InterestEngine, InterestParams, Zone
from interest import order as space

A, V, H = AvatarFlags.PUBLISH_AUDIO, AvatarFlags.PUBLISH_VIDEO, AvatarFlags.HIDDEN


def _world(n: int, rng: np.random.Generator, side: float, floors: bool) -> tuple[np.ndarray, ...]:
    ids = rng.permutation(4 * n)[:n].astype(np.int64)
    pos = np.zeros((n, 3), np.float32)
    pos[:, [0, 2]] = rng.uniform(0, side, (n, 2))
    # a dense blob so that caps bind at short range too
    pos[: n // 3, [0, 2]] = rng.normal(side / 2, 3.0, (n // 3, 2))
    if floors:  # storeys: near in plan, far in 3-D (grids are 2-D: searches must not skip them)
        pos[:, 1] = rng.choice([0.0, 4.0, 8.0, 12.0], n)
    pos = np.round(pos * 2) / 2  # a lattice: many exact distance ties (broken by id)
    flags = np.full(n, A, np.int64)
    flags[rng.random(n) < 0.2] |= V
    flags[rng.random(n) < 0.1] &= ~A
    levels = np.where(rng.random(n) < 0.2, 0.5, 0.0).astype(np.float32)
    return ids, pos.astype(np.float32), flags, levels


def _diffs(r: object) -> dict[str, object]:
    out = {}
    for c in ("forwarded", "mixed", "video", "positions"):
        d = getattr(r.diffs, c)  # type: ignore[attr-defined]
        out[c] = tuple(
            sorted(
                (int(lid), int(i), int(a))
                for lid, row_ids, row_attr in _rows(part, r.listener_ids)  # type: ignore[attr-defined]
                for i, a in zip(row_ids, row_attr, strict=True)
            )
            for part in (d.added, d.removed, d.changed)
        )
    return out


def _rows(sets: object, lids: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
    return [(int(lid), sets.row(i), sets.row_attr(i)) for i, lid in enumerate(lids)]  # type: ignore[attr-defined]


# (seed, storeys, share of avatars that move each tick): with few movers most rows have no changed
# source near them and skip the scan for changed members
CASES = [(s, False, 0.1) for s in (1, 2, 3)] + [(s, True, 0.1) for s in (4, 5, 6, 7)]
CASES += [(8, False, 0.003), (9, True, 0.003)]


@pytest.mark.parametrize(("seed", "floors", "moving"), CASES)
def test_incremental_equals_full_recompute(seed: int, floors: bool, moving: float) -> None:
    _incremental_equals_full_recompute(seed, floors, moving)


@pytest.mark.parametrize("seed", [10, 11])
def test_incremental_equals_full_recompute_when_rows_are_renumbered_every_tick(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine renumbers its rows (space order, `interest.order`) when the crowd has drifted;
    here it does so every tick, so every tick remaps every row and separator."""
    monkeypatch.setattr(space, "_DRIFTED", -1.0)
    monkeypatch.setattr(space, "_MIN_AGE", 0)
    _incremental_equals_full_recompute(seed, True, 0.1)


def _incremental_equals_full_recompute(seed: int, floors: bool, moving: float) -> None:
    rng = np.random.default_rng(seed)
    n, side = 1500, 160.0
    params = InterestParams(
        forward_radius=8.0,
        hearing_radius=25.0,
        max_forwarded=6,
        max_mixed=24,
        video_radius=12.0,
        video_max=3,
        position_radius=40.0,
        position_max=48,
        zones=(
            Zone("room", "private", Box((20.0, -1.0, 20.0), (40.0, 4.0, 40.0))),
            Zone(
                "stage",
                "stage",
                Box((70.0, -1.0, 70.0), (90.0, 4.0, 80.0)),
                audience=Box((50.0, -1.0, 50.0), (110.0, 4.0, 120.0)),
            ),
        ),
    )
    ids, pos, flags, levels = _world(n, rng, side, floors)
    inc = InterestEngine(params)
    ref = InterestEngine(params)
    for t in range(12):
        got = inc.tick(ids, pos, quats(len(ids)), flags, levels)
        ref.set_params(dataclasses.replace(params))  # a reload: every row in full
        want = ref.tick(ids, pos, quats(len(ids)), flags, levels)
        assert np.array_equal(got.listener_ids, want.listener_ids)
        assert ordered(result_state(got)) == ordered(result_state(want)), t
        assert _diffs(got) == _diffs(want), t
        # next tick: 10% move (some across the private wall), speakers change, flags flip
        m = len(ids)
        movers = rng.random(m) < moving
        pos[movers, 0] += rng.normal(0, 1.0, movers.sum()).astype(np.float32)
        pos[movers, 2] += rng.normal(0, 1.0, movers.sum()).astype(np.float32)
        pos[movers] = np.round(pos[movers] * 2) / 2
        flip = rng.random(m) < 0.3 * moving
        levels[flip] = np.where(levels[flip] > 0, 0.0, 0.5)
        for bit in (A, V, H):
            f = rng.random(m) < 0.05 * moving
            flags[f] ^= bit
        if t % 4 == 3:  # some leave, some join, rows reorder
            keep = rng.random(m) > 0.02
            k = 20
            new_ids = np.setdiff1d(rng.integers(0, 8 * n, 4 * k), ids)[:k]
            ids = np.concatenate([ids[keep], new_ids])
            joined = rng.uniform(0, side, (len(new_ids), 3)).astype(np.float32)
            joined[:, 1] = 0.0
            pos = np.concatenate([pos[keep], joined])
            flags = np.concatenate([flags[keep], np.full(len(new_ids), A, np.int64)])
            levels = np.concatenate([levels[keep], np.zeros(len(new_ids), np.float32)])
            perm = rng.permutation(len(ids))
            ids, pos, flags, levels = ids[perm], pos[perm], flags[perm], levels[perm]


def test_only_moving_listeners_are_recomputed_in_full() -> None:
    """The counters say what a tick did: the first tick recomputes everybody, a tick where one
    avatar moved recomputes only that listener and examines only what changed near the others."""
    rng = np.random.default_rng(5)
    ids, pos, flags, levels = _world(400, rng, 60.0, floors=False)
    e = InterestEngine(InterestParams(position_max=32, max_mixed=16))
    e.tick(ids, pos, quats(len(ids)), flags, levels)
    assert e.counters["full"] == len(ids)
    e.tick(ids, pos, quats(len(ids)), flags, levels)
    assert e.counters["full"] == 0 and e.counters["rows"] == 0  # nothing changed: nothing to look at
    pos[7, 0] += 0.5
    r = e.tick(ids, pos, quats(len(ids)), flags, levels)
    assert e.counters["full"] == 1
    assert 0 < e.counters["rows"] < len(ids)  # only listeners near the mover had anything to examine
    assert r.positions.nnz > 0
