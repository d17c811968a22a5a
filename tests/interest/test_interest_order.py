"""The engine's space order (`interest.order`): neighbours numbered together, kept from tick to tick,
redone when the crowd drifts; and the engine's output stays in the caller's order whatever it is."""

from __future__ import annotations

import dataclasses

import numpy as np
from interest_helpers import ordered, quats, result_state

from interest import AvatarFlags, InterestEngine, InterestParams
from interest import order as space
from interest.order import next_order, sorted_order


def _crowd(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.permutation(10 * n)[:n].astype(np.int64)
    x = rng.uniform(0, 500, n).astype(np.float32)
    z = rng.uniform(0, 500, n).astype(np.float32)
    return ids, x, z


def test_sorted_order_keeps_neighbours_together() -> None:
    ids, x, z = _crowd(4000)
    o = sorted_order(ids, x, z, 8.0)
    assert sorted(o.perm.tolist()) == list(range(len(ids)))
    assert np.array_equal(o.inverse[o.perm], np.arange(len(ids)))
    # consecutive rows in the space order are near each other; in the caller's order they are not
    step_space = np.hypot(np.diff(x[o.perm]), np.diff(z[o.perm]))
    step_caller = np.hypot(np.diff(x), np.diff(z))
    assert np.median(step_space) < 10.0 < np.median(step_caller)


def test_order_is_kept_when_nothing_changed_and_redone_after_drift() -> None:
    ids, x, z = _crowd(2000)
    o = sorted_order(ids, x, z, 8.0)
    later = space._MIN_AGE
    assert next_order(o, ids, None, x, z, 8.0, later) is o  # same ids, same places: the same order
    nudged = x + np.float32(3.0)  # everybody moved less than a cell
    assert next_order(o, ids, None, nudged, z, 8.0, later) is o
    far = x + np.float32(20.0)  # everybody moved more than a cell: re-sorted, but not too soon
    assert next_order(o, ids, None, far, z, 8.0, later - 1) is o
    again = next_order(o, ids, None, far, z, 8.0, later)
    assert again is not o and np.array_equal(again.perm, sorted_order(ids, far, z, 8.0).perm)
    assert again.sorted_at == later
    assert next_order(o, ids, None, x, z, 4.0, 1).cell == 4.0  # another cell size: re-sorted


def test_leavers_drop_out_and_joiners_go_to_the_end() -> None:
    ids, x, z = _crowd(2000)
    o = sorted_order(ids, x, z, 8.0)
    internal = ids[o.perm]
    keep = np.ones(len(ids), bool)
    keep[[5, 700, 1999]] = False
    joiners = np.array([10**6, 10**6 + 1], np.int64)
    new_ids = np.concatenate([ids[keep], joiners])[::-1].copy()  # and the caller reversed its rows
    nx = np.concatenate([x[keep], [1.0, 2.0]])[::-1].astype(np.float32)
    nz = np.concatenate([z[keep], [1.0, 2.0]])[::-1].astype(np.float32)
    row = {int(v): i for i, v in enumerate(new_ids)}
    rows_of = np.array([row.get(int(v), -1) for v in internal], np.int64)
    o2 = next_order(o, new_ids, rows_of, nx, nz, 8.0, 1)
    assert new_ids[o2.perm].tolist() == [v for v in internal.tolist() if v in row] + [10**6 + 1, 10**6]
    assert o2.appended == 2


def test_many_joiners_trigger_a_sort() -> None:
    ids, x, z = _crowd(800)
    o = sorted_order(ids[:600], x[:600], z[:600], 8.0)
    rows_of = np.arange(600, dtype=np.int64)
    o2 = next_order(o, ids, rows_of, x, z, 8.0, space._MIN_AGE)  # a third joined at once
    assert o2.appended == 0 and np.array_equal(o2.perm, sorted_order(ids, x, z, 8.0).perm)


def test_output_rows_follow_the_callers_order() -> None:
    """Whatever order the caller passes (and re-shuffles), row i is about ids[i], and the sets are
    those of an engine that is given the same avatars in id order and recomputes every row."""
    rng = np.random.default_rng(11)
    n = 600
    ids, x, z = _crowd(n, seed=11)
    pos = np.stack([x / 5, np.zeros(n, np.float32), z / 5], axis=1).astype(np.float32)
    flags = np.full(n, AvatarFlags.PUBLISH_AUDIO, np.int64)
    levels = np.zeros(n, np.float32)
    p = InterestParams(position_max=24, max_mixed=12)
    e, ref = InterestEngine(p), InterestEngine(p)
    for _ in range(6):
        perm = rng.permutation(n)
        ids, pos, flags, levels = ids[perm], pos[perm], flags[perm], levels[perm]
        pos[rng.random(n) < 0.2, 0] += np.float32(0.7)
        got = e.tick(ids, pos, quats(n), flags, levels)
        by_id = np.argsort(ids)
        ref.set_params(dataclasses.replace(p))  # a reload: every row in full
        want = ref.tick(ids[by_id], pos[by_id], quats(n), flags[by_id], levels[by_id])
        assert np.array_equal(got.listener_ids, ids)
        assert ordered(result_state(got)) == ordered(result_state(want))
        for i in rng.integers(0, n, 20).tolist():  # row i is about ids[i]
            j = int(np.flatnonzero(want.listener_ids == ids[i])[0])
            assert sorted(got.positions.row(i).tolist()) == sorted(want.positions.row(j).tolist())
