"""The interest engine: every tick, for every listener, who is forwarded, mixed, seen and tracked.

Rules (each pair is a listener L and a source S != L; "d" is their 3-D distance, compared as
``d² < r²`` in float32; "inside r" means d < r):

Eligibility
    S is a source only if it is not ``HIDDEN``; audio needs ``PUBLISH_AUDIO``, video
    ``PUBLISH_VIDEO``. Hidden avatars still listen.
Privacy (strict, for audio, video *and* positions)
    A closed (``open=False``) private zone is a sealed room: a pair is allowed only if L and S are
    both inside it or both outside it, for every closed private zone. Nothing crosses the wall: no
    sound, no video, no poses (who is in the room is itself private). Stage and meeting zones never
    override this. An ``open`` private zone has no effect.
Hysteresis (every radius: forward, hearing, video, position, and position tiers)
    S is a candidate of a category when d < r, or when S was in that category for L last tick and
    d < r·(1 + hysteresis). For hearing, "last tick" means forwarded or mixed.
Flat zone audio
    stage: an audio publisher inside the stage shape is heard by every listener inside the audience
    shape (everyone if it has none), at any distance. meeting: every member (inside the shape) hears
    every member that publishes audio, at any distance. These entries are ``flat`` (no distance
    attenuation) and are delivered per the zone's ``delivery``; if any zone makes the pair "forward",
    it is forward. Zones do not affect video or positions.
Forwarded (cap ``max_forwarded``)
    Candidates: flat "forward" pairs, and audio publishers that are forward-radius candidates.
    Ordered by: flat first, then current speakers (level ≥ ``speaking_threshold``), then
    nearest, then lowest id; the first ``max_forwarded`` win. So stage speakers count against the
    cap and take priority.
Mixed (cap ``max_mixed``)
    Candidates: flat pairs not forwarded (flat "mix" pairs and flat "forward" overflow), then hearing
    candidates that are not forwarded. Ordered by: flat first, then nearest, then lowest id.
Video (cap ``video_max``) and positions (cap ``position_max``)
    Candidates by radius with hysteresis; nearest first, ties by lowest id.
Position tier
    Tier i is the first tier with d < distance_i (beyond the last tier: the last tier). Hysteresis:
    a peer keeps its previous (nearer) tier p while d < distance_p·(1 + hysteresis).

Inputs per tick: ids (unique, uint32 range), positions (N, 3) float32 metres, orientations (N, 4)
quaternions x, y, z, w, flags (`AvatarFlags` bits) and levels: the *speaking level*, a smoothed
linear audio level in 0..1 (e.g. the RMS envelope the mixer or the client reports); a source is a
current speaker when its level is at least ``params.speaking_threshold``. Bad input raises
ValueError with a message and leaves the engine's state untouched.

Representation: every category is a `CsrSets` (indptr, ids, attr), rows aligned with the input
order; a row is a set (its order is deterministic, not meaningful); `TickResult.diffs` has added /
removed / changed per category.

Cost: two compiled paths (numba) that give the same sets.
- Full recompute (`interest.kernels`) for listeners that moved, joined or crossed a private wall
  (and on the first tick or a parameter reload): a ring search over a grid of each category's
  sources (`interest.grid`), small sorted top-k buffers keyed by the exact priority order,
  hysteresis and diffs against last tick's rows.
- Incremental update (`interest.incremental`) for every other listener: only the sources that
  changed near it are examined against a per-row separator key, and a row is edited in place
  where a member leaves or enters.
Listeners run in parallel chunks, and the engine numbers its rows in space order (`interest.order`:
neighbours next to each other in memory; 21-23% off a tick at 100k), handing out rows in the
caller's order. Flat zone pairs are enumerated per listener (|stage publishers|
per audience member, |members| per meeting member), so keep meetings small. Measured times are in
docs/bench/interest.md. `InterestEngine.counters` says what the last tick did.

Determinism: every choice is a total order on integer keys (see `interest.kernels`), so the same
inputs give the same outputs. Orientations are accepted (and validated) but not used yet: reserved for
view-dependent video.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from interest import grid, incremental, kernels, pairs
from interest.csr import CsrDiff, CsrSets
from interest.flags import AvatarFlags
from interest.order import SpaceOrder, next_order
from interest.params import InterestParams, Zone
from interest.shapes import contains

CATEGORIES = ("forwarded", "mixed", "video", "positions")
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
BoolA = npt.NDArray[np.bool_]

# Listeners per parallel chunk (at least), and chunks per thread (at most): enough chunks to
# balance dense and sparse places and a busy machine across threads, few enough that each chunk's
# n-sized scratch is cheap to zero.
_CHUNK = 64
_CHUNKS_PER_THREAD = 8


@dataclass(frozen=True)
class TickDiffs:
    forwarded: CsrDiff
    mixed: CsrDiff
    video: CsrDiff
    positions: CsrDiff


@dataclass(frozen=True)
class TickResult:
    """Row i is about the listener ``listener_ids[i]`` (the input order); entries are avatar ids."""

    listener_ids: I64
    forwarded: CsrSets  # attr: flat (bool)
    mixed: CsrSets  # attr: flat (bool)
    video: CsrSets  # attr: unused (False)
    positions: CsrSets  # attr: tier index (int8) into params.position_tiers
    diffs: TickDiffs

    def category(self, name: str) -> CsrSets:
        sets: CsrSets = getattr(self, name)
        return sets


class _IdIndex:
    """Row of each id: a dense table when ids are small integers (the world hands them out that
    way), else a binary search over the sorted ids."""

    def __init__(self, ids: I64) -> None:
        n = len(ids)
        self.n = n
        self.table: I64 | None = None
        top = int(ids.max()) if n else 0
        if n and top < 4 * n + 4096:
            table = np.full(top + 1, -1, dtype=np.int64)
            rows = np.arange(n, dtype=np.int64)
            table[ids] = rows
            if not np.array_equal(table[ids], rows):
                raise ValueError("ids must be unique")
            self.table = table
            self.order = table[table >= 0]
        else:
            self.order = np.argsort(ids, kind="stable")
            self.sorted = ids[self.order]
            if n > 1 and (np.diff(self.sorted) == 0).any():
                raise ValueError("ids must be unique")

    def lookup(self, ids: I64) -> I64:
        """Row of each id, -1 if absent."""
        if self.n == 0 or len(ids) == 0:
            return np.full(len(ids), -1, dtype=np.int64)
        if self.table is not None:
            t = self.table
            inside = ids < len(t)
            return np.where(inside, t[np.where(inside, ids, 0)], -1)
        i = np.minimum(np.searchsorted(self.sorted, ids), self.n - 1)
        return np.where(self.sorted[i] == ids, self.order[i], -1)


@dataclass(frozen=True)
class _State:
    """What the next tick needs from this one: ids in the engine's row order and their index, and
    per category the sets (in the caller's order), the source *row* of every entry (so last tick's
    entries map to this tick's rows with one gather), and where each engine row's entries start
    and end in the sets."""

    ids: I64
    index: _IdIndex
    sets: dict[str, CsrSets]
    src: dict[str, I32]
    lo: dict[str, I64]
    hi: dict[str, I64]

    @staticmethod
    def empty() -> _State:
        ids = np.zeros(0, dtype=np.int64)
        none = {c: np.zeros(0, dtype=np.int64) for c in CATEGORIES}
        return _State(
            ids,
            _IdIndex(ids),
            {c: CsrSets.empty(0) for c in CATEGORIES},
            {c: np.zeros(0, dtype=np.int32) for c in CATEGORIES},
            none,
            none,
        )


class InterestEngine:
    """Stateful per-tick interest computation. State is keyed by avatar id, so rows may reorder,
    appear and disappear between ticks."""

    def __init__(self, params: InterestParams | None = None) -> None:
        self._params = params or InterestParams()
        _check_params(self._params)
        self._state = _State.empty()
        self._rows: _Rows | None = None
        self._order: SpaceOrder | None = None  # the engine's row order (`interest.order`)
        self._ticks = 0
        # What the last tick did: rows recomputed in full, and the incremental pass's counters.
        self.counters: dict[str, int] = {}

    @property
    def params(self) -> InterestParams:
        return self._params

    def set_params(self, params: InterestParams) -> None:
        """Hot reload: takes effect on the next tick; previous sets are kept so diffs stay correct."""
        _check_params(params)
        self._params = params

    def reset(self) -> None:
        self._state = _State.empty()
        self._rows = None
        self._order = None

    def tick(
        self,
        ids: npt.ArrayLike,
        positions: npt.ArrayLike,
        orientations: npt.ArrayLike,
        flags: npt.ArrayLike,
        levels: npt.ArrayLike,
    ) -> TickResult:
        p = self._params
        c_ids, c_pos, c_flags, c_levels = _validated(ids, positions, orientations, flags, levels)
        # The engine's rows are the caller's in space order (`interest.order`); output rows are
        # the caller's again.
        prev_order = self._order
        rows_of = None
        if prev_order is not None and not np.array_equal(prev_order.ids, c_ids):
            rows_of = _IdIndex(c_ids).lookup(self._state.ids)
        x, z = c_pos[:, 0], c_pos[:, 2]
        space = next_order(prev_order, c_ids, rows_of, x, z, _order_cell(p), self._ticks)
        perm = space.perm
        w = _World.build(c_ids[perm], c_pos[perm], c_flags[perm], c_levels[perm], p)
        n = w.n
        prev = self._state
        cur2prev = prev.index.lookup(w.ids)
        prev2cur = w.index.lookup(prev.ids).astype(np.int32)
        caps = np.array([p.max_forwarded, p.max_mixed, p.video_max, p.position_max], dtype=np.int64)
        widen = 1.0 + p.hysteresis
        radii = np.array(
            [
                _r2(r)
                for base in (p.forward_radius, p.hearing_radius, p.video_radius, p.position_radius)
                for r in (base, base * widen)
            ],
            dtype=np.float32,
        )
        audio_cap = p.max_mixed + p.max_forwarded
        audio_radius = max(p.forward_radius, p.hearing_radius) * widen
        build = (w.x, w.y, w.z)
        order = w.index.order.astype(np.int32)
        uids = np.empty(n, dtype=np.uint64)  # rank of each row in id order
        uids[order] = np.arange(n, dtype=np.uint64)
        pos_cap, pos_radius = p.position_max, p.position_radius * widen
        # When every visible avatar publishes audio, one grid and one search per listener serve
        # audio and positions (the usual case); else audio publishers get their own grid.
        merged = bool(np.array_equal(w.pub_a, w.visible))
        if merged:
            pos_cap, pos_radius = max(pos_cap, audio_cap), max(pos_radius, audio_radius)
        grid_p = grid.build(*build, w.visible, uids, w.group, w.pub_a, pos_cap, pos_radius, n)
        grid_a = grid_p
        if not merged:
            grid_a = grid.build(*build, w.pub_a, uids, w.group, w.pub_a, audio_cap, audio_radius, n)
        grid_v = grid.build(*build, w.pub_v, uids, w.group, w.pub_a, p.video_max, p.video_radius * widen, n)
        tiers = np.array([t.distance for t in p.position_tiers], dtype=np.float64)
        removed = tuple(np.zeros(prev.sets[c].nnz, dtype=np.uint8) for c in CATEGORIES)
        rows = self._rows
        same_ids = np.array_equal(prev.ids, w.ids)  # (else rows are remapped: joins, leaves, reorders)
        fresh = rows is None or rows.params is not p or len(prev.ids) == 0 or n == 0
        if fresh:
            rows = _Rows.empty(n, caps, p)
            full = np.ones(n, dtype=bool)
            moved = changed = np.zeros(n, dtype=np.uint8)
        else:
            assert rows is not None
            if not same_ids:
                rows = rows.remapped(cur2prev, prev2cur, w, uids, prev.index.order)
            full, moved, changed = rows.classify(w)
        out_status = tuple(np.zeros((n, int(k)), dtype=np.int8) for k in caps)
        # (category, row) pairs whose statuses or removed flags were written: the compaction reads
        # statuses and flags of these only
        dirty = np.zeros((4, n), dtype=np.uint8)
        kf, km, kv, kp = (int(k) for k in caps)
        speaking = w.speaking.view(np.uint8)
        p_lo = tuple(prev.lo[c] for c in CATEGORIES)
        p_hi = tuple(prev.hi[c] for c in CATEGORIES)
        state = rows

        def recompute(todo: I32) -> None:
            """The full pass (`kernels`) for these rows, then their separators."""
            if not len(todo):
                return
            dirty[:, todo] = 1
            with numba.parallel_chunksize(1):  # hand chunks out dynamically (see kernels)
                kernels.listener_pass(
                    w.x, w.y, w.z, uids, order, w.group, speaking,
                    grid_p, grid_a, grid_v, merged, radii, caps, tiers, float(p.hysteresis),
                    w.rule_lis, w.rule_ptr, w.rule_src, w.rule_fwd,
                    cur2prev, prev2cur, p_lo, p_hi,
                    tuple(prev.src[c] for c in CATEGORIES),
                    tuple(prev.sets[c].attr.view(np.int8) for c in CATEGORIES),
                    removed, state.src, state.attr, out_status, state.cnt, state.over,
                    todo, _chunks(len(todo)), len(w.rule_src),
                )  # fmt: skip
            incremental.seal(
                todo, w.x, w.y, w.z, uids, w.sflags, kf, km, kv, kp,
                state.cnt, state.src, state.attr, state.sep,
            )  # fmt: skip

        recompute(np.flatnonzero(full).astype(np.int32))
        self.counters = dict.fromkeys(incremental.COUNTERS, 0)
        self.counters["full"] = int(full.sum())
        # Nobody moved, changed or left (an idle world): no row can change, so skip the pass.
        idle = same_ids and not changed.any()
        inc_rows = np.zeros(0, np.int32) if idle else np.flatnonzero(~full).astype(np.int32)
        if len(inc_rows):
            changed_visible = changed.view(bool) & w.visible
            # changed sources are a tenth or so of all: cells a few times grid_p's hold about as many
            grid_x = grid.build(
                *build, changed_visible, uids, w.group, w.pub_a, pos_cap, pos_radius, n, 3.0 * grid_p.cell
            )
            # ... and where they were: a row none of them was near (nor is), when nobody left, has
            # no member that changed, so it need not be scanned (a calm world's rows mostly)
            grid_o = grid_x
            if same_ids:
                grid_o = grid.build(
                    rows.x, rows.y, rows.z, changed.view(bool), uids, w.group, w.pub_a, pos_cap,
                    pos_radius, n, 3.0 * grid_p.cell,
                )  # fmt: skip
            bail = np.zeros(n, np.uint8)
            chunks = _chunks(len(inc_rows))
            counters = np.zeros((len(chunks) - 1, len(incremental.COUNTERS)), np.int64)
            with numba.parallel_chunksize(1):
                incremental.update_pass(
                    inc_rows, moved, changed, w.x, w.y, w.z, uids, order, w.group, w.sflags,
                    grid_p, grid_a, grid_v, grid_x, grid_o, same_ids, radii, kf, km, kv, kp, tiers,
                    float(p.hysteresis), w.rule_lis, w.rule_ptr, w.rule_src, w.rule_fwd, rows.cnt,
                    rows.src, rows.attr, rows.sep, cur2prev, p_lo, out_status, removed, dirty, bail,
                    chunks, counters,
                )  # fmt: skip
            bailed = np.flatnonzero(bail).astype(np.int32)
            recompute(bailed)
            self.counters = dict(zip(incremental.COUNTERS, counters.sum(axis=0).tolist(), strict=True))
            self.counters["full"] = int(full.sum()) + len(bailed)
        self._rows = rows.advanced(w)
        out_cnt, out_src, out_attr = rows.cnt, rows.src, rows.attr
        sets: dict[str, CsrSets] = {}
        srcs: dict[str, I32] = {}
        diffs: dict[str, CsrDiff] = {}
        lo: dict[str, I64] = {}
        hi: dict[str, I64] = {}
        emit = space.inverse  # the engine row of each output row
        # last tick's output row of each output row (the kernels read rows out of memory order
        # through these once per row; gathered here, they are read in order)
        if space is prev_order:
            out2prev = np.arange(n, dtype=np.int64)
        else:
            out2prev = cur2prev[emit]  # (last tick's engine rows: its output rows are perm's)
            if prev_order is not None and len(prev_order.perm):
                out2prev = np.where(out2prev >= 0, prev_order.perm[np.maximum(out2prev, 0)], -1)
        for c_i, c in enumerate(CATEGORIES):
            if space is prev_order and not dirty[c_i].any():  # no row of this category changed
                sets[c], srcs[c], lo[c], hi[c] = prev.sets[c], prev.src[c], prev.lo[c], prev.hi[c]
                nothing = CsrSets.empty(n, prev.sets[c].attr.dtype)
                diffs[c] = CsrDiff(added=nothing, removed=nothing, changed=nothing)
                continue
            dirty_out = dirty[c_i][emit]
            ptr, sid, src, attr, aptr, aid, aattr, cptr, cid, cattr = kernels.compact(
                out_cnt[c_i][emit], out_src[c_i], out_attr[c_i], out_status[c_i], w.ids, dirty_out, emit
            )
            old = prev.sets[c]
            rptr, rid, rattr = kernels.compact_removed(
                out2prev, old.indptr, old.ids, old.attr.view(np.int8), removed[c_i], dirty_out
            )
            lo[c], hi[c] = ptr[perm], ptr[perm + 1]
            as_attr = (lambda v: v) if c == "positions" else (lambda v: v.view(np.bool_))
            sets[c] = CsrSets(ptr, sid, as_attr(attr))
            srcs[c] = src
            diffs[c] = CsrDiff(
                added=CsrSets(aptr, aid, as_attr(aattr)),
                removed=CsrSets(rptr, rid, as_attr(rattr)),
                changed=CsrSets(cptr, cid, as_attr(cattr)),
            )
        self._state = _State(w.ids, w.index, sets, srcs, lo, hi)
        self._order = space
        self._ticks += 1
        return TickResult(
            listener_ids=c_ids,
            forwarded=sets["forwarded"],
            mixed=sets["mixed"],
            video=sets["video"],
            positions=sets["positions"],
            diffs=TickDiffs(**diffs),
        )


def _chunks(m: int) -> I64:
    """Bounds of the parallel chunks over m rows."""
    n_chunks = max(1, min(-(-m // _CHUNK), _CHUNKS_PER_THREAD * numba.get_num_threads()))
    return np.linspace(0, m, n_chunks + 1).astype(np.int64)


@dataclass
class _Rows:
    """Every listener's sets as fixed-width rows (the state `incremental` updates in place), their
    separators, and last tick's inputs per row, to tell what changed. Rows are in this tick's
    numbering once `remapped`; ``known`` is False for rows that joined."""

    params: InterestParams
    cnt: npt.NDArray[np.int32]  # (4, n)
    src: tuple[I32, I32, I32, I32]  # (n, cap) source rows per category
    attr: tuple[npt.NDArray[np.int8], ...]
    sep: npt.NDArray[np.uint64]  # (4, n)
    over: npt.NDArray[np.uint8]  # (n,) more flat sources than places
    lost: npt.NDArray[np.uint8]  # (n,) a separator could not be remapped (`_remapped_separators`)
    known: BoolA
    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.float32]
    z: npt.NDArray[np.float32]
    flags: npt.NDArray[np.uint8]  # last tick's `_World.sflags`
    group: I64

    @staticmethod
    def empty(n: int, caps: I64, params: InterestParams) -> _Rows:
        z32 = np.zeros(n, np.float32)
        return _Rows(
            params,
            np.zeros((4, n), np.int32),
            tuple(np.zeros((n, int(k)), np.int32) for k in caps),  # type: ignore[arg-type]
            tuple(np.zeros((n, int(k)), np.int8) for k in caps),
            np.full((4, n), incremental.NONE, np.uint64),
            np.zeros(n, np.uint8),
            np.zeros(n, np.uint8),
            np.zeros(n, dtype=bool),
            z32, z32, z32, np.zeros(n, np.uint8), np.zeros(n, np.int64),
        )  # fmt: skip

    def remapped(
        self, cur2prev: I64, prev2cur: I32, w: _World, rank: npt.NDArray[np.uint64], prev_order: I64
    ) -> _Rows:
        """These rows in this tick's numbering (`rank`: this tick's id rank of each row;
        `prev_order`: last tick's rows in id order)."""
        n = w.n
        known = cur2prev >= 0
        idx = np.where(known, cur2prev, 0)
        new = _Rows.empty(n, np.array([a.shape[1] for a in self.src], np.int64), self.params)
        incremental.remap(
            cur2prev, prev2cur, self.cnt, self.src, self.attr, self.sep, self.over,
            new.cnt, new.src, new.attr, new.sep, new.over,
        )  # fmt: skip
        new.known = known
        new.x, new.y, new.z = self.x[idx], self.y[idx], self.z[idx]
        new.flags = np.where(known, self.flags[idx], 0).astype(np.uint8)
        new.group = self.group[idx]
        new.sep, new.lost = _remapped_separators(new.sep, new.cnt, new.attr, prev2cur, rank, prev_order)
        return new

    def classify(self, w: _World) -> tuple[BoolA, npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        """Rows to recompute in full, listeners that moved, and sources that changed. In full: rows
        that joined, listeners that moved (every distance of theirs changed: the full pass measured
        cheaper than the incremental one for them) or crossed a private wall, rows with more
        flat sources than places (rare; then distances order the flat sources), and rows whose
        separators could not be remapped after a join or leave (`_remapped_separators`)."""
        k = self.known
        moved = k & ((self.x != w.x) | (self.y != w.y) | (self.z != w.z))
        regroup = k & (self.group != w.group)
        changed = ~k | moved | regroup | (self.flags != w.sflags)
        full = ~k | regroup | (self.over != 0) | moved | (self.lost != 0)
        return full, moved.astype(np.uint8), changed.astype(np.uint8)

    def advanced(self, w: _World) -> _Rows:
        """These rows with this tick's inputs remembered for the next tick."""
        return _Rows(
            self.params, self.cnt, self.src, self.attr, self.sep, self.over, np.zeros(w.n, np.uint8),
            np.ones(w.n, dtype=bool), w.x, w.y, w.z, w.sflags, w.group,
        )  # fmt: skip


def _remapped_separators(
    sep: npt.NDArray[np.uint64],
    cnt: npt.NDArray[np.int32],
    attr: tuple[npt.NDArray[np.int8], ...],
    prev2cur: I32,
    rank: npt.NDArray[np.uint64],
    prev_order: I64,
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8]]:
    """Separators in this tick's key space, and the rows that need the full recompute.

    Keys break distance ties by id rank, and joins and leaves shift the ranks, keeping the order of
    the ids that stay. A separator's rank part r becomes the new rank of the largest surviving id
    whose old rank is <= r: every surviving source then compares with it as it did (same distance
    bits; ranks in the same order), members at or below, eligible non-members above. Sources that
    joined are changed sources, which the incremental pass examines anyway; members that left are
    dropped by it and their places refilled from the separator. O(1) per separator, where
    recomputing them from every member's distance cost ~4 ms a tick at 10k.

    A separator of 0 with no spatial member means "no spatial places" (`incremental.seal`) and
    stays 0; a row goes to the full recompute when a separator is 0 with spatial members (a real
    key 0: distance 0, lowest id, which a join can shift) or when no surviving id is at or below
    a separator's rank."""
    n = sep.shape[1]
    lost = np.zeros(n, np.uint8)
    if not len(prev_order):
        return sep, lost
    to_row = prev2cur[prev_order]  # old rank -> this tick's row (-1: left)
    new_rank = np.where(to_row >= 0, rank[np.maximum(to_row, 0)].astype(np.int64), -1)
    floor = np.maximum.accumulate(new_rank)  # survivors' new ranks rise with their old ranks
    real = (sep != incremental.NONE) & (sep != 0)
    old_r = np.where(real, sep & kernels._RANK, 0).astype(np.int64)
    new_r = floor[np.minimum(old_r, len(floor) - 1)]
    bad = real & ((old_r >= len(floor)) | (new_r < 0))
    out = np.where(real & ~bad, (sep & ~kernels._RANK) | np.maximum(new_r, 0).astype(np.uint64), sep)
    for c, a in enumerate(attr):  # separators of 0: real keys (spatial members) or "no places"
        zero = np.flatnonzero(sep[c] == 0)
        if len(zero):
            k = cnt[c, zero]
            filled = np.arange(a.shape[1]) < k[:, None]
            spatial = (filled & (a[zero] == 0)).any(axis=1) if c <= 1 else k > 0
            bad[c, zero[spatial]] = True
    lost[bad.any(axis=0)] = 1
    return out, lost


def warm_up() -> float:
    """Compile (or load from numba's on-disk cache) every kernel by running one tiny tick; returns
    the seconds it took. A cold compile takes tens of seconds, a cache load well under a second:
    call this at server start so the first real tick does not stall the tick loop."""
    import time

    start = time.perf_counter()
    n = 3
    pos = np.zeros((n, 3), np.float32)
    pos[:, 0] = np.arange(n)
    ori = np.zeros((n, 4), np.float32)
    ori[:, 3] = 1.0
    flags = np.full(n, AvatarFlags.PUBLISH_AUDIO | AvatarFlags.PUBLISH_VIDEO, dtype=np.int64)
    engine = InterestEngine()
    for _ in range(2):  # the second tick has a previous tick to diff against
        res = engine.tick(np.arange(n), pos, ori, flags, np.zeros(n, np.float32))
    for offset in (0, 1 << 30):  # small ids (a bitmap) and large ones (a sort per row)
        lids = res.listener_ids + offset
        keys, _ = pairs.pair_keys(lids, np.ones(n, bool), res.positions, res.forwarded, res.mixed, 0)
    pairs.sorted_member(keys, keys)
    return time.perf_counter() - start


def _r2(r: float) -> np.float32:
    """Inside radius r means d² < _r2(r), both in float32 (the reference decides the same way)."""
    rr = np.float32(r)
    return np.float32(rr * rr)


def _check_params(p: InterestParams) -> None:
    for name in ("forward_radius", "hearing_radius", "video_radius", "position_radius", "hysteresis"):
        v = getattr(p, name)
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"interest params: {name} must be a finite number >= 0, got {v!r}")
    for name in ("max_forwarded", "max_mixed", "video_max", "position_max"):
        if getattr(p, name) < 0:
            raise ValueError(f"interest params: {name} must be >= 0")
    dists = [t.distance for t in p.position_tiers]
    if any(b <= a for a, b in itertools.pairwise(dists)):
        raise ValueError("interest params: position_tiers must have increasing distances")
    if len(p.position_tiers) > 127:
        raise ValueError("interest params: at most 127 position tiers")


def _validated(
    ids: npt.ArrayLike,
    positions: npt.ArrayLike,
    orientations: npt.ArrayLike,
    flags: npt.ArrayLike,
    levels: npt.ArrayLike,
) -> tuple[I64, npt.NDArray[np.float32], I64, npt.NDArray[np.float32]]:
    """The inputs as arrays (ids int64, positions (N, 3) float32, flags int64, levels float32), or
    ValueError saying what is wrong. (Ids' uniqueness is checked by `_IdIndex`.)"""
    a_ids = np.asarray(ids)
    if a_ids.ndim != 1:
        raise ValueError("ids must be a 1-D array")
    n = len(a_ids)
    if n and (not np.issubdtype(a_ids.dtype, np.integer)):
        raise ValueError("ids must be integers")
    out_ids = a_ids.astype(np.int64)
    if n and (out_ids.min() < 0 or out_ids.max() > 0xFFFF_FFFF):
        raise ValueError("ids must be in the uint32 range")
    if n >= (1 << 31) - 1:
        raise ValueError("too many avatars")
    pos = np.asarray(positions, dtype=np.float32)
    pos = pos.reshape(-1, 3) if pos.size else np.zeros((0, 3), np.float32)
    ori = np.asarray(orientations, dtype=np.float32)
    fl = np.asarray(flags).astype(np.int64)
    lv = np.asarray(levels, dtype=np.float32)
    if pos.shape != (n, 3) or ori.reshape(-1).size != 4 * n or fl.shape != (n,) or lv.shape != (n,):
        raise ValueError("positions (N,3), orientations (N,4), flags (N,) and levels (N,) must match ids")
    if not (np.isfinite(pos).all() and np.isfinite(lv).all()):
        raise ValueError("positions and levels must be finite")
    return out_ids, pos, fl, lv


def _order_cell(p: InterestParams) -> float:
    """Cell size of the space order: an eighth of the largest radius, so a listener's neighbours
    span a few dozen cells, consecutive in memory by runs (at least 1 m)."""
    return max(1.0, max(p.forward_radius, p.hearing_radius, p.video_radius, p.position_radius) / 8.0)


class _World:
    """One tick's validated arrays, derived masks and zone rules, rows in the engine's order."""

    n: int
    ids: I64
    index: _IdIndex
    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.float32]
    z: npt.NDArray[np.float32]
    visible: BoolA
    pub_a: BoolA
    pub_v: BoolA
    speaking: BoolA
    sflags: npt.NDArray[np.uint8]  # visible | pub_a << 1 | pub_v << 2 | speaking << 3
    group: I64  # privacy label: pairs must share it
    rule_lis: npt.NDArray[np.uint8]  # (rules, n): who hears the rule's sources flat
    rule_ptr: I64
    rule_src: I32
    rule_fwd: npt.NDArray[np.uint8]

    @classmethod
    def build(
        cls,
        ids: I64,
        pos: npt.NDArray[np.float32],
        fl: I64,
        lv: npt.NDArray[np.float32],
        params: InterestParams,
    ) -> _World:
        """From validated inputs (`_validated`), in the engine's row order."""
        w = cls()
        n = len(ids)
        w.ids = ids
        w.index = _IdIndex(w.ids)
        w.n = n
        w.x, w.y, w.z = (np.ascontiguousarray(pos[:, i]) for i in range(3))
        w.visible = (fl & AvatarFlags.HIDDEN) == 0
        w.pub_a = w.visible & ((fl & AvatarFlags.PUBLISH_AUDIO) != 0)
        w.pub_v = w.visible & ((fl & AvatarFlags.PUBLISH_VIDEO) != 0)
        w.speaking = lv >= np.float32(params.speaking_threshold)
        # the same four bits in one byte per avatar, as the incremental pass reads them
        w.sflags = (
            w.visible.astype(np.uint8)
            | (w.pub_a.astype(np.uint8) << 1)
            | (w.pub_v.astype(np.uint8) << 2)
            | (w.speaking.astype(np.uint8) << 3)
        ).astype(np.uint8)
        w._zones(params.zones, pos)
        return w

    def _zones(self, zones: tuple[Zone, ...], pos: npt.NDArray[np.float32]) -> None:
        n = self.n
        closed = [contains(z.shape, pos) for z in zones if z.kind == "private" and not z.open]
        self.group = np.zeros(n, dtype=np.int64)
        if closed and n:
            if len(closed) <= 62:
                for i, inside in enumerate(closed):
                    self.group |= inside.astype(np.int64) << i
            else:
                bits = np.stack(closed, axis=1)
                _, inv = np.unique(np.packbits(bits, axis=1), axis=0, return_inverse=True)
                self.group = inv.reshape(-1).astype(np.int64)
        lis, srcs, fwd = [], [], []
        for z in zones:
            if z.kind == "stage":
                aud = contains(z.audience, pos) if z.audience is not None else np.ones(n, dtype=bool)
                lis.append(aud)
                srcs.append(np.flatnonzero(contains(z.shape, pos) & self.pub_a))
            elif z.kind == "meeting":
                mem = contains(z.shape, pos)
                lis.append(mem)
                srcs.append(np.flatnonzero(mem & self.pub_a))
            else:
                continue
            fwd.append(z.delivery == "forward")
        self.rule_lis = np.zeros((len(lis), n), dtype=np.uint8)
        for i, m in enumerate(lis):
            self.rule_lis[i] = m
        self.rule_ptr = np.zeros(len(srcs) + 1, dtype=np.int64)
        np.cumsum([len(s) for s in srcs], out=self.rule_ptr[1:])
        self.rule_src = (np.concatenate(srcs) if srcs else np.zeros(0)).astype(np.int32)
        self.rule_fwd = np.array(fwd, dtype=np.uint8)
