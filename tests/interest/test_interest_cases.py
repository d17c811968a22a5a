"""Named behaviours: hysteresis without flapping, each zone kind, hidden avatars, degenerate worlds,
hot reload, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from interest_helpers import ordered, quats, result_state
from interest_reference import empty_state, reference_tick

from interest import (
    AvatarFlags,
    Box,
    Cylinder,
    InterestEngine,
    InterestParams,
    PolygonPrism,
    PositionTier,
    TickResult,
    Zone,
    contains,
    grid,
)

AV = AvatarFlags.PUBLISH_AUDIO | AvatarFlags.PUBLISH_VIDEO


def tick(
    engine: InterestEngine,
    ids: list[int],
    xs: list[tuple[float, float]],
    flags: list[int] | None = None,
    levels: list[float] | None = None,
) -> TickResult:
    n = len(ids)
    pos = np.array([(x, 0.0, z) for x, z in xs], dtype=np.float32).reshape(-1, 3)
    fl = np.full(n, AV, dtype=np.int64) if flags is None else np.asarray(flags)
    lv = np.zeros(n, np.float32) if levels is None else np.asarray(levels, np.float32)
    return engine.tick(np.array(ids, dtype=np.uint32), pos, quats(n), fl, lv)


def sets(result: TickResult, cat: str) -> dict[int, dict[int, object]]:
    return result_state(result)[cat]


def test_empty_world() -> None:
    r = tick(InterestEngine(), [], [])
    assert r.forwarded.n_rows == 0 and r.positions.nnz == 0
    assert r.diffs.forwarded.added.n_rows == 0


def test_listener_alone() -> None:
    r = tick(InterestEngine(), [7], [(0, 0)])
    assert sets(r, "positions") == {7: {}}
    assert sets(r, "forwarded") == {7: {}}


def test_hysteresis_no_flap() -> None:
    """Enter at r, leave at r·(1+m): an avatar wobbling around r stays in once it entered."""
    p = InterestParams(
        forward_radius=10, hearing_radius=10, hysteresis=0.1, video_radius=10, position_radius=10
    )
    e = InterestEngine(p)
    r = tick(e, [1, 2], [(0, 0), (10.2, 0)])
    assert 2 not in sets(r, "forwarded")[1]  # outside r: not entered
    r = tick(e, [1, 2], [(0, 0), (9.9, 0)])
    assert 2 in sets(r, "forwarded")[1] and r.diffs.forwarded.added.row(0).tolist() == [2]
    for x in [10.3, 9.8, 10.9, 10.05, 10.99]:  # wobble inside the band: no changes at all
        r = tick(e, [1, 2], [(0, 0), (x, 0)])
        for cat in ("forwarded", "video", "positions"):
            assert 2 in sets(r, cat)[1], (cat, x)
            d = getattr(r.diffs, cat)
            assert d.added.nnz == 0 and d.removed.nnz == 0, (cat, x)
    r = tick(e, [1, 2], [(0, 0), (11.01, 0)])
    assert 2 not in sets(r, "forwarded")[1]
    assert r.diffs.forwarded.removed.row(0).tolist() == [2]


def test_forwarded_prefers_speakers_then_nearest_then_id() -> None:
    e = InterestEngine(InterestParams(max_forwarded=2, forward_radius=10, hearing_radius=20))
    # 2 and 3 tie at distance 1; 4 is farther but speaking.
    r = tick(e, [1, 3, 2, 4], [(0, 0), (1, 0), (-1, 0), (5, 0)], levels=[0, 0, 0, 0.9])
    assert sets(r, "forwarded")[1] == {4: False, 2: False}
    assert list(sets(r, "mixed")[1]) == [3]


def test_hidden_avatars_listen_but_are_never_sources() -> None:
    e = InterestEngine()
    flags = [AV, AV | AvatarFlags.HIDDEN]
    r = tick(e, [1, 2], [(0, 0), (1, 0)], flags=flags, levels=[1, 1])
    s = result_state(r)
    for cat in s:
        assert s[cat][1] == {}  # nobody perceives the hidden avatar 2
    assert 1 in s["forwarded"][2] and 1 in s["positions"][2] and 1 in s["video"][2]


def test_stage_heard_by_audience_flat_regardless_of_distance() -> None:
    stage = Zone("stage", "stage", Box((-5, -1, -5), (5, 5, 5)), audience=Cylinder((0, 0), 300.0))
    e = InterestEngine(InterestParams(zones=(stage,), max_forwarded=2))
    ids = [1, 2, 3, 4]
    xs = [(0, 0), (200, 0), (400, 0), (201, 0)]  # 1 on stage; 2 in the audience; 3 outside it
    r = tick(e, ids, xs)
    assert sets(r, "forwarded")[2] == {1: True, 4: False}  # stage first and flat, then spatial
    assert 1 not in sets(r, "forwarded")[3] and 1 not in sets(r, "mixed")[3]


def test_stage_speakers_overflow_into_mix_and_mix_delivery() -> None:
    stage = Zone("stage", "stage", Box((-5, -1, -5), (5, 5, 5)))
    e = InterestEngine(InterestParams(zones=(stage,), max_forwarded=1))
    r = tick(e, [1, 2, 9], [(0, 0), (1, 0), (100, 0)], levels=[0, 0.5, 0])
    assert sets(r, "forwarded")[9] == {2: True}  # the speaker wins the only slot
    assert sets(r, "mixed")[9] == {1: True}
    mix = Zone("stage", "stage", Box((-5, -1, -5), (5, 5, 5)), delivery="mix")
    e.set_params(InterestParams(zones=(mix,), max_forwarded=1))
    r = tick(e, [1, 2, 9], [(0, 0), (1, 0), (100, 0)], levels=[0, 0.5, 0])
    assert sets(r, "forwarded")[9] == {}
    assert sets(r, "mixed")[9] == {1: True, 2: True}
    assert r.diffs.forwarded.removed.row(2).tolist() == [2]
    assert r.diffs.mixed.added.row(2).tolist() == [2]


def test_private_zone_is_sealed_unless_open() -> None:
    room = Zone("room", "private", Box((-3, -1, -3), (3, 3, 3)))
    e = InterestEngine(InterestParams(zones=(room,)))
    r = tick(e, [1, 2, 3], [(0, 0), (2, 0), (4, 0)])  # 1, 2 inside; 3 just outside the wall
    s = result_state(r)
    for cat in s:
        assert 3 not in s[cat][1] and 3 not in s[cat][2]
        assert 1 not in s[cat][3] and 2 not in s[cat][3]
    assert 2 in s["forwarded"][1]
    e.set_params(InterestParams(zones=(Zone("room", "private", room.shape, open=True),)))
    r = tick(e, [1, 2, 3], [(0, 0), (2, 0), (4, 0)])
    assert 3 in sets(r, "forwarded")[1] and 1 in sets(r, "forwarded")[3]


def test_private_zone_beats_stage() -> None:
    zones = (
        Zone("stage", "stage", Box((-5, -1, -5), (5, 5, 5))),
        Zone("room", "private", Box((50, -1, -5), (60, 5, 5))),
    )
    r = tick(InterestEngine(InterestParams(zones=zones)), [1, 2], [(0, 0), (55, 0)])
    assert sets(r, "forwarded")[2] == {} and sets(r, "mixed")[2] == {}


def test_meeting_members_hear_each_other_flat() -> None:
    tri = PolygonPrism(((0, 0), (100, 0), (0, 100)))
    e = InterestEngine(InterestParams(zones=(Zone("m", "meeting", tri, delivery="mix"),)))
    r = tick(e, [1, 2, 3], [(1, 1), (90, 5), (80, 80)])  # 3 is outside the triangle
    assert sets(r, "mixed")[1] == {2: True} and sets(r, "mixed")[2] == {1: True}
    assert sets(r, "mixed")[3] == {}


def test_position_tiers_with_hysteresis() -> None:
    p = InterestParams(position_tiers=(PositionTier(10, 20), PositionTier(30, 5)), hysteresis=0.1)
    e = InterestEngine(p)
    assert sets(tick(e, [1, 2], [(0, 0), (9, 0)]), "positions")[1] == {2: 0}
    r = tick(e, [1, 2], [(0, 0), (10.5, 0)])  # inside the band of tier 0: stays
    assert sets(r, "positions")[1] == {2: 0} and r.diffs.positions.changed.nnz == 0
    r = tick(e, [1, 2], [(0, 0), (11.5, 0)])
    assert sets(r, "positions")[1] == {2: 1}
    assert r.diffs.positions.changed.row(0).tolist() == [2]
    assert sets(tick(e, [1, 2], [(0, 0), (45, 0)]), "positions")[1] == {2: 1}  # beyond: last tier


def test_rows_reorder_and_listeners_leave_and_join() -> None:
    e = InterestEngine()
    tick(e, [1, 2, 3], [(0, 0), (1, 0), (2, 0)])
    r = tick(e, [4, 3, 1], [(3, 0), (2, 0), (0, 0)])  # 2 left, 4 joined, order changed
    assert r.diffs.positions.added.row(0).tolist() == [3, 1]  # the newcomer gets everything
    assert r.diffs.positions.added.row(1).tolist() == [4]
    assert r.diffs.positions.removed.row(1).tolist() == [2]
    assert r.diffs.positions.removed.row(2).tolist() == [2]


def test_hot_reload_radii() -> None:
    e = InterestEngine(InterestParams(forward_radius=10, hearing_radius=40))
    r = tick(e, [1, 2], [(0, 0), (20, 0)])
    assert sets(r, "mixed")[1] == {2: False}
    e.set_params(InterestParams(forward_radius=25, hearing_radius=40))
    r = tick(e, [1, 2], [(0, 0), (20, 0)])
    assert sets(r, "forwarded")[1] == {2: False} and sets(r, "mixed")[1] == {}
    assert r.diffs.forwarded.added.row(0).tolist() == [2] and r.diffs.mixed.removed.row(0).tolist() == [2]


def test_far_away_avatar_and_huge_world(monkeypatch: pytest.MonkeyPatch) -> None:
    """One avatar thousands of kilometres away must not break the spatial grid."""
    monkeypatch.setattr(grid, "DENSE_PAIRS", 0)
    rng = np.random.default_rng(5)
    xs = [(float(x), float(z)) for x, z in rng.uniform(-20, 20, (200, 2))] + [(3e7, -3e7)]
    e = InterestEngine(InterestParams(zones=(Zone("room", "private", Box((0, -1, 0), (5, 3, 5))),)))
    r = tick(e, list(range(201)), xs)
    assert sets(r, "positions")[200] == {}
    pos = np.array([(x, 0.0, z) for x, z in xs], dtype=np.float32)
    flags = np.full(201, AV, dtype=np.int64)
    want = reference_tick(e.params, empty_state(), np.arange(201), pos, flags, np.zeros(201, np.float32))
    assert ordered(result_state(r)) == ordered(want)


def test_deterministic() -> None:
    rng = np.random.default_rng(3)
    n = 500
    args = (
        rng.choice(10_000, n, replace=False).astype(np.uint32),
        rng.uniform(-50, 50, (n, 3)).astype(np.float32),
        quats(n),
        rng.integers(0, 8, n),
        rng.random(n).astype(np.float32),
    )
    a, b = InterestEngine().tick(*args), InterestEngine().tick(*args)
    for cat in ("forwarded", "mixed", "video", "positions"):
        x, y = a.category(cat), b.category(cat)
        assert np.array_equal(x.indptr, y.indptr) and np.array_equal(x.ids, y.ids)
        assert np.array_equal(x.attr, y.attr)


@pytest.mark.parametrize(
    ("ids", "pos", "msg"),
    [
        ([1, 1], [(0, 0, 0), (1, 0, 0)], "unique"),
        ([1, 2], [(0, 0, 0), (np.nan, 0, 0)], "finite"),
        ([1, -2], [(0, 0, 0), (1, 0, 0)], "uint32"),
        ([1, 2], [(0, 0, 0)], "match"),
    ],
)
def test_bad_input_is_a_clear_error_and_keeps_state(ids: list, pos: list, msg: str) -> None:
    e = InterestEngine()
    tick(e, [1, 2], [(0, 0), (1, 0)])
    n = len(ids)
    with pytest.raises(ValueError, match=msg):
        e.tick(np.array(ids), np.array(pos, np.float32), quats(n), np.full(n, AV), np.zeros(n, np.float32))
    r = tick(e, [1, 2], [(0, 0), (1, 0)])  # state intact: nothing added again
    assert r.diffs.positions.added.nnz == 0


def test_shapes_vectorized() -> None:
    pts = np.array([[0, 0, 0], [5, 0, 5], [1, 10, 1], [-1, 0, 2]], np.float32)
    assert contains(Box((-1, -1, -1), (1, 1, 1)), pts).tolist() == [True, False, False, False]
    assert contains(Cylinder((0, 0), 2.0, 0, 5), pts).tolist() == [True, False, False, False]
    concave = PolygonPrism(((-2, -2), (2, -2), (2, 2), (0, 0), (-2, 2)))  # notch at the top
    assert contains(concave, np.array([[0, 0, -1], [0, 0, 1], [-1.5, 0, 1.0]], np.float32)).tolist() == [
        True,
        False,
        True,
    ]


@pytest.mark.parametrize("all_publish_audio", [True, False])
@pytest.mark.parametrize("cell", [None, 0.7])
def test_dense_crowd_matches_reference_over_ticks(
    monkeypatch: pytest.MonkeyPatch, all_publish_audio: bool, cell: float | None
) -> None:
    """A crowd big enough to fill every cap (so buffers fill, get cut and stop rings early), over
    ticks with movers, through both search layouts: one grid for audio and positions when every
    visible avatar publishes audio, separate grids otherwise."""
    monkeypatch.setattr(grid, "DENSE_PAIRS", 0)
    monkeypatch.setattr(grid, "CELL_OVERRIDE", cell)
    rng = np.random.default_rng(11)
    n = 400
    ids = rng.permutation(5000)[:n].astype(np.uint32)
    pos = np.zeros((n, 3), np.float32)
    pos[:, [0, 2]] = rng.normal(0, 6.0, (n, 2))
    flags = np.full(n, AV, dtype=np.int64)
    if not all_publish_audio:
        flags[rng.random(n) < 0.3] = AvatarFlags.PUBLISH_VIDEO
    flags[rng.random(n) < 0.05] |= AvatarFlags.HIDDEN
    levels = np.where(rng.random(n) < 0.2, 0.5, 0.0).astype(np.float32)
    zones = (
        Zone("stage", "stage", Box((-3, -1, -3), (3, 3, 3)), audience=Cylinder((0, 0), 12.0)),
        Zone("room", "private", Box((8, -1, 8), (14, 3, 14))),
    )
    params = InterestParams(
        forward_radius=4,
        hearing_radius=9,
        max_forwarded=4,
        max_mixed=12,
        video_radius=5,
        video_max=2,
        position_radius=12,
        position_max=24,
        position_tiers=(PositionTier(3, 20), PositionTier(8, 5)),
        zones=zones,
    )
    e = InterestEngine(params)
    prev = empty_state()
    for _ in range(4):
        r = e.tick(ids, pos, quats(n), flags, levels)
        want = reference_tick(params, prev, ids, pos, flags, levels)
        assert ordered(result_state(r)) == ordered(want)
        prev = want
        movers = rng.random(n) < 0.3
        pos[movers] += rng.normal(0, 0.8, (int(movers.sum()), 3)).astype(np.float32) * [1, 0, 1]


def test_warm_up_compiles_and_returns_its_time() -> None:
    from interest import warm_up

    assert warm_up() >= 0.0
    r = tick(InterestEngine(), [1, 2], [(0, 0), (1, 0)])  # and the engine still works after it
    assert sets(r, "positions") == {1: {2: 0}, 2: {1: 0}}


def test_speakers_win_over_silent_avatars_standing_on_the_listener() -> None:
    """Regression: a silent source at the listener's very position has a key whose distance word
    reads as -0.0, which the candidate buffer's cut-back took for "no silent keys" (0.0 is not
    below 0.0): it then cut by distance alone, kept the silent ones and dropped nearer speakers."""
    p = InterestParams(forward_radius=10.0, max_forwarded=4, hearing_radius=10.0, max_mixed=8)
    n_silent, n_speakers = 3, 31
    ids = list(range(1, 2 + n_silent + n_speakers))
    xs = [(0.0, 0.0)] * (1 + n_silent)  # the listener and three silent avatars on the same spot
    # speakers from 2 m to 9.5 m: enough to fill the buffer, spread so that a cut by distance
    # alone keeps the silent three and only two speakers
    angles = np.linspace(0, 2 * np.pi, n_speakers, endpoint=False)
    radii = 2 + 0.25 * np.arange(n_speakers)
    xs += [(float(r * np.cos(a)), float(r * np.sin(a))) for r, a in zip(radii, angles, strict=True)]
    levels = [0.0] * (1 + n_silent) + [0.9] * n_speakers
    r = tick(InterestEngine(p), ids, xs, levels=levels)
    assert sorted(sets(r, "forwarded")[1]) == [5, 6, 7, 8]  # the four nearest speakers
    pos = np.array([(x, 0.0, z) for x, z in xs], dtype=np.float32)
    want = reference_tick(p, empty_state(), np.array(ids), pos, np.full(len(ids), AV), np.array(levels))
    assert ordered(result_state(r)) == ordered(want)


def test_a_full_row_whose_members_all_left_refills_from_distance_zero() -> None:
    """Regression (found by the property test): three avatars on one spot, one position place
    each. When the only member of a row leaves, no survivor key is left to search from; starting
    at key 0 missed a replacement at distance 0 with the lowest remaining id."""
    p = InterestParams(
        forward_radius=0.0, hearing_radius=0.0, max_forwarded=0, max_mixed=0, video_max=0,
        position_radius=4.0, position_max=1, position_tiers=(), hysteresis=0.0,
    )  # fmt: skip
    engine = InterestEngine(p)
    assert sets(tick(engine, [0, 1, 2], [(0.0, 0.5)] * 3), "positions") == {0: {1: 0}, 1: {0: 0}, 2: {0: 0}}
    assert sets(tick(engine, [1, 2], [(0.0, 0.5)] * 2), "positions") == {1: {2: 0}, 2: {1: 0}}


@pytest.mark.timeout(120, method="thread")  # the bug was an endless loop inside a compiled kernel
def test_silent_separator_at_distance_zero_and_lowest_id() -> None:
    """Regression (found by fuzzing): a forwarded row whose separator was a silent source at
    distance 0 with the lowest id. When a speaker entered, the separator became "bar - 1", which
    borrowed from the distance bits (a NaN distance); the next refill then searched forever."""
    p = InterestParams(forward_radius=10.0, max_forwarded=1, hearing_radius=10.0, max_mixed=4)
    engine = InterestEngine(p)
    ids = [1, 2, 3]  # 1: silent, on the listener (2); 3: farther, silent, then speaking, then gone far
    r = tick(engine, ids, [(0.0, 0.0), (0.0, 0.0), (5.0, 0.0)])
    assert sets(r, "forwarded")[2] == {1: False}
    r = tick(engine, ids, [(0.0, 0.0), (0.0, 0.0), (5.0, 0.0)], levels=[0.0, 0.0, 0.9])
    assert sets(r, "forwarded")[2] == {3: False}
    r = tick(engine, ids, [(0.0, 0.0), (0.0, 0.0), (50.0, 0.0)], levels=[0.0, 0.0, 0.9])
    assert sets(r, "forwarded")[2] == {1: False}


@pytest.mark.parametrize("join", [False, True])
def test_audio_places_reopened_by_a_stage_performer_leaving(join: bool) -> None:
    """Regression (found by fuzzing): a performer's flat entry took the listener's only forwarded
    place, so that category's separator was 0; when the performer stepped off the stage, the
    refill started above key 0 and missed a speaker standing on the listener with the lowest id.
    With `join`, somebody joins in between: the separator of 0 ("no places") must survive the
    remapping of separators unchanged."""
    stage = Zone("stage", "stage", Box((10.0, -1.0, 10.0), (20.0, 4.0, 20.0)))
    p = InterestParams(forward_radius=30.0, max_forwarded=1, hearing_radius=30.0, max_mixed=4, zones=(stage,))
    engine = InterestEngine(p)
    ids, levels = [1, 2, 3], [0.9, 0.0, 0.9]  # 1: speaker on the listener (2); 3: the performer
    xs = [(0.0, 0.0), (0.0, 0.0), (15.0, 15.0)]
    r = tick(engine, ids, xs, levels=levels)
    assert sets(r, "forwarded")[2] == {3: True} and sets(r, "mixed")[2] == {1: False}
    if join:  # id 0 (below every other) joins far away, silent
        ids, levels, xs = [*ids, 0], [*levels, 0.0], [*xs, (200.0, 200.0)]
        r = tick(engine, ids, xs, levels=levels)
        assert sets(r, "forwarded")[2] == {3: True} and sets(r, "mixed")[2] == {1: False}
    xs[2] = (5.0, 5.0)
    r = tick(engine, ids, xs, levels=levels)
    assert sets(r, "forwarded")[2] == {1: False} and sets(r, "mixed")[2] == {3: False}


def test_joins_and_leaves_remap_separators_exactly() -> None:
    """Joins and leaves shift the id ranks that break distance ties, and the engine remaps each
    row's separators instead of recomputing them. On a 1 m lattice (distances tie everywhere), with
    separators' own sources leaving and ids joining below, between and above the others (on top of
    somebody: more ties), every tick's sets equal those of an engine that recomputes everything, and
    only the joined listeners are recomputed in full."""
    p = InterestParams(
        forward_radius=6.0, max_forwarded=2, hearing_radius=6.0, max_mixed=4, video_radius=6.0,
        video_max=2, position_radius=6.0, position_max=6, position_tiers=(), hysteresis=0.0,
    )  # fmt: skip
    rng = np.random.default_rng(4)
    ids = list(range(100, 400, 5))
    xs = [(float(i % 8), float(i // 8)) for i in range(len(ids))]
    inc, ref = InterestEngine(p), InterestEngine(p)

    def both() -> None:
        got = tick(inc, ids, xs)
        ref.set_params(dataclasses.replace(p))  # a reload: every row in full
        want = tick(ref, ids, xs)
        assert ordered(result_state(got)) == ordered(result_state(want))

    both()
    for _ in range(8):
        # the sources of some rows' separators leave (never the lowest id: a separator below every
        # survivor has no remapped rank and sends its row to the full recompute), then ids join
        sep = inc._rows.sep  # type: ignore[union-attr]
        ranked = sorted(ids)
        bars = {ranked[int(k & 0x7FFF_FFFF)] for k in sep[sep != np.uint64(2**64 - 1)].tolist() if k}
        leave = set(rng.choice(sorted(bars - {ranked[0]}), 3, replace=False).tolist())
        kept = [(i, x) for i, x in zip(ids, xs, strict=True) if i not in leave]
        new = [ranked[0] - 1 - int(rng.integers(0, 5)), int(rng.integers(0, 1000)) * 5 + 2, max(ids) + 7]
        new = [i for i in dict.fromkeys(new) if i not in ids and i >= 0]
        ids = [i for i, _ in kept] + new
        xs = [x for _, x in kept] + [xs[int(rng.integers(0, len(kept)))] for _ in new]
        both()
        assert inc.counters["full"] == len(new)


def test_an_idle_tick_changes_nothing_and_reuses_the_output() -> None:
    """Nobody moved, spoke or changed flags: every set is as it was, every diff is empty, nothing
    was examined, and the output arrays are last tick's (an idle world costs almost nothing)."""
    engine = InterestEngine(InterestParams(position_max=3, max_forwarded=1, max_mixed=2))
    ids = list(range(10))
    xs = [(float(i), float(i % 3)) for i in ids]
    first = tick(engine, ids, xs)
    second = tick(engine, ids, xs, levels=[0.0] * len(ids))
    assert engine.counters["rows"] == 0 and engine.counters["full"] == 0
    for cat in ("forwarded", "mixed", "video", "positions"):
        assert getattr(second, cat) is getattr(first, cat)
        for part in ("added", "removed", "changed"):
            assert getattr(getattr(second.diffs, cat), part).nnz == 0
    third = tick(engine, ids, [(50.0, 50.0), *xs[1:]])  # one walks away: rows change, diffs say how
    assert sets(third, "positions") != sets(second, "positions")
    assert third.diffs.positions.added.nnz > 0
