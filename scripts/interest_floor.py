"""The floor under any exact interest engine on the bench worlds (`benches/bench_interest.py`).

Two pieces of work that an exact engine handing out every listener's sets each tick cannot avoid:

- **pairs**: every listener must look at each moved avatar that could cross one of its
  boundaries. Here only one boundary per listener, its position separator (the distance of its
  128th position peer, taken from a real tick), and only the movers within it (plus the longest
  step) now: a grid of the movers, and per listener each such mover's old and new squared
  distance against the separator. One parallel compiled pass; the grid build is counted;
- **output**: writing the ids of every listener's entries (~200 per listener with the default
  caps), as the engine's CSR sets do (they also carry source rows and attributes).

The real engine does much more (four categories, caps, refills, tiers, hysteresis, zones, the
movers' own rows, diffs). Its tick against this floor says how far tuning could take it, and
whether a target is reachable at all: see docs/bench/interest.md. A dev tool, not run by CI:

    python scripts/interest_floor.py [--avatars 10000 100000] [--world plaza festival expo]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
from numba import njit, prange

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benches"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, installed or not

from bench_interest import Scenario

from interest import grid
from interest.incremental import _cells, _d2

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


@njit(parallel=True, nogil=True)
def _pairs(ox, oy, oz, x, y, z, g, sep2, step, out):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Per listener: the movers that could cross its separator (within it, plus the longest step,
    now), each judged once: old and new squared distance against the separator."""
    start, sx, sy, sz, srow = g[5], g[6], g[7], g[8], g[9]
    for li in prange(len(x)):
        qx = x[li]
        qy = y[li]
        qz = z[li]
        bar = sep2[li]
        r = np.sqrt(bar) + step
        r2 = r * r
        cx0, cx1, cz0, cz1, nx = _cells(g, qx, qz, r2)  # the engine's block of cells
        crossing = 0
        for iz in range(cz0, cz1 + 1):
            for ix in range(cx0, cx1 + 1):
                c = iz * nx + ix
                for k in range(start[c], start[c + 1]):
                    s = srow[k]
                    dn = _d2(sx, sy, sz, qx, qy, qz, k)
                    do = _d2(ox, oy, oz, qx, qy, qz, s)
                    near = np.int64(dn <= r2) & np.int64(s != li)
                    crossing += near & (np.int64(dn <= bar) ^ np.int64(do <= bar))
        out[li] = crossing


@njit(parallel=True, nogil=True)
def _output(cnt, src, ids, ptr, out):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    for a in prange(len(cnt)):
        o = ptr[a]
        for j in range(cnt[a]):
            out[o + j] = ids[src[a, j]]


def floor(world: str, n: int, ticks: int) -> tuple[float, float, int, int, int]:
    """(min pair pass ms, min output ms, movers, pairs crossing a separator, entries) on one
    bench world."""
    s = Scenario(world, n)
    res = s.tick()  # the real sets: their sizes, and each listener's position separator
    p = s.params
    reach = p.position_radius * (1.0 + p.hysteresis)
    counts = np.diff(res.positions.indptr)
    # a listener's position separator: the distance of its farthest position peer (the cap binds)
    sep2 = np.zeros(n, np.float32)
    rows = np.repeat(np.arange(n), counts)
    peer_rows = np.argsort(s.ids)[np.searchsorted(np.sort(s.ids), res.positions.ids)]
    d2 = ((s.pos[peer_rows] - s.pos[rows]) ** 2).sum(axis=1).astype(np.float32)
    np.maximum.at(sep2, rows, d2)
    sep2[counts < p.position_max] = np.float32(reach * reach)
    best_pairs = np.inf
    pairs = crossing = 0
    for _ in range(ticks):
        old = s.pos.copy()
        s.move()
        moved = (old != s.pos).any(axis=1)
        step = float(np.sqrt(((old - s.pos) ** 2).sum(axis=1).max()))
        x, y, z = (np.ascontiguousarray(s.pos[:, i]) for i in range(3))
        ox, oy, oz = (np.ascontiguousarray(old[:, i]) for i in range(3))
        out = np.zeros(n, np.int64)
        t0 = time.perf_counter()
        rank = np.arange(n, dtype=np.uint64)
        # the movers where they are now, cells sized like the engine's grid of changed sources
        g = grid.build(x, y, z, moved, rank, np.zeros(n, np.int64), moved, p.position_max, reach, n)
        _pairs(ox, oy, oz, x, y, z, g, sep2, step, out)
        best_pairs = min(best_pairs, time.perf_counter() - t0)
        pairs = int(moved.sum())
        crossing = int(out.sum())
    entries = res.forwarded.nnz + res.mixed.nnz + res.video.nnz + res.positions.nnz
    width = max(1, int(entries / max(n, 1)) + 1)
    cnt = np.full(n, entries // max(n, 1), np.int32)
    src = np.random.default_rng(1).integers(0, n, (n, width)).astype(np.int32)
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(cnt, out=ptr[1:])
    ids = s.ids.astype(np.int64)
    best_out = np.inf
    for _ in range(ticks):
        t0 = time.perf_counter()
        dst = np.empty(int(ptr[-1]), np.int64)
        _output(cnt, src, ids, ptr, dst)
        best_out = min(best_out, time.perf_counter() - t0)
    return best_pairs * 1e3, best_out * 1e3, pairs, crossing, entries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--avatars", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--world", nargs="+", default=["plaza", "festival", "expo"])
    ap.add_argument("--ticks", type=int, default=10)
    args = ap.parse_args()
    for n in args.avatars:
        for world in args.world:
            pairs_ms, out_ms, movers, crossing, entries = floor(world, n, args.ticks)
            print(
                f"{world:9s} {n:>7,}  movers {movers:>6,} (pairs crossing {crossing:>6,})  "
                f"pair pass {pairs_ms:7.2f} ms  "
                f"output ({entries:,} entries) {out_ms:7.2f} ms  sum {pairs_ms + out_ms:7.2f} ms"
            )


if __name__ == "__main__":
    main()
