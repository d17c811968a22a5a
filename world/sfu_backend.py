"""`SfuMedia`: the real media backend, adapting `sfu.SFU` to the world's `MediaBackend` seam.

The world thinks in ticks and listener views; the SFU thinks in listeners whose interest changed. This
adapter translates one into the other and nothing more, so that `sfu/` never imports `world/`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from aiortc import RTCIceServer

from sfu import SFU, ListenerInterest, SFUConfig
from spatial import DistanceModel, Mixer
from world.config import ServerSection, WorldConfig
from world.media import Channel, MediaEvents, TickFrame, Transport
from world.protocol import encode


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
            sfu_config(world, server), encode=_encode_binary, on_gone=self._on_gone, mixer=world_mixer(world)
        )
        # Participants whose peer connection exists but who have not yet been given a view: the tick
        # that first lists them may run while `add_participant` is still awaiting the offer.
        self._fresh: set[int] = set()
        self._webrtc: set[int] = set()

    def bind(self, events: MediaEvents) -> None:
        self._events = events

    # -- signaling ---------------------------------------------------------------------------

    async def add_participant(
        self, pid: int, *, publish: bool, subscribe: bool, transport: Transport = "webrtc"
    ) -> dict[str, Any] | None:
        if transport != "webrtc":
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
        await self.sfu.remove_participant(pid)

    async def close(self) -> None:
        await self.sfu.close()

    def reconfigure(self, world: WorldConfig) -> None:
        """Hot reload: the bed follows the new distance model and pan law from the next frame."""
        self.sfu.set_mixer(world_mixer(world))

    # -- ticks ---------------------------------------------------------------------------------

    def apply_tick(self, frame: TickFrame) -> None:
        self.sfu.update_poses(frame.ids, frame.positions, frame.quats)
        due = (set(frame.changed) | self._fresh) & self._webrtc
        if not due:
            return
        present = set(frame.ids.tolist())
        changes: dict[int, ListenerInterest] = {}
        for pid in due:
            if pid not in present:
                continue
            v = frame.view(pid)
            changes[pid] = ListenerInterest(
                forwarded=v.audio_forward, mixed=v.audio_mixed, video=v.video, flat=v.flat
            )
            self._fresh.discard(pid)
        self.sfu.update_interest(changes)

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

    def voice_in(self, pid: int, codec: str, seq: int, pcm: bytes) -> None:
        pass  # replaced below once the SFU takes PCM sources

    def audio_levels(self, ids: np.ndarray) -> np.ndarray | None:
        return self.sfu.audio_levels(ids)

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for pid, st in self.sfu.stats().items():
            out[str(pid)] = _jsonable(st)
        return {"participants": out, "mixer": _jsonable(self.sfu.mixer_report())}


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
