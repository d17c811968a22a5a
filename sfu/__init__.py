"""Hubbub's media heart: slots, forwarding without re-encoding, the mixed bed, data channels.

See docs/sfu.md. The world drives it through `SFU` only; `sfu` never imports `world`.
"""

from .interface import SFU, ListenerInterest, ParticipantStats, SFUConfig, TrackStats
from .slots import assign_slots

__all__ = ["SFU", "ListenerInterest", "ParticipantStats", "SFUConfig", "TrackStats", "assign_slots"]
