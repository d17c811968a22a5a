"""`SFU`: the narrow interface the world drives (it never sees aiortc objects).

The world calls `add_participant` / `set_answer` / `add_ice_candidate` / `remove_participant` for
signaling, `update_interest` and `update_poses` every tick, and `send` for data-channel messages. The
SFU calls back `on_message(pid, channel, data)` for what clients send on their data channels and
`on_gone(pid)` when a peer vanishes (ICE/DTLS failure or silence longer than `dead_after`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np
from aiortc import RTCIceServer
from aiortc.rtp import RtpPacket
from numpy.typing import NDArray

from spatial import Mixer

from .forward import OutSlot, Publisher
from .mix import MixEngine
from .peer import Peer
from .slots import assign_slots
from .voice_bridge import EncoderFactory, ExternalSource, WsVoiceBridge

logger = logging.getLogger(__name__)

OnMessage = Callable[[int, str, bytes], None]
OnGone = Callable[[int], None]

# Error codes (numerically equal to world/protocol.py ErrorCode; the SFU must not import world).
FRAME_TOO_LARGE = 104
RATE_LIMITED = 105


@dataclass(frozen=True)
class SFUConfig:
    audio_slots: int = 8  # = interest max_forwarded
    video_slots: int = 4  # = interest video_max
    opus_bitrate: int = 32000  # mixed bed
    opus_complexity: int = 5
    mixing: bool = True
    max_message_bytes: int = 65536  # inbound data-channel message bound
    messages_per_second: float = 200.0  # inbound per channel (token bucket), burst = 1 s worth
    state_high_water: int = 64 * 1024  # bufferedAmount above which lossy sends are dropped
    control_high_water: int = 1024 * 1024  # ... and reliable sends refused (caller may use the WebSocket)
    ice_servers: tuple[RTCIceServer, ...] = ()
    ice_addresses: tuple[str, ...] | None = None  # None: every host address aioice finds
    dead_after: float = 30.0  # seconds without a datagram or STUN check from a connected peer
    connect_timeout: float = 30.0  # seconds from offer to a connected transport
    video_history: int = 512  # packets kept per video slot to answer NACKs


@dataclass(frozen=True)
class ListenerInterest:
    """What one listener may hear and see. Anything not listed never reaches it."""

    forwarded: tuple[int, ...] = ()  # individual audio tracks, nearest/most relevant first
    mixed: tuple[int, ...] = ()  # into the server-mixed stereo bed
    video: tuple[int, ...] = ()
    flat: frozenset[int] = frozenset()  # heard unattenuated (stage, meeting): forwarded or mixed


@dataclass
class TrackStats:
    kind: str  # "audio" | "video" | "mixed"
    direction: str  # "in" (published by the participant) | "out" (sent to it)
    mid: str | None
    source: int | None  # for out tracks: the participant currently carried
    packets: int
    bytes: int
    bitrate_bps: float
    packets_lost: int
    fraction_lost: float
    jitter_ms: float
    rtt_ms: float | None


@dataclass
class ParticipantStats:
    pid: int
    connection_state: str
    tracks: list[TrackStats] = field(default_factory=list)
    rtt_ms: float | None = None
    messages_in: int = 0
    messages_dropped: int = 0


class _Bucket:
    """Token bucket bounding inbound messages per channel."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(rate, 1.0)
        self.tokens = self.burst
        self.last = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class _Session:
    peer: Peer
    on_message: OnMessage
    publisher: Publisher | None
    audio: list[int | None]
    video: list[int | None]
    flat: frozenset[int] = frozenset()
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    last_error: dict[int, float] = field(default_factory=dict)
    slots_dirty: bool = False
    messages_in: int = 0
    messages_dropped: int = 0
    last_rx: int = 0
    last_heard: float = 0.0
    last_counts: dict[object, tuple[int, float]] = field(default_factory=dict)


class SFU:
    """Selective forwarding with slots, a server-mixed bed, and the two data channels."""

    def __init__(
        self,
        config: SFUConfig | None = None,
        *,
        encode: Callable[[dict[str, Any]], bytes] = msgpack.packb,
        on_gone: OnGone | None = None,
        mixer: Mixer | None = None,
        voice_encoder: EncoderFactory | None = None,
    ) -> None:
        """`voice_encoder(codec, channels)` makes the frame encoders for WebSocket-voice listeners
        (see `voice_bridge`); without it the SFU has WebRTC participants only."""
        self.config = config or SFUConfig()
        self.encode = encode
        self.on_gone = on_gone
        self._sessions: dict[int, _Session] = {}
        self._mixer = MixEngine(
            bitrate=self.config.opus_bitrate, complexity=self.config.opus_complexity, mixer=mixer
        )
        self._watchdog: asyncio.Task[None] | None = None
        self._closing: set[int] = set()
        self._bg: set[asyncio.Task[Any]] = set()
        # WebSocket-voice participants: sources without a peer connection, and PCM listeners.
        self._external: dict[int, ExternalSource] = {}
        self._voice = WsVoiceBridge(voice_encoder, self.encode) if voice_encoder is not None else None
        if self._voice is not None:
            self._mixer.bed_sink = self._voice.on_bed

    # -- signaling -----------------------------------------------------------------------------

    async def add_participant(
        self, pid: int, *, publish: bool, subscribe: bool, on_message: OnMessage
    ) -> dict[str, Any]:
        """Create pid's peer connection and return the offer: {sdp, slots:{audio, mixed, video,
        publish_audio, publish_video}} (mids)."""
        if pid in self._sessions:
            raise ValueError(f"participant {pid} already has a session")
        self._start_background()
        cfg = self.config
        publisher = Publisher(pid) if publish else None
        peer = Peer(
            pid,
            publish=publish,
            subscribe=subscribe,
            audio_slots=cfg.audio_slots,
            video_slots=cfg.video_slots,
            video_history=cfg.video_history,
            ice_servers=cfg.ice_servers,
            ice_addresses=cfg.ice_addresses,
            on_audio=publisher.on_audio if publisher else _ignore_rtp,
            on_video=publisher.on_video if publisher else _ignore_rtp,
            on_channel_message=lambda ch, data: self._on_channel_message(pid, ch, data),
            on_connection_state=lambda state: self._on_connection_state(pid, state),
            on_channel_open=lambda ch: self._on_channel_open(pid, ch),
        )
        session = _Session(
            peer=peer,
            on_message=on_message,
            publisher=publisher,
            audio=[None] * len(peer.audio_slots),
            video=[None] * len(peer.video_slots),
            buckets={ch: _Bucket(cfg.messages_per_second) for ch in ("control", "state")},
            last_heard=time.monotonic(),
        )
        if publisher is not None:
            publisher.keyframe_requester = lambda: self._send_pli(pid)
        for slot in peer.video_slots:
            slot.on_keyframe_request = self._on_listener_keyframe_request
        self._sessions[pid] = session
        if publisher is not None:
            # Listeners may already have been given this source (interest can run ahead of media).
            for other in self._sessions.values():
                publisher.audio_out += [s for s in other.peer.audio_slots if s.source == pid]
                publisher.video_out += [s for s in other.peer.video_slots if s.source == pid]
            self._sync_decoders()
        try:
            return await peer.make_offer()
        except Exception:
            await self.remove_participant(pid)
            raise

    async def set_answer(self, pid: int, sdp: str) -> None:
        """Apply the client's answer. Raises KeyError for an unknown pid, ValueError for a bad answer."""
        await self._sessions[pid].peer.set_answer(sdp)

    async def add_ice_candidate(self, pid: int, cand: Mapping[str, Any]) -> None:
        """A trickled remote candidate ({candidate, sdpMid, sdpMLineIndex}); "" ends the candidates."""
        await self._sessions[pid].peer.add_ice_candidate(dict(cand))

    async def remove_participant(self, pid: int) -> None:
        """Tear everything of pid down. Idempotent."""
        self._remove_websocket_voice(pid)
        session = self._sessions.pop(pid, None)
        if session is None:
            return
        self._closing.add(pid)
        try:
            peer = session.peer
            # Stop forwarding to it...
            for slot in peer.audio_slots:
                self._attach(slot, None, "audio")
            for slot in peer.video_slots:
                self._attach(slot, None, "video")
            self._mixer.remove_listener(pid)
            # ...and from it.
            if session.publisher is not None:
                self._drop_source(pid)
            self._sync_decoders()
            await peer.close()
        finally:
            self._closing.discard(pid)

    async def close(self) -> None:
        if self._bg:
            await asyncio.wait(list(self._bg), timeout=5)
        for pid in list(self._sessions):
            await self.remove_participant(pid)
        await self._mixer.stop()
        for task in [self._watchdog, *self._bg]:
            if task is not None:
                task.cancel()
        for task in [self._watchdog, *self._bg]:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._watchdog = None
        self._bg.clear()

    # -- WebSocket voice (clients without WebRTC media, see voice_bridge) ----------------------

    def add_external_source(self, pid: int) -> ExternalSource:
        """Register pid as a source that pushes PCM (`ExternalSource.push_pcm16/push_pcm`) instead of
        RTP: it is forwarded, mixed and level-metered like a WebRTC publisher. Removed with
        `remove_participant`."""
        if pid in self._sessions or pid in self._external:
            raise ValueError(f"participant {pid} already has a session")
        source = self._external[pid] = ExternalSource(
            pid, bitrate=self.config.opus_bitrate, complexity=self.config.opus_complexity
        )
        # Listeners may already have been given this source (interest can run ahead of media).
        for other in self._sessions.values():
            source.publisher.audio_out += [s for s in other.peer.audio_slots if s.source == pid]
        self._sync_decoders()
        return source

    def external_source(self, pid: int) -> ExternalSource | None:
        return self._external.get(pid)

    def add_ws_listener(self, pid: int, send: Callable[[bytes], bool], codec: str = "adpcm16k") -> None:
        """Make pid a listener that receives `voice` messages (encoded with `encode`) through `send`:
        its forwarded sources one message per source frame, its bed as stereo frames."""
        if self._voice is None:
            raise RuntimeError("this SFU was made without a voice_encoder: no WebSocket voice")
        self._voice.add_listener(pid, send, codec)

    def set_ws_codec(self, pid: int, codec: str) -> None:
        """The codec a WebSocket listener receives (the one it sends, normally)."""
        if self._voice is not None:
            self._voice.set_codec(pid, codec)

    def voice_report(self) -> dict[str, Any]:
        """Transcoding counters of the WebSocket-voice bridge (one encode per source frame per codec)."""
        report: dict[str, Any] = self._voice.report() if self._voice is not None else {}
        report["external_sources"] = len(self._external)
        report["external_frames"] = sum(s.frames for s in self._external.values())
        report["external_encode_s"] = sum(s.encode_seconds for s in self._external.values())
        return report

    def _remove_websocket_voice(self, pid: int) -> None:
        if self._voice is not None and pid in self._voice.listeners:
            self._voice.remove_listener(pid)
            self._mixer.remove_listener(pid)
        if self._external.pop(pid, None) is not None:
            self._drop_source(pid)
        self._sync_decoders()

    # -- interest ------------------------------------------------------------------------------

    def update_interest(self, changes: Mapping[int, ListenerInterest]) -> None:
        """Apply new interest for the listeners whose sets changed (others keep theirs)."""
        for pid, interest in changes.items():
            session = self._sessions.get(pid)
            if session is None and self._voice is not None and pid in self._voice.listeners:
                self._set_ws_interest(pid, interest)
                continue
            if session is None or not session.peer.subscribe:
                continue
            peer = session.peer
            forwarded = [s for s in interest.forwarded if s != pid]
            new_audio = assign_slots(session.audio, forwarded)
            new_video = assign_slots(session.video, [s for s in interest.video if s != pid])
            changed = new_audio != session.audio or new_video != session.video
            for i, (old, new) in enumerate(zip(session.audio, new_audio, strict=True)):
                if old != new:
                    self._attach(peer.audio_slots[i], new, "audio")
            for i, (old, new) in enumerate(zip(session.video, new_video, strict=True)):
                if old != new:
                    self._attach(peer.video_slots[i], new, "video")
            session.audio, session.video = new_audio, new_video
            flat = frozenset(interest.flat)
            if flat != session.flat:
                changed = True
            session.flat = flat
            if self.config.mixing and peer.mixed_slot is not None:
                in_slots = set(new_audio)
                mixed = [s for s in interest.mixed if s not in in_slots]
                self._mixer.set_listener(pid, peer.mixed_slot, mixed, flat)
            if changed:
                self._send_slots(pid)
        self._sync_decoders()

    def _set_ws_interest(self, pid: int, interest: ListenerInterest) -> None:
        """A WebSocket listener: its forwarded sources (as many as slots) by message, the rest mixed."""
        assert self._voice is not None
        forwarded = [s for s in interest.forwarded if s != pid][: self.config.audio_slots]
        self._voice.set_forwarded(pid, forwarded)
        if self.config.mixing:
            in_slots = set(forwarded)
            mixed = [s for s in interest.mixed if s not in in_slots]
            self._mixer.set_listener(pid, None, mixed, frozenset(interest.flat))

    def update_poses(
        self, ids: NDArray[np.integer], positions: NDArray[np.floating], quaternions: NDArray[np.floating]
    ) -> None:
        """The world's pose table for this tick (row i = participant ids[i]); used by the mixer."""
        self._mixer.update_poses(np.asarray(ids), np.asarray(positions), np.asarray(quaternions))

    def set_mixer(self, mixer: Mixer) -> None:
        """Swap the bed's mixer (hot reload of distance model or pan law); takes effect next frame."""
        self._mixer.mixer = mixer

    def audio_levels(self, ids: NDArray[np.integer]) -> NDArray[np.float64] | None:
        """Smoothed linear speaking level (0..1) of each id's published audio (RFC 6464 header
        extension), 0 for ids without one; None if no publisher reports levels at all."""
        levels = np.zeros(len(ids))
        known = False
        for i, pid in enumerate(np.asarray(ids).tolist()):
            pub = self._publisher(int(pid))
            if pub is not None and pub.level is not None:
                levels[i] = pub.level
                known = True
        return levels if known else None

    def publishing(self, pid: int, *, within: float = 2.0) -> tuple[bool, bool]:
        """(audio, video): whether pid's published tracks delivered RTP in the last `within` seconds."""
        pub = self._publisher(pid)
        if pub is None:
            return False, False
        now = time.monotonic()
        return (now - pub.last_audio < within, now - pub.last_video < within)

    def slot_sources(self, pid: int) -> dict[str, list[int | None]]:
        session = self._sessions[pid]
        return {"audio": list(session.audio), "video": list(session.video)}

    def _attach(self, slot: OutSlot, source: int | None, kind: str) -> None:
        old = slot.source
        if old is not None:
            old_pub = self._publisher(old)
            if old_pub is not None:
                outs = old_pub.audio_out if kind == "audio" else old_pub.video_out
                if slot in outs:
                    outs.remove(slot)
        slot.switch(source)
        if source is None:
            return
        pub = self._publisher(source)
        if pub is None:
            return  # not (yet) publishing: the slot stays silent
        (pub.audio_out if kind == "audio" else pub.video_out).append(slot)
        if kind == "video":
            pub.request_keyframe(min_interval=0.0)

    def _publisher(self, pid: int) -> Publisher | None:
        session = self._sessions.get(pid)
        if session is not None:
            return session.publisher
        external = self._external.get(pid)
        return external.publisher if external is not None else None

    def _drop_source(self, source: int) -> None:
        """A publisher left: empty every slot carrying it and tell those listeners."""
        for pid, session in self._sessions.items():
            touched = False
            for i, s in enumerate(session.audio):
                if s == source:
                    session.audio[i] = None
                    session.peer.audio_slots[i].switch(None)
                    touched = True
            for i, s in enumerate(session.video):
                if s == source:
                    session.video[i] = None
                    session.peer.video_slots[i].switch(None)
                    touched = True
            entry = self._mixer.listeners.get(pid)
            if entry is not None and source in entry.sources and session.peer.mixed_slot is not None:
                self._mixer.set_listener(
                    pid, session.peer.mixed_slot, [s for s in entry.sources if s != source], entry.flat
                )
            if touched:
                self._send_slots(pid)
        self._mixer.drop_decoder(source)

    def _sync_decoders(self) -> None:
        """Decode exactly the publishers some listener mixes."""
        wanted = self._mixer.wanted_sources()
        publishers = [(pid, s.publisher) for pid, s in self._sessions.items()]
        publishers += [(pid, e.publisher) for pid, e in self._external.items()]
        for pid, pub in publishers:
            if pub is None:
                continue
            if pid in wanted:
                if pub.mix_sink is None:
                    pub.mix_sink = self._mixer.decoder_for(pid).push
            elif pub.mix_sink is not None:
                pub.mix_sink = None
                self._mixer.drop_decoder(pid)
        if self._mixer.listeners:
            self._mixer.start()
        if self._voice is not None:
            self._voice.sync(self._publisher, self._external.get)

    def _send_slots(self, pid: int) -> None:
        session = self._sessions.get(pid)
        if session is None:
            return
        message = {
            "t": "slots",
            "audio": list(session.audio),
            "video": list(session.video),
            "flat": [s is not None and s in session.flat for s in session.audio],
        }
        session.slots_dirty = not self.send(pid, "control", self.encode(message))

    # -- video feedback ------------------------------------------------------------------------

    def _send_pli(self, pid: int) -> None:
        session = self._sessions.get(pid)
        if session is None or session.peer.video_receiver is None:
            return
        data = session.peer.video_receiver.pli_bytes()
        if data is not None:
            session.peer.send_rtcp(data)

    def _on_listener_keyframe_request(self, slot: OutSlot) -> None:
        if slot.source is not None:
            pub = self._publisher(slot.source)
            if pub is not None:
                pub.request_keyframe()

    # -- data channels -------------------------------------------------------------------------

    def send(self, pid: int, channel: str, data: bytes) -> bool:
        """Send one message on pid's `control` (reliable) or `state` (lossy) channel.

        Returns False, without queueing, when the channel is not open or its bufferedAmount is above
        the high-water mark (a stale pose batch is dropped; reliable callers may fall back)."""
        session = self._sessions.get(pid)
        if session is None:
            return False
        ch = session.peer.channel(channel)
        if ch is None or ch.readyState != "open":
            return False
        limit = self.config.state_high_water if channel == "state" else self.config.control_high_water
        if ch.bufferedAmount > limit:
            return False
        try:
            ch.send(data)
        except Exception as exc:  # InvalidStateError when closing under us
            logger.debug("pid %d: send on %s failed: %r", pid, channel, exc)
            return False
        return True

    def _error(self, pid: int, code: int, message: str, ref: str) -> None:
        session = self._sessions.get(pid)
        if session is None:
            return
        now = time.monotonic()
        if now - session.last_error.get(code, -1e9) < 1.0:
            return  # one error per code per second: a flood must not become a reply flood
        session.last_error[code] = now
        logger.info("pid %d: %s (%s)", pid, message, ref)
        self.send(pid, "control", self.encode({"t": "error", "code": code, "message": message, "ref": ref}))

    def _on_channel_message(self, pid: int, channel: str, data: bytes | str) -> None:
        session = self._sessions.get(pid)
        if session is None:
            return
        raw = data.encode() if isinstance(data, str) else data
        if len(raw) > self.config.max_message_bytes:
            session.messages_dropped += 1
            self._error(
                pid,
                FRAME_TOO_LARGE,
                f"message of {len(raw)} bytes exceeds {self.config.max_message_bytes}",
                channel,
            )
            return
        if not session.buckets[channel].take():
            session.messages_dropped += 1
            self._error(
                pid,
                RATE_LIMITED,
                f"more than {self.config.messages_per_second:g} messages/s on {channel}",
                channel,
            )
            return
        session.messages_in += 1
        try:
            session.on_message(pid, channel, raw)
        except Exception:
            logger.exception("pid %d: on_message raised", pid)

    def _on_channel_open(self, pid: int, channel: str) -> None:
        session = self._sessions.get(pid)
        if session is not None and channel == "control" and session.slots_dirty:
            self._send_slots(pid)

    # -- liveness ------------------------------------------------------------------------------

    def _on_connection_state(self, pid: int, state: str) -> None:
        if state in ("failed", "closed") and pid in self._sessions and pid not in self._closing:
            logger.info("pid %d: connection %s", pid, state)
            self._spawn(self._gone(pid))

    async def _gone(self, pid: int) -> None:
        if pid not in self._sessions or pid in self._closing:
            return
        await self.remove_participant(pid)
        if self.on_gone is not None:
            try:
                self.on_gone(pid)
            except Exception:
                logger.exception("on_gone raised")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    def _start_background(self) -> None:
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch(), name="hubbub-sfu-watchdog")

    async def _watch(self) -> None:
        """Once a second: declare peers gone that stopped talking (no datagram, no STUN consent check)
        for `dead_after` seconds, or never connected within `connect_timeout`."""
        while True:
            await asyncio.sleep(min(1.0, self.config.dead_after / 4))
            now = time.monotonic()
            for pid, session in list(self._sessions.items()):
                peer = session.peer
                heard = peer.rx_packets() + peer.stun_requests
                if heard != session.last_rx:
                    session.last_rx = heard
                    session.last_heard = now
                connected = peer.pc.connectionState == "connected"
                limit = self.config.dead_after if connected else self.config.connect_timeout
                if now - session.last_heard > limit:
                    logger.info("pid %d: silent for %.1f s, removing", pid, now - session.last_heard)
                    self._spawn(self._gone(pid))

    # -- stats ---------------------------------------------------------------------------------

    def stats(self) -> dict[int, ParticipantStats]:
        now = time.monotonic()
        out: dict[int, ParticipantStats] = {}
        for pid, session in self._sessions.items():
            peer = session.peer
            ps = ParticipantStats(
                pid,
                peer.pc.connectionState,
                messages_in=session.messages_in,
                messages_dropped=session.messages_dropped,
            )
            slots = [*peer.audio_slots, *([peer.mixed_slot] if peer.mixed_slot else []), *peer.video_slots]
            rtts = []
            for slot in slots:
                prev_octets, prev_t = session.last_counts.get(slot, (0, peer.created))
                dt = max(now - prev_t, 1e-3)
                session.last_counts[slot] = (slot.octets, now)
                rtt = getattr(peer.sender_of(slot), "rtt", None) if not peer.closed else None
                if rtt is not None:
                    rtts.append(rtt)
                ps.tracks.append(
                    TrackStats(
                        kind=slot.kind,
                        direction="out",
                        mid=slot.mid,
                        source=slot.source,
                        packets=slot.packets,
                        bytes=slot.octets,
                        bitrate_bps=(slot.octets - prev_octets) * 8 / dt,
                        packets_lost=slot.report.packets_lost,
                        fraction_lost=slot.report.fraction_lost / 256,
                        jitter_ms=slot.report.jitter * 1000 / slot.clock_rate,
                        rtt_ms=None if rtt is None else rtt * 1000,
                    )
                )
            pub = session.publisher
            for receiver, kind, clock, octets in (
                (peer.audio_receiver, "audio", 48000, pub.audio_bytes if pub else 0),
                (peer.video_receiver, "video", 90000, pub.video_bytes if pub else 0),
            ):
                if receiver is None:
                    continue
                received, lost, jitter = receiver.inbound_stats()
                total = received + max(lost, 0)
                prev_octets, prev_t = session.last_counts.get(kind, (0, peer.created))
                session.last_counts[kind] = (octets, now)
                ps.tracks.append(
                    TrackStats(
                        kind=kind,
                        direction="in",
                        mid=None,
                        source=pid,
                        packets=received,
                        bytes=octets,
                        bitrate_bps=(octets - prev_octets) * 8 / max(now - prev_t, 1e-3),
                        packets_lost=lost,
                        fraction_lost=(lost / total) if total > 0 and lost > 0 else 0.0,
                        jitter_ms=jitter * 1000 / clock,
                        rtt_ms=None,
                    )
                )
            ps.rtt_ms = (sum(rtts) / len(rtts) * 1000) if rtts else None
            out[pid] = ps
        return out

    def mixer_report(self) -> dict[str, Any]:
        last = self._mixer.last
        return {
            "listeners": last.listeners,
            "beds": last.beds,
            "encodes": self._mixer.encodes,
            "tick_s": last.seconds,
        }


def _ignore_rtp(packet: RtpPacket) -> None:
    return None


__all__: Sequence[str] = [
    "SFU",
    "ListenerInterest",
    "ParticipantStats",
    "SFUConfig",
    "TrackStats",
]
