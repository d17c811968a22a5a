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
order, entries in priority order; `TickResult.diffs` has added / removed / changed per category.

Cost: every tick is a full, vectorized recompute (spatial grid queries in `interest.grid`, then a
per-row join with the last tick for hysteresis, tiers and diffs). Flat zone pairs are enumerated
explicitly: |audience| x |stage publishers| and |members|² per meeting, so keep meetings small.
Measured times are in docs/bench/interest.md (far from the targets; see there why).

Determinism: every choice is a total order on integer keys (see `interest.grid`), so the same input
gives the same output. Orientations are accepted (and validated) but not used yet: reserved for
view-dependent video.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from interest.csr import CsrDiff, CsrSets
from interest.flags import AvatarFlags
from interest.grid import (
    EMPTY,
    compact_rows,
    key_d2,
    key_rank,
    make_keys,
    nearest,
    radius_sq,
    smallest_k,
)
from interest.params import InterestParams, Zone
from interest.shapes import contains

CATEGORIES = ("forwarded", "mixed", "video", "positions")
I64 = npt.NDArray[np.int64]
Keys = npt.NDArray[np.uint64]
BoolA = npt.NDArray[np.bool_]

_JOIN_CHUNK = 4096
# Priority classes (bits 62-63 of a key): bit 63 = "not flat", bit 62 = "not speaking".
_FLAT_SPEAKER, _FLAT, _SPEAKER, _PLAIN = 0, 1, 2, 3
_NOT_FLAT = _SPEAKER  # mixed ignores speaking: every non-flat entry is in this class


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


@dataclass(frozen=True)
class _Prev:
    """Last tick's entries of one category, mapped to this tick: listener row, source row (-1 if the
    source left), source id, attribute."""

    rows: I64
    src: I64
    ids: I64
    attr: npt.NDArray[np.generic]
    col: I64  # position in last tick's row


class InterestEngine:
    """Stateful per-tick interest computation. State is keyed by avatar id, so rows may reorder,
    appear and disappear between ticks."""

    def __init__(self, params: InterestParams | None = None) -> None:
        self._params = params or InterestParams()
        _check_params(self._params)
        self._prev_ids: I64 = np.zeros(0, dtype=np.int64)
        self._prev_sets: dict[str, CsrSets] = {c: CsrSets.empty(0) for c in CATEGORIES}

    @property
    def params(self) -> InterestParams:
        return self._params

    def set_params(self, params: InterestParams) -> None:
        """Hot reload: takes effect on the next tick; previous sets are kept so diffs stay correct."""
        _check_params(params)
        self._params = params

    def reset(self) -> None:
        self._prev_ids = np.zeros(0, dtype=np.int64)
        self._prev_sets = {c: CsrSets.empty(0) for c in CATEGORIES}

    def tick(
        self,
        ids: npt.ArrayLike,
        positions: npt.ArrayLike,
        orientations: npt.ArrayLike,
        flags: npt.ArrayLike,
        levels: npt.ArrayLike,
    ) -> TickResult:
        w = _World.build(ids, positions, orientations, flags, levels, self._params)
        prev = {c: w.map_prev(self._prev_ids, self._prev_sets[c]) for c in CATEGORIES}
        fwd = w.forwarded(prev["forwarded"])
        mixed = w.mixed(fwd, prev["forwarded"], prev["mixed"])
        video = w.plain(w.pub_v, self._params.video_max, self._params.video_radius, prev["video"])
        p = self._params
        positions = w.plain(w.visible, p.position_max, p.position_radius, prev["positions"])
        keys = {"forwarded": fwd, "mixed": mixed, "video": video, "positions": positions}
        joins = {c: w.join(prev[c], keys[c]) for c in CATEGORIES}
        tiers = w.tiers(positions, _prev_attr(prev["positions"], joins["positions"][0], -1))
        sets = {
            "forwarded": w.to_csr(fwd, w.flat_attr(fwd[fwd != EMPTY])),
            "mixed": w.to_csr(mixed, w.flat_attr(mixed[mixed != EMPTY])),
            "video": w.to_csr(video, np.zeros(int((video != EMPTY).sum()), dtype=bool)),
            "positions": w.to_csr(positions, tiers),
        }
        diffs = {c: w.diff(prev[c], sets[c], *joins[c]) for c in CATEGORIES}
        self._prev_ids = w.ids.copy()
        self._prev_sets = sets
        return TickResult(
            listener_ids=w.ids,
            forwarded=sets["forwarded"],
            mixed=sets["mixed"],
            video=sets["video"],
            positions=sets["positions"],
            diffs=TickDiffs(**diffs),
        )


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


class _World:
    """One tick's arrays and derived masks. Rows are the input order; keys carry id ranks."""

    p: InterestParams
    n: int
    ids: I64
    sorted_ids: I64
    pos: npt.NDArray[np.float32]
    xyz: tuple[npt.NDArray[np.float32], ...]  # contiguous columns: 1-D gathers are much cheaper
    order: I64  # rank -> row
    rank: I64  # row -> rank
    visible: BoolA
    pub_a: BoolA
    pub_v: BoolA
    speaking: BoolA
    group: I64  # privacy label: pairs must share it
    flat_rules: list[tuple[BoolA, BoolA, bool]]
    flat_rows: I64
    flat_src: I64
    flat_fwd: BoolA
    row_of_id: I64 | None

    @classmethod
    def build(
        cls,
        ids: npt.ArrayLike,
        positions: npt.ArrayLike,
        orientations: npt.ArrayLike,
        flags: npt.ArrayLike,
        levels: npt.ArrayLike,
        params: InterestParams,
    ) -> _World:
        w = cls()
        w.p = params
        a_ids = np.asarray(ids)
        if a_ids.ndim != 1:
            raise ValueError("ids must be a 1-D array")
        n = len(a_ids)
        if n and (not np.issubdtype(a_ids.dtype, np.integer)):
            raise ValueError("ids must be integers")
        w.ids = a_ids.astype(np.int64)
        if n and (w.ids.min() < 0 or w.ids.max() > 0xFFFF_FFFF):
            raise ValueError("ids must be in the uint32 range")
        if n >= (1 << 31) - 1:
            raise ValueError("too many avatars")
        pos = np.asarray(positions, dtype=np.float32)
        w.pos = np.ascontiguousarray(pos.reshape(-1, 3)) if pos.size else np.zeros((0, 3), np.float32)
        ori = np.asarray(orientations, dtype=np.float32)
        fl = np.asarray(flags).astype(np.int64)
        lv = np.asarray(levels, dtype=np.float32)
        if w.pos.shape != (n, 3) or ori.reshape(-1).size != 4 * n or fl.shape != (n,) or lv.shape != (n,):
            raise ValueError("positions (N,3), orientations (N,4), flags (N,) and levels (N,) must match ids")
        if not (np.isfinite(w.pos).all() and np.isfinite(lv).all()):
            raise ValueError("positions and levels must be finite")
        w.order = np.argsort(w.ids, kind="stable")
        w.sorted_ids = w.ids[w.order]
        if n > 1 and (np.diff(w.sorted_ids) == 0).any():
            raise ValueError("ids must be unique")
        w.rank = np.empty(n, dtype=np.int64)
        w.rank[w.order] = np.arange(n, dtype=np.int64)
        # Ids are small integers handed out by the world: a dense id -> row table beats a binary search.
        top = int(w.sorted_ids[-1]) if n else 0
        w.row_of_id = None
        if n and top < 4 * n + 4096:
            w.row_of_id = np.full(top + 1, -1, dtype=np.int64)
            w.row_of_id[w.ids] = np.arange(n, dtype=np.int64)
        w.n = n
        w.xyz = tuple(np.ascontiguousarray(w.pos[:, i]) for i in range(3))
        w.visible = (fl & AvatarFlags.HIDDEN) == 0
        w.pub_a = w.visible & ((fl & AvatarFlags.PUBLISH_AUDIO) != 0)
        w.pub_v = w.visible & ((fl & AvatarFlags.PUBLISH_VIDEO) != 0)
        w.speaking = lv >= np.float32(params.speaking_threshold)
        w._zones(params.zones)
        return w

    # ---- zones -------------------------------------------------------------------------------

    def _zones(self, zones: tuple[Zone, ...]) -> None:
        n = self.n
        closed = [contains(z.shape, self.pos) for z in zones if z.kind == "private" and not z.open]
        if not closed or n == 0:
            self.group = np.zeros(n, dtype=np.int64)
        else:
            bits = np.stack(closed, axis=1)
            _, inv = np.unique(np.packbits(bits, axis=1), axis=0, return_inverse=True)
            self.group = inv.reshape(-1).astype(np.int64)
        # Per flat zone: (listener mask, source mask, forward?)
        self.flat_rules = []
        for z in zones:
            if z.kind == "stage":
                aud = contains(z.audience, self.pos) if z.audience is not None else np.ones(n, dtype=bool)
                performers = contains(z.shape, self.pos) & self.pub_a
                self.flat_rules.append((aud, performers, z.delivery == "forward"))
            elif z.kind == "meeting":
                mem = contains(z.shape, self.pos)
                self.flat_rules.append((mem, mem & self.pub_a, z.delivery == "forward"))
        rows, srcs, fwd = [], [], []
        for lis, src, forward in self.flat_rules:
            li, si = np.nonzero(lis)[0], np.nonzero(src)[0]
            r, s = np.repeat(li, len(si)), np.tile(si, len(li))
            keep = (r != s) & (self.group[r] == self.group[s])
            rows.append(r[keep])
            srcs.append(s[keep])
            fwd.append(np.full(int(keep.sum()), forward))
        if rows:
            r, s, f = np.concatenate(rows), np.concatenate(srcs), np.concatenate(fwd)
            if len(self.flat_rules) > 1:  # one entry per pair; "forward" wins
                o = np.lexsort((~f, s, r))
                r, s, f = r[o], s[o], f[o]
                first = np.ones(len(r), dtype=bool)
                first[1:] = (r[1:] != r[:-1]) | (s[1:] != s[:-1])
                r, s, f = r[first], s[first], f[first]
        else:
            r = s = np.zeros(0, dtype=np.int64)
            f = np.zeros(0, dtype=bool)
        self.flat_rows, self.flat_src, self.flat_fwd = r, s, f

    def is_flat(self, rows: I64, src: I64) -> BoolA:
        out = np.zeros(rows.shape, dtype=bool)
        for lis, s, _ in self.flat_rules:
            out |= lis[rows] & s[src]
        return out & (rows != src) & (self.group[rows] == self.group[src])

    # ---- helpers -----------------------------------------------------------------------------

    def src_rows(self, keys: Keys) -> I64:
        """Row of the source of each key (-1 for EMPTY)."""
        valid = keys != EMPTY
        return np.where(valid, self.order[np.where(valid, key_rank(keys), 0)], -1)

    def near(self, mask: BoolA, k: int, radius: float) -> Keys:
        src = np.nonzero(mask)[0]
        return nearest(
            self.pos[src], self.rank[src], self.group[src], self.pos, self.rank, self.group, k, radius
        )

    def pair_d2(self, rows: I64, src: I64) -> npt.NDArray[np.float32]:
        """Same float32 formula as `grid.squared_distance`, with 1-D gathers."""
        x, y, z = self.xyz
        dx, dy, dz = x[src] - x[rows], y[src] - y[rows], z[src] - z[rows]
        return (dx * dx + dy * dy) + dz * dz

    def pair_keys(self, rows: I64, src: I64, prio: int | npt.NDArray[np.uint64]) -> Keys:
        return make_keys(self.pair_d2(rows, src), self.rank[src], prio)

    def hysteresis_extras(
        self, prev: _Prev, eligible: BoolA, radius: float, flat_excluded: bool
    ) -> tuple[I64, I64]:
        """Previous members that are still eligible and inside the widened radius but not the radius
        (those inside the radius are found by the spatial query)."""
        ok = prev.src >= 0
        r, s = prev.rows[ok], prev.src[ok]
        d2 = self.pair_d2(r, s)
        r2, wide2 = radius_sq(radius), radius_sq(radius * (1.0 + self.p.hysteresis))
        keep = eligible[s] & (self.group[r] == self.group[s]) & (r != s) & (d2 >= r2) & (d2 < wide2)
        if flat_excluded:
            keep &= ~self.is_flat(r, s)
        return r[keep], s[keep]

    # ---- categories --------------------------------------------------------------------------

    def forwarded(self, prev: _Prev) -> Keys:
        k = self.p.max_forwarded
        n = self.n
        if k == 0 or n == 0:
            return np.full((n, 0), EMPTY, dtype=np.uint64)
        rows = np.arange(n, dtype=np.int64)[:, None]
        # Flat "mix" pairs are never forwarded but can take places among the nearest; ask for that
        # many more. (Flat "forward" pairs need no extra: each one removed also fills a slot.)
        mix_only = self.flat_rows[~self.flat_fwd]
        extra = int(np.bincount(mix_only).max()) if len(mix_only) else 0
        a_s = self.near(self.pub_a & self.speaking, k + extra, self.p.forward_radius)
        a_a = self.near(self.pub_a, k + extra, self.p.forward_radius)
        s_s, s_a = self.src_rows(a_s), self.src_rows(a_a)
        a_a[(s_a >= 0) & self.speaking[np.maximum(s_a, 0)]] = EMPTY  # already in a_s
        if self.flat_rules:
            a_s[(s_s >= 0) & self.is_flat(np.broadcast_to(rows, s_s.shape), np.maximum(s_s, 0))] = EMPTY
            a_a[(s_a >= 0) & self.is_flat(np.broadcast_to(rows, s_a.shape), np.maximum(s_a, 0))] = EMPTY
        a_s[a_s != EMPTY] |= np.uint64(_SPEAKER) << np.uint64(62)
        a_a[a_a != EMPTY] |= np.uint64(_PLAIN) << np.uint64(62)
        base = smallest_k(np.hstack([a_s, a_a]), k)
        fr, fs = self.flat_rows[self.flat_fwd], self.flat_src[self.flat_fwd]
        hr, hs = self.hysteresis_extras(prev, self.pub_a, self.p.forward_radius, True)
        er = np.concatenate([fr, hr])
        es = np.concatenate([fs, hs])
        flat = np.concatenate([np.ones(len(fr), bool), np.zeros(len(hr), bool)])
        prio = (np.where(flat, _FLAT_SPEAKER, _SPEAKER) + np.where(self.speaking[es], 0, 1)).astype(np.uint64)
        return _merge_extra(base, er, self.pair_keys(er, es, prio), k)

    def mixed(self, fwd: Keys, prev_fwd: _Prev, prev_mixed: _Prev) -> Keys:
        k = self.p.max_mixed
        n = self.n
        if k == 0 or n == 0:
            return np.full((n, 0), EMPTY, dtype=np.uint64)
        kf = fwd.shape[1]
        a = self.near(self.pub_a, k + kf, self.p.hearing_radius)
        s = self.src_rows(a)
        rows = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], s.shape)
        drop = s < 0
        if self.flat_rules:
            drop |= self.is_flat(rows, np.maximum(s, 0))
        fwd_src = self.src_rows(fwd)
        if kf and (fwd_src >= 0).any():
            # Spatial forwarded entries are all inside the widened forward radius, and `a` is sorted
            # by distance, so only its first columns can hold them.
            wide2 = radius_sq(self.p.forward_radius * (1.0 + self.p.hysteresis))
            c = int((key_d2(a) < wide2).sum(axis=1).max())
            if c:
                hit = (s[:, :c, None] == np.where(fwd_src >= 0, fwd_src, -2)[:, None, :]).any(axis=2)
                drop[:, :c] |= hit
        a = a.copy()
        a[drop] = EMPTY
        a[~drop] |= np.uint64(_NOT_FLAT) << np.uint64(62)
        base = compact_rows(a, k)
        # Flat pairs that did not get a forwarded slot.
        fr, fs = self.flat_rows, self.flat_src
        if len(fr):
            fk = self.pair_keys(fr, fs, np.where(self.speaking[fs], 0, 1).astype(np.uint64))
            o = np.lexsort((fk, fr))
            fr, fs, ff = fr[o], fs[o], self.flat_fwd[o]
            # Flat "forward" pairs fill forwarded first, in this order, up to the cap.
            run = np.cumsum(ff) - 1
            first_of_row = np.searchsorted(fr, fr)
            before = np.where(first_of_row > 0, np.cumsum(ff)[np.maximum(first_of_row - 1, 0)], 0)
            fwd_rank = run - before  # index of each "forward" pair within its row's flat list
            keep = ~ff | (fwd_rank >= kf)
            fr, fs = fr[keep], fs[keep]
        both = _Prev(
            np.concatenate([prev_fwd.rows, prev_mixed.rows]),
            np.concatenate([prev_fwd.src, prev_mixed.src]),
            np.concatenate([prev_fwd.ids, prev_mixed.ids]),
            np.concatenate([prev_fwd.attr, prev_mixed.attr]),
            np.concatenate([prev_fwd.col, prev_mixed.col]),
        )
        hr, hs = self.hysteresis_extras(both, self.pub_a, self.p.hearing_radius, True)
        if len(hr):
            pk = hr * n + hs
            pk = np.unique(pk)
            hr, hs = pk // n, pk % n
            fsrc_rows = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], fwd_src.shape)
            fwd_pairs = (fsrc_rows * n + fwd_src)[fwd_src >= 0]
            nf = ~np.isin(hr * n + hs, fwd_pairs)
            hr, hs = hr[nf], hs[nf]
        er = np.concatenate([fr, hr])
        es = np.concatenate([fs, hs])
        prio = np.concatenate([np.zeros(len(fr), np.uint64), np.full(len(hr), _NOT_FLAT, np.uint64)])
        return _merge_extra(base, er, self.pair_keys(er, es, prio), k)

    def plain(self, eligible: BoolA, k: int, radius: float, prev: _Prev) -> Keys:
        n = self.n
        if k == 0 or n == 0:
            return np.full((n, 0), EMPTY, dtype=np.uint64)
        base = self.near(eligible, k, radius)
        hr, hs = self.hysteresis_extras(prev, eligible, radius, False)
        return _merge_extra(base, hr, self.pair_keys(hr, hs, 0), k)

    # ---- outputs -----------------------------------------------------------------------------

    def flat_attr(self, keys: Keys) -> BoolA:
        return (keys >> np.uint64(63)) == 0

    def to_csr(self, keys: Keys, attr: npt.NDArray[np.generic]) -> CsrSets:
        """`attr` is aligned with the valid keys in row-major order."""
        valid = keys != EMPTY
        indptr = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(valid.sum(axis=1), out=indptr[1:])
        src = self.order[key_rank(keys[valid])]
        return CsrSets(indptr, self.ids[src], attr)

    def tiers(self, keys: Keys, prev_tier: npt.NDArray[np.int64]) -> npt.NDArray[np.int8]:
        """Tier of each valid key (row-major order), given the pair's previous tier (-1 if new)."""
        tiers = self.p.position_tiers
        valid = keys != EMPTY
        if not tiers:
            return np.zeros(int(valid.sum()), dtype=np.int8)
        dist = np.array([t.distance for t in tiers], dtype=np.float64)
        d = np.sqrt(key_d2(keys[valid]).astype(np.float64))
        raw = np.minimum(np.searchsorted(dist, d, side="right"), len(dist) - 1)
        old = np.clip(prev_tier, 0, len(dist) - 1)
        keep_old = (prev_tier >= 0) & (raw > prev_tier) & (d < dist[old] * (1.0 + self.p.hysteresis))
        return np.where(keep_old, prev_tier, raw).astype(np.int8)

    def map_prev(self, prev_ids: I64, sets: CsrSets) -> _Prev:
        """Last tick's entries of a category, keyed by id, mapped onto this tick's rows."""
        lrow = self.lookup(prev_ids)
        counts = sets.counts()
        rows = np.repeat(lrow, counts)
        col = np.arange(sets.nnz, dtype=np.int64) - np.repeat(sets.indptr[:-1], counts)
        keep = rows >= 0
        ids = sets.ids[keep]
        return _Prev(rows[keep], self.lookup(ids), ids, sets.attr[keep], col[keep])

    def lookup(self, ids: I64) -> I64:
        """Current row of each id, -1 if absent."""
        if self.n == 0 or len(ids) == 0:
            return np.full(len(ids), -1, dtype=np.int64)
        if self.row_of_id is not None:
            table = self.row_of_id
            inside = ids < len(table)
            return np.where(inside, table[np.where(inside, ids, 0)], -1)
        i = np.minimum(np.searchsorted(self.sorted_ids, ids), self.n - 1)
        return np.where(self.sorted_ids[i] == ids, self.order[i], -1)

    def join(self, prev: _Prev, keys: Keys) -> tuple[I64, BoolA]:
        """Match this tick's entries (valid `keys`, row-major) with last tick's by (row, id).

        Returns the index of the matching previous entry for each new entry (-1 if none) and, per
        previous entry, whether it is still there. Rows are short, so sorting each row of
        [previous ids | new ids] is much cheaper than one global sort of all pairs.
        """
        n = self.n
        valid = keys != EMPTY
        nnz = int(valid.sum())
        if nnz == 0 or len(prev.rows) == 0:
            return np.full(nnz, -1, dtype=np.int64), np.zeros(len(prev.rows), dtype=bool)
        big = np.int64(np.iinfo(np.int64).max)
        wp = int(prev.col.max()) + 1
        pm = np.full((n, wp), big, dtype=np.int64)
        pm[prev.rows, prev.col] = prev.ids << 1
        pidx = np.zeros((n, wp), dtype=np.int64)
        pidx[prev.rows, prev.col] = np.arange(len(prev.rows), dtype=np.int64)
        new_ids = np.where(valid, self.ids[self.src_rows(keys)], 0)
        nm = np.where(valid, (new_ids << 1) | 1, big)
        # Index of a valid new entry in row-major order.
        flat_index = np.cumsum(valid.ravel()) - 1
        p_parts, n_parts = [], []
        for lo in range(0, n, _JOIN_CHUNK):  # chunks of rows keep the sort cache-sized
            hi = min(n, lo + _JOIN_CHUNK)
            v = np.hstack([pm[lo:hi], nm[lo:hi]])
            order = np.argsort(v, axis=1)
            s = np.take_along_axis(v, order, axis=1)
            match = (s[:, :-1] != big) & ((s[:, :-1] >> 1) == (s[:, 1:] >> 1))
            r, j = np.nonzero(match)
            p_parts.append(pidx[lo + r, order[r, j]])
            n_col = order[r, j + 1] - wp
            n_parts.append(flat_index[(lo + r) * keys.shape[1] + n_col])
        p_i = np.concatenate(p_parts)
        n_i = np.concatenate(n_parts)
        prev_of_new = np.full(nnz, -1, dtype=np.int64)
        prev_of_new[n_i] = p_i
        matched = np.zeros(len(prev.rows), dtype=bool)
        matched[p_i] = True
        return prev_of_new, matched

    def diff(self, prev: _Prev, new: CsrSets, prev_of_new: I64, matched: BoolA) -> CsrDiff:
        n = self.n
        new_rows = new.row_of_entries()
        added = prev_of_new < 0
        changed = np.zeros(len(added), dtype=bool)
        if len(prev.attr):
            changed = ~added & (prev.attr[np.maximum(prev_of_new, 0)] != new.attr)
        gone = ~matched
        return CsrDiff(
            added=CsrSets.from_rows(new_rows[added], new.ids[added], new.attr[added], n),
            removed=CsrSets.from_rows(prev.rows[gone], prev.ids[gone], prev.attr[gone], n),
            changed=CsrSets.from_rows(new_rows[changed], new.ids[changed], new.attr[changed], n),
        )


def _prev_attr(prev: _Prev, prev_of_new: I64, missing: int) -> I64:
    found = prev_of_new >= 0
    out = np.full(len(prev_of_new), missing, dtype=np.int64)
    out[found] = prev.attr[prev_of_new[found]].astype(np.int64)
    return out


def _merge_extra(base: Keys, rows: I64, keys: Keys, k: int) -> Keys:
    """Merge extra (row, key) entries into an ascending, EMPTY-padded (n, k) key matrix."""
    if len(rows) == 0 or k == 0:
        return base
    keep = keys < base[rows, k - 1]
    rows, keys = rows[keep], keys[keep]
    if len(rows) == 0:
        return base
    touched, inv = np.unique(rows, return_inverse=True)
    o = np.lexsort((keys, inv))
    inv, keys = inv[o], keys[o]
    counts = np.bincount(inv, minlength=len(touched))
    col = np.arange(len(inv)) - np.repeat(np.cumsum(counts) - counts, counts)
    pad = np.full((len(touched), int(counts.max())), EMPTY, dtype=np.uint64)
    pad[inv, col] = keys
    out = base.copy()
    out[touched] = smallest_k(np.hstack([base[touched], pad]), k)
    return out
