"""`SfuMedia`: the real media backend, adapting `sfu.SFU` to the world's `MediaBackend` seam.

The world thinks in ticks and listener views; the SFU thinks in listeners whose interest changed. This
adapter translates one into the other and nothing more, so that `sfu/` never imports `world/`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from aiortc import RTCIceServer

from sfu import SFU, ListenerInterest, SFUConfig
from spatial import ActiveSpeakerConfig, ActiveSpeakerDetector, DistanceModel, Mixer
from world.config import ServerSection, WorldConfig
from world.media import Channel, MediaEvents, TickFrame, Transport
from world.protocol import ErrorCode, encode
from world.voice_codec import VoiceEncoder, decode_frame


def _encode_binary(msg: dict[str, Any]) -> bytes:
    data = encode(msg, binary=True)
    assert isinstance(data, bytes)
    return data

logger = logging.getLogger(__name__)


def sfu_config(world: WorldConfig, server: ServerSection) -> SFUConfig:
    """The SFU's knobs from a world's config: slots = the interest caps, the bed's codec settings."""
    ice = tuple(
        RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
        for s in server.ice_servers
    )
    return SFUConfig(
        audio_slots=world.interest.audio.max_forwarded,
        video_slots=world.interest.video.max,
        opus_bitrate=world.audio.opus_bitrate,
        opus_complexity=world.audio.opus_complexity,
        mixing=world.audio.mixing,
        max_message_bytes=server.limits.max_frame_bytes,
        ice_servers=ice,
        ice_addresses=tuple(server.ice_host_addresses) if server.ice_host_addresses is not None else None,
    )


def world_mixer(world: WorldConfig) -> Mixer:
    """The crowd-bed mixer with the world's distance model and pan law."""
    a = world.audio
    distance = DistanceModel(
        model=a.distance_model,
        reference_distance=a.reference_distance,
        rolloff=a.rolloff,
        max_distance=a.max_distance,
    )
    return Mixer(distance=distance, pan=a.pan_law)


class SfuMedia:
    """One world's media: an `SFU` driven by the tick loop."""

    def __init__(self, world: WorldConfig, server: ServerSection) -> None:
        self._events: MediaEvents | None = None
        self.sfu = SFU(
            sfu_config(world, server),
            encode=_encode_binary,
            on_gone=self._on_gone,
            mixer=world_mixer(world),
            voice_encoder=VoiceEncoder,
        )
        # Participants whose peer connection exists but who have not yet been given a view: the tick
        # that first lists them may run while `add_participant` is still awaiting the offer.
        self._fresh: set[int] = set()
        self._webrtc: set[int] = set()
        # WebSocket-transport participants: voice in by `voice_in`, voice out by `send_to_websocket`.
        self._ws: set[int] = set()
        self._voice_errors: dict[int, float] = {}  # pid -> when we last answered a bad frame
        # Active speakers, observed once per tick; each listener is told only about speakers it can
        # hear (its forwarded and mixed sets), so the list leaks nothing its hearing rules forbid.
        tick_ms = max(1, round(1000.0 / world.tick_rate))
        self._speakers = ActiveSpeakerDetector(
            ActiveSpeakerConfig(frame_ms=tick_ms, update_interval_ms=max(400, tick_ms))
        )
        self._active: list[int] = []
        self._active_levels: dict[int, float] = {}
        self._told: dict[int, tuple[int, ...]] = {}
        self._publishing: dict[int, tuple[bool, bool]] = {}
        self._levels: tuple[np.ndarray | None, np.ndarray | None] = (None, None)  # last audio_levels()

    def bind(self, events: MediaEvents) -> None:
        self._events = events

    # -- signaling ---------------------------------------------------------------------------

    async def add_participant(
        self, pid: int, *, publish: bool, subscribe: bool, transport: Transport = "webrtc"
    ) -> dict[str, Any] | None:
        if transport != "webrtc":
            self._add_websocket_voice(pid, publish=publish, subscribe=subscribe)
            return None
        offer = await self.sfu.add_participant(
            pid, publish=publish, subscribe=subscribe, on_message=self._on_message
        )
        self._webrtc.add(pid)
        self._fresh.add(pid)
        return offer

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
        self._fresh.discard(pid)
        self._webrtc.discard(pid)
        self._ws.discard(pid)
        self._voice_errors.pop(pid, None)
        self._told.pop(pid, None)
        self._publishing.pop(pid, None)
        await self.sfu.remove_participant(pid)

    async def close(self) -> None:
        await self.sfu.close()

    def reconfigure(self, world: WorldConfig) -> None:
        """Hot reload: the bed follows the new distance model and pan law from the next frame."""
        self.sfu.set_mixer(world_mixer(world))

    # -- ticks ---------------------------------------------------------------------------------

    def apply_tick(self, frame: TickFrame) -> None:
        self.sfu.update_poses(frame.ids, frame.positions, frame.quats)
        self._report_tracks()
        speakers_changed = self._observe_speakers(frame)
        due = (set(frame.changed) | self._fresh) & (self._webrtc | self._ws)
        if speakers_changed or due:
            self._tell_speakers(frame, None if speakers_changed else due)
        if not due:
            return
        changes: dict[int, ListenerInterest] = {}
        for pid in due:
            if pid not in frame.row_of:
                continue
            v = frame.view(pid)
            changes[pid] = ListenerInterest(
                forwarded=v.audio_forward, mixed=v.audio_mixed, video=v.video, flat=v.flat
            )
            self._fresh.discard(pid)
        self.sfu.update_interest(changes)

    def _report_tracks(self) -> None:
        """Tell the world who actually publishes audio/video, so silent peers take no slots."""
        if self._events is None:
            return
        for pid in self._webrtc:
            audio, video = self.sfu.publishing(pid)
            state = (audio, video)
            if self._publishing.get(pid) != state:
                self._publishing[pid] = state
                self._events.on_tracks(pid, audio=audio, video=video)

    def _observe_speakers(self, frame: TickFrame) -> bool:
        ids, levels = self._levels
        if ids is not frame.ids:
            levels = self.sfu.audio_levels(frame.ids)
        if levels is None:
            levels = np.zeros(len(frame.ids))
        dbov = 20.0 * np.log10(np.maximum(levels, 1e-7))
        active = self._speakers.observe(frame.ids, np.clip(dbov, -127.0, 0.0))
        if active is None:
            return False
        self._active = active
        by_id = dict(zip(frame.ids.tolist(), dbov.tolist(), strict=True))
        self._active_levels = {pid: round(by_id.get(pid, -127.0), 1) for pid in active}
        return True

    def _tell_speakers(self, frame: TickFrame, only: set[int] | None) -> None:
        """Send `speakers` to listeners whose audible active-speaker list changed."""
        targets = (self._webrtc | self._ws) if only is None else only
        for pid in list(targets):
            view = frame.view(pid)
            audible = set(view.audio_forward) | set(view.audio_mixed)
            heard = tuple(s for s in self._active if s in audible)
            if self._told.get(pid, ()) == heard:
                continue
            msg = {"t": "speakers", "ids": list(heard), "levels": [self._active_levels[s] for s in heard]}
            data = _encode_binary(msg)
            if pid in self._webrtc:
                sent = self.sfu.send(pid, "control", data)
            else:
                sent = self._events is not None and self._events.send_to_websocket(pid, data, droppable=False)
            if sent:  # otherwise try again next tick
                self._told[pid] = heard

    # -- data channels -------------------------------------------------------------------------

    def send(self, pid: int, channel: Channel, data: bytes) -> bool:
        if pid not in self._webrtc:
            return False
        return self.sfu.send(pid, channel, data)

    def _on_message(self, pid: int, channel: str, data: bytes) -> None:
        if self._events is not None and channel in ("control", "state"):
            self._events.on_client_frame(pid, channel, data)  # type: ignore[arg-type]

    def _on_gone(self, pid: int) -> None:
        if self._events is not None:
            self._events.on_media_closed(pid)

    # -- audio ---------------------------------------------------------------------------------

    def _add_websocket_voice(self, pid: int, *, publish: bool, subscribe: bool) -> None:
        """A WebSocket-transport participant: a PCM source (if it may publish) and a listener that gets
        `voice` messages (if it may subscribe), both through the SFU's voice bridge."""
        if publish and self.sfu.external_source(pid) is None:
            self.sfu.add_external_source(pid)
        if subscribe:
            self.sfu.add_ws_listener(pid, lambda data: self._send_voice(pid, data))
        self._ws.add(pid)
        self._fresh.add(pid)

    def _send_voice(self, pid: int, data: bytes) -> bool:
        events = self._events
        return events is not None and events.send_to_websocket(pid, data, droppable=True)

    def voice_in(self, pid: int, codec: str, seq: int, pcm: bytes) -> None:
        """One 20 ms frame from a WebSocket client: decoded here, Opus-encoded once in the SFU, then
        forwarded and mixed like any WebRTC voice. A bad frame is answered with INVALID_FIELD (at most
        once a second) and dropped; the session carries on."""
        source = self.sfu.external_source(pid)
        if source is None:
            return  # not a publishing WebSocket participant (the session checked the grants)
        try:
            pcm16 = decode_frame(codec, pcm)
        except ValueError as exc:
            self._bad_voice(pid, str(exc))
            return
        self.sfu.set_ws_codec(pid, codec)  # a listener hears in the codec it speaks
        source.push_pcm16(pcm16)

    def _bad_voice(self, pid: int, reason: str) -> None:
        now = time.monotonic()
        if now - self._voice_errors.get(pid, -1e9) < 1.0:
            return
        self._voice_errors[pid] = now
        logger.info("pid %d: bad voice frame: %s", pid, reason)
        if self._events is not None:
            msg = {"t": "error", "code": int(ErrorCode.INVALID_FIELD), "message": reason, "ref": "voice"}
            self._events.send_to_websocket(pid, _encode_binary(msg), droppable=False)

    def audio_levels(self, ids: np.ndarray) -> np.ndarray | None:
        levels = self.sfu.audio_levels(ids)
        self._levels = (ids, levels)  # the tick hands the same `ids` array to apply_tick: reuse them
        return levels

    def stats(self) -> dict[str, Any]:
        """Totals for /healthz and /admin, plus every participant's per-track RTCP figures."""
        per = self.sfu.stats()
        tracks = [t for s in per.values() for t in s.tracks]
        return {
            "backend": "sfu",
            "participants": len(per),
            "connected": sum(1 for s in per.values() if s.connection_state == "connected"),
            "rtp_packets_out": sum(t.packets for t in tracks if t.direction == "out"),
            "rtp_packets_in": sum(t.packets for t in tracks if t.direction == "in"),
            "mixer": _jsonable(self.sfu.mixer_report()),
            "voice": _jsonable(self.sfu.voice_report()),
            "per_participant": {str(pid): _jsonable(st) for pid, st in per.items()},
        }


def _jsonable(obj: Any) -> Any:
    """Dataclasses, tuples and numpy scalars to plain JSON types."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
