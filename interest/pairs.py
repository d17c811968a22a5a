"""Peer pairs: whom each listener places (receives poses of), as sorted keys, for enter/exit/poses.

A listener places its position peers at their tier, and everyone it hears (forwarded or mixed: a
stage far away) at the slowest tier: whoever you hear is someone you may place. The world diffs
these pairs tick to tick to send "enter" and "exit", so they are sorted keys
``listener_id << 32 | peer_id``, one array for the whole world.

Why compiled: at 5,000 listeners that is a million keys a tick. numpy did it with a global stable
argsort plus a binary search per key for the diff (≈ 50 ms and ≈ 25 ms of a 190 ms tick). Here
each listener's few hundred peers are ordered on their own (in parallel, listeners in id order so
the concatenation is sorted): with a bitmap of id ranks when ids are small (the world's are), else
a sort per row. Membership in last tick's keys is one merge.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt
from numba import njit, prange

from interest.csr import CsrSets

I64 = npt.NDArray[np.int64]
_HEARD = 255  # tier code of a peer that is only heard: sorts after every position tier (< 127)


def pair_keys(
    listener_ids: I64,
    listening: npt.NDArray[np.bool_],
    positions: CsrSets,
    forwarded: CsrSets,
    mixed: CsrSets,
    last_tier: int,
) -> tuple[I64, npt.NDArray[np.int16]]:
    """Sorted unique pair keys of the `listening` rows, and each pair's position tier (a position
    peer keeps its own tier; a peer only heard gets `last_tier`). The sets are one tick's engine
    output, so every peer is one of `listener_ids`. Keys are int64, so listener ids must be below
    2**31 (the world hands out small ones)."""
    rows = np.flatnonzero(listening)
    order = rows[np.argsort(listener_ids[rows], kind="stable")].astype(np.int64)
    width = positions.counts()[order] + forwarded.counts()[order] + mixed.counts()[order]
    off = np.zeros(len(order) + 1, np.int64)
    np.cumsum(width, out=off[1:])
    buf = np.empty(int(off[-1]), np.int64)
    unique = np.zeros(len(order) + 1, np.int64)
    rows_of = (
        order, off, buf, unique[1:],
        positions.indptr, positions.ids, positions.attr.view(np.int8),
        forwarded.indptr, forwarded.ids, mixed.indptr, mixed.ids,
    )  # fmt: skip
    n = len(listener_ids)
    top = int(listener_ids.max()) if n else 0
    if n and top < 4 * n + 4096:  # small ids (the world's): order peers with a bitmap of id ranks
        sorted_ids = np.sort(listener_ids).astype(np.int64)
        rank_of = np.full(top + 1, -1, np.int64)
        rank_of[sorted_ids] = np.arange(n)
        _bitmap_rows(*rows_of, rank_of, sorted_ids, _chunks(len(order)))
    else:
        _sorted_rows(*rows_of)
    np.cumsum(unique, out=unique)
    keys = np.empty(int(unique[-1]), np.int64)
    tiers = np.empty(int(unique[-1]), np.int16)
    _fill(order, listener_ids.astype(np.int64), off, buf, unique, last_tier, keys, tiers)
    return keys, tiers


@njit(cache=True, nogil=True, parallel=True)
def _sorted_rows(order, off, buf, unique, pp, pid, ptier, fp, fid, mp, mid):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Per listener: its peers as ``peer << 8 | tier code``, sorted, one entry per peer (the
    smallest code: the position tier over the heard copy), left at the start of its slice."""
    for k in prange(len(order)):
        a = order[k]
        o = off[k]
        m = 0
        for j in range(pp[a], pp[a + 1]):
            buf[o + m] = (pid[j] << 8) | np.int64(ptier[j])
            m += 1
        for j in range(fp[a], fp[a + 1]):
            buf[o + m] = (fid[j] << 8) | _HEARD
            m += 1
        for j in range(mp[a], mp[a + 1]):
            buf[o + m] = (mid[j] << 8) | _HEARD
            m += 1
        seg = buf[o : o + m]
        seg.sort()
        u = 0
        last = -1
        for j in range(m):
            v = seg[j]
            if v >> 8 != last:
                last = v >> 8
                seg[u] = v
                u += 1
        unique[k] = u


@njit(cache=True, nogil=True, parallel=True)
def _bitmap_rows(order, off, buf, unique, pp, pid, ptier, fp, fid, mp, mid, rank_of, sorted_ids, chunks):  # type: ignore[no-untyped-def]  # pragma: no cover
    """`_sorted_rows` for small ids: each peer sets its id rank's bit in a per-chunk bitmap and
    keeps its smallest tier code; reading the set bits in order gives the row sorted by id, in
    O(entries + n/64) instead of a sort."""
    n = len(sorted_ids)
    for ch in prange(len(chunks) - 1):
        bits = np.zeros(n // 64 + 1, np.uint64)
        code = np.full(n, _HEARD, np.int64)
        for k in range(chunks[ch], chunks[ch + 1]):
            a = order[k]
            lo = n
            hi = -1
            for part in range(3):
                ptr = pp if part == 0 else (fp if part == 1 else mp)
                ids = pid if part == 0 else (fid if part == 1 else mid)
                for j in range(ptr[a], ptr[a + 1]):
                    r = rank_of[ids[j]]
                    bits[r >> 6] |= np.uint64(1) << np.uint64(r & 63)
                    if part == 0:
                        code[r] = min(code[r], np.int64(ptier[j]))
                    lo = min(lo, r)
                    hi = max(hi, r)
            o = off[k]
            u = 0
            for w in range(lo >> 6, (hi >> 6) + 1 if hi >= 0 else 0):
                word = bits[w]
                while word:
                    b = np.int64(_lowest_bit(word))
                    word &= word - np.uint64(1)
                    r = (w << 6) + b
                    buf[o + u] = (sorted_ids[r] << 8) | code[r]
                    u += 1
                    code[r] = _HEARD
                bits[w] = 0
            unique[k] = u


@njit(cache=True, nogil=True, inline="always")
def _lowest_bit(word):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Index of the lowest set bit of a non-zero uint64."""
    b = 0
    if not (word & np.uint64(0xFFFFFFFF)):
        word >>= np.uint64(32)
        b += 32
    if not (word & np.uint64(0xFFFF)):
        word >>= np.uint64(16)
        b += 16
    if not (word & np.uint64(0xFF)):
        word >>= np.uint64(8)
        b += 8
    if not (word & np.uint64(0xF)):
        word >>= np.uint64(4)
        b += 4
    if not (word & np.uint64(0x3)):
        word >>= np.uint64(2)
        b += 2
    if not (word & np.uint64(0x1)):
        b += 1
    return b


def _chunks(m: int) -> npt.NDArray[np.int64]:
    """Bounds of parallel chunks over m rows: a few per thread, each with its own bitmap."""
    k = max(1, min(m // 64 + 1, 4 * numba.get_num_threads()))
    return np.linspace(0, m, k + 1).astype(np.int64)


@njit(cache=True, nogil=True, parallel=True)
def _fill(order, lids, off, buf, unique, last_tier, keys, tiers):  # type: ignore[no-untyped-def]  # pragma: no cover
    for k in prange(len(order)):
        lid = lids[order[k]] << 32
        o = off[k]
        u = unique[k]
        for j in range(unique[k + 1] - u):
            v = buf[o + j]
            keys[u + j] = lid | (v >> 8)
            t = v & 255
            tiers[u + j] = last_tier if t == _HEARD else t


@njit(cache=True, nogil=True)
def sorted_member(needles: I64, haystack: I64) -> npt.NDArray[np.bool_]:  # pragma: no cover - compiled
    """``np.isin(needles, haystack)`` for two sorted arrays: one merge, no search per needle."""
    out = np.zeros(len(needles), np.bool_)
    j = 0
    h = len(haystack)
    for i in range(len(needles)):
        v = needles[i]
        while j < h and haystack[j] < v:
            j += 1
        out[i] = j < h and haystack[j] == v
    return out
