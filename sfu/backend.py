"""`SFUBackend`: the `SFU` shaped as the world's `MediaBackend` (world/media.py).

`sfu` must not import `world`, so this adapter satisfies the protocol structurally: the world passes
its `MediaEvents` to `bind`, and `TickFrame`s to `apply_tick` (only the attributes used here are
read: ids, positions, quats, changed and view(pid) -> ListenerView).
"""

from __future__ import annotations

from typing import Any, Protocol

from .interface import SFU, ListenerInterest


class _Events(Protocol):
    def on_client_frame(self, pid: int, channel: Any, data: bytes) -> None: ...

    def on_media_closed(self, pid: int) -> None: ...


class SFUBackend:
    def __init__(self, sfu: SFU) -> None:
        self.sfu = sfu
        self._events: _Events | None = None
        self.ticks = 0
        self.voice_frames_ignored = 0

    def bind(self, events: _Events) -> None:
        self._events = events
        self.sfu.on_gone = events.on_media_closed

    async def add_participant(
        self, pid: int, *, publish: bool, subscribe: bool, transport: str = "webrtc"
    ) -> dict[str, Any] | None:
        if transport != "webrtc":
            return None  # WebSocket voice clients are not media peers of the SFU
        return await self.sfu.add_participant(
            pid, publish=publish, subscribe=subscribe, on_message=self._frame
        )

    def _frame(self, pid: int, channel: str, data: bytes) -> None:
        if self._events is not None:
            self._events.on_client_frame(pid, channel, data)

    async def set_answer(self, pid: int, sdp: str) -> None:
        try:
            await self.sfu.set_answer(pid, sdp)
        except KeyError as exc:
            raise ValueError(f"no media session for participant {pid}") from exc

    async def add_ice_candidate(self, pid: int, cand: dict[str, Any]) -> None:
        try:
            await self.sfu.add_ice_candidate(pid, cand)
        except KeyError as exc:
            raise ValueError(f"no media session for participant {pid}") from exc

    async def remove_participant(self, pid: int) -> None:
        await self.sfu.remove_participant(pid)

    def apply_tick(self, frame: Any) -> None:
        self.ticks += 1
        self.sfu.update_poses(frame.ids, frame.positions, frame.quats)
        changes = {}
        for pid in frame.changed:
            view = frame.view(int(pid))
            changes[int(pid)] = ListenerInterest(
                forwarded=tuple(view.audio_forward),
                mixed=tuple(view.audio_mixed),
                video=tuple(view.video),
                flat=frozenset(view.flat),
            )
        if changes:
            self.sfu.update_interest(changes)

    def send(self, pid: int, channel: str, data: bytes) -> bool:
        return self.sfu.send(pid, channel, data)

    def voice_in(self, pid: int, codec: str, seq: int, pcm: bytes) -> None:
        self.voice_frames_ignored += 1

    def audio_levels(self, ids: Any) -> Any:
        return self.sfu.audio_levels(ids)

    def stats(self) -> dict[str, Any]:
        per = self.sfu.stats()
        out_packets = sum(t.packets for s in per.values() for t in s.tracks if t.direction == "out")
        in_packets = sum(t.packets for s in per.values() for t in s.tracks if t.direction == "in")
        return {
            "backend": "sfu",
            "participants": len(per),
            "connected": sum(1 for s in per.values() if s.connection_state == "connected"),
            "rtp_packets_out": out_packets,
            "rtp_packets_in": in_packets,
            "ticks": self.ticks,
            "mixer": self.sfu.mixer_report(),
        }
