"""Compiled (numba) incremental update of last tick's rows: touch only what changed.

A full recompute (`interest.kernels`) examines ~250 candidates per listener and writes ~200
entries, every tick. But with 10% of avatars moving, most of a listener's entries keep their
distance, and a set only changes where a changed source crosses one of its boundaries. So each
row keeps, per category, a *separator* key ``sep`` with

    every member's key <= sep < every eligible non-member's key,

or ``sep = NONE`` when every eligible source is a member (the set is under its cap). Then for an
unchanged source nothing can change (its key and eligibility are those of last tick), and for a
row only the *changed* sources near it need a look (`X`, below):

- a member whose new key passes ``sep`` or that is no longer eligible leaves;
- an eligible non-member whose new key is below ``sep`` (any, when ``sep = NONE``) enters;
- then the cap is restored: too many members -> drop the largest keys; too few (and ``sep`` was
  set, so eligible non-members may exist) -> a search brings in the smallest eligible non-members;
- the separator becomes the largest member key (or NONE when the search came up short).

This gives exactly the set the full recompute would give (the rules in `interest.engine`): all
eligible sources with a key <= sep are members, all others are not, and the cap is then applied
by key order. The property test checks it against the brute-force reference.

Which sources are in X:
- a *static* listener (it did not move): its members that changed (moved, flags, speaking,
  privacy group, or left the world), and changed sources found in a grid of changed sources within
  the radius where an entrant could beat a separator (`_need2`);
- a *moving* listener: all its members, and every source within that radius (full grids).
Sources whose forwarded membership changed join X before mixed is processed (mixed excludes
forwarded sources). Re-examining an unchanged source is harmless: it stays where it was.

Rows are rewritten only when a membership changed: kept entries stay in their order, new ones are
appended. So rows are not in priority order (see `CsrSets`), and the diffs come out as the full
recompute's do: per entry KEPT / ADDED / CHANGED, plus "removed" flags on last tick's entries.

Flat (zone) entries are left alone: the engine sends a row to the full recompute whenever its flat
sources could change (zone membership of the listener or of the rule's sources), or when the
listener has more flat sources than fit (overflow: then their order matters).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from interest.kernels import _NOT_SPEAKING, _RANK, ADDED, CHANGED, _key, _key_d2, _select

NONE = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
# What the incremental pass did (summed over chunks): rows with something to examine, sources
# examined, cap restorations by eviction and by search, rows rewritten, evictions of the bar source.
COUNTERS = ("rows", "examined", "evictions", "searches", "rewrites", "quick_evictions")
_ZERO = np.uint64(0)
_ONE = np.uint64(1)
F, M, V, P = 0, 1, 2, 3

# Marks, per source row, in a per-chunk scratch (cleared after each listener).
_PREV = 1  # << c: member of category c last tick
_CUR = 16  # << c: member of category c now (while processing)
_FL = 256  # a flat (zone) source of this listener
_X = 512  # in X (examined this tick)
_AP = 1024  # appended to the new row (dedupe)
_FLF = 2048  # ... delivered forward
_MB = 4096  # a forwarded member outside X (mixed's refill skips it)

_GROW = 1.0 + 1e-5  # float32 rounding margin for cell ranges


@njit(cache=True, nogil=True, inline="always")
def _d2(x, y, z, qx, qy, qz, s):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    ex = x[s] - qx
    ey = y[s] - qy
    ez = z[s] - qz
    return (ex * ex + ey * ey) + ez * ez


@njit(cache=True, nogil=True, inline="always")
def _cells(g, qx, qz, r2):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """The block of cells that can hold a source within sqrt(r2) of (qx, qz)."""
    lox, loz, cell, nx, nz = g[0], g[1], g[2], g[3], g[4]
    r = np.sqrt(max(r2, 0.0)) * _GROW + 1e-6
    cx0 = max(int(np.floor((np.float64(qx) - r - lox) / cell)), 0)
    cx1 = min(int(np.floor((np.float64(qx) + r - lox) / cell)), nx - 1)
    cz0 = max(int(np.floor((np.float64(qz) - r - loz) / cell)), 0)
    cz1 = min(int(np.floor((np.float64(qz) + r - loz) / cell)), nz - 1)
    return cx0, cx1, cz0, cz1, nx


@njit(cache=True, nogil=True, inline="always")
def _gather(g, li, qx, qy, qz, r2, mark, xs, nx_, near):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Append to X every grid source (not yet in X) within sqrt(r2) of the listener."""
    if r2 < 0.0:
        return nx_
    start, sx, sy, sz, srow = g[5], g[6], g[7], g[8], g[9]
    cx0, cx1, cz0, cz1, gnx = _cells(g, qx, qz, r2)
    for iz in range(cz0, cz1 + 1):
        for ix in range(cx0, cx1 + 1):
            c = iz * gnx + ix
            k = _within(sx, sy, sz, start[c], start[c + 1], qx, qy, qz, -1.0, r2, near)
            for t in range(k):
                s = srow[near[t]]
                if s == li or (mark[s] & _X):
                    continue
                mark[s] |= _X
                xs[nx_] = s
                nx_ += 1
    return nx_


@njit(cache=True, nogil=True, inline="always")
def _any_within(g, qx, qy, qz, r2):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Is any grid source within sqrt(r2) of the point?"""
    if r2 < 0.0:
        return False
    start, sx, sy, sz = g[5], g[6], g[7], g[8]
    cx0, cx1, cz0, cz1, gnx = _cells(g, qx, qz, r2)
    for iz in range(cz0, cz1 + 1):
        for ix in range(cx0, cx1 + 1):
            c = iz * gnx + ix
            for i in range(start[c], start[c + 1]):
                ex = sx[i] - qx
                ey = sy[i] - qy
                ez = sz[i] - qz
                if np.float64((ex * ex + ey * ey) + ez * ez) <= r2:
                    return True
    return False


@njit(cache=True, nogil=True, inline="always")
def _within(sx, sy, sz, lo, hi, qx, qy, qz, floor, reach, near):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Items lo..hi of a grid whose squared distance d2 has floor <= d2 <= reach, into `near`;
    returns how many. No branch per item: most fail, at random, and branches would mispredict."""
    k = 0
    for i in range(lo, hi):
        ex = sx[i] - qx
        ey = sy[i] - qy
        ez = sz[i] - qz
        fd2 = np.float64((ex * ex + ey * ey) + ez * ez)
        near[k] = i
        k += np.int64(fd2 >= floor) & np.int64(fd2 <= reach)
    return k


@njit(cache=True, nogil=True, inline="always")
def _eligible(c, s, li, g, d2, b, sflags, group, r2, w2):  # type: ignore[no-untyped-def]  # pragma: no cover
    f = sflags[s]
    if s == li or not (f & 1) or group[s] != g:
        return False
    if c <= 1:
        if not (f & 2) or (b & _FL):
            return False
        if c == 1 and (b & (_CUR << 0)):  # forwarded now: not mixed
            return False
    elif c == 2 and not (f & 4):
        return False
    prev = (b & (_PREV | (_PREV << 1))) if c == 1 else (b & (_PREV << c))
    return d2 < r2 or (prev != 0 and d2 < w2)


@njit(cache=True, nogil=True, inline="always")
def _xinfo(i, s, li, g, x, y, z, qx, qy, qz, rank, group, sflags, xd2, xk, xf):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Once per examined source: d², its key, and its flags (0 if it can never be a source of
    this listener: itself, hidden, or across a private wall)."""
    d2 = _d2(x, y, z, qx, qy, qz, s)
    xd2[i] = d2
    xk[i] = _key(d2, rank[s])
    f = sflags[s]
    if s == li or group[s] != g or not (f & 1):
        f = 0
    xf[i] = f


@njit(cache=True, nogil=True, inline="always")
def _ckey(c, s, d2, rank, sflags):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    key = _key(d2, rank[s])
    if c == 0 and not (sflags[s] & 8):
        key |= _NOT_SPEAKING
    return key


@njit(cache=True, nogil=True)
def _need2(c, cap, sep, r2):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Squared radius within which a non-member could enter category c (-1: none can)."""
    if cap <= 0:
        return -1.0
    if sep == NONE:
        return np.float64(r2)
    if c == 0 and (sep >> np.uint64(63)):  # a silent bar: any speaker inside the radius beats it
        return np.float64(r2)
    return min(np.float64(r2), np.float64(_key_d2(sep)))


@njit(cache=True, nogil=True)
def _row_caps(li, kf, km, kv, kp, cnt, attr_f, attr_m, out):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Spatial caps of this row: flat entries take forwarded and mixed places first."""
    nf = 0
    for j in range(cnt[0, li]):
        nf += attr_f[li, j] != 0
    nm = 0
    for j in range(cnt[1, li]):
        nm += attr_m[li, j] != 0
    out[0] = kf - nf
    out[1] = max(km - nm, 0)
    out[2] = kv
    out[3] = kp


@njit(cache=True, nogil=True, parallel=True)
def seal(rows, x, y, z, rank, sflags, kf, km, kv, kp, cnt, src, attr, sep):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Separators of rows fresh from the full recompute: the largest spatial member's key, NONE when
    a category is under its cap, 0 when it has no spatial places (its flat sources took them all).
    (Rows carried over a join or leave keep their separators, re-expressed in the new key space:
    `engine._remapped_separators`.)"""
    for i in prange(len(rows)):
        li = rows[i]
        caps = np.empty(4, np.int64)
        _row_caps(li, kf, km, kv, kp, cnt, attr[0], attr[1], caps)
        qx = x[li]
        qy = y[li]
        qz = z[li]
        for c in range(4):
            cap = caps[c]
            if cap <= 0:
                sep[c, li] = _ZERO
                continue
            n_sp = 0
            best = np.uint64(0)
            for j in range(cnt[c, li]):
                if c <= 1 and attr[c][li, j] != 0:
                    continue
                n_sp += 1
                k = _ckey(c, src[c][li, j], _d2(x, y, z, qx, qy, qz, src[c][li, j]), rank, sflags)
                best = max(best, k)
            sep[c, li] = best if n_sp >= cap else NONE


@njit(cache=True, nogil=True)
def _join(li, s, cnt, src, attr, mark, ptier, xs, nx_, rpos):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Bring source s into X with its membership bits, read from the rows (a row already
    rewritten this tick holds its current members, which is what later categories need)."""
    b = mark[s]
    if b & _X:
        return nx_
    b |= _X
    for c in range(4):
        sc = src[c]
        for j in range(cnt[c, li]):
            if sc[li, j] == s:
                b |= _PREV << c
                if c > 1 or attr[c][li, j] == 0:
                    b |= _CUR << c
                if c == 3:
                    ptier[s] = attr[3][li, j]
                rpos[c, s] = j
                break
    mark[s] = b
    xs[nx_] = s
    return nx_ + 1


@njit(cache=True, nogil=True, parallel=True)
def update_pass(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    rows,  # int32[R]: the rows to update (not the full-recompute ones)
    moved,  # uint8[n]: the listener moved (all its distances changed)
    changed,  # uint8[n]: the source changed (position, flags, speaking, group, joined)
    x, y, z, rank, order, group,
    sflags,  # uint8[n]: visible | publishes audio << 1 | video << 2 | speaking << 3
    grid_p, grid_a, grid_v,
    grid_x,  # changed sources where they are
    grid_o,  # changed sources where they were last tick (when `calm`)
    calm,  # nobody joined or left (no entry's source is gone)
    radii,  # float32[8]: r², wide r² per category
    kf, km, kv, kp,
    tiers, hysteresis,
    rule_lis, rule_ptr, rule_src, rule_fwd,
    cnt, src, attr, sep,  # the rows (state, updated in place)
    cur2prev, pptr,  # per category, where each previous row starts in last tick's CSR (removed flags)
    status, removed,  # out
    dirty,  # uint8[4, n] (out): rows whose statuses or removed flags were written
    bail,  # uint8[n] (out): rows left untouched for the full recompute (flat overflow)
    chunks,
    counters,  # int64[chunks, 8] (out): see COUNTERS
):  # fmt: skip
    n = len(x)
    for ch in prange(len(chunks) - 1):
        mark = np.zeros(n, np.uint16)
        ptier = np.zeros(n, np.int8)
        xs = np.empty(n + 1, np.int32)
        xd2 = np.empty(n + 1, np.float32)
        xk = np.empty(n + 1, np.uint64)
        xf = np.empty(n + 1, np.uint8)
        flats = np.empty(len(rule_src) + 1, np.int32)
        kbuf = np.empty(n + 1, np.uint64)
        rpos = np.empty((4, n), np.int32)  # where an examined source sits in each row
        wid = max(max(kf, km), max(kv, kp)) + 1
        nsrc = np.empty(wid + n + 1, np.int32)
        nattr = np.empty(wid + n + 1, np.int8)
        nstat = np.empty(wid + n + 1, np.int8)
        hit = np.empty(wid, np.int64)
        near = np.empty(n + 1, np.int64)  # grid items within a distance band (`_within`)
        caps = np.empty(4, np.int64)
        need = np.empty(4, np.float64)
        nsp = np.empty(8, np.int64)  # per category: flat entries, spatial entries whose source left
        tally = np.zeros(16, np.int64)  # counted here, copied once: no false sharing
        _update_rows(
                chunks[ch], chunks[ch + 1], rows, moved, changed, x, y, z, rank, order, group,
                sflags, grid_p, grid_a, grid_v, grid_x, grid_o, calm, radii, kf, km, kv, kp, tiers,
                hysteresis, rule_lis, rule_ptr, rule_src, rule_fwd, cnt, src, attr, sep, cur2prev,
                pptr, status, removed, dirty, bail, mark, ptier, xs, xd2, flats, kbuf, nsrc, nattr,
                nstat, hit, near, caps, need, nsp, tally, rpos, xk, xf,
            )  # fmt: skip
        for k in range(counters.shape[1]):
            counters[ch, k] = tally[k]


@njit(cache=True, nogil=True)
def _update_rows(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    lo, hi, rows, moved, changed, x, y, z, rank, order, group, sflags,
    grid_p, grid_a, grid_v, grid_x, grid_o, calm, radii, kf, km, kv, kp, tiers, hysteresis,
    rule_lis, rule_ptr, rule_src, rule_fwd, cnt, src, attr, sep, cur2prev, pptr, status,
    removed, dirty, bail, mark, ptier, xs, xd2, flats, kbuf, nsrc, nattr, nstat, hit, near, caps, need,
    nsp, counters, rpos, xk, xf,
):  # fmt: skip
    for ii in range(lo, hi):
        li = rows[ii]
        qx = x[li]
        qy = y[li]
        qz = z[li]
        g = group[li]
        mover = moved[li] != 0
        # 0. this tick's flat (zone) sources; a row whose flat sources overflow their places goes to
        # the full recompute (then their distances decide), untouched
        nfl = 0
        nff = 0
        for r in range(rule_lis.shape[0]):
            if rule_lis[r, li]:
                for j in range(rule_ptr[r], rule_ptr[r + 1]):
                    s = rule_src[j]
                    if s != li and group[s] == g:
                        b = mark[s]
                        if not (b & _FL):
                            b |= _FL
                            flats[nfl] = s
                            nfl += 1
                        if rule_fwd[r] and not (b & _FLF):
                            b |= _FLF
                            nff += 1
                        mark[s] = b
        nfm = nfl - nff
        if nff > kf or nfm > km:
            for i in range(nfl):
                mark[flats[i]] = 0
            bail[li] = 1
            continue
        caps[0] = kf - nff
        caps[1] = km - nfm
        caps[2] = kv
        caps[3] = kp
        # Audio places that flat sources took all of last tick have separator 0, which cannot say
        # "every eligible source is above" when one has key 0 (distance 0, lowest id): if such
        # places open up again, the row is recomputed in full.
        reopened = False
        for c in range(2):
            if caps[c] > 0 and sep[c, li] == _ZERO:
                spatial = False
                for j in range(cnt[c, li]):
                    spatial = spatial or attr[c][li, j] == 0
                reopened = reopened or not spatial
        if reopened:
            for i in range(nfl):
                mark[flats[i]] = 0
            bail[li] = 1
            continue
        # did the flat entries change? (then their sources are examined like changed ones)
        flat_moved = False
        old_f = 0
        for c in range(4):
            nsp[c] = 0  # flat entries of category c
            nsp[4 + c] = 0  # spatial entries whose source left (counted in the member scan)
        for c in range(2):
            sc = src[c]
            ac = attr[c]
            for j in range(cnt[c, li]):
                if ac[li, j] != 0:
                    s = sc[li, j]
                    old_f += 1
                    if s < 0 or not (mark[s] & _FL) or ((mark[s] & _FLF) != 0) != (c == 0):
                        flat_moved = True
            nsp[c] = old_f - nsp[0] if c == 1 else old_f
        flat_moved = flat_moved or old_f != nfl
        nx_ = 0
        if flat_moved:
            for c in range(2):
                for j in range(cnt[c, li]):
                    s = src[c][li, j]
                    if attr[c][li, j] != 0 and s >= 0 and not (mark[s] & _X):
                        mark[s] |= _X
                        xs[nx_] = s
                        nx_ += 1
            for i in range(nfl):
                s = flats[i]
                if not (mark[s] & _X):
                    mark[s] |= _X
                    xs[nx_] = s
                    nx_ += 1
        for c in range(4):
            need[c] = _need2(c, caps[c], sep[c, li], radii[2 * c])
        # 1. X: changed sources that could enter (or, for a moving listener, all of them)
        if mover:
            nx_ = _gather(grid_p, li, qx, qy, qz, need[3], mark, xs, nx_, near)
            nx_ = _gather(grid_a, li, qx, qy, qz, max(need[0], need[1]), mark, xs, nx_, near)
            nx_ = _gather(grid_v, li, qx, qy, qz, need[2], mark, xs, nx_, near)
        else:
            reach = max(max(need[0], need[1]), max(need[2], need[3]))
            nx_ = _gather(grid_x, li, qx, qy, qz, reach, mark, xs, nx_, near)
            # No changed source near enough to enter, and none was near enough to be a member (a
            # member's distance is at most its separator's; the wide radius when the separator is
            # NONE or a silent forwarded bar): nothing can change, skip the scan of the row.
            if nx_ == 0 and calm and not flat_moved:
                far = -1.0
                for c in range(4):
                    bar = sep[c, li]
                    if caps[c] > 0:
                        if bar == NONE or (c == 0 and (bar >> np.uint64(63))):
                            far = max(far, np.float64(radii[2 * c + 1]))
                        else:
                            far = max(far, np.float64(_key_d2(bar)))
                if not _any_within(grid_o, qx, qy, qz, far):
                    for i in range(nfl):
                        mark[flats[i]] = 0
                    continue
        # ... and members that changed (all members of a moving listener), with their membership
        # bits: "prev" for any entry, "cur" for spatial ones (flat entries are not spatial members).
        # The grid of changed sources holds changed sources only, so for a static listener an entry
        # is in X iff its source changed (or flat sources moved).
        gone = 0
        slow = mover or flat_moved
        for c in range(4):
            sc = src[c]
            ac = attr[c]
            bits = (_PREV << c) | (_CUR << c)
            # the entries to look at: all (slow), else those whose source changed or left, picked
            # without a branch per entry (a tenth change, at random: branches would mispredict)
            k = 0
            for j in range(cnt[c, li]):
                s = sc[li, j]
                hit[k] = j
                k += np.int64(changed[max(s, 0)] != 0) | np.int64(s < 0) | np.int64(slow)
            for t in range(k):
                j = hit[t]
                s = sc[li, j]
                if s < 0:
                    gone += 1
                    if c > 1 or ac[li, j] == 0:
                        nsp[4 + c] += 1
                    continue
                if not (changed[s] or (slow and (mark[s] & _X) != 0) or mover):
                    continue
                b = mark[s]
                if not (b & _X):
                    b |= _X
                    xs[nx_] = s
                    nx_ += 1
                b |= _PREV << c
                if c > 1 or ac[li, j] == 0:
                    b |= bits
                if c == 3:
                    ptier[s] = ac[li, j]
                rpos[c, s] = j
                mark[s] = b
        if nx_ == 0 and gone == 0:
            for i in range(nfl):
                mark[flats[i]] = 0
            continue
        counters[0] += 1
        counters[1] += nx_
        for i in range(nx_):
            _xinfo(i, xs[i], li, g, x, y, z, qx, qy, qz, rank, group, sflags, xd2, xk, xf)
        for c in range(4):
            cap = caps[c]
            r2 = radii[2 * c]
            w2 = radii[2 * c + 1]
            bar = sep[c, li]
            cur = _CUR << c
            touched = flat_moved and c <= 1
            sc = src[c]
            ac = attr[c]
            # spatial members (flat entries are not), not counting those whose source left
            n_sp = cnt[c, li] - nsp[c] - nsp[4 + c]
            touched = touched or nsp[4 + c] > 0  # a source left the world
            # 2. walk X
            for i in range(nx_):
                s = xs[i]
                b = mark[s]
                if c <= 1 and (b & _FL):
                    if b & cur:  # a spatial member that became a flat source
                        mark[s] = b & ~cur
                        n_sp -= 1
                        touched = True
                    continue
                d2 = xd2[i]
                f = xf[i]
                key = xk[i]
                if c <= 1:
                    ok = (f & 3) == 3 and (c == 0 or not (b & _CUR))
                    if c == 0 and not (f & 8):
                        key |= _NOT_SPEAKING
                    prev_in = b & (_PREV | (_PREV << 1)) if c == 1 else b & _PREV
                else:
                    ok = (f & 5) == 5 if c == 2 else (f & 1) != 0
                    prev_in = b & (_PREV << c)
                ok = ok and (d2 < r2 or (prev_in != 0 and d2 < w2))
                if b & cur:
                    if not ok or (bar != NONE and key > bar):
                        mark[s] = b & ~cur
                        n_sp -= 1
                        touched = True
                elif ok and (bar == NONE or key <= bar):  # keys are unique: == bar is the bar source
                    mark[s] = b | cur
                    n_sp += 1
                    touched = True
            # 3. restore the cap
            fast = False
            rank_bits = bar & _RANK
            if n_sp == cap + 1 and bar != NONE and rank_bits > _ZERO and rank_bits < len(order):
                # one too many, and the bar's own source still a member at the bar: it goes,
                # and bar - 1 separates the rest (every eligible non-member is above the bar).
                # Rank bits of 0 would borrow from the distance bits (a silent bar at distance
                # 0 would become a NaN distance); such bars take the general path below.
                s = order[bar & _RANK]
                b = mark[s]
                if b & _X:
                    member = (b & cur) != 0
                else:
                    member = False
                    for j in range(cnt[c, li]):
                        if sc[li, j] == s:
                            member = c > 1 or ac[li, j] == 0
                            break
                if member and _ckey(c, s, _d2(x, y, z, qx, qy, qz, s), rank, sflags) == bar:
                    if not (b & _X):
                        nx_ = _join(li, s, cnt, src, attr, mark, ptier, xs, nx_, rpos)
                        _xinfo(nx_ - 1, s, li, g, x, y, z, qx, qy, qz, rank, group, sflags, xd2, xk, xf)
                    mark[s] &= ~cur
                    n_sp = cap
                    sep[c, li] = bar - _ONE
                    touched = True
                    fast = True
                    counters[5] += 1
            if n_sp > cap and not fast:
                # keep the cap smallest keys of the members: the old row's and the new ones
                m = 0
                for j in range(cnt[c, li]):
                    s = sc[li, j]
                    if s < 0:
                        continue
                    b = mark[s]
                    if (b & cur) if (b & _X) else (c > 1 or ac[li, j] == 0):
                        kbuf[m] = _ckey(c, s, _d2(x, y, z, qx, qy, qz, s), rank, sflags)
                        m += 1
                for i in range(nx_):
                    s = xs[i]
                    b = mark[s]
                    if (b & cur) and not (b & (_PREV << c)):
                        k0 = xk[i]
                        if c == 0 and not (xf[i] & 8):
                            k0 |= _NOT_SPEAKING
                        kbuf[m] = k0
                        m += 1
                _select(kbuf, m, cap)
                n_sp = cap
                counters[2] += 1
                for j in range(cap, m):
                    s = order[kbuf[j] & _RANK]
                    if not (mark[s] & _X):
                        nx_ = _join(li, s, cnt, src, attr, mark, ptier, xs, nx_, rpos)
                        _xinfo(nx_ - 1, s, li, g, x, y, z, qx, qy, qz, rank, group, sflags, xd2, xk, xf)
                    mark[s] &= ~cur
                # (a conditional expression mixing uint64 and int would go through float64)
                sep[c, li] = kbuf[cap - 1] if cap > 0 else _ZERO
                touched = True
            elif n_sp < cap and bar != NONE:
                # every member's key is <= bar now, every eligible non-member's is above: search
                gr = grid_p if c == 3 else (grid_v if c == 2 else grid_a)
                if c == 1:  # mixed excludes forwarded members (those outside X are unmarked)
                    for j in range(cnt[0, li]):
                        s = src[0][li, j]
                        if s >= 0 and not (mark[s] & _X):
                            mark[s] |= _MB
                counters[3] += 1
                m = _refill(
                    c, cap - n_sp, gr, li, qx, qy, qz, g, bar, r2, w2, mark, kbuf,
                    sflags, group, rank, near,
                )  # fmt: skip
                if c == 1:
                    for j in range(cnt[0, li]):
                        s = src[0][li, j]
                        if s >= 0:
                            mark[s] &= ~_MB
                for j in range(m):
                    s = order[kbuf[j] & _RANK]
                    if not (mark[s] & _X):
                        nx_ = _join(li, s, cnt, src, attr, mark, ptier, xs, nx_, rpos)
                        _xinfo(nx_ - 1, s, li, g, x, y, z, qx, qy, qz, rank, group, sflags, xd2, xk, xf)
                    mark[s] |= cur
                n_sp += m
                sep[c, li] = kbuf[m - 1] if (m > 0 and n_sp >= cap) else NONE
                touched = True
            elif n_sp < cap:
                sep[c, li] = NONE
            if cap <= 0:
                sep[c, li] = _ZERO
            # 4. write the row (tiers for positions)
            counters[4] += touched
            if touched or c == 3:  # (else nothing to write)
                _write_row(
                    c, li, touched, not flat_moved and gone == 0, mark, ptier, xs, xd2, nx_,
                    tiers, hysteresis, cnt, src, attr, cur2prev, pptr, status, removed, dirty, nsrc, nattr,
                    nstat, rpos,
                )  # fmt: skip
        # clean the scratch
        for i in range(nx_):
            mark[xs[i]] = 0
        for i in range(nfl):
            mark[flats[i]] = 0


@njit(cache=True, nogil=True)
def _refill(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    c, want, gr, li, qx, qy, qz, g, bar, r2, w2, mark, kbuf,
    sflags, group, rank, near,
):  # fmt: skip
    """The `want` smallest keys above `bar` among eligible sources (in kbuf, sorted; returns how
    many). Above the bar means not a member. Squares of growing size are searched until the
    want-th key is nearer than the square, or the square reaches the wide radius."""
    start, sx, sy, sz, srow = gr[5], gr[6], gr[7], gr[8], gr[9]
    wide = np.float64(w2)
    bar_d2 = np.float64(_key_d2(bar))
    # keys compare by squared distance first, except forwarded's speaker bit: below a speaker
    # bar, a silent source of any distance qualifies
    floor = -1.0 if (c == 0 and not (bar >> np.uint64(63))) else bar_d2
    reach = min(max(bar_d2 * 1.21, bar_d2 + gr[2] * gr[2]), wide)
    # cells are 2-D: the farthest a source of a cell can be also depends on its height
    dy = max(abs(np.float64(qy) - gr[13]), abs(np.float64(qy) - gr[14]))
    dy2 = dy * dy
    m = 0
    while True:
        m = 0
        cx0, cx1, cz0, cz1, gnx = _cells(gr, qx, qz, reach)
        for iz in range(cz0, cz1 + 1):
            bz = gr[1] + iz * gr[2]
            dz = max(abs(bz - np.float64(qz)), abs(bz + gr[2] - np.float64(qz)))
            for ix in range(cx0, cx1 + 1):
                if floor > 0.0:  # a cell wholly inside the bar's sphere holds no candidate
                    bx = gr[0] + ix * gr[2]
                    dx = max(abs(bx - np.float64(qx)), abs(bx + gr[2] - np.float64(qx)))
                    if (dx * dx + dz * dz + dy2) * _GROW < floor:
                        continue
                cc = iz * gnx + ix
                k = _within(sx, sy, sz, start[cc], start[cc + 1], qx, qy, qz, floor, reach, near)
                for t in range(k):
                    i = near[t]
                    ex = sx[i] - qx
                    ey = sy[i] - qy
                    ez = sz[i] - qz
                    d2 = (ex * ex + ey * ey) + ez * ez
                    s = srow[i]
                    b = mark[s]
                    if b & _MB:
                        continue
                    key = _ckey(c, s, d2, rank, sflags)
                    if key <= bar:
                        continue
                    if not _eligible(c, s, li, g, d2, b, sflags, group, r2, w2):
                        continue
                    # keep the `want` smallest, sorted (want is small: a few leavers)
                    if m < want:
                        j = m
                        m += 1
                    elif key < kbuf[m - 1]:
                        j = m - 1
                    else:
                        continue
                    while j > 0 and kbuf[j - 1] > key:
                        kbuf[j] = kbuf[j - 1]
                        j -= 1
                    kbuf[j] = key
        done = not (reach < wide)  # (and a NaN reach must end the search, not loop)
        if m == want:
            worst = kbuf[m - 1]
            if np.float64(_key_d2(worst)) < reach and not (c == 0 and (worst >> np.uint64(63))):
                done = True
        if done:
            return m
        reach = min(reach * 2.25, wide)


@njit(cache=True, nogil=True, inline="always")
def _tier(d, prev, tiers, hysteresis):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    n_tiers = len(tiers)
    if n_tiers == 0:
        return 0
    t = n_tiers - 1
    for i in range(n_tiers):
        if d < tiers[i]:
            t = i
            break
    if prev >= 0 and t > prev and d < tiers[min(prev, n_tiers - 1)] * (1.0 + hysteresis):
        t = prev
    return t


@njit(cache=True, nogil=True, inline="always")
def _member(c, b):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Is a source with marks b (in X, or flat) a member of category c now? And is it flat?"""
    if c <= 1 and (b & _FL):
        return ((b & _FLF) != 0) == (c == 0), True
    return (b & (_CUR << c)) != 0, False


@njit(cache=True, nogil=True, inline="always")
def _write_row(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    c, li, touched, inplace, mark, ptier, xs, xd2, nx_, tiers, hysteresis,
    cnt, src, attr, cur2prev, pptr, status, removed, dirty, nsrc, nattr, nstat, rpos,
):  # fmt: skip
    """Apply this tick's changes to row c. In place when only examined sources changed (their
    places are known): a leaver's place takes a newcomer or the row's last entry. Else (flat
    sources moved, sources left the world) the row is rebuilt: kept entries in their old order
    (tiers and flat flags refreshed), then the new ones."""
    prev = _PREV << c
    osrc = src[c]
    oattr = attr[c]
    ost = status[c]
    if not touched:
        if c == 3:  # membership unchanged: only tiers of changed members may move
            for i in range(nx_):
                s = xs[i]
                if mark[s] & _CUR << 3:
                    t = _tier(np.sqrt(np.float64(xd2[i])), ptier[s], tiers, hysteresis)
                    if t != ptier[s]:
                        j = rpos[3, s]
                        oattr[li, j] = t
                        ost[li, j] = CHANGED
                        dirty[3, li] = 1
        return
    dirty[c, li] = 1
    if c == 3:  # the new tier of every examined member, in the tier scratch (read below)
        for i in range(nx_):
            s = xs[i]
            b = mark[s]
            if b & (_CUR << 3):
                old = ptier[s] if b & (_PREV << 3) else -1
                ptier[s] = _tier(np.sqrt(np.float64(xd2[i])), old, tiers, hysteresis)
    base = pptr[c][cur2prev[li]]
    rem = removed[c]
    if inplace:
        holes = 0
        for i in range(nx_):
            s = xs[i]
            b = mark[s]
            if b & prev:
                keep, _ = _member(c, b)
                j = rpos[c, s]
                if not keep:
                    rem[base + j] = 1
                    nsrc[holes] = j
                    holes += 1
                elif c == 3 and ptier[s] != oattr[li, j]:
                    oattr[li, j] = ptier[s]
                    ost[li, j] = CHANGED
        k = cnt[c, li]
        for i in range(nx_):
            s = xs[i]
            b = mark[s]
            keep, flat = _member(c, b)
            if keep and not (b & prev) and not (b & _AP):
                mark[s] = b | _AP
                if holes > 0:
                    holes -= 1
                    j = nsrc[holes]
                else:
                    j = k
                    k += 1
                osrc[li, j] = s
                oattr[li, j] = ptier[s] if c == 3 else (1 if flat else 0)
                ost[li, j] = ADDED
        for i in range(nx_):
            mark[xs[i]] &= ~_AP
        # places left empty take the last entries, the highest place first
        for i in range(1, holes):
            v = nsrc[i]
            j = i
            while j > 0 and nsrc[j - 1] < v:
                nsrc[j] = nsrc[j - 1]
                j -= 1
            nsrc[j] = v
        for i in range(holes):
            h = nsrc[i]
            last = k - 1
            if h != last:
                osrc[li, h] = osrc[li, last]
                oattr[li, h] = oattr[li, last]
                ost[li, h] = ost[li, last]
            k -= 1
        cnt[c, li] = k
        return
    m = 0
    for j in range(cnt[c, li]):
        s = osrc[li, j]
        if s < 0:
            rem[base + j] = 1
            continue
        b = mark[s]
        a = oattr[li, j]
        if (b & _X) or (c <= 1 and (b & _FL)):
            keep, flat = _member(c, b)
            if not keep:
                rem[base + j] = 1
                continue
        else:
            flat = a != 0  # unchanged: a member as it was
        st = 0
        if c <= 1:
            if flat != (a != 0):
                a = 1 if flat else 0
                st = CHANGED
        elif c == 3 and (b & _X):
            t = ptier[s]
            if t != a:
                a = t
                st = CHANGED
        nsrc[m] = s
        nattr[m] = a
        nstat[m] = st
        m += 1
    for i in range(nx_):
        s = xs[i]
        b = mark[s]
        keep, flat = _member(c, b)
        if keep and not (b & prev) and not (b & _AP):
            mark[s] = b | _AP
            a = 1 if flat else 0
            if c == 3:
                a = ptier[s]
            nsrc[m] = s
            nattr[m] = a
            nstat[m] = ADDED
            m += 1
    for i in range(nx_):
        mark[xs[i]] &= ~_AP
    for j in range(m):
        osrc[li, j] = nsrc[j]
        oattr[li, j] = nattr[j]
        ost[li, j] = nstat[j]
    cnt[c, li] = m


@njit(cache=True, nogil=True, parallel=True)
def remap(cur2prev, prev2cur, o_cnt, o_src, o_attr, o_sep, o_over, cnt, src, attr, sep, over):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Carry last tick's rows to this tick's row numbering (ids joined, left or reordered);
    entries whose source left become -1 (the next pass drops them)."""
    for a in prange(len(cur2prev)):
        pr = cur2prev[a]
        if pr < 0:
            for c in range(4):
                cnt[c, a] = 0
                sep[c, a] = NONE
            over[a] = 0
            continue
        over[a] = o_over[pr]
        for c in range(4):
            k = o_cnt[c, pr]
            cnt[c, a] = k
            sep[c, a] = o_sep[c, pr]
            for j in range(k):
                s = o_src[c][pr, j]
                src[c][a, j] = prev2cur[s] if s >= 0 else -1
                attr[c][a, j] = o_attr[c][pr, j]
