"""Compiled (numba) per-listener pass: search, cap, hysteresis, tiers and diffs in one sweep.

For each listener, independently (so listeners run in parallel chunks):

1. mark, in a per-chunk scratch array indexed by source row, what each source was for this listener
   last tick (category bits, previous flat flag and tier) and which sources are flat zone pairs;
2. search each category's grid ring by ring outward from the listener's cell, offering every source
   to a small sorted top-k buffer keyed exactly by the rules' priority order; stop once a ring's
   minimum distance can no longer beat any buffer (full and its worst is nearer) or is beyond the
   widened radius;
3. assemble forwarded and mixed (flat pairs first), compute tiers, and mark each new entry as
   kept / added / changed; flag every previous entry that is gone (removed);
4. clear the marks it set, so the scratch is clean for the next listener.

Keys are uint64: bit 63 "not a speaker" (forwarded only), bits 32-62 the float32 bit pattern of the
squared distance (non-negative floats sort like their bits), bits 0-31 the source id; so "speakers
first, then nearest, then lowest id" is plain integer order.

Ring bounds are lower bounds in the X-Z plane (the 3-D distance is never smaller), shrunk by a
relative 1e-5 so float32 rounding of d² can never make the search stop too early.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

# Scratch bits, per (listener, source row).
_PF = 1  # forwarded last tick
_PFA = 2  # ... and flat
_PM = 4  # mixed last tick
_PMA = 8  # ... and flat
_PV = 16  # video last tick
_PP = 32  # position peer last tick (tier in the tier scratch)
_FL = 64  # flat pair this tick
_FLF = 128  # ... delivered forward
_NF = 256  # forwarded this tick
_NM = 512
_NV = 1024
_NP = 2048

_SHRINK = 1.0 - 1e-5
_TOP = np.uint64(63)
_HI = np.uint64(32)

KEPT, ADDED, CHANGED = 0, 1, 2


_RANK = np.uint64(0x7FFF_FFFF)
_NOT_SPEAKING = np.uint64(1) << _TOP


@intrinsic
def _f32_bits(typingctx, x):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """The bit pattern of a float32 (a register bitcast: no store and reload through memory)."""
    sig = types.uint32(types.float32)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@intrinsic
def _bits_f32(typingctx, x):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    sig = types.float32(types.uint32)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


def _prefetch_codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]  # pragma: no cover
    """``llvm.prefetch`` (read, keep in every cache level) of ``arr[idx...]``."""
    aryty = signature.args[0]
    ary = context.make_array(aryty)(context, builder, args[0])
    ptr = cgutils.get_item_pointer(context, builder, aryty, ary, list(args[1:]), wraparound=False)
    i8p = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0"
    )
    builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
    return context.get_dummy_value()


@intrinsic
def _prefetch(typingctx, arr, i, j):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Ask for the cache line of ``arr[i, j]`` ahead of its use. Rows read in an order that is not
    their memory order (the caller's order, see `compact`) are too short for the hardware
    prefetcher to find; a few rows ahead, this nearly halves the time of such a pass."""
    return types.void(arr, i, j), _prefetch_codegen


_AHEAD = 4  # rows prefetched ahead


@njit(cache=True, nogil=True, inline="always")
def _fetch_row(arr, a, k, per_line):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Prefetch ``arr[a, :k]`` (`per_line` entries to a 64-byte cache line)."""
    for j in range(0, k, per_line):
        _prefetch(arr, a, j)


@njit(cache=True, nogil=True, inline="always")
def _key(d2, rank):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    return (np.uint64(_f32_bits(d2)) << _HI) | rank


@njit(cache=True, nogil=True, inline="always")
def _key_d2(key):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    return _bits_f32(np.uint32((key >> _HI) & _RANK))


@njit(cache=True, nogil=True)
def _select(buf, cnt, k):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Rearrange buf[:cnt] so that buf[:k] are its k smallest keys and buf[k-1] is their maximum."""
    lo = 0
    hi = cnt - 1
    kk = k - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        # median of three as pivot
        if buf[mid] < buf[lo]:
            buf[mid], buf[lo] = buf[lo], buf[mid]
        if buf[hi] < buf[lo]:
            buf[hi], buf[lo] = buf[lo], buf[hi]
        if buf[hi] < buf[mid]:
            buf[hi], buf[mid] = buf[mid], buf[hi]
        pivot = buf[mid]
        i = lo
        j = hi
        while i <= j:
            while buf[i] < pivot:
                i += 1
            while buf[j] > pivot:
                j -= 1
            if i <= j:
                buf[i], buf[j] = buf[j], buf[i]
                i += 1
                j -= 1
        if kk <= j:
            hi = j
        elif kk >= i:
            lo = i
        else:
            break
    return k


@njit(cache=True, nogil=True)
def _sort_keys(b, n, tmp, counts):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Sort b[:n] ascending: a bucket pass by squared distance (read as float32 from the key's high
    word) and an insertion sort that fixes what is left. ~4x faster than numba's quicksort here;
    the insertion pass alone makes it correct whatever the buckets."""
    if n > 24:
        f = b.view(np.float32)  # little-endian: f[2i + 1] is key i's squared distance
        lo = f[1]
        hi = lo
        for i in range(1, n):
            h = f[2 * i + 1]
            lo = min(lo, h)
            hi = max(hi, h)
        scale = (n - 1) / (np.float64(hi) - np.float64(lo) + 1e-30)
        for i in range(n + 1):
            counts[i] = 0
        for i in range(n):
            counts[int((np.float64(f[2 * i + 1]) - lo) * scale) + 1] += 1
        for i in range(n):
            counts[i + 1] += counts[i]
        for i in range(n):
            bk = int((np.float64(f[2 * i + 1]) - lo) * scale)
            tmp[counts[bk]] = b[i]
            counts[bk] += 1
        for i in range(n):
            b[i] = tmp[i]
    for i in range(1, n):
        v = b[i]
        j = i
        while j > 0 and b[j - 1] > v:
            b[j] = b[j - 1]
            j -= 1
        b[j] = v


_NONE = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


@njit(cache=True, nogil=True)
def _reduce(buf, cnt, cap, ub, fb, counts):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Cut buf[:cnt] (cnt >= cap) back to at least its `cap` smallest keys; returns (count, bar,
    bar's squared distance), the bar being the largest key kept, so never below the cap-th key.

    Usually a histogram of the squared distances (float32 in each key's high word) finds the bin
    of the cap-th key, and every key up to that bin is kept: three linear passes with few
    unpredictable branches (a quickselect costs ~4x more here). Keys with the not-speaking bit, or a
    histogram that would not shrink the buffer enough, take an exact quickselect instead."""
    n = cnt
    exact = cnt <= cap + 8
    if not exact:
        f = buf.view(np.float32)
        lo = f[1]
        hi = lo
        silent = np.uint64(0)
        for i in range(cnt):
            h = f[2 * i + 1]
            lo = min(lo, h)
            hi = max(hi, h)
            silent |= buf[i]
        # A key with the not-speaking bit reads as a negative float, or as -0.0 (not below 0.0)
        # for a source at the listener's very position: test the bit itself.
        if silent >> _TOP:
            exact = True
        else:
            bins = cnt
            scale = (bins - 1) / (np.float64(hi) - np.float64(lo) + 1e-30)
            for i in range(bins):
                counts[i] = 0
            for i in range(cnt):
                counts[int((np.float64(f[2 * i + 1]) - lo) * scale)] += 1
            total = 0
            last = bins - 1
            for bk in range(bins):
                total += counts[bk]
                if total >= cap:
                    last = bk
                    break
            if total > (cnt + cap) // 2:
                exact = True
            else:
                n = 0
                for i in range(cnt):
                    keep = int((np.float64(f[2 * i + 1]) - lo) * scale) <= last
                    buf[n] = buf[i]
                    n += keep
    if exact:
        _select(buf, cnt, cap)
        n = cap
    worst = buf[0]
    for j in range(1, n):
        worst = max(worst, buf[j])
    return n, worst, np.float64(_key_d2(worst))


@njit(cache=True, nogil=True, inline="always")
def _open(cap, worst, worst_d2, wide2, dmin2):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Could a source at squared distance >= dmin2 still enter a buffer whose cap-th key is `worst`
    (`_NONE` while it is not full) at squared distance `worst_d2`?"""
    if cap == 0 or dmin2 >= wide2:
        return False
    if worst == _NONE:
        return True
    if worst >> _TOP:  # worst is a silent source: a farther speaker still beats it
        return True
    return not (worst_d2 < dmin2)


@njit(cache=True, nogil=True)
def _search(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    g, a, qx, qy, qz, ga, mask, speaking,
    ha, capa, r2a, w2a,  # A: forwarded (spatial): audio publishers, speakers first
    hb, capb, r2b, w2b,  # B: hearing: audio publishers
    hc, capc, r2c, w2c, bitc,  # C: a plain category (video or positions): every grid member
    fb, ub, tmp, counts,
):  # fmt: skip
    """One ring search feeding up to three buffers. Candidates are appended unsorted while below a
    buffer's current cap-th key (its bar); a buffer that fills up is cut back to its cap smallest
    (quickselect) and the cut's largest key becomes the bar. Audio buffers skip flat pairs and
    grid members that do not publish audio (`saudio`)."""
    lox, loz, cell, nx, nz, start, sx, sy, sz, srow, srank, sgroup, saudio, _, _ = g
    na = 0
    nb = 0
    nc = 0
    worst_a = _NONE
    worst_b = _NONE
    worst_c = _NONE
    wd_a = np.inf  # squared distance of the bar (inf while not full)
    wd_b = np.inf
    wd_c = np.inf
    size_a = len(ha)
    size_b = len(hb)
    size_c = len(hc)
    wide_a = np.float64(w2a)
    wide_b = np.float64(w2b)
    wide_c = np.float64(w2c)
    fx = (np.float64(qx) - lox) / cell
    fz = (np.float64(qz) - loz) / cell
    cx = int(np.floor(fx))
    cz = int(np.floor(fz))
    ox = (fx - cx) * cell
    oz = (fz - cz) * cell
    off = max(min(min(ox, cell - ox), min(oz, cell - oz)), 0.0)
    # Rings nearer than the grid's rectangle are empty: start at the first one that touches it.
    k = max(max(0, -cx), max(cx - (nx - 1), max(-cz, cz - (nz - 1))))
    while True:
        if capa > 0 and na >= capa and (worst_a == _NONE or na > capa + capa // 2):
            na, worst_a, wd_a = _reduce(ha, na, capa, ub, fb, counts)
        if capb > 0 and nb >= capb and (worst_b == _NONE or nb > capb + capb // 2):
            nb, worst_b, wd_b = _reduce(hb, nb, capb, ub, fb, counts)
        if capc > 0 and nc >= capc and (worst_c == _NONE or nc > capc + capc // 2):
            nc, worst_c, wd_c = _reduce(hc, nc, capc, ub, fb, counts)
        dmin = 0.0 if k == 0 else (k - 1) * cell + off
        dmin2 = dmin * dmin * _SHRINK
        if not (
            _open(capa, worst_a, wd_a, wide_a, dmin2)
            or _open(capb, worst_b, wd_b, wide_b, dmin2)
            or _open(capc, worst_c, wd_c, wide_c, dmin2)
        ):
            break
        z0 = max(cz - k, 0)
        z1 = min(cz + k, nz - 1)
        for iz in range(z0, z1 + 1):
            edge = iz == cz - k or iz == cz + k
            step = 1 if (edge or k == 0) else 2 * k
            ix = cx - k
            while ix <= cx + k:
                c = iz * nx + ix
                if ix >= 0 and ix < nx and start[c] < start[c + 1]:
                    # Skip cells that cannot hold anything any buffer still wants.
                    bx = lox + ix * cell
                    bz = loz + iz * cell
                    dx = max(max(bx - np.float64(qx), np.float64(qx) - (bx + cell)), 0.0)
                    dz = max(max(bz - np.float64(qz), np.float64(qz) - (bz + cell)), 0.0)
                    c2 = (dx * dx + dz * dz) * _SHRINK
                    if (
                        _open(capa, worst_a, wd_a, wide_a, c2)
                        or _open(capb, worst_b, wd_b, wide_b, c2)
                        or _open(capc, worst_c, wd_c, wide_c, c2)
                    ):
                        for i in range(start[c], start[c + 1]):
                            s = srow[i]
                            if s == a or sgroup[i] != ga:
                                continue
                            bits = mask[s]
                            ex = sx[i] - qx
                            ey = sy[i] - qy
                            ez = sz[i] - qz
                            d2 = (ex * ex + ey * ey) + ez * ez
                            fd2 = np.float64(d2)
                            if capc > 0 and fd2 <= wd_c and (d2 < r2c or ((bits & bitc) and d2 < w2c)):
                                key = _key(d2, srank[i])
                                if key < worst_c:  # inline append: a call per candidate costs refcounts
                                    if nc == size_c:
                                        nc, worst_c, wd_c = _reduce(hc, nc, capc, ub, fb, counts)
                                    if key < worst_c:
                                        hc[nc] = key
                                        nc += 1
                            if not saudio[i] or (bits & _FL):
                                continue
                            if (
                                capa > 0
                                and (fd2 <= wd_a or (worst_a >> _TOP))
                                and (d2 < r2a or ((bits & _PF) and d2 < w2a))
                            ):
                                key = _key(d2, srank[i])
                                if not speaking[s]:
                                    key |= _NOT_SPEAKING
                                if key < worst_a:
                                    if na == size_a:
                                        na, worst_a, wd_a = _reduce(ha, na, capa, ub, fb, counts)
                                    if key < worst_a:
                                        ha[na] = key
                                        na += 1
                            if capb > 0 and fd2 <= wd_b and (d2 < r2b or ((bits & (_PF | _PM)) and d2 < w2b)):
                                key = _key(d2, srank[i])
                                if key < worst_b:
                                    if nb == size_b:
                                        nb, worst_b, wd_b = _reduce(hb, nb, capb, ub, fb, counts)
                                    if key < worst_b:
                                        hb[nb] = key
                                        nb += 1
                ix += step
        if cx - k <= 0 and cx + k >= nx - 1 and cz - k <= 0 and cz + k >= nz - 1:
            break  # the block covers the whole grid
        k += 1
    # Sort what is left (the cap smallest and a few more) and keep the first cap.
    _sort_keys(ha, na, tmp, counts)
    _sort_keys(hb, nb, tmp, counts)
    _sort_keys(hc, nc, tmp, counts)
    na = min(na, capa)
    nb = min(nb, capb)
    nc = min(nc, capc)
    return na, nb, nc


@njit(cache=True, nogil=True, parallel=True)
def listener_pass(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    x,
    y,
    z,
    rank,  # uint64[n]: position of each row in id order (keys tie-break by it)
    order,  # int32[n]: rank -> row
    group,
    speaking,
    grid_p,
    grid_a,
    grid_v,
    merged,  # grid_a is grid_p (every visible avatar publishes audio): search once
    radii,  # float32[8]: forward, forward wide, hearing, hearing wide, video, video wide, pos, pos wide
    caps,  # int64[4]: forwarded, mixed, video, positions
    tiers,  # float64[T]
    hysteresis,
    rule_lis,  # uint8[R, n]
    rule_ptr,  # int64[R+1]
    rule_src,  # int32
    rule_fwd,  # uint8[R]
    cur2prev,  # int64[n]
    prev2cur,  # int32[n_prev]
    p_lo,  # 4-tuple of int64: where each previous row's entries start in last tick's CSR
    p_hi,  # 4-tuple of int64: ... and end (output rows are in the caller's order: `interest.order`)
    p_src,  # 4-tuple of int32 (previous rows)
    p_attr,  # 4-tuple of int8
    removed,  # 4-tuple of uint8 flags per previous entry (out)
    out_src,  # 4-tuple of int32[n, cap]
    out_attr,  # 4-tuple of int8[n, cap]
    out_status,  # 4-tuple of int8[n, cap]
    out_cnt,  # int32[4, n]
    over,  # uint8[n] (out): more flat sources than places (their order matters)
    rows,  # int32[R]: the listeners to compute
    chunks,  # int64[C+1]: chunks of `rows`
    max_flat,
):
    n = len(rank)
    kf, km, kv, kp = caps[0], caps[1], caps[2], caps[3]
    n_chunks = len(chunks) - 1
    n_tiers = len(tiers)
    n_rules = len(rule_fwd)
    # Scratch per chunk: the engine makes a few chunks per thread, so zeroing the n-sized marks
    # stays cheap, and hands them out dynamically (numba.parallel_chunksize(1)): on a busy machine
    # a descheduled thread must not leave half of the listeners waiting for it.
    for ch in prange(n_chunks):
        mask = np.zeros(n, np.uint16)
        ptier = np.zeros(n, np.int8)
        fb = np.zeros(2, np.float32)
        hf = np.empty(4 * kf + 16, np.uint64)
        hm = np.empty(4 * (km + kf) + 16, np.uint64)
        hv = np.empty(4 * kv + 16, np.uint64)
        hp = np.empty(4 * kp + 16, np.uint64)
        flat_rows = np.empty(max_flat + 1, np.int32)
        flat_f = np.empty(max_flat + 1, np.uint64)
        flat_m = np.empty(max_flat + 1, np.uint64)
        big = max(max(len(hf), len(hm)), max(max(len(hv), len(hp)), max_flat + 1))
        tmp = np.empty(big, np.uint64)
        counts = np.empty(big + 2, np.int64)
        _listeners(
            chunks[ch], chunks[ch + 1], rows, over, x, y, z, rank, order, group, speaking, grid_p, grid_a,
            grid_v, merged, radii, kf, km, kv, kp, tiers, n_tiers, hysteresis, rule_lis, rule_ptr, rule_src,
            rule_fwd, n_rules, cur2prev, prev2cur, p_lo, p_hi, p_src, p_attr, removed, out_src, out_attr,
            out_status, out_cnt, mask, ptier, fb, fb.view(np.uint32), hf, hm, hv,
            hp, flat_rows, flat_f, flat_m, tmp, counts,
        )  # fmt: skip


@njit(cache=True, nogil=True)
def _listeners(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    lo, hi, rows, over, x, y, z, rank, order, group, speaking, grid_p, grid_a, grid_v, merged, radii,
    kf, km, kv, kp, tiers, n_tiers, hysteresis, rule_lis, rule_ptr, rule_src, rule_fwd,
    n_rules, cur2prev, prev2cur, p_lo, p_hi, p_src, p_attr, removed, out_src, out_attr,
    out_status, out_cnt, mask, ptier, fb, ub, hf, hm, hv, hp, flat_rows, flat_f, flat_m,
    tmp, counts,
):  # fmt: skip
    for ii in range(lo, hi):
        a = rows[ii]
        qx = x[a]
        qy = y[a]
        qz = z[a]
        ga = group[a]
        pr = cur2prev[a]
        # 1. last tick's entries of this listener
        if pr >= 0:
            for c in range(4):
                src = p_src[c]
                att = p_attr[c]
                for j in range(p_lo[c][pr], p_hi[c][pr]):
                    s = prev2cur[src[j]]
                    if s < 0:
                        continue
                    if c == 0:
                        mask[s] |= _PF | (_PFA if att[j] else 0)
                    elif c == 1:
                        mask[s] |= _PM | (_PMA if att[j] else 0)
                    elif c == 2:
                        mask[s] |= _PV
                    else:
                        mask[s] |= _PP
                        ptier[s] = att[j]
        # flat zone pairs
        nflat = 0
        for r in range(n_rules):
            if not rule_lis[r, a]:
                continue
            for j in range(rule_ptr[r], rule_ptr[r + 1]):
                s = rule_src[j]
                if s == a or group[s] != ga:
                    continue
                if not (mask[s] & _FL):
                    mask[s] |= _FL
                    flat_rows[nflat] = s
                    nflat += 1
                if rule_fwd[r]:
                    mask[s] |= _FLF
        # flat entries: forward ones by (speaking, d2, id), mix ones by (d2, id)
        nff = 0
        nfm = 0
        for j in range(nflat):
            s = flat_rows[j]
            ex = x[s] - qx
            ey = y[s] - qy
            ez = z[s] - qz
            d2 = (ex * ex + ey * ey) + ez * ez
            key = _key(d2, rank[s])
            if mask[s] & _FLF:
                if not speaking[s]:
                    key |= _NOT_SPEAKING
                flat_f[nff] = key
                nff += 1
            else:
                flat_m[nfm] = key
                nfm += 1
        _sort_keys(flat_f, nff, tmp, counts)
        over[a] = nff > kf or nfm + max(nff - kf, 0) > km
        # Flat "forward" pairs beyond the cap overflow into the mix, ordered by (d2, id) there.
        take_f = min(nff, kf)
        for j in range(take_f, nff):
            flat_m[nfm] = flat_f[j] & ~_NOT_SPEAKING
            nfm += 1
        _sort_keys(flat_m, nfm, tmp, counts)
        # 2. spatial searches
        cap_fs = kf - take_f
        cap_h = max(km - nfm, 0)
        cap_hb = cap_h + cap_fs if cap_h > 0 else 0
        if merged:  # every visible avatar publishes audio: one search feeds audio and positions
            nfs, nh, npos = _search(
                grid_p, a, qx, qy, qz, ga, mask, speaking,
                hf, cap_fs, radii[0], radii[1], hm, cap_hb, radii[2], radii[3],
                hp, kp, radii[6], radii[7], _PP, fb, ub, tmp, counts,
            )  # fmt: skip
        else:
            nfs, nh, _ = _search(
                grid_a, a, qx, qy, qz, ga, mask, speaking,
                hf, cap_fs, radii[0], radii[1], hm, cap_hb, radii[2], radii[3],
                hp, 0, radii[6], radii[7], _PP, fb, ub, tmp, counts,
            )  # fmt: skip
            _, _, npos = _search(
                grid_p, a, qx, qy, qz, ga, mask, speaking,
                hf, 0, radii[0], radii[1], hm, 0, radii[2], radii[3],
                hp, kp, radii[6], radii[7], _PP, fb, ub, tmp, counts,
            )  # fmt: skip
        _, _, nv = _search(
            grid_v, a, qx, qy, qz, ga, mask, speaking,
            hf, 0, radii[0], radii[1], hm, 0, radii[2], radii[3],
            hv, kv, radii[4], radii[5], _PV, fb, ub, tmp, counts,
        )  # fmt: skip
        # 3. assemble rows, statuses
        of, oa, os_ = out_src[0], out_attr[0], out_status[0]
        cnt = 0
        for j in range(take_f):
            of[a, cnt] = order[flat_f[j] & _RANK]
            oa[a, cnt] = 1
            cnt += 1
        for j in range(nfs):
            of[a, cnt] = order[hf[j] & _RANK]
            oa[a, cnt] = 0
            cnt += 1
        for j in range(cnt):
            s = of[a, j]
            mask[s] |= _NF
            b = mask[s]
            if b & _PF:
                os_[a, j] = CHANGED if ((b & _PFA) != 0) != (oa[a, j] != 0) else KEPT
            else:
                os_[a, j] = ADDED
        out_cnt[0, a] = cnt
        om, ma, ms = out_src[1], out_attr[1], out_status[1]
        cnt = 0
        for j in range(min(nfm, km)):
            om[a, cnt] = order[flat_m[j] & _RANK]
            ma[a, cnt] = 1
            cnt += 1
        for j in range(nh):
            if cnt >= km:
                break
            s = order[hm[j] & _RANK]
            if mask[s] & _NF:
                continue
            om[a, cnt] = s
            ma[a, cnt] = 0
            cnt += 1
        for j in range(cnt):
            s = om[a, j]
            mask[s] |= _NM
            b = mask[s]
            if b & _PM:
                ms[a, j] = CHANGED if ((b & _PMA) != 0) != (ma[a, j] != 0) else KEPT
            else:
                ms[a, j] = ADDED
        out_cnt[1, a] = cnt
        ov, va, vs = out_src[2], out_attr[2], out_status[2]
        for j in range(nv):
            s = order[hv[j] & _RANK]
            ov[a, j] = s
            va[a, j] = 0
            mask[s] |= _NV
            vs[a, j] = KEPT if mask[s] & _PV else ADDED
        out_cnt[2, a] = nv
        op, pa, ps = out_src[3], out_attr[3], out_status[3]
        for j in range(npos):
            key = hp[j]
            s = order[key & _RANK]
            t = 0
            if n_tiers > 0:
                d = np.sqrt(np.float64(_key_d2(key)))
                t = n_tiers - 1
                for i in range(n_tiers):
                    if d < tiers[i]:
                        t = i
                        break
                if mask[s] & _PP:
                    old = ptier[s]
                    if old >= 0 and t > old and d < tiers[min(old, n_tiers - 1)] * (1.0 + hysteresis):
                        t = old
            op[a, j] = s
            pa[a, j] = t
            mask[s] |= _NP
            if mask[s] & _PP:
                ps[a, j] = CHANGED if ptier[s] != t else KEPT
            else:
                ps[a, j] = ADDED
        out_cnt[3, a] = npos
        # removed: previous entries not in the new row
        if pr >= 0:
            for c in range(4):
                src = p_src[c]
                rem = removed[c]
                bit = _NF if c == 0 else (_NM if c == 1 else (_NV if c == 2 else _NP))
                for j in range(p_lo[c][pr], p_hi[c][pr]):
                    s = prev2cur[src[j]]
                    if s < 0 or not (mask[s] & bit):
                        rem[j] = 1
            for c in range(4):
                src = p_src[c]
                for j in range(p_lo[c][pr], p_hi[c][pr]):
                    s = prev2cur[src[j]]
                    if s >= 0:
                        mask[s] = 0
        # 4. clean the scratch
        for j in range(nflat):
            mask[flat_rows[j]] = 0
        for j in range(out_cnt[0, a]):
            mask[of[a, j]] = 0
        for j in range(out_cnt[1, a]):
            mask[om[a, j]] = 0
        for j in range(nv):
            mask[ov[a, j]] = 0
        for j in range(npos):
            mask[op[a, j]] = 0


@njit(cache=True, nogil=True, parallel=True)
def compact(cnt, src, attr, status, ids, dirty, emit):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Fixed-width rows -> CSR sets plus the added and changed CSR diffs. CSR row i is the engine's
    row ``emit[i]`` (the caller's order), with ``cnt[i]`` entries, ``dirty[i]`` if it can hold
    added or changed entries (others are copied without reading their statuses). The rows are
    read out of memory order, so each is prefetched a few rows ahead."""
    n = len(emit)
    ptr = np.zeros(n + 1, np.int64)
    aptr = np.zeros(n + 1, np.int64)
    cptr = np.zeros(n + 1, np.int64)
    for i in prange(n):
        if i + _AHEAD < n and dirty[i + _AHEAD]:
            _fetch_row(status, emit[i + _AHEAD], cnt[i + _AHEAD], 64)
        a = emit[i]
        na = 0
        nc = 0
        if dirty[i]:
            for j in range(cnt[i]):
                st = status[a, j]
                if st == ADDED:
                    na += 1
                elif st == CHANGED:
                    nc += 1
        ptr[i + 1] = cnt[i]
        aptr[i + 1] = na
        cptr[i + 1] = nc
    for i in range(n):
        ptr[i + 1] += ptr[i]
        aptr[i + 1] += aptr[i]
        cptr[i + 1] += cptr[i]
    out_ids = np.empty(ptr[n], np.int64)
    out_src = np.empty(ptr[n], np.int32)
    out_attr = np.empty(ptr[n], np.int8)
    a_ids = np.empty(aptr[n], np.int64)
    a_attr = np.empty(aptr[n], np.int8)
    c_ids = np.empty(cptr[n], np.int64)
    c_attr = np.empty(cptr[n], np.int8)
    for i in prange(n):
        if i + _AHEAD < n:
            b = emit[i + _AHEAD]
            k = cnt[i + _AHEAD]
            _fetch_row(src, b, k, 16)
            _fetch_row(attr, b, k, 64)
            if aptr[i + _AHEAD + 1] > aptr[i + _AHEAD] or cptr[i + _AHEAD + 1] > cptr[i + _AHEAD]:
                _fetch_row(status, b, k, 64)
        a = emit[i]
        o = ptr[i]
        if not (aptr[i + 1] > aptr[i] or cptr[i + 1] > cptr[i]):
            for j in range(cnt[i]):
                s = src[a, j]
                out_ids[o + j] = ids[s]
                out_src[o + j] = s
                out_attr[o + j] = attr[a, j]
            continue
        oa = aptr[i]
        oc = cptr[i]
        for j in range(cnt[i]):
            s = src[a, j]
            sid = ids[s]
            out_ids[o + j] = sid
            out_src[o + j] = s
            out_attr[o + j] = attr[a, j]
            st = status[a, j]
            if st == ADDED:
                a_ids[oa] = sid
                a_attr[oa] = attr[a, j]
                oa += 1
            elif st == CHANGED:
                c_ids[oc] = sid
                c_attr[oc] = attr[a, j]
                oc += 1
    return ptr, out_ids, out_src, out_attr, aptr, a_ids, a_attr, cptr, c_ids, c_attr


@njit(cache=True, nogil=True, parallel=True)
def compact_removed(cur2prev, p_ptr, p_ids, p_attr, flags, dirty):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Previous entries flagged removed, regrouped by current row (previous order within a row).
    Only `dirty` rows can have flags set."""
    n = len(cur2prev)
    ptr = np.zeros(n + 1, np.int64)
    for a in prange(n):
        pr = cur2prev[a]
        c = 0
        if pr >= 0 and dirty[a]:
            for j in range(p_ptr[pr], p_ptr[pr + 1]):
                c += flags[j]
        ptr[a + 1] = c
    for a in range(n):
        ptr[a + 1] += ptr[a]
    out_ids = np.empty(ptr[n], np.int64)
    out_attr = np.empty(ptr[n], np.int8)
    for a in prange(n):
        pr = cur2prev[a]
        o = ptr[a]
        if pr >= 0 and ptr[a + 1] > o:
            for j in range(p_ptr[pr], p_ptr[pr + 1]):
                if flags[j]:
                    out_ids[o] = p_ids[j]
                    out_attr[o] = p_attr[j]
                    o += 1
    return ptr, out_ids, out_attr
