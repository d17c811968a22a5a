"""How the tick loop asks "who hears/sees whom": a narrow adapter in front of the interest engine.

TODO(integrator): `interest.InterestEngine` was not published when this was written. `make_interest()`
returns `ReferenceInterest`, a brute-force O(N²) implementation of the same rules (radii, caps,
hysteresis, tiers, stage/private/meeting zones) that the tick loop uses today. Wire the real engine by
writing a class with the `Interest` protocol's two methods that calls it, and return it from
`make_interest()`; nothing else in `world/` needs to change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from interest.params import Box, Cylinder, InterestParams, PolygonPrism, Shape
from world.media import ListenerView


@dataclass
class ListenerInterest:
    view: ListenerView
    # Peers whose poses the listener receives -> pose rate (Hz) for that peer.
    positions: dict[int, float] = field(default_factory=dict)


class Interest(Protocol):
    def update_params(self, params: InterestParams) -> None: ...

    def step(
        self,
        ids: np.ndarray,
        positions: np.ndarray,
        audio_sources: np.ndarray,
        video_sources: np.ndarray,
        listeners: np.ndarray,
        visible: np.ndarray,
    ) -> dict[int, ListenerInterest]:
        """ids (N,), positions (N,3), boolean masks (N,): who publishes audio / video, who listens,
        who may be seen (hidden participants are not). Returns one entry per listener id."""
        ...


def make_interest(params: InterestParams) -> Interest:
    # TODO(integrator): return an adapter over interest.InterestEngine once it exists.
    return ReferenceInterest(params)


def inside(shape: Shape, pts: np.ndarray) -> np.ndarray:
    """Boolean mask of the points (N,3) inside the shape."""
    x, y, z = pts[:, 0], pts[:, 1], pts[:, 2]
    if isinstance(shape, Box):
        lo, hi = np.asarray(shape.min), np.asarray(shape.max)
        return np.all((pts >= lo) & (pts <= hi), axis=1)
    in_y = (y >= shape.y_min) & (y <= shape.y_max)
    if isinstance(shape, Cylinder):
        cx, cz = shape.center
        return in_y & ((x - cx) ** 2 + (z - cz) ** 2 <= shape.radius**2)
    assert isinstance(shape, PolygonPrism)
    # Even-odd ray casting in the X-Z plane.
    poly = np.asarray(shape.points, dtype=np.float64)
    result = np.zeros(len(pts), dtype=bool)
    j = len(poly) - 1
    for i in range(len(poly)):
        xi, zi = poly[i]
        xj, zj = poly[j]
        crosses = (zi > z) != (zj > z)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = (xj - xi) * (z - zi) / (zj - zi) + xi
        result ^= crosses & (x < x_at)
        j = i
    return in_y & result


def _near(
    ids: np.ndarray, d: np.ndarray, mask: np.ndarray, radius: float, grow: float, before: Iterable[int]
) -> np.ndarray:
    """mask & within radius; members of `before` stay until radius * grow (hysteresis)."""
    prev = np.fromiter(before, dtype=np.int64)
    had = np.isin(ids, prev) if len(prev) else np.zeros(len(ids), dtype=bool)
    return mask & ((d <= radius) | (had & (d <= radius * grow)))


def _nearest(ids: np.ndarray, d: np.ndarray, mask: np.ndarray, cap: int) -> list[int]:
    idx = np.flatnonzero(mask)
    idx = idx[np.argsort(d[idx], kind="stable")][:cap]
    return [int(ids[i]) for i in idx]


class ReferenceInterest:
    """Brute-force reference: distances to everyone, then the rules. Fine up to a few hundred avatars."""

    def __init__(self, params: InterestParams) -> None:
        self.params = params
        self._prev: dict[int, ListenerInterest] = {}

    def update_params(self, params: InterestParams) -> None:
        self.params = params

    def step(
        self,
        ids: np.ndarray,
        positions: np.ndarray,
        audio_sources: np.ndarray,
        video_sources: np.ndarray,
        listeners: np.ndarray,
        visible: np.ndarray,
    ) -> dict[int, ListenerInterest]:
        prm = self.params
        n = len(ids)
        out: dict[int, ListenerInterest] = {}
        if n == 0:
            self._prev = out
            return out
        pos = positions.astype(np.float64)
        dist = np.sqrt(((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1))
        grow = 1.0 + prm.hysteresis

        # Zone membership per avatar.
        zone_in = {z.name: inside(z.shape, pos) for z in prm.zones}
        audience_in = {z.name: inside(z.audience, pos) for z in prm.zones if z.audience is not None}
        private = [z for z in prm.zones if z.kind == "private" and not z.open]
        stages = [z for z in prm.zones if z.kind == "stage"]
        meetings = [z for z in prm.zones if z.kind == "meeting"]

        for li in np.flatnonzero(listeners):
            lid = int(ids[li])
            prev = self._prev.get(lid)
            d = dist[li]
            others = np.ones(n, dtype=bool)
            others[li] = False

            # Audibility: private zones isolate both ways.
            audible = audio_sources & others
            for z in private:
                m = zone_in[z.name]
                audible &= m if m[li] else ~m
            flat = np.zeros(n, dtype=bool)
            for z in meetings:
                m = zone_in[z.name]
                if m[li]:
                    flat |= m & audible
            staged = np.zeros(n, dtype=bool)
            for z in stages:
                if audience_in[z.name][li]:
                    stage_src = zone_in[z.name] & audio_sources & others
                    # A stage is a broadcast: it reaches its audience through private walls only if the
                    # stage and the listener are on the same side of each wall.
                    for pz in private:
                        m = zone_in[pz.name]
                        stage_src &= m if m[li] else ~m
                    staged |= stage_src
                    flat |= stage_src
            forced = flat | staged

            pf = prev.view.audio_forward if prev else ()
            pm = prev.view.audio_mixed if prev else ()
            stage_mix = np.zeros(n, dtype=bool)
            for z in stages:
                if z.delivery == "mix" and audience_in[z.name][li]:
                    stage_mix |= zone_in[z.name] & staged
            # Forced (stage/meeting) sources first, then by distance.
            fwd_mask = (_near(ids, d, audible, prm.forward_radius, grow, pf) | forced) & ~stage_mix
            fwd_idx = np.flatnonzero(fwd_mask)
            fwd_idx = fwd_idx[np.lexsort((d[fwd_idx], ~forced[fwd_idx]))][: prm.max_forwarded]
            forward = [int(ids[i]) for i in fwd_idx]
            fset = set(forward)
            mix_mask = (_near(ids, d, audible, prm.hearing_radius, grow, pm) | forced) & ~np.isin(
                ids, np.asarray(forward, dtype=ids.dtype)
            )
            mixed = _nearest(ids, d, mix_mask, prm.max_mixed) if prm.max_mixed > 0 else []
            prev_video = prev.view.video if prev else ()
            video = _nearest(
                ids, d, _near(ids, d, video_sources & others & visible, prm.video_radius, grow, prev_video),
                prm.video_max,
            )
            flat_ids = frozenset(int(ids[i]) for i in np.flatnonzero(flat)) & (fset | set(mixed))

            pos_prev = prev.positions if prev else {}
            pos_mask = _near(ids, d, visible & others, prm.position_radius, grow, pos_prev)
            pos_ids = _nearest(ids, d, pos_mask, prm.position_max)
            rates: dict[int, float] = {}
            for pid in pos_ids:
                dd = float(d[np.flatnonzero(ids == pid)[0]])
                rate = prm.position_tiers[-1].rate_hz
                for tier in prm.position_tiers:
                    if dd <= tier.distance:
                        rate = tier.rate_hz
                        break
                rates[pid] = rate
            # Everyone you hear is someone you can place.
            for pid in (*forward, *mixed):
                rates.setdefault(pid, prm.position_tiers[-1].rate_hz)
            out[lid] = ListenerInterest(
                ListenerView(tuple(forward), tuple(mixed), flat_ids, tuple(video)), rates
            )
        self._prev = out
        return out
