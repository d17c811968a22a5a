"""Brute-force O(N²) reference of the interest rules, written straight from the engine docstring.

Plain Python loops over listeners and sources; numpy only for the float32 squared distance so that
boundary cases are decided exactly as the engine decides them.
"""

from __future__ import annotations

import math

import numpy as np

from interest.flags import AvatarFlags
from interest.params import InterestParams
from interest.shapes import contains

State = dict[str, dict[int, dict[int, object]]]  # category -> listener id -> {source id: attr}


def d2_matrix(pos: np.ndarray) -> np.ndarray:
    p = pos.astype(np.float32)
    d = p[:, None, :] - p[None, :, :]
    return (d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1]) + d[..., 2] * d[..., 2]


def r2(r: float) -> np.float32:
    rr = np.float32(r)
    return np.float32(rr * rr)


def reference_tick(
    params: InterestParams,
    prev: State,
    ids: np.ndarray,
    pos: np.ndarray,
    flags: np.ndarray,
    levels: np.ndarray,
) -> State:
    n = len(ids)
    ids = [int(i) for i in ids]
    pos = np.asarray(pos, dtype=np.float32)
    d2 = d2_matrix(pos) if n else np.zeros((0, 0), np.float32)
    visible = [(int(f) & AvatarFlags.HIDDEN) == 0 for f in flags]
    pub_a = [visible[i] and bool(int(flags[i]) & AvatarFlags.PUBLISH_AUDIO) for i in range(n)]
    pub_v = [visible[i] and bool(int(flags[i]) & AvatarFlags.PUBLISH_VIDEO) for i in range(n)]
    speaking = [bool(np.float32(levels[i]) >= np.float32(params.speaking_threshold)) for i in range(n)]
    m = params.hysteresis

    closed = [contains(z.shape, pos) for z in params.zones if z.kind == "private" and not z.open]

    def allowed(a: int, b: int) -> bool:
        return a != b and visible[b] and all(bool(c[a]) == bool(c[b]) for c in closed)

    # flat[(L, S)] = True if delivered forward, False if mixed
    flat: dict[tuple[int, int], bool] = {}
    for z in params.zones:
        if z.kind == "stage":
            aud = contains(z.audience, pos) if z.audience is not None else np.ones(n, bool)
            stage = contains(z.shape, pos)
            pairs = [(a, b) for a in range(n) for b in range(n) if aud[a] and stage[b] and pub_a[b]]
        elif z.kind == "meeting":
            mem = contains(z.shape, pos)
            pairs = [(a, b) for a in range(n) for b in range(n) if mem[a] and mem[b] and pub_a[b]]
        else:
            continue
        for a, b in pairs:
            if allowed(a, b):
                flat[(a, b)] = flat.get((a, b), False) or z.delivery == "forward"

    def inside(a: int, b: int, radius: float, was_member: bool) -> bool:
        return bool(d2[a, b] < r2(radius)) or (was_member and bool(d2[a, b] < r2(radius * (1 + m))))

    out: State = {"forwarded": {}, "mixed": {}, "video": {}, "positions": {}}
    tiers = [t.distance for t in params.position_tiers]
    for a in range(n):
        lid = ids[a]
        pf = prev["forwarded"].get(lid, {})
        pm = prev["mixed"].get(lid, {})
        pv = prev["video"].get(lid, {})
        pp = prev["positions"].get(lid, {})
        # forwarded
        cands = []
        for b in range(n):
            if not (allowed(a, b) and pub_a[b]):
                continue
            if (a, b) in flat:
                if flat[(a, b)]:
                    cands.append((0, not speaking[b], float(d2[a, b]), ids[b], True))
            elif inside(a, b, params.forward_radius, ids[b] in pf):
                cands.append((1, not speaking[b], float(d2[a, b]), ids[b], False))
        cands.sort()
        fwd = cands[: params.max_forwarded]
        out["forwarded"][lid] = {c[3]: c[4] for c in fwd}
        fwd_ids = set(out["forwarded"][lid])
        # mixed
        cands = []
        for b in range(n):
            if not (allowed(a, b) and pub_a[b]) or ids[b] in fwd_ids:
                continue
            if (a, b) in flat:
                cands.append((0, float(d2[a, b]), ids[b], True))
            elif inside(a, b, params.hearing_radius, ids[b] in pf or ids[b] in pm):
                cands.append((1, float(d2[a, b]), ids[b], False))
        cands.sort()
        out["mixed"][lid] = {c[2]: c[3] for c in cands[: params.max_mixed]}
        # video
        cands = [
            (float(d2[a, b]), ids[b])
            for b in range(n)
            if allowed(a, b) and pub_v[b] and inside(a, b, params.video_radius, ids[b] in pv)
        ]
        cands.sort()
        out["video"][lid] = {c[1]: False for c in cands[: params.video_max]}
        # positions
        cands = [
            (float(d2[a, b]), ids[b])
            for b in range(n)
            if allowed(a, b) and inside(a, b, params.position_radius, ids[b] in pp)
        ]
        cands.sort()
        row: dict[int, object] = {}
        for dd, sid in cands[: params.position_max]:
            if not tiers:
                row[sid] = 0
                continue
            d = math.sqrt(float(np.float64(np.float32(dd))))
            raw = next((i for i, t in enumerate(tiers) if d < t), len(tiers) - 1)
            old = pp.get(sid)
            if old is not None and raw > int(old) and d < tiers[int(old)] * (1 + m):  # type: ignore[call-overload]
                raw = int(old)  # type: ignore[call-overload]
            row[sid] = raw
        out["positions"][lid] = row
    return out


def empty_state() -> State:
    return {"forwarded": {}, "mixed": {}, "video": {}, "positions": {}}
