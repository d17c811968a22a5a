"""The seam between the world (signaling, authority, interest) and a media backend (the SFU).

The world drives the backend; the backend reports back through `MediaEvents`. Nothing else crosses:
the SFU never imports `world`, it only has to satisfy `MediaBackend` structurally. `NullMedia` is the
backend used when no SFU is configured: signaling, poses and data over the WebSocket all work, no audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from interest import TickResult

Channel = Literal["control", "state"]
Transport = Literal["webrtc", "websocket"]

# Bits of `TickFrame.flags` (one byte per avatar).
FLAG_AUDIO = 1  # publishing audio (joined with can_publish and not muted, not admin-muted)
FLAG_VIDEO = 2  # publishing video
FLAG_HIDDEN = 4  # hidden participant (token grant): never announced to others, never a source
FLAG_ADMIN_MUTED = 8


@dataclass(frozen=True)
class ListenerView:
    """What one listener receives this tick (participant ids, nearest/most relevant first)."""

    audio_forward: tuple[int, ...] = ()  # individual forwarded tracks (slots)
    audio_mixed: tuple[int, ...] = ()  # mixed by the server into the listener's bed
    flat: frozenset[int] = frozenset()  # of the above, heard unattenuated (stage, meeting)
    video: tuple[int, ...] = ()


@dataclass(eq=False)
class TickFrame:
    """One tick of interest decisions for a world, handed to `MediaBackend.apply_tick`.

    Arrays are the world's pose table at this tick (row i belongs to participant ids[i]); they are
    copies, so the backend may keep them until the next tick. `interest` is the engine's full answer
    (CSR sets per category, rows in `ids` order, plus diffs against the previous tick) for backends
    that want to work on arrays; `view(pid)` / `listeners` give the same per listener as tuples.
    """

    tick: int
    world: str
    ids: np.ndarray  # (N,) uint32
    positions: np.ndarray  # (N, 3) float32, metres
    quats: np.ndarray  # (N, 4) float32, (x, y, z, w)
    flags: np.ndarray  # (N,) uint8, FLAG_* bits
    interest: TickResult
    subscribed: np.ndarray  # (N,) bool: connected and allowed to receive media (can_subscribe)
    changed: frozenset[int] = frozenset()  # subscribed listeners whose view differs from last tick

    @cached_property
    def row_of(self) -> dict[int, int]:
        """Participant id -> row, built once per tick (views are looked up per listener)."""
        return {pid: row for row, pid in enumerate(self.ids.tolist())}

    def view(self, pid: int) -> ListenerView:
        """What listener `pid` receives; empty if it is not a subscribed listener."""
        row = self.row_of.get(pid)
        if row is None or not self.subscribed[row]:
            return ListenerView()
        return _view(self.interest, row)

    @cached_property
    def listeners(self) -> dict[int, ListenerView]:
        """Every subscribed listener's view (built on first use)."""
        return {int(self.ids[r]): _view(self.interest, int(r)) for r in np.flatnonzero(self.subscribed)}


def _view(res: TickResult, row: int) -> ListenerView:
    fwd, mix, vid = res.forwarded, res.mixed, res.video
    f_ids, f_flat = fwd.row(row), fwd.row_attr(row).astype(bool)
    m_ids, m_flat = mix.row(row), mix.row_attr(row).astype(bool)
    return ListenerView(
        audio_forward=tuple(f_ids.tolist()),
        audio_mixed=tuple(m_ids.tolist()),
        flat=frozenset(f_ids[f_flat].tolist()) | frozenset(m_ids[m_flat].tolist()),
        video=tuple(vid.row(row).tolist()),
    )


class MediaEvents(Protocol):
    """Callbacks the backend uses to reach the world (set once with `MediaBackend.bind`)."""

    def on_client_frame(self, pid: int, channel: Channel, data: bytes) -> None:
        """A protocol frame (msgpack) a client sent on its `control` or `state` data channel."""

    def send_to_websocket(self, pid: int, data: bytes, *, droppable: bool) -> bool:
        """Deliver a protocol frame (e.g. `voice`) to a websocket-transport client. False if dropped."""
        ...

    def on_media_closed(self, pid: int) -> None:
        """The participant's peer connection failed or closed for good."""

    def on_tracks(self, pid: int, *, audio: bool, video: bool) -> None:
        """Which tracks the participant actually publishes (sets the video flag used by interest)."""


@runtime_checkable
class MediaBackend(Protocol):
    def bind(self, events: MediaEvents) -> None:
        """Called once by the world before any other method."""

    async def add_participant(
        self, pid: int, *, publish: bool, subscribe: bool, transport: Transport = "webrtc"
    ) -> dict[str, Any] | None:
        """Prepare media for a participant. For webrtc returns the `offer` fields ({sdp, slots}); for
        websocket transport (voice over the WebSocket) returns None."""
        ...

    async def set_answer(self, pid: int, sdp: str) -> None:
        """The client's SDP answer to our offer. Raises ValueError on a bad answer."""

    async def add_ice_candidate(self, pid: int, cand: dict[str, Any]) -> None:
        """A trickled client candidate ({candidate, sdpMid, sdpMLineIndex})."""

    async def remove_participant(self, pid: int) -> None:
        """Tear down everything for pid. Idempotent."""

    def apply_tick(self, frame: TickFrame) -> None:
        """Re-point slots, update mixer gains. Must not block: called from the tick loop."""

    def send(self, pid: int, channel: Channel, data: bytes) -> bool:
        """Send a protocol frame on pid's data channel; False if not open/too backed up (caller falls
        back to the WebSocket for reliable messages)."""
        ...

    def voice_in(self, pid: int, codec: str, seq: int, pcm: bytes) -> None:
        """A 20 ms voice frame from a websocket-transport client."""

    def audio_levels(self, ids: np.ndarray) -> np.ndarray | None:
        """Smoothed linear speaking level (0..1) of each id's published audio, or None if unknown.
        The interest engine gives current speakers priority for forwarded slots."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counters for /healthz and the admin API."""
        ...


class NullMedia:
    """A backend without media: every data-channel send fails (so the world uses the WebSocket)."""

    def __init__(self) -> None:
        self.participants: dict[int, dict[str, Any]] = {}
        self.ticks = 0
        self.last_frame: TickFrame | None = None
        self.voice_frames = 0
        self._events: MediaEvents | None = None

    def bind(self, events: MediaEvents) -> None:
        self._events = events

    async def add_participant(
        self, pid: int, *, publish: bool, subscribe: bool, transport: Transport = "webrtc"
    ) -> dict[str, Any] | None:
        self.participants[pid] = {"publish": publish, "subscribe": subscribe, "transport": transport}
        return None

    async def set_answer(self, pid: int, sdp: str) -> None:
        raise ValueError("no media backend configured: this server does not negotiate WebRTC")

    async def add_ice_candidate(self, pid: int, cand: dict[str, Any]) -> None:
        raise ValueError("no media backend configured: this server does not negotiate WebRTC")

    async def remove_participant(self, pid: int) -> None:
        self.participants.pop(pid, None)

    def apply_tick(self, frame: TickFrame) -> None:
        self.ticks += 1
        self.last_frame = frame

    def send(self, pid: int, channel: Channel, data: bytes) -> bool:
        return False

    def voice_in(self, pid: int, codec: str, seq: int, pcm: bytes) -> None:
        self.voice_frames += 1

    def audio_levels(self, ids: np.ndarray) -> np.ndarray | None:
        return None

    def stats(self) -> dict[str, Any]:
        return {
            "backend": "null",
            "participants": len(self.participants),
            "ticks": self.ticks,
            "voice_frames_in": self.voice_frames,
        }
