"""How the tick loop asks "who hears/sees whom": a thin adapter over `interest.InterestEngine`.

The engine returns compressed sparse rows for every avatar; the world needs, per connected
listener, its audio/video view (for the media backend) and its position peers with a pose rate (for
`enter`/`exit`/`poses`). Keeping that conversion here leaves the tick loop free of CSR details.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from interest import AvatarFlags, InterestEngine, InterestParams
from world.media import FLAG_AUDIO, FLAG_HIDDEN, FLAG_VIDEO, ListenerView

# The world's flag bits are the engine's for the bits they share; others (admin mute) stay in world.
assert (FLAG_AUDIO, FLAG_VIDEO, FLAG_HIDDEN) == (
    AvatarFlags.PUBLISH_AUDIO,
    AvatarFlags.PUBLISH_VIDEO,
    AvatarFlags.HIDDEN,
)
ENGINE_FLAGS = FLAG_AUDIO | FLAG_VIDEO | FLAG_HIDDEN


@dataclass
class ListenerInterest:
    view: ListenerView
    # Peers whose poses the listener receives -> pose rate (Hz) for that peer.
    positions: dict[int, float] = field(default_factory=dict)


class WorldInterest:
    def __init__(self, params: InterestParams) -> None:
        self.engine = InterestEngine(params)

    def update_params(self, params: InterestParams) -> None:
        self.engine.set_params(params)

    def step(
        self,
        ids: np.ndarray,
        positions: np.ndarray,
        quats: np.ndarray,
        flags: np.ndarray,
        levels: np.ndarray,
        listeners: np.ndarray,
    ) -> dict[int, ListenerInterest]:
        """ids (N,), positions (N,3), quats (N,4), flags (N,) FLAG_* bits, levels (N,) speaking level
        0..1, listeners (N,) bool: rows that get a result (connected participants)."""
        res = self.engine.tick(ids, positions, quats, flags & ENGINE_FLAGS, levels)
        tiers = self.engine.params.position_tiers
        rates = np.array([t.rate_hz for t in tiers], dtype=np.float64)
        slowest = float(rates[-1])
        fwd, mix, vid, pos = res.forwarded, res.mixed, res.video, res.positions
        out: dict[int, ListenerInterest] = {}
        for i in np.flatnonzero(listeners):
            f_ids = fwd.ids[fwd.indptr[i] : fwd.indptr[i + 1]]
            f_flat = fwd.attr[fwd.indptr[i] : fwd.indptr[i + 1]]
            m_ids = mix.ids[mix.indptr[i] : mix.indptr[i + 1]]
            m_flat = mix.attr[mix.indptr[i] : mix.indptr[i + 1]]
            p_ids = pos.ids[pos.indptr[i] : pos.indptr[i + 1]]
            p_tier = pos.attr[pos.indptr[i] : pos.indptr[i + 1]]
            flat = frozenset(f_ids[f_flat.astype(bool)].tolist()) | frozenset(
                m_ids[m_flat.astype(bool)].tolist()
            )
            view = ListenerView(
                audio_forward=tuple(f_ids.tolist()),
                audio_mixed=tuple(m_ids.tolist()),
                flat=flat,
                video=tuple(vid.ids[vid.indptr[i] : vid.indptr[i + 1]].tolist()),
            )
            peers = dict(zip(p_ids.tolist(), rates[p_tier.astype(np.intp)].tolist(), strict=True))
            # Whoever you hear (a stage far away) is someone you may place: announce it, slowly.
            for pid in (*view.audio_forward, *view.audio_mixed):
                peers.setdefault(pid, slowest)
            out[int(res.listener_ids[i])] = ListenerInterest(view, peers)
        return out


def make_interest(params: InterestParams) -> WorldInterest:
    return WorldInterest(params)
