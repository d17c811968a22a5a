"""Property tests: the engine equals the brute-force reference on small random worlds with zones,
over several ticks with moves, joins, leaves, reorders and parameter reloads."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from interest_helpers import ordered, quats, result_state
from interest_reference import State, empty_state, reference_tick

from interest import (
    AvatarFlags,
    Box,
    Cylinder,
    InterestEngine,
    InterestParams,
    PolygonPrism,
    PositionTier,
    Zone,
    apply_diff,
    contains,
    grid,
)

coord = st.integers(-24, 24).map(lambda v: v / 2.0)

ZONE_MENU = [
    Zone("stage-fwd", "stage", Box((-12, -1, -12), (-6, 3, -6)), audience=Cylinder((0, 0), 10.0)),
    Zone("stage-mix", "stage", Box((6, -1, 6), (12, 3, 12)), delivery="mix"),
    Zone("room", "private", Box((-4, -1, -4), (4, 3, 4))),
    Zone("open-room", "private", Cylinder((8, -8), 4.0), open=True),
    Zone("room2", "private", PolygonPrism(((-12, 4), (-4, 4), (-4, 12), (-8, 8), (-12, 12)))),
    Zone("meet", "meeting", PolygonPrism(((0, -12), (12, -12), (6, -2)))),
    Zone("meet-mix", "meeting", Cylinder((-6, 6), 5.0), delivery="mix"),
]


@st.composite
def params_st(draw: st.DrawFn) -> InterestParams:
    fr = draw(st.sampled_from([0.0, 2.0, 4.0, 6.5]))
    tiers = draw(
        st.sampled_from([(), (PositionTier(3.0, 20.0),), (PositionTier(2.0, 20.0), PositionTier(5.0, 5.0))])
    )
    zones = draw(st.lists(st.sampled_from(ZONE_MENU), max_size=3, unique_by=lambda z: z.name))
    return InterestParams(
        forward_radius=fr,
        hearing_radius=fr + draw(st.sampled_from([0.0, 3.0, 9.0])),
        max_forwarded=draw(st.integers(0, 3)),
        max_mixed=draw(st.integers(0, 4)),
        video_radius=draw(st.sampled_from([3.0, 7.5])),
        video_max=draw(st.integers(0, 2)),
        position_radius=draw(st.sampled_from([4.0, 10.0, 30.0])),
        position_max=draw(st.integers(0, 5)),
        position_tiers=tiers,
        hysteresis=draw(st.sampled_from([0.0, 0.1, 0.5])),
        speaking_threshold=0.05,
        zones=tuple(zones),
    )


@st.composite
def avatar_st(draw: st.DrawFn) -> tuple[tuple[float, float, float], int, float]:
    pos = (draw(coord), draw(st.sampled_from([0.0, 0.0, 1.0])), draw(coord))
    return pos, draw(st.integers(0, 7)), draw(st.sampled_from([0.0, 0.02, 0.5]))


@st.composite
def world_st(draw: st.DrawFn) -> list[tuple[InterestParams, dict[int, tuple]]]:
    """A few ticks: each is the params and {id: (pos, flags, level)}."""
    params = draw(params_st())
    ids = draw(st.lists(st.integers(0, 60), max_size=14, unique=True))
    world = {i: draw(avatar_st()) for i in ids}
    ticks = [(params, dict(world))]
    for _ in range(draw(st.integers(1, 3))):
        world = dict(world)
        for i in list(world):
            action = draw(st.sampled_from(["stay", "stay", "nudge", "move", "leave"]))
            if action == "leave":
                del world[i]
            elif action == "move":
                world[i] = draw(avatar_st())
            elif action == "nudge":
                (x, y, z), f, lv = world[i]
                dx, dz = draw(st.sampled_from([-0.5, 0.0, 0.5])), draw(st.sampled_from([-0.5, 0.0, 0.5]))
                world[i] = ((x + dx, y, z + dz), f, lv)
        for i in draw(st.lists(st.integers(61, 70), max_size=3, unique=True)):
            world[i] = draw(avatar_st())
        if draw(st.booleans()) and draw(st.booleans()):
            params = draw(params_st())  # hot reload
        ticks.append((params, world))
    return ticks


def arrays(world: dict[int, tuple], order: list[int]) -> tuple[np.ndarray, ...]:
    ids = np.array(order, dtype=np.uint32)
    pos = np.array([world[i][0] for i in order], dtype=np.float32).reshape(-1, 3)
    flags = np.array([world[i][1] for i in order], dtype=np.int64)
    levels = np.array([world[i][2] for i in order], dtype=np.float32)
    return ids, pos, flags, levels


def privacy_ok(
    params: InterestParams, ids: np.ndarray, pos: np.ndarray, flags: np.ndarray, state: State
) -> None:
    """No listener ever gets a source its rules forbid: hidden sources, sources across a closed
    private wall, non-publishers for audio/video."""
    row_of = {int(i): r for r, i in enumerate(ids)}
    closed = [contains(z.shape, pos) for z in params.zones if z.kind == "private" and not z.open]
    for cat, rows in state.items():
        for lid, row in rows.items():
            a = row_of[lid]
            for sid in row:
                b = row_of[sid]
                assert a != b
                assert not flags[b] & AvatarFlags.HIDDEN
                assert all(c[a] == c[b] for c in closed), (cat, lid, sid)
                if cat in ("forwarded", "mixed"):
                    assert flags[b] & AvatarFlags.PUBLISH_AUDIO
                if cat == "video":
                    assert flags[b] & AvatarFlags.PUBLISH_VIDEO


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world_st(), st.randoms(use_true_random=False), st.booleans())
def test_engine_matches_reference(ticks: list, rnd, use_grid: bool) -> None:  # type: ignore[no-untyped-def]
    # Small worlds normally take the all-pairs path; force the spatial grid for half the examples.
    saved = grid.DENSE_PAIRS
    grid.DENSE_PAIRS = 0 if use_grid else saved
    try:
        _check_ticks(ticks, rnd)
    finally:
        grid.DENSE_PAIRS = saved


def _check_ticks(ticks: list, rnd) -> None:  # type: ignore[no-untyped-def]
    engine = InterestEngine(ticks[0][0])
    ref_prev: State = empty_state()
    prev_result = None
    for params, world in ticks:
        engine.set_params(params)
        order = list(world)
        rnd.shuffle(order)  # rows reorder between ticks; state is keyed by id
        ids, pos, flags, levels = arrays(world, order)
        result = engine.tick(ids, pos, quats(len(ids)), flags, levels)
        got = result_state(result)
        want = reference_tick(params, ref_prev, ids, pos, flags, levels)
        assert ordered(got) == ordered(want)
        # caps
        assert result.forwarded.counts().max(initial=0) <= params.max_forwarded
        assert result.mixed.counts().max(initial=0) <= params.max_mixed
        assert result.video.counts().max(initial=0) <= params.video_max
        assert result.positions.counts().max(initial=0) <= params.position_max
        privacy_ok(params, ids, pos, flags, got)
        # forwarded and mixed are disjoint
        for lid in got["forwarded"]:
            assert not set(got["forwarded"][lid]) & set(got["mixed"][lid])
        # applying the diffs to the previous sets gives the new sets
        for cat in ("forwarded", "mixed", "video", "positions"):
            if prev_result is None:
                prev_sets, prev_ids = None, np.zeros(0, np.int64)
            else:
                prev_sets, prev_ids = prev_result.category(cat), prev_result.listener_ids
            from interest import CsrSets

            applied = apply_diff(
                prev_sets if prev_sets is not None else CsrSets.empty(0),
                prev_ids,
                result.listener_ids,
                getattr(result.diffs, cat),
            )
            assert applied == got[cat]
        ref_prev = want
        prev_result = result


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world_st(), st.randoms(use_true_random=False), st.sampled_from([0.3, 0.8, 2.5]))
def test_engine_matches_reference_with_tiny_cells(ticks: list, rnd, cell: float) -> None:  # type: ignore[no-untyped-def]
    """Cells much smaller than the radii: many rings per listener, early stops on full buffers,
    cuts of overfull candidate buffers."""
    saved = grid.CELL_OVERRIDE
    grid.CELL_OVERRIDE = cell
    try:
        _check_ticks(ticks, rnd)
    finally:
        grid.CELL_OVERRIDE = saved
