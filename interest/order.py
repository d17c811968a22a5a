"""Space order: the engine numbers avatars so that neighbours sit next to each other in memory.

Why: every listener reads its ~200 neighbours' positions, flags and scratch marks by their row
number. In the caller's order (join order: random in space) each of those reads is a cache miss
once the world's arrays outgrow the L2 cache. Numbered along a Z-order (Morton) curve of small
cells, a listener's neighbours share a few cache lines, and the next listener's neighbours are
mostly the same ones. Measured on the bench worlds (paired A/B): 100k avatars 21-23% faster, 10k
4-7% (docs/bench/interest.md).

A renumbering is not free (every row is remapped, as when people join and leave), so the order
is kept from tick to tick: those who stay keep their place, joiners go at the end, and the whole
order is redone only when the crowd has drifted (a quarter of a sample has moved more than a cell
from where it was sorted) or joiners make up an eighth of it, and never twice within `_MIN_AGE`
ticks: a crowd that scrambles itself every tick (teleporting bots) must not cost a renumbering
every tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]

_SAMPLE = 1024  # rows checked for drift per tick
_DRIFTED = 0.25  # re-sort when this share of the sample is more than a cell away from where it was
_JOINED = 0.125  # ... or when this share of the rows joined since the sort (appended at the end)
_MIN_AGE = 32  # ticks an order lasts at least
_BITS = 21  # cell coordinates per axis in the Morton code (2 x 21 bits)


@dataclass(frozen=True)
class SpaceOrder:
    """Internal row k is the caller's row ``perm[k]``. `ids` are the caller's ids this order was
    made for; `x`, `z` where each internal row was when it was placed (sorted or appended);
    `sorted_at` the tick of the last sort."""

    ids: I64
    perm: I64
    x: F32
    z: F32
    cell: float
    appended: int
    sorted_at: int

    @cached_property
    def inverse(self) -> I64:
        """The internal row of each caller row (kept: an order usually lasts many ticks)."""
        inv = np.empty(len(self.perm), np.int64)
        inv[self.perm] = np.arange(len(self.perm), dtype=np.int64)
        return inv


def sorted_order(ids: I64, x: F32, z: F32, cell: float, tick: int = 0) -> SpaceOrder:
    """A fresh order: rows along a Z-order curve of `cell`-sized squares in plan view (ties keep
    the caller's order, so the same input gives the same order)."""
    perm = np.argsort(morton(x, z, cell), kind="stable").astype(np.int64)
    return SpaceOrder(ids, perm, x[perm], z[perm], cell, 0, tick)


def next_order(
    prev: SpaceOrder | None, ids: I64, rows_of: I64 | None, x: F32, z: F32, cell: float, tick: int
) -> SpaceOrder:
    """This tick's order, given last tick's (`tick` counts the engine's ticks). `rows_of` is the
    caller row of each of last tick's internal ids (-1: left), needed only when the caller's ids
    changed (else None)."""
    n = len(ids)
    if prev is None or prev.cell != cell or n == 0:
        return sorted_order(ids, x, z, cell, tick)
    if rows_of is None:  # the same ids in the same caller rows
        order = prev
    else:
        stay = rows_of >= 0
        kept = rows_of[stay]
        joined = np.ones(n, dtype=bool)
        joined[kept] = False
        new_rows = np.flatnonzero(joined)
        perm = np.concatenate([kept, new_rows])
        px = np.concatenate([prev.x[stay], x[new_rows]])
        pz = np.concatenate([prev.z[stay], z[new_rows]])
        order = SpaceOrder(ids, perm, px, pz, cell, prev.appended + len(new_rows), prev.sorted_at)
    if tick - order.sorted_at >= _MIN_AGE and (order.appended > _JOINED * n or _drifted(order, x, z)):
        return sorted_order(ids, x, z, cell, tick)
    return order


def _drifted(order: SpaceOrder, x: F32, z: F32) -> bool:
    """Whether a strided sample of rows has moved far enough from where it was placed that the
    order no longer keeps neighbours together."""
    n = len(order.perm)
    step = max(1, n // _SAMPLE)
    k = np.arange(0, n, step)
    rows = order.perm[k]
    far = (np.abs(x[rows] - order.x[k]) > order.cell) | (np.abs(z[rows] - order.z[k]) > order.cell)
    return bool(far.mean() > _DRIFTED)


def morton(x: F32, z: F32, cell: float) -> npt.NDArray[np.uint64]:
    """Z-order code of each point's cell (cells counted from the smallest coordinate; far-flung
    points are clamped onto the last cell, which costs locality, not correctness)."""
    top = (1 << _BITS) - 1
    code = np.zeros(len(x), np.uint64)
    if not len(x):
        return code
    for shift, v in ((0, x), (1, z)):
        c = np.clip((v.astype(np.float64) - float(v.min())) / cell, 0, top).astype(np.uint64)
        code |= _spread(c) << np.uint64(shift)
    return code


def _spread(v: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The bits of v (up to 32) moved to the even bit positions."""
    for shift, mask in (
        (16, 0x0000FFFF0000FFFF),
        (8, 0x00FF00FF00FF00FF),
        (4, 0x0F0F0F0F0F0F0F0F),
        (2, 0x3333333333333333),
        (1, 0x5555555555555555),
    ):
        v = (v | (v << np.uint64(shift))) & np.uint64(mask)
    return v
