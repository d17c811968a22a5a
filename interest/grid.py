"""Capped nearest-neighbour queries on a uniform grid, vectorized over all queries at once.

Every candidate pair gets one sortable uint64 *key*::

    bits 62-63  priority class (0 sorts first; the engine uses it for flat zone audio and speakers)
    bits 31-61  the float32 bit pattern of the squared distance (positive floats sort like their bits)
    bits  0-30  the source's *rank*: its position in id order, so equal distances break ties by id

so "nearest first, ties by id" is plain integer order, and a row of candidates can be cut with
``np.partition`` and ``np.sort`` along axis 1 instead of a Python loop.

Why a grid and not a k-d tree: the cell size is chosen from the density so that a 3x3 block usually
holds the k nearest; a query whose k-th neighbour lies beyond the block's guaranteed coverage (sparse
area) is simply re-run with a wider block. The loop is over block sizes and cell offsets, never over
avatars.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

EMPTY = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
RANK_BITS = 31
RANK_MASK = np.uint64((1 << RANK_BITS) - 1)
D2_SHIFT = np.uint64(RANK_BITS)
PRIO_SHIFT = np.uint64(62)
MAX_GRID_CELLS = 1 << 22
CHUNK_ROWS = 2048
# Below this many (query, source) pairs a single all-pairs block beats the grid's bookkeeping.
DENSE_PAIRS = 1 << 20

Keys = npt.NDArray[np.uint64]
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


def squared_distance(a: F32, b: F32) -> F32:
    """Squared distance in float32, summed x, then y, then z: the one formula every radius test uses
    (the test reference uses the same order, so boundary cases agree bit for bit)."""
    d = a - b
    return (d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1]) + d[..., 2] * d[..., 2]


def radius_sq(r: float) -> np.float32:
    """Inside radius r means d² < radius_sq(r)."""
    rr = np.float32(r)
    return np.float32(rr * rr)


def make_keys(d2: F32, rank: I64, prio: int | npt.NDArray[np.uint64] = 0) -> Keys:
    k = (d2.astype(np.float32).view(np.uint32).astype(np.uint64) << D2_SHIFT) | rank.astype(np.uint64)
    if not (np.isscalar(prio) and prio == 0):
        k |= np.asarray(prio, dtype=np.uint64) << PRIO_SHIFT
    return k


def key_rank(keys: Keys) -> I64:
    return (keys & RANK_MASK).astype(np.int64)


def key_d2(keys: Keys) -> F32:
    return ((keys >> D2_SHIFT) & np.uint64(0x7FFF_FFFF)).astype(np.uint32).view(np.float32)


def compact_rows(m: Keys, width: int) -> Keys:
    """Drop EMPTY holes from each row of an ascending key matrix, keeping order; pad to `width`."""
    valid = m != EMPTY
    out = np.full((m.shape[0], width), EMPTY, dtype=np.uint64)
    col = np.cumsum(valid, axis=1) - 1
    keep = valid & (col < width)
    rows = np.nonzero(keep)[0]
    out[rows, col[keep]] = m[keep]
    return out


def smallest_k(m: Keys, k: int) -> Keys:
    """Per row, the k smallest keys in ascending order (EMPTY-padded)."""
    if k <= 0:
        return np.zeros((m.shape[0], 0), dtype=np.uint64)
    if m.shape[1] > k:
        m = np.partition(m, k - 1, axis=1)[:, :k]
    m = np.sort(m, axis=1)
    if m.shape[1] < k:
        m = np.hstack([m, np.full((m.shape[0], k - m.shape[1]), EMPTY, dtype=np.uint64)])
    return m


def nearest(
    src_pos: F32,
    src_rank: I64,
    src_group: I64,
    q_pos: F32,
    q_rank: I64,
    q_group: I64,
    k: int,
    radius: float,
) -> Keys:
    """For each query, the keys of the `k` nearest sources with d < `radius` in the same group (the
    engine's privacy label), excluding the query itself (same rank). Returns an (n_queries, k) matrix,
    ascending per row, EMPTY-padded.

    Cells are sized for the densest part of the world; each query starts with a block just wide
    enough for its local density (so a packed crowd and its sparse outskirts both stay cheap), and a
    query whose k-th neighbour is not provably inside its block is retried with a block twice as wide.
    """
    n = len(q_pos)
    out = np.full((n, max(k, 0)), EMPTY, dtype=np.uint64)
    if n == 0 or k <= 0 or len(src_pos) == 0 or radius <= 0:
        return out
    r2 = radius_sq(radius)
    if n * len(src_pos) <= DENSE_PAIRS:
        return smallest_k(_all_pairs(src_pos, src_rank, src_group, q_pos, q_rank, q_group, r2), k)
    grid = _Grid(src_pos, src_rank, src_group, q_pos, q_group, k, radius)
    max_level = max(1, math.ceil(radius / grid.cell))  # this block covers the whole radius
    level = np.minimum(grid.start_level(q_pos, k), max_level)
    pending = np.arange(n, dtype=np.int64)
    while pending.size:
        lv = level[pending]
        next_pending = []
        for current in np.unique(lv):
            rows = pending[lv == current]
            # Chunks of rows keep the padded candidate matrices small (memory bound, cache friendly).
            best = np.concatenate(
                [
                    smallest_k(grid.candidates(q_pos[c], q_rank[c], q_group[c], int(current), r2), k)
                    for c in np.array_split(rows, max(1, math.ceil(len(rows) / CHUNK_ROWS)))
                ]
            )
            coverage = int(current) * grid.cell
            if current >= max_level:
                done = np.ones(len(rows), dtype=bool)
            else:
                # Complete if the k-th neighbour is strictly inside the block's guaranteed coverage.
                kth = best[:, k - 1]
                cov2 = np.float32(coverage * coverage * (1.0 - 1e-5))
                done = (kth != EMPTY) & (key_d2(kth) < cov2)
            out[rows[done]] = best[done]
            retry = rows[~done]
            level[retry] = np.minimum(level[retry] * 2, max_level)
            next_pending.append(retry)
        pending = np.concatenate(next_pending)
    return out


def _all_pairs(
    src_pos: F32, src_rank: I64, src_group: I64, q_pos: F32, q_rank: I64, q_group: I64, r2: np.float32
) -> Keys:
    """Key matrix (n_queries, n_sources) of every pair, EMPTY where excluded."""
    d2 = squared_distance(q_pos[:, None, :], src_pos[None, :, :])
    keys = make_keys(d2, np.broadcast_to(src_rank[None, :], d2.shape))
    drop = (d2 >= r2) | (q_rank[:, None] == src_rank[None, :]) | (q_group[:, None] != src_group[None, :])
    keys[drop] = EMPTY
    return keys


class _Grid:
    """Sources bucketed by (group, cell) with a counting layout: `start[c]`, `count[c]`."""

    def __init__(
        self, src_pos: F32, src_rank: I64, src_group: I64, q_pos: F32, q_group: I64, k: int, radius: float
    ):
        xz = src_pos[:, [0, 2]].astype(np.float64)
        lo = np.minimum(xz.min(axis=0), q_pos[:, [0, 2]].min(axis=0)) - 1e-3
        hi = np.maximum(xz.max(axis=0), q_pos[:, [0, 2]].max(axis=0)) + 1e-3
        span = np.maximum(hi - lo, 1e-3)
        self.n_groups = int(max(src_group.max(), q_group.max())) + 1
        self.coarse = radius / 2.0
        self.coarse_counts, self.coarse_keys = _coarse_counts(xz, self.coarse)
        densest = float(self.coarse_counts.max()) / (self.coarse * self.coarse)
        cell = min(radius, max(radius / 64.0, _radius_for_k(densest, k) / 2.0))
        # Keep the dense cell table bounded (one avatar far away must not blow it up): coarser
        # cells, even wider than the radius, only cost more candidates.
        while math.ceil(span[0] / cell) * math.ceil(span[1] / cell) * self.n_groups > MAX_GRID_CELLS:
            cell *= 2.0
        self.cell = cell
        self.lo = lo
        self.nx = max(1, math.ceil(span[0] / cell))
        self.nz = max(1, math.ceil(span[1] / cell))
        cx, cz = self._cells(xz)
        index = (src_group * self.nz + cz) * self.nx + cx
        order = np.argsort(index, kind="stable")
        counts = np.bincount(index, minlength=self.n_groups * self.nx * self.nz)
        self.count = counts
        self.start = np.cumsum(counts) - counts
        sorted_pos = src_pos[order]
        self.sx = np.ascontiguousarray(sorted_pos[:, 0])
        self.sy = np.ascontiguousarray(sorted_pos[:, 1])
        self.sz = np.ascontiguousarray(sorted_pos[:, 2])
        self.srank = src_rank[order].astype(np.uint64)

    def start_level(self, q_pos: F32, k: int) -> I64:
        """Per query, the block half-width (in cells) expected to hold its k nearest, from the
        density of the coarse cell around it."""
        key = _coarse_key(q_pos[:, [0, 2]].astype(np.float64), self.coarse)
        i = np.minimum(np.searchsorted(self.coarse_keys, key), len(self.coarse_keys) - 1)
        count = np.where(self.coarse_keys[i] == key, self.coarse_counts[i], 0)
        density = np.maximum(count, 1) / (self.coarse * self.coarse)
        reach = np.sqrt(max(k, 1) / (np.pi * density)) * 1.1
        return np.maximum(1, np.ceil(reach / self.cell)).astype(np.int64)

    def _cells(self, xz: npt.NDArray[np.float64]) -> tuple[I64, I64]:
        c = np.floor((xz - self.lo) / self.cell).astype(np.int64)
        return c[:, 0], c[:, 1]

    def candidates(self, q_pos: F32, q_rank: I64, q_group: I64, level: int, r2: np.float32) -> Keys:
        """Key matrix (n, W) of every source in the (2L+1)² block around each query (EMPTY if beyond
        the radius, or the query itself)."""
        n = len(q_pos)
        d = np.arange(-level, level + 1)
        dx, dz = (a.ravel() for a in np.meshgrid(d, d, indexing="ij"))
        # Skip cells that cannot hold anything inside the radius.
        gap = np.hypot(np.maximum(np.abs(dx) - 1, 0), np.maximum(np.abs(dz) - 1, 0)) * self.cell
        near = gap * gap < float(r2)
        dx, dz = dx[near], dz[near]
        cx, cz = self._cells(q_pos[:, [0, 2]].astype(np.float64))
        ncx = cx[:, None] + dx[None, :]
        ncz = cz[:, None] + dz[None, :]
        valid = (ncx >= 0) & (ncx < self.nx) & (ncz >= 0) & (ncz < self.nz)
        cidx = np.where(valid, (q_group[:, None] * self.nz + ncz) * self.nx + ncx, 0)
        cnt = np.where(valid, self.count[cidx], 0).ravel()
        start = self.start[cidx].ravel()
        total = int(cnt.sum())
        per_row = cnt.reshape(n, -1).sum(axis=1)
        width = int(per_row.max()) if n else 0
        m = np.full((n, max(width, 1)), EMPTY, dtype=np.uint64)
        if total == 0:
            return m
        run_begin = np.cumsum(cnt) - cnt
        arange = np.arange(total, dtype=np.int64)
        src = np.repeat(start - run_begin, cnt) + arange
        row = np.repeat(np.arange(n, dtype=np.int64), per_row)
        col = arange - np.repeat(np.cumsum(per_row) - per_row, per_row)
        ddx = self.sx[src]
        ddx -= q_pos[:, 0][row]
        ddx *= ddx
        ddy = self.sy[src]
        ddy -= q_pos[:, 1][row]
        ddy *= ddy
        ddz = self.sz[src]
        ddz -= q_pos[:, 2][row]
        ddz *= ddz
        d2 = ddx
        d2 += ddy
        d2 += ddz
        rank = self.srank[src]
        keys = d2.view(np.uint32).astype(np.uint64)
        keys <<= D2_SHIFT
        keys |= rank
        keys[(d2 >= r2) | (rank == q_rank.astype(np.uint64)[row])] = EMPTY
        m.ravel()[row * m.shape[1] + col] = keys
        return m


def _coarse_key(xz: npt.NDArray[np.float64], coarse: float) -> I64:
    c = np.floor(xz / coarse).astype(np.int64)
    return c[:, 0] * 4_000_037 + c[:, 1]


def _coarse_counts(xz: npt.NDArray[np.float64], coarse: float) -> tuple[I64, I64]:
    """Sources per coarse cell (side `coarse`): a cheap local density map."""
    keys, counts = np.unique(_coarse_key(xz, coarse), return_counts=True)
    return counts.astype(np.int64), keys


def _radius_for_k(density: float, k: int) -> float:
    """The radius of a disc holding about k sources at `density` (per m²), with a little margin."""
    return math.sqrt(max(k, 1) / (math.pi * max(density, 1e-12))) * 1.1
