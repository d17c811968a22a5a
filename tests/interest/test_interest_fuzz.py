"""Random small worlds, tick after tick: the full pass against the brute-force reference, and the
incremental engine against the full pass.

Small worlds with tiny caps make the corner cases common: avatars standing on each other (distance
0), the lowest id (key 0), every member of a row leaving, zone sources holding every audio place
and giving them back, hot reloads. Two bugs of the incremental engine were found this way, each
in about 1 seed of 200 (see docs/bench/interest.md; they have their own regression tests). CI runs
24 seeds as a broad net; run many more by hand with ``HUBBUB_FUZZ_SEEDS=1000``.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from interest_helpers import ordered, quats, result_state
from interest_reference import empty_state, reference_tick

from interest import AvatarFlags, Box, Cylinder, InterestEngine, InterestParams, PositionTier, Zone

A, V, H = int(AvatarFlags.PUBLISH_AUDIO), int(AvatarFlags.PUBLISH_VIDEO), int(AvatarFlags.HIDDEN)
SEEDS = range(int(os.environ.get("HUBBUB_FUZZ_SEEDS", "24")))


def _params(rng: np.random.Generator, side: float) -> InterestParams:
    menu = [
        Zone("room", "private", Box((0.0, -1.0, 0.0), (side / 3, 4.0, side / 3))),
        Zone(
            "stage",
            "stage",
            Box((side / 2, -1.0, side / 2), (side, 4.0, side)),
            delivery=str(rng.choice(["forward", "mix"])),  # type: ignore[arg-type]
            audience=Box((0.0, -1.0, side / 3), (side, 7.0, side)) if rng.random() < 0.5 else None,
        ),
        Zone("meet", "meeting", Cylinder((side / 4, 3 * side / 4), side / 8), delivery="mix"),
        Zone("open", "private", Box((side / 2, -1.0, 0.0), (side, 4.0, side / 4)), open=True),
    ]
    return InterestParams(
        forward_radius=float(rng.choice([3.0, 8.0])),
        hearing_radius=float(rng.choice([8.0, 25.0])),
        max_forwarded=int(rng.choice([0, 1, 2])),
        max_mixed=int(rng.choice([0, 1, 3])),
        video_radius=float(rng.choice([5.0, 12.0])),
        video_max=int(rng.choice([0, 1, 2])),
        position_radius=float(rng.choice([10.0, 40.0])),
        position_max=int(rng.choice([1, 2, 5])),
        hysteresis=float(rng.choice([0.0, 0.1, 0.5])),
        zones=tuple(z for z in menu if rng.random() < 0.5),
        position_tiers=(PositionTier(3.0, 20.0), PositionTier(8.0, 10.0), PositionTier(1e9, 2.0)),
    )


@pytest.mark.timeout(300, method="thread")  # a bug once made a compiled search loop forever
@pytest.mark.parametrize("seed", SEEDS)
def test_small_worlds_match_reference_and_full_recompute(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 80))
    side = float(rng.choice([2.0, 5.0, 10.0]))
    step = float(rng.choice([0.5, 1.0]))  # a lattice: many avatars on the same spot
    pos = np.zeros((n, 3), np.float32)
    pos[:, [0, 2]] = rng.uniform(0, side, (n, 2))
    pos[:, 1] = rng.choice([0.0, 0.0, 3.0, 6.0], n)  # storeys
    pos = (np.round(pos / step) * step).astype(np.float32)
    ids = rng.permutation(4 * n)[:n].astype(np.int64)
    flags = np.full(n, A, np.int64)
    flags[rng.random(n) < 0.3] |= V
    flags[rng.random(n) < 0.1] &= ~A
    flags[rng.random(n) < 0.05] |= H
    levels = np.where(rng.random(n) < float(rng.choice([0.1, 0.5, 0.9])), 0.5, 0.0).astype(np.float32)
    params = _params(rng, side)
    inc, full = InterestEngine(params), InterestEngine(params)
    want = empty_state()
    for t in range(10):
        if t == 3 and rng.random() < 0.5:  # hot reload with other caps and radii
            params = dataclasses.replace(
                params,
                max_forwarded=int(rng.choice([2, 6])),
                position_max=int(rng.choice([16, 100])),
                hearing_radius=params.hearing_radius * 1.2,
            )
            inc.set_params(params)
        m = len(ids)
        got = inc.tick(ids, pos, quats(m), flags, levels)
        full.set_params(dataclasses.replace(params))  # a reload: every row in full
        ref = full.tick(ids, pos, quats(m), flags, levels)
        want = reference_tick(params, want, ids, pos, flags, levels)
        assert ordered(result_state(ref)) == ordered(want), f"full pass vs reference, tick {t}"
        assert ordered(result_state(got)) == ordered(result_state(ref)), f"incremental vs full, tick {t}"
        # next tick: moves (across walls and storeys' plan), speaker and flag flips, churn
        movers = rng.random(m) < 0.15
        for axis in (0, 2):
            pos[movers, axis] += (np.round(rng.normal(0, 1.0, movers.sum()) / step) * step).astype(np.float32)
        flip = rng.random(m) < 0.1
        levels[flip] = np.where(levels[flip] > 0, 0.0, 0.5)
        for bit in (A, V, H):
            flags[rng.random(m) < 0.01] ^= bit
        if t % 2 == 1:  # leaves, joins on top of others, reorders
            keep = rng.random(m) > 0.2
            new_ids = np.setdiff1d(rng.integers(0, 8 * n, 40), ids)[:8]
            ids = np.concatenate([ids[keep], new_ids])
            pos = np.concatenate([pos[keep], pos[rng.integers(0, m, len(new_ids))]]).astype(np.float32)
            flags = np.concatenate([flags[keep], np.full(len(new_ids), A, np.int64)])
            levels = np.concatenate([levels[keep], np.full(len(new_ids), 0.5, np.float32)])
            perm = rng.permutation(len(ids))
            ids, pos, flags, levels = ids[perm], pos[perm], flags[perm], levels[perm]
