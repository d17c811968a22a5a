"""Which avatar each received track carries (sans-I/O).

The server's offer names its transceivers by mid: ``slots.audio`` is the ordered list of forwarded-voice
mids, ``slots.mixed`` the mixed bed. Later ``slots`` messages on the control channel say which participant
each slot index carries now (null = idle); slots are re-pointed without renegotiation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SlotMap:
    audio_mids: list[str] = field(default_factory=list)
    video_mids: list[str] = field(default_factory=list)
    mixed_mid: str | None = None
    publish_audio_mid: str | None = None
    publish_video_mid: str | None = None
    audio: list[int | None] = field(default_factory=list)  # slot index -> participant id
    video: list[int | None] = field(default_factory=list)
    flat: list[bool] = field(default_factory=list)  # heard unattenuated (stage, meeting)

    def set_offer(self, slots: Mapping[str, Any]) -> None:
        """Learn the mids from an ``offer`` message's ``slots`` map."""
        self.audio_mids = [str(m) for m in slots.get("audio") or []]
        self.video_mids = [str(m) for m in slots.get("video") or []]
        mixed = slots.get("mixed")
        self.mixed_mid = None if mixed is None else str(mixed)
        pa, pv = slots.get("publish_audio"), slots.get("publish_video")
        self.publish_audio_mid = None if pa is None else str(pa)
        self.publish_video_mid = None if pv is None else str(pv)
        self.audio = [None] * len(self.audio_mids)
        self.video = [None] * len(self.video_mids)
        self.flat = [False] * len(self.audio_mids)

    def update(
        self, audio: Sequence[int | None], video: Sequence[int | None], flat: Sequence[bool] = ()
    ) -> None:
        """Apply a ``slots`` message."""
        self.audio = [None if a is None else int(a) for a in audio]
        self.video = [None if v is None else int(v) for v in video]
        self.flat = [bool(f) for f in flat] + [False] * max(0, len(self.audio) - len(flat))

    def audio_index(self, mid: str | None) -> int | None:
        """Slot index of an audio mid, or None if it is not a forwarded-voice slot."""
        try:
            return self.audio_mids.index(str(mid))
        except ValueError:
            return None

    def pid_for_mid(self, mid: str | None) -> int | None:
        i = self.audio_index(mid)
        return None if i is None or i >= len(self.audio) else self.audio[i]

    def slot_of(self, pid: int) -> int | None:
        """The audio slot currently carrying participant `pid`."""
        try:
            return self.audio.index(pid)
        except ValueError:
            return None

    def is_flat(self, index: int) -> bool:
        return 0 <= index < len(self.flat) and self.flat[index]
