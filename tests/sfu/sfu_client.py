"""A real aiortc client for SFU tests: answers the server's offer, publishes a tone (or video), records
what arrives per mid (decoded audio, RTP headers), and its data-channel messages.

Everything binds to 127.0.0.1 and uses no STUN server.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections import defaultdict, deque
from typing import Any

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket

SAMPLE_RATE = 48000
FRAME = 960


class ToneTrack(MediaStreamTrack):
    """A paced 20 ms sine source (mono s16)."""

    kind = "audio"

    def __init__(self, hz: float, amplitude: float = 0.5) -> None:
        super().__init__()
        self.hz = hz
        self.amplitude = amplitude
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += FRAME
            wait = self._start + self._pts / SAMPLE_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        t = (np.arange(FRAME) + self._pts) / SAMPLE_RATE
        pcm = (np.sin(2 * np.pi * self.hz * t) * self.amplitude * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        return frame


def encode_tone_packets(hz: float, count: int = 50, amplitude: float = 0.5) -> list[bytes]:
    """Pre-encode `count` 20 ms Opus packets of a tone (for cheap publishers)."""
    enc = av.CodecContext.create("libopus", "w")
    enc.bit_rate = 32000
    enc.sample_rate = SAMPLE_RATE
    enc.layout = "mono"
    enc.format = "s16"
    enc.time_base = fractions.Fraction(1, SAMPLE_RATE)
    out: list[bytes] = []
    for i in range(count):
        t = (np.arange(FRAME) + i * FRAME) / SAMPLE_RATE
        pcm = (np.sin(2 * np.pi * hz * t) * amplitude * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = i * FRAME
        out += [bytes(p) for p in enc.encode(frame)]
    return out


class OpusPacketTrack(MediaStreamTrack):
    """Replays pre-encoded Opus packets every 20 ms: aiortc's sender packs them without encoding."""

    kind = "audio"

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__()
        self.packets = packets
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._n * 0.02 - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        packet = av.Packet(self.packets[self._n % len(self.packets)])
        packet.pts = self._n * FRAME
        packet.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._n += 1
        return packet


class ColourTrack(VideoStreamTrack):
    """Small synthetic video (moving gradient) for VP8 publishing."""

    def __init__(self, width: int = 160, height: int = 120) -> None:
        super().__init__()
        self.width = width
        self.height = height
        self._n = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        self._n += 1
        img = np.zeros((self.height, self.width, 3), dtype=np.uint8)
        img[:, :, 0] = (np.arange(self.width) * 2 + self._n * 4) % 256
        img[:, :, 1] = 128
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = pts
        frame.time_base = time_base
        return frame


def limit_to_loopback(pc: RTCPeerConnection) -> None:
    """Gather host candidates on 127.0.0.1 only (tests talk to loopback only)."""
    gatherers = {t.receiver.transport.transport.iceGatherer for t in pc.getTransceivers()}
    if pc.sctp is not None:
        gatherers.add(pc.sctp.transport.transport.iceGatherer)
    for gatherer in gatherers:
        conn = gatherer._connection
        if getattr(conn, "_hubbub_limited", False):
            continue
        orig = conn.get_component_candidates

        async def limited(component: int, addresses: list[str], timeout: int = 5, _orig: Any = orig) -> Any:
            return await _orig(component=component, addresses=["127.0.0.1"], timeout=timeout)

        conn.get_component_candidates = limited
        conn._hubbub_limited = True


class TestClient:
    """One participant's client side."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        *,
        tone_hz: float | None = None,
        amplitude: float = 0.5,
        packets: list[bytes] | None = None,
        video: bool = False,
        decode: bool = True,
    ) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tone_hz = tone_hz
        self.amplitude = amplitude
        self.packets = packets
        self.video = video
        self.decode = decode
        self.slots: dict[str, Any] = {}
        self.frames: dict[str, list[tuple[float, np.ndarray]]] = defaultdict(list)
        self.rtp: dict[str, deque[tuple[float, int, int, int, int, int]]] = defaultdict(
            lambda: deque(maxlen=50000)
        )
        self.channels: dict[str, RTCDataChannel] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.plis = 0
        # Drop the packet with this index (per mid) before aiortc sees it: provokes a NACK.
        self.drop_index: int | None = None
        self.dropped: dict[str, int] = {}
        self.signaling_changes: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._opened = asyncio.Event()

        @self.pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            self.channels[channel.label] = channel

            @channel.on("message")
            def on_message(data: bytes | str) -> None:
                self.messages.append((channel.label, data if isinstance(data, bytes) else data.encode()))

            if {"control", "state"} <= set(self.channels):
                self._opened.set()

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if self.decode:
                self._tasks.append(asyncio.ensure_future(self._consume(track)))

        @self.pc.on("signalingstatechange")
        def on_signaling() -> None:
            self.signaling_changes.append(self.pc.signalingState)

    def transceiver(self, mid: str) -> RTCRtpTransceiver:
        return next(t for t in self.pc.getTransceivers() if t.mid == mid)

    def mid_of(self, track: MediaStreamTrack) -> str | None:
        for t in self.pc.getTransceivers():
            if t.receiver.track is track:
                return t.mid
        return None

    async def _consume(self, track: MediaStreamTrack) -> None:
        mid = self.mid_of(track)
        try:
            while True:
                frame = await track.recv()
                if mid is not None and track.kind == "audio":
                    self.frames[mid].append((time.monotonic(), frame.to_ndarray()))
                elif mid is not None:
                    self.frames[mid].append((time.monotonic(), np.zeros(1)))
        except Exception:
            return

    async def answer(self, offer: dict[str, Any]) -> str:
        self.slots = offer["slots"]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        limit_to_loopback(self.pc)
        pa, pv = self.slots.get("publish_audio"), self.slots.get("publish_video")
        if pa is not None and (self.tone_hz is not None or self.packets is not None):
            t = self.transceiver(pa)
            track = (
                OpusPacketTrack(self.packets)
                if self.packets
                else ToneTrack(self.tone_hz or 440, self.amplitude)
            )
            t.sender.replaceTrack(track)
            t.direction = "sendonly"
        if pv is not None and self.video:
            t = self.transceiver(pv)
            t.sender.replaceTrack(ColourTrack())
            t.direction = "sendonly"
            self._watch_pli(t)
        for mid in [*self.slots.get("audio", []), self.slots.get("mixed"), *self.slots.get("video", [])]:
            if mid is not None:
                self._record_rtp(mid)
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        return self.pc.localDescription.sdp

    def _record_rtp(self, mid: str) -> None:
        receiver = self.transceiver(mid).receiver
        original = receiver._handle_rtp_packet
        log = self.rtp[mid]
        decode = self.decode

        async def recording(packet: Any, arrival_time_ms: int) -> None:
            log.append(
                (
                    time.monotonic(),
                    packet.sequence_number,
                    packet.timestamp,
                    packet.ssrc,
                    packet.payload_type,
                    int.from_bytes(packet.payload[:2], "big"),
                )
            )
            if self.drop_index is not None and len(log) == self.drop_index and mid not in self.dropped:
                self.dropped[mid] = packet.sequence_number
                return
            if decode:
                await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = recording

    def _watch_pli(self, t: RTCRtpTransceiver) -> None:
        sender = t.sender
        original = sender._handle_rtcp_packet

        async def watching(packet: Any) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
                self.plis += 1
            await original(packet)

        sender._handle_rtcp_packet = watching

    async def wait_open(self, timeout: float = 10) -> None:
        await asyncio.wait_for(self._opened.wait(), timeout)
        deadline = time.monotonic() + timeout
        while any(ch.readyState != "open" for ch in self.channels.values()):
            if time.monotonic() > deadline:
                raise TimeoutError("data channels did not open")
            await asyncio.sleep(0.02)

    def energy(self, mid: str, t0: float, t1: float) -> float:
        """RMS (0..1) of decoded audio that arrived on `mid` between t0 and t1 (monotonic)."""
        chunks = [f for (t, f) in self.frames.get(mid, []) if t0 <= t < t1]
        if not chunks:
            return 0.0
        pcm = np.concatenate([c.reshape(-1) for c in chunks]).astype(np.float64) / 32768
        return float(np.sqrt(np.mean(pcm * pcm)))

    def stereo_energy(self, mid: str, t0: float, t1: float) -> tuple[float, float]:
        chunks = [f for (t, f) in self.frames.get(mid, []) if t0 <= t < t1]
        if not chunks:
            return 0.0, 0.0
        pcm = np.concatenate([c.reshape(-1, 2) for c in chunks]).astype(np.float64) / 32768
        rms = np.sqrt(np.mean(pcm * pcm, axis=0))
        return float(rms[0]), float(rms[1])

    def decoded(self, mid: str, t0: float, t1: float) -> np.ndarray:
        chunks = [f for (t, f) in self.frames.get(mid, []) if t0 <= t < t1]
        if not chunks:
            return np.zeros((0, 2))
        return np.concatenate([c.reshape(-1, 2) for c in chunks]).astype(np.float64) / 32768

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def join(
    sfu: Any, pid: int, client: TestClient, *, publish: bool, subscribe: bool, on_message: Any = None
) -> None:
    """Full signaling round: server offer -> client answer -> connected, data channels open."""
    offer = await sfu.add_participant(
        pid, publish=publish, subscribe=subscribe, on_message=on_message or (lambda *a: None)
    )
    sdp = await client.answer(offer)
    await sfu.set_answer(pid, sdp)
    await client.wait_open()


def tone_level(pcm: np.ndarray, hz: float) -> float:
    """Amplitude of the `hz` component of a mono signal (Goertzel-like projection)."""
    if len(pcm) == 0:
        return 0.0
    t = np.arange(len(pcm)) / SAMPLE_RATE
    c = np.cos(2 * np.pi * hz * t)
    s = np.sin(2 * np.pi * hz * t)
    return float(2 * np.hypot(np.dot(pcm, c), np.dot(pcm, s)) / len(pcm))
