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
from numba import njit, prange

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


@njit(cache=True, nogil=True, inline="always")
def _key(bits: np.uint32, sid: np.uint64) -> np.uint64:  # pragma: no cover - compiled
    return (np.uint64(bits) << _HI) | sid


@njit(cache=True, nogil=True, inline="always")
def _insert(keys, rows, d2s, cnt, cap, key, row, d2):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Insert into an ascending buffer of at most `cap` keys; returns the new count."""
    if cnt == cap:
        if key >= keys[cap - 1]:
            return cnt
        j = cap - 1
    else:
        j = cnt
        cnt += 1
    while j > 0 and keys[j - 1] > key:
        keys[j] = keys[j - 1]
        rows[j] = rows[j - 1]
        d2s[j] = d2s[j - 1]
        j -= 1
    keys[j] = key
    rows[j] = row
    d2s[j] = d2
    return cnt


@njit(cache=True, nogil=True, inline="always")
def _open(cnt, cap, keys, d2s, wide2, dmin2):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Could a source at squared distance >= dmin2 still enter this buffer?"""
    if cap == 0 or dmin2 >= wide2:
        return False
    if cnt < cap:
        return True
    if keys[cap - 1] >> _TOP:  # worst is a silent source: a farther speaker still beats it
        return True
    return not (np.float64(d2s[cap - 1]) < dmin2)


@njit(cache=True, nogil=True)
def _search(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    g,
    a,
    qx,
    qy,
    qz,
    ga,
    mask,
    speaking,
    audio,
    # buffer A: plain category, or forwarded (spatial) for audio
    ka,
    ra,
    da,
    capa,
    r2a,
    w2a,
    bita,
    # buffer B (audio only): hearing
    kb,
    rb,
    db,
    capb,
    r2b,
    w2b,
    fb,
    ub,
):
    lox, loz, cell, nx, nz, start, sx, sy, sz, srow, sid, sgroup = g
    na = 0
    nb = 0
    wide_a = np.float64(w2a)
    wide_b = np.float64(w2b) if audio else -1.0
    fx = (np.float64(qx) - lox) / cell
    fz = (np.float64(qz) - loz) / cell
    cx = int(np.floor(fx))
    cz = int(np.floor(fz))
    ox = (fx - cx) * cell
    oz = (fz - cz) * cell
    off = min(min(ox, cell - ox), min(oz, cell - oz))
    if off < 0.0:
        off = 0.0
    # Rings nearer than the grid's rectangle are empty: start at the first one that touches it.
    k = max(max(0, -cx), max(cx - (nx - 1), max(-cz, cz - (nz - 1))))
    while True:
        dmin = 0.0 if k == 0 else (k - 1) * cell + off
        dmin2 = dmin * dmin * _SHRINK
        if not (_open(na, capa, ka, da, wide_a, dmin2) or (audio and _open(nb, capb, kb, db, wide_b, dmin2))):
            break
        z0 = max(cz - k, 0)
        z1 = min(cz + k, nz - 1)
        for iz in range(z0, z1 + 1):
            edge = iz == cz - k or iz == cz + k
            step = 1 if edge else 2 * k
            if k == 0:
                step = 1
            ix = cx - k
            while ix <= cx + k:
                if ix >= 0 and ix < nx:
                    # Skip cells that cannot hold anything any buffer still wants.
                    bx = lox + ix * cell
                    bz = loz + iz * cell
                    dx = max(max(bx - np.float64(qx), np.float64(qx) - (bx + cell)), 0.0)
                    dz = max(max(bz - np.float64(qz), np.float64(qz) - (bz + cell)), 0.0)
                    c2 = (dx * dx + dz * dz) * _SHRINK
                    if _open(na, capa, ka, da, wide_a, c2) or (audio and _open(nb, capb, kb, db, wide_b, c2)):
                        c = iz * nx + ix
                        for i in range(start[c], start[c + 1]):
                            s = srow[i]
                            if s == a or sgroup[i] != ga:
                                continue
                            bits = mask[s]
                            if audio and (bits & _FL):
                                continue
                            ex = sx[i] - qx
                            ey = sy[i] - qy
                            ez = sz[i] - qz
                            d2 = (ex * ex + ey * ey) + ez * ez
                            if capa > 0 and (d2 < r2a or ((bits & bita) and d2 < w2a)):
                                fb[0] = d2
                                key = _key(ub[0], sid[i])
                                if audio and not speaking[s]:
                                    key |= np.uint64(1) << _TOP
                                na = _insert(ka, ra, da, na, capa, key, s, d2)
                            if audio and capb > 0 and (d2 < r2b or ((bits & (_PF | _PM)) and d2 < w2b)):
                                fb[0] = d2
                                nb = _insert(kb, rb, db, nb, capb, _key(ub[0], sid[i]), s, d2)
                ix += step
        if cx - k <= 0 and cx + k >= nx - 1 and cz - k <= 0 and cz + k >= nz - 1:
            break  # the block covers the whole grid
        k += 1
    return na, nb


@njit(cache=True, nogil=True, parallel=True)
def listener_pass(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    x,
    y,
    z,
    ids,
    group,
    speaking,
    grid_p,
    grid_a,
    grid_v,
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
    p_ptr,  # 4-tuple of int64 indptr
    p_src,  # 4-tuple of int32 (previous rows)
    p_attr,  # 4-tuple of int8
    removed,  # 4-tuple of uint8 flags per previous entry (out)
    out_src,  # 4-tuple of int32[n, cap]
    out_attr,  # 4-tuple of int8[n, cap]
    out_status,  # 4-tuple of int8[n, cap]
    out_cnt,  # int32[4, n]
    chunks,  # int64[C+1]
    max_flat,
):
    n = len(ids)
    kf, km, kv, kp = caps[0], caps[1], caps[2], caps[3]
    n_chunks = len(chunks) - 1
    n_tiers = len(tiers)
    n_rules = len(rule_fwd)
    for ch in prange(n_chunks):
        mask = np.zeros(n, np.uint16)
        ptier = np.zeros(n, np.int8)
        fb = np.zeros(1, np.float32)
        ub = fb.view(np.uint32)
        kfa = np.empty(kf + 1, np.uint64)
        rfa = np.empty(kf + 1, np.int32)
        dfa = np.empty(kf + 1, np.float32)
        capb_max = km + kf + 1
        kmb = np.empty(capb_max, np.uint64)
        rmb = np.empty(capb_max, np.int32)
        dmb = np.empty(capb_max, np.float32)
        kvb = np.empty(kv + 1, np.uint64)
        rvb = np.empty(kv + 1, np.int32)
        dvb = np.empty(kv + 1, np.float32)
        kpb = np.empty(kp + 1, np.uint64)
        rpb = np.empty(kp + 1, np.int32)
        dpb = np.empty(kp + 1, np.float32)
        flat_rows = np.empty(max_flat + 1, np.int32)
        flat_fk = np.empty(max_flat + 1, np.uint64)
        flat_fr = np.empty(max_flat + 1, np.int32)
        flat_mk = np.empty(max_flat + 1, np.uint64)
        flat_mr = np.empty(max_flat + 1, np.int32)
        flat_fd = np.empty(max_flat + 1, np.float32)
        flat_md = np.empty(max_flat + 1, np.float32)
        for a in range(chunks[ch], chunks[ch + 1]):
            qx = x[a]
            qy = y[a]
            qz = z[a]
            ga = group[a]
            pr = cur2prev[a]
            # 1. last tick's entries of this listener
            if pr >= 0:
                for c in range(4):
                    ptr = p_ptr[c]
                    src = p_src[c]
                    att = p_attr[c]
                    for j in range(ptr[pr], ptr[pr + 1]):
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
                fb[0] = d2
                key = _key(ub[0], ids[s])
                if mask[s] & _FLF:
                    if not speaking[s]:
                        key |= np.uint64(1) << _TOP
                    nff = _insert(flat_fk, flat_fr, flat_fd, nff, max_flat + 1, key, s, d2)
                else:
                    nfm = _insert(flat_mk, flat_mr, flat_md, nfm, max_flat + 1, key, s, d2)
            # Flat "forward" pairs beyond the cap overflow into the mix, ordered by (d2, id) there.
            take_f = min(nff, kf)
            for j in range(take_f, nff):
                s = flat_fr[j]
                key = flat_fk[j] & ~(np.uint64(1) << _TOP)
                nfm = _insert(flat_mk, flat_mr, flat_md, nfm, max_flat + 1, key, s, flat_fd[j])
            # 2. spatial searches
            cap_fs = kf - take_f
            cap_h = max(km - nfm, 0)
            cap_hb = cap_h + cap_fs if cap_h > 0 else 0
            nfs, nh = _search(
                grid_a, a, qx, qy, qz, ga, mask, speaking, True,
                kfa, rfa, dfa, cap_fs, radii[0], radii[1], _PF,
                kmb, rmb, dmb, cap_hb, radii[2], radii[3], fb, ub,
            )  # fmt: skip
            nv, _ = _search(
                grid_v, a, qx, qy, qz, ga, mask, speaking, False,
                kvb, rvb, dvb, kv, radii[4], radii[5], _PV,
                kvb, rvb, dvb, 0, radii[4], radii[5], fb, ub,
            )  # fmt: skip
            npos, _ = _search(
                grid_p, a, qx, qy, qz, ga, mask, speaking, False,
                kpb, rpb, dpb, kp, radii[6], radii[7], _PP,
                kpb, rpb, dpb, 0, radii[6], radii[7], fb, ub,
            )  # fmt: skip
            # 3. assemble rows, statuses
            of, oa, os_ = out_src[0], out_attr[0], out_status[0]
            cnt = 0
            for j in range(take_f):
                s = flat_fr[j]
                of[a, cnt] = s
                oa[a, cnt] = 1
                cnt += 1
            for j in range(nfs):
                of[a, cnt] = rfa[j]
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
                om[a, cnt] = flat_mr[j]
                ma[a, cnt] = 1
                cnt += 1
            for j in range(nh):
                if cnt >= km:
                    break
                s = rmb[j]
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
                s = rvb[j]
                ov[a, j] = s
                va[a, j] = 0
                mask[s] |= _NV
                vs[a, j] = KEPT if mask[s] & _PV else ADDED
            out_cnt[2, a] = nv
            op, pa, ps = out_src[3], out_attr[3], out_status[3]
            for j in range(npos):
                s = rpb[j]
                t = 0
                if n_tiers > 0:
                    d = np.sqrt(np.float64(dpb[j]))
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
                    ptr = p_ptr[c]
                    src = p_src[c]
                    rem = removed[c]
                    bit = _NF if c == 0 else (_NM if c == 1 else (_NV if c == 2 else _NP))
                    for j in range(ptr[pr], ptr[pr + 1]):
                        s = prev2cur[src[j]]
                        if s < 0 or not (mask[s] & bit):
                            rem[j] = 1
                for c in range(4):
                    ptr = p_ptr[c]
                    src = p_src[c]
                    for j in range(ptr[pr], ptr[pr + 1]):
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
def compact(cnt, src, attr, status, ids):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Fixed-width rows -> CSR sets plus the added and changed CSR diffs."""
    n = len(cnt)
    ptr = np.zeros(n + 1, np.int64)
    aptr = np.zeros(n + 1, np.int64)
    cptr = np.zeros(n + 1, np.int64)
    for a in prange(n):
        na = 0
        nc = 0
        for j in range(cnt[a]):
            st = status[a, j]
            if st == ADDED:
                na += 1
            elif st == CHANGED:
                nc += 1
        ptr[a + 1] = cnt[a]
        aptr[a + 1] = na
        cptr[a + 1] = nc
    for a in range(n):
        ptr[a + 1] += ptr[a]
        aptr[a + 1] += aptr[a]
        cptr[a + 1] += cptr[a]
    out_ids = np.empty(ptr[n], np.int64)
    out_src = np.empty(ptr[n], np.int32)
    out_attr = np.empty(ptr[n], np.int8)
    a_ids = np.empty(aptr[n], np.int64)
    a_attr = np.empty(aptr[n], np.int8)
    c_ids = np.empty(cptr[n], np.int64)
    c_attr = np.empty(cptr[n], np.int8)
    for a in prange(n):
        o = ptr[a]
        oa = aptr[a]
        oc = cptr[a]
        for j in range(cnt[a]):
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
def compact_removed(cur2prev, p_ptr, p_ids, p_attr, flags):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Previous entries flagged removed, regrouped by current row (previous order within a row)."""
    n = len(cur2prev)
    ptr = np.zeros(n + 1, np.int64)
    for a in prange(n):
        pr = cur2prev[a]
        c = 0
        if pr >= 0:
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
        if pr >= 0:
            for j in range(p_ptr[pr], p_ptr[pr + 1]):
                if flags[j]:
                    out_ids[o] = p_ids[j]
                    out_attr[o] = p_attr[j]
                    o += 1
    return ptr, out_ids, out_attr
