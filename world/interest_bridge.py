"""How the tick loop asks "who hears/sees whom": a thin adapter over `interest.InterestEngine`.

The engine answers in compressed sparse rows (one row per avatar, in pose-table order). The helpers
here turn those rows into what the world needs without a Python loop over every entry: sorted
(listener, peer) pair keys for `enter`/`exit`/`poses`, and the set of listeners whose media view
changed. (Per-listener views for the media backend are built lazily by `world.media.TickFrame`.)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from interest import AvatarFlags, InterestEngine, InterestParams, TickResult
from interest.pairs import pair_keys
from world.media import FLAG_AUDIO, FLAG_HIDDEN, FLAG_VIDEO

# The world's flag bits are the engine's for the bits they share; others (admin mute) stay in world.
assert (FLAG_AUDIO, FLAG_VIDEO, FLAG_HIDDEN) == (
    AvatarFlags.PUBLISH_AUDIO,
    AvatarFlags.PUBLISH_VIDEO,
    AvatarFlags.HIDDEN,
)
ENGINE_FLAGS = FLAG_AUDIO | FLAG_VIDEO | FLAG_HIDDEN

I64 = npt.NDArray[np.int64]


class WorldInterest:
    def __init__(self, params: InterestParams) -> None:
        self.engine = InterestEngine(params)

    @property
    def params(self) -> InterestParams:
        return self.engine.params

    def update_params(self, params: InterestParams) -> None:
        self.engine.set_params(params)

    def step(
        self, ids: np.ndarray, positions: np.ndarray, quats: np.ndarray, flags: np.ndarray, levels: np.ndarray
    ) -> TickResult:
        """ids (N,), positions (N,3), quats (N,4), flags (N,) FLAG_* bits, levels (N,) speaking level."""
        return self.engine.tick(ids, positions, quats, flags & ENGINE_FLAGS, levels)


def make_interest(params: InterestParams) -> WorldInterest:
    return WorldInterest(params)


def peer_pairs(res: TickResult, listening: np.ndarray, last_tier: int) -> tuple[I64, np.ndarray]:
    """Sorted unique keys ``listener_id << 32 | peer_id`` for listening rows, with the peer's position
    tier. Peers a listener hears (a stage far away) are included at the slowest tier: whoever you hear
    is someone you may place (`interest.pairs`)."""
    return pair_keys(res.listener_ids, listening, res.positions, res.forwarded, res.mixed, last_tier)


def changed_listeners(res: TickResult, listening: np.ndarray) -> frozenset[int]:
    """Listeners whose audio or video sets (or flat flags) differ from the previous tick."""
    touched = np.zeros(len(res.listener_ids), dtype=bool)
    for diff in (res.diffs.forwarded, res.diffs.mixed, res.diffs.video):
        for part in (diff.added, diff.removed, diff.changed):
            touched |= part.counts() > 0
    return frozenset(res.listener_ids[touched & listening].tolist())
