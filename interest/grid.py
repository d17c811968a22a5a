"""A uniform X-Z grid of one set of sources (counting sort into cells), built by a compiled kernel.

Each category searches its own grid (everybody visible for positions, audio publishers, video
publishers), so a sparse set such as video publishers is searched over few cells.

The cell size comes from the *typical* local density of the set (the median, over its members, of
the occupancy of a coarse cell around them): about half the radius that holds the category's cap
there. Listeners in denser or sparser places simply visit fewer or more rings of cells
(`interest.kernels`). The cell table is bounded: a lone avatar far away makes the cells coarser
(more candidates per cell), never the table huge.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numba import njit

# Below this many (listener, source) pairs the grid is a single cell: all pairs, no bookkeeping.
# Tests set it to 0 to exercise the ring search on small worlds.
DENSE_PAIRS = 1 << 16
# Tests may force a cell size (metres) to exercise many rings on tiny worlds.
CELL_OVERRIDE: float | None = None
MAX_GRID_CELLS = 1 << 22
# Cell side = this fraction of the radius that holds the cap at the typical density.
CELL_FRACTION = 0.5
# The typical density is this quantile, over members, of their coarse cell's occupancy.
DENSITY_QUANTILE = 0.75
COARSE_DIV = 2.0

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


class Grid(NamedTuple):
    """Sources sorted by cell: cell c holds items ``start[c]:start[c+1]`` (row-major, x fastest).
    Item arrays are in that order so one cell's sources are contiguous in memory."""

    lox: float
    loz: float
    cell: float
    nx: int
    nz: int
    start: I64
    sx: F32
    sy: F32
    sz: F32
    srow: I32
    srank: npt.NDArray[np.uint64]  # source rank in id order (the keys' tie-break)
    sgroup: I64
    saudio: npt.NDArray[np.uint8]  # member publishes audio (audio buffers skip the others)
    # Height range of the members: cells are 2-D, so a cell's distance bounds are horizontal; an
    # *upper* bound of a member's 3-D distance needs the heights too.
    ylo: float
    yhi: float


@njit(cache=True, nogil=True)
def _typical_density(x: F32, z: F32, rows: I32, coarse: float, q: float) -> float:  # pragma: no cover
    m = len(rows)
    lox = np.inf
    loz = np.inf
    hix = -np.inf
    hiz = -np.inf
    for i in range(m):
        r = rows[i]
        lox = min(lox, float(x[r]))
        loz = min(loz, float(z[r]))
        hix = max(hix, float(x[r]))
        hiz = max(hiz, float(z[r]))
    while ((hix - lox) / coarse + 1.0) * ((hiz - loz) / coarse + 1.0) > 1 << 22:
        coarse *= 2.0
    nx = int((hix - lox) / coarse) + 1
    nz = int((hiz - loz) / coarse) + 1
    count = np.zeros(nx * nz, np.int64)
    cells = np.empty(m, np.int64)
    for i in range(m):
        r = rows[i]
        c = int((float(z[r]) - loz) / coarse) * nx + int((float(x[r]) - lox) / coarse)
        cells[i] = c
        count[c] += 1
    occ = np.empty(m, np.float64)
    for i in range(m):
        occ[i] = count[cells[i]]
    return float(np.quantile(occ, q)) / (coarse * coarse)


@njit(cache=True, nogil=True)
def _fill(  # pragma: no cover - compiled
    x: F32,
    y: F32,
    z: F32,
    rows: I32,
    rank: npt.NDArray[np.uint64],
    group: I64,
    audio: npt.NDArray[np.uint8],
    lox: float,
    loz: float,
    cell: float,
    nx: int,
    nz: int,
) -> tuple[I64, F32, F32, F32, I32, npt.NDArray[np.uint64], I64, npt.NDArray[np.uint8]]:
    m = len(rows)
    start = np.zeros(nx * nz + 1, np.int64)
    cells = np.empty(m, np.int64)
    for i in range(m):
        r = rows[i]
        cx = min(max(int(np.floor((float(x[r]) - lox) / cell)), 0), nx - 1)
        cz = min(max(int(np.floor((float(z[r]) - loz) / cell)), 0), nz - 1)
        c = cz * nx + cx
        cells[i] = c
        start[c + 1] += 1
    for c in range(nx * nz):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    sx = np.empty(m, np.float32)
    sy = np.empty(m, np.float32)
    sz = np.empty(m, np.float32)
    srow = np.empty(m, np.int32)
    srank = np.empty(m, np.uint64)
    sgroup = np.empty(m, np.int64)
    saudio = np.empty(m, np.uint8)
    for i in range(m):
        r = rows[i]
        j = fill[cells[i]]
        fill[cells[i]] = j + 1
        sx[j] = x[r]
        sy[j] = y[r]
        sz[j] = z[r]
        srow[j] = r
        srank[j] = rank[r]
        sgroup[j] = group[r]
        saudio[j] = audio[r]
    return start, sx, sy, sz, srow, srank, sgroup, saudio


def build(
    x: F32,
    y: F32,
    z: F32,
    members: npt.NDArray[np.bool_],
    rank: npt.NDArray[np.uint64],
    group: I64,
    audio: npt.NDArray[np.bool_],
    cap: int,
    radius: float,
    n_listeners: int,
    cell_size: float | None = None,
) -> Grid:
    """The grid of the sources in `members`, with cells sized for `cap` nearest within `radius`
    (or `cell_size` metres)."""
    rows = np.flatnonzero(members).astype(np.int32)
    m = len(rows)
    if m == 0:
        lox = loz = 0.0
        span_x = span_z = 1.0
    else:
        xs, zs = x[rows].astype(np.float64), z[rows].astype(np.float64)
        lox, loz = float(xs.min()), float(zs.min())
        span_x = max(float(xs.max()) - lox, 1e-3)
        span_z = max(float(zs.max()) - loz, 1e-3)
    if CELL_OVERRIDE is not None:
        cell = float(CELL_OVERRIDE)
    elif cell_size is not None:
        cell = cell_size
    elif m == 0 or m * n_listeners <= DENSE_PAIRS or radius <= 0:
        cell = 2.0 * max(span_x, span_z) + 1.0  # one cell
    else:
        density = _typical_density(x, z, rows, max(radius / COARSE_DIV, 1e-3), DENSITY_QUANTILE)
        reach = math.sqrt(max(cap, 1) / (math.pi * max(density, 1e-12)))
        cell = min(max(CELL_FRACTION * reach, radius / 64.0), max(radius, 1e-3))
    cell = max(cell, 1e-3)
    while (span_x / cell + 1.0) * (span_z / cell + 1.0) > MAX_GRID_CELLS:
        cell *= 2.0
    nx = int(span_x // cell) + 1
    nz = int(span_z // cell) + 1
    fill = _fill(x, y, z, rows, rank, group, audio.view(np.uint8), lox, loz, cell, nx, nz)
    ylo = float(y[rows].min()) if m else 0.0
    yhi = float(y[rows].max()) if m else 0.0
    return Grid(lox, loz, cell, nx, nz, *fill, ylo, yhi)
