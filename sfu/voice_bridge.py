"""Voices across transports: WebSocket-voice clients (Godot) as SFU sources and as listeners.

WebSocket clients have no Opus and no RTP. They send and receive 16 kHz 20 ms frames in small codecs
(``adpcm16k``, ``ulaw16k``; the codecs themselves live with the protocol, in the world, and are handed
in as a factory so that `sfu` never imports `world`).

- **In** (`ExternalSource`): a received frame, already decoded to PCM, is resampled to 48 kHz and
  Opus-encoded *once*, then enters the SFU as an ordinary RTP packet of a `Publisher`: forwarding into
  WebRTC slots, the mixer's decoder and speaking levels work unchanged.
- **Out** (`WsVoiceBridge`): for every source that some WebSocket listener has forwarded, a
  `SourceTap` sits in the publisher's fan-out list like a slot. Per 20 ms frame it decodes the Opus
  once (or takes the PCM of an external source as is), resamples to 16 kHz once, encodes once per
  codec the listeners use and builds the `voice` message bytes once; every listener gets the same
  bytes. Beds for WebSocket listeners come from `MixEngine` as PCM (one per distinct bed) and are
  encoded once each the same way.

Sending never queues here: `send` returns False when the client's droppable queue is full and the
frame is counted as dropped.
"""

from __future__ import annotations

import fractions
import logging
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import av
import numpy as np
from aiortc.rtp import RtpPacket
from numpy.typing import NDArray
from scipy.signal import firwin, lfilter, lfilter_zi

from .forward import OutSlot, Publisher

logger = logging.getLogger(__name__)

RATE_48K = 48000
RATE_16K = 16000
FRAME_48K = 960
FRAME_16K = 320
_TIME_BASE = fractions.Fraction(1, RATE_48K)
_OPUS_PT = 111  # rewritten per listener by OutSlot; only needs to be a valid dynamic type here

# One low-pass serves both directions: 7 kHz keeps speech and is well below 16 kHz's Nyquist (8 kHz).
_TAPS = firwin(63, 7000, fs=RATE_48K).astype(np.float64)


class FrameEncoder(Protocol):
    def encode(self, pcm: Any) -> bytes: ...


EncoderFactory = Callable[[str, int], FrameEncoder]  # (codec, channels) -> stateful frame encoder
SendBytes = Callable[[int, bytes], bool]  # (listener pid, message) -> delivered (False: dropped)


class Decimator:
    """48 kHz -> 16 kHz, streaming: FIR low-pass with carried state, then every third sample.

    Frame by frame `scipy.signal.resample_poly` would pad every 20 ms frame's edges with zeros and
    click 50 times a second; carrying the filter state across frames makes the stream continuous."""

    def __init__(self, channels: int = 1) -> None:
        self._zi = np.zeros((channels, len(_TAPS) - 1))

    def __call__(self, x: NDArray[np.floating]) -> NDArray[np.float64]:
        """x: (channels, 3n) float -> (channels, n)."""
        y, self._zi = lfilter(_TAPS, 1.0, np.asarray(x, dtype=np.float64), axis=-1, zi=self._zi)
        return np.asarray(y[..., ::3])


class Interpolator:
    """16 kHz -> 48 kHz, streaming: zero-stuff by three, FIR low-pass (gain 3) with carried state."""

    def __init__(self) -> None:
        self._zi = lfilter_zi(_TAPS * 3, 1.0) * 0.0

    def __call__(self, x: NDArray[np.floating]) -> NDArray[np.float32]:
        up = np.zeros(3 * len(x))
        up[::3] = x
        y, self._zi = lfilter(_TAPS * 3, 1.0, up, zi=self._zi)
        return np.asarray(y, dtype=np.float32)


def to_int16(x: NDArray[np.floating]) -> NDArray[np.int16]:
    return np.clip(np.rint(np.asarray(x) * 32767.0), -32768, 32767).astype(np.int16)


def dbov_level(pcm: NDArray[np.floating]) -> int:
    """RFC 6464 level (0 = loudest .. 127 = silence, in -dBov) of float samples."""
    rms = float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64)))) if len(pcm) else 0.0
    if rms <= 1e-7:
        return 127
    return int(min(127, max(0, round(-20 * math.log10(rms)))))


# --------------------------------------------------------------------------- in: PCM -> SFU source


class ExternalSource:
    """A participant who publishes PCM instead of RTP (a WebSocket-voice client).

    Each `push_pcm` (one 20 ms frame, 48 kHz mono float) is Opus-encoded once and handed to the
    `Publisher` exactly like a packet received from a WebRTC peer: one packet per frame received, RTP
    timestamp +960 per frame, the RFC 6464 level in the header extension."""

    def __init__(self, pid: int, *, bitrate: int = 32000, complexity: int = 5) -> None:
        self.pid = pid
        self.publisher = Publisher(pid)
        self.interpolator = Interpolator()  # for callers that hold 16 kHz PCM (see push_pcm16)
        self.ssrc = random.getrandbits(32)
        self._seq = random.getrandbits(15)
        self._ts = random.getrandbits(32)
        self._pts = 0
        self._bitrate = bitrate
        self._complexity = complexity
        self._encoder = self._new_encoder()
        # The latest frame at 16 kHz (int16), for WebSocket listeners: they skip the Opus round trip.
        self.last_pcm16: NDArray[np.int16] | None = None
        self.frames = 0
        self.encode_errors = 0
        self.encode_seconds = 0.0

    def _new_encoder(self) -> av.AudioCodecContext:
        enc = av.CodecContext.create("libopus", "w")
        assert isinstance(enc, av.AudioCodecContext)
        enc.bit_rate = self._bitrate
        enc.sample_rate = RATE_48K
        enc.layout = "mono"
        enc.format = "s16"
        enc.time_base = _TIME_BASE
        enc.options = {"application": "voip", "compression_level": str(self._complexity)}
        return enc

    def push_pcm16(self, pcm16: NDArray[np.int16]) -> None:
        """One 20 ms frame of 16 kHz int16 (what the WebSocket codecs decode to)."""
        pcm16 = np.asarray(pcm16, dtype=np.int16).reshape(-1)
        if len(pcm16) != FRAME_16K:
            raise ValueError(f"a 20 ms frame at 16 kHz has {FRAME_16K} samples, got {len(pcm16)}")
        self.push_pcm(self.interpolator(pcm16.astype(np.float64) / 32768.0), pcm16=pcm16)

    def push_pcm(self, samples_48k: NDArray[np.floating], *, pcm16: NDArray[np.int16] | None = None) -> None:
        """One 20 ms frame at 48 kHz (960 float samples, -1..1)."""
        t0 = time.perf_counter()
        x = np.asarray(samples_48k, dtype=np.float32).reshape(-1)
        if len(x) != FRAME_48K:
            raise ValueError(f"a 20 ms frame at 48 kHz has {FRAME_48K} samples, got {len(x)}")
        frame = av.AudioFrame.from_ndarray(to_int16(x).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE_48K
        frame.pts = self._pts
        frame.time_base = _TIME_BASE
        self._pts += FRAME_48K
        try:
            payloads = [bytes(p) for p in self._encoder.encode(frame)]
        except av.FFmpegError:
            logger.exception("pid %d: opus encode failed", self.pid)
            self.encode_errors += 1
            self._encoder = self._new_encoder()
            return
        self.encode_seconds += time.perf_counter() - t0
        self.last_pcm16 = pcm16
        level = dbov_level(x)
        for payload in payloads:
            self._seq = (self._seq + 1) & 0xFFFF
            self._ts = (self._ts + FRAME_48K) & 0xFFFFFFFF
            packet = RtpPacket(
                payload_type=_OPUS_PT, sequence_number=self._seq, timestamp=self._ts, ssrc=self.ssrc,
                payload=payload,
            )
            packet.extensions.audio_level = (level < 127, level)
            self.frames += 1
            self.publisher.on_audio(packet)


# --------------------------------------------------------------------------- out: SFU -> WebSocket


@dataclass
class WsListener:
    pid: int
    codec: str = "adpcm16k"
    forwarded: frozenset[int] = frozenset()
    received: int = 0
    dropped: int = 0


@dataclass
class BridgeStats:
    frames: int = 0  # source frames transcoded (one per source per 20 ms with listeners)
    decodes: int = 0  # Opus decodes (WebRTC sources only)
    encodes: int = 0  # codec encodes of forwarded sources (per source frame: one per codec in use)
    messages_built: int = 0
    sent: int = 0
    dropped: int = 0
    decode_errors: int = 0
    bed_frames: int = 0  # distinct beds encoded for WebSocket listeners
    bed_encodes: int = 0
    seconds: float = 0.0  # CPU spent transcoding (decode + resample + encode + msgpack), sources and beds
    per_source: dict[int, int] = field(default_factory=dict)  # source -> encodes


class SourceTap(OutSlot):
    """Stands in a publisher's fan-out list like a slot, so every packet of the source passes here once;
    transcodes it once for all WebSocket listeners that forward the source."""

    __slots__ = ("bridge", "decimator", "decoder", "encoders", "external", "seqs")

    def __init__(self, bridge: WsVoiceBridge, source: int, external: ExternalSource | None) -> None:
        super().__init__(-1, "audio", -1, clock_rate=RATE_48K, min_step=FRAME_48K)
        self.source = source
        self.bridge = bridge
        self.external = external
        self.decoder: av.AudioCodecContext | None = None
        self.decimator = Decimator()
        self.encoders: dict[str, FrameEncoder] = {}
        self.seqs: dict[str, int] = {}

    def forward(self, packet: RtpPacket, now: float) -> None:
        if packet.payload:
            self.bridge._on_source_packet(self, packet)

    def pcm16(self, payload: bytes) -> NDArray[np.int16] | None:
        """This frame at 16 kHz: straight from an external source, else decoded and decimated."""
        ext = self.external
        if ext is not None and ext.last_pcm16 is not None:
            return ext.last_pcm16
        if self.decoder is None:
            dec = av.CodecContext.create("libopus", "r")
            assert isinstance(dec, av.AudioCodecContext)
            dec.sample_rate = RATE_48K
            dec.layout = "mono"
            self.decoder = dec
        try:
            frames = self.decoder.decode(av.Packet(payload))
        except av.FFmpegError:
            self.bridge.stats.decode_errors += 1
            return None
        self.bridge.stats.decodes += 1
        parts = []
        for frame in frames:
            pcm = frame.to_ndarray().reshape(-1)
            scale = 1 / 32768.0 if pcm.dtype == np.int16 else 1.0
            parts.append(pcm.astype(np.float64) * scale)
        if not parts:
            return None
        x = np.concatenate(parts)
        x = x[: len(x) - len(x) % 3]
        return to_int16(self.decimator(x.reshape(1, -1))[0])


class WsVoiceBridge:
    """Everything the WebSocket listeners of one SFU hear, transcoded once per source and per bed."""

    def __init__(
        self, encoder_factory: EncoderFactory, encode_message: Callable[[dict[str, Any]], bytes]
    ) -> None:
        self.encoder_factory = encoder_factory
        self.encode_message = encode_message
        self.listeners: dict[int, WsListener] = {}
        self.send: dict[int, Callable[[bytes], bool]] = {}
        self.taps: dict[int, SourceTap] = {}
        self.stats = BridgeStats()
        self._bed_state: dict[int, tuple[Decimator, dict[str, FrameEncoder]]] = {}

    # -- listeners -----------------------------------------------------------------------------

    def add_listener(self, pid: int, send: Callable[[bytes], bool], codec: str = "adpcm16k") -> None:
        self.listeners[pid] = WsListener(pid, codec)
        self.send[pid] = send

    def set_codec(self, pid: int, codec: str) -> None:
        entry = self.listeners.get(pid)
        if entry is not None:
            entry.codec = codec

    def set_forwarded(self, pid: int, sources: Iterable[int]) -> None:
        entry = self.listeners.get(pid)
        if entry is not None:
            entry.forwarded = frozenset(s for s in sources if s != pid)

    def remove_listener(self, pid: int) -> None:
        self.listeners.pop(pid, None)
        self.send.pop(pid, None)
        self._bed_state.pop(pid, None)

    def wanted_sources(self) -> set[int]:
        wanted: set[int] = set()
        for entry in self.listeners.values():
            wanted |= entry.forwarded
        return wanted

    def sync(
        self,
        publisher_of: Callable[[int], Publisher | None],
        external_of: Callable[[int], ExternalSource | None],
    ) -> None:
        """Tap exactly the sources some WebSocket listener forwards (idempotent)."""
        wanted = self.wanted_sources()
        for source in list(self.taps):
            pub = publisher_of(source)
            tap = self.taps[source]
            if source not in wanted or pub is None:
                if pub is not None and tap in pub.audio_out:
                    pub.audio_out.remove(tap)
                del self.taps[source]
        for source in wanted:
            pub = publisher_of(source)
            if pub is None:
                continue
            tap = self.taps.get(source) or SourceTap(self, source, external_of(source))
            self.taps[source] = tap
            if tap not in pub.audio_out:
                pub.audio_out.append(tap)

    # -- the hot paths -------------------------------------------------------------------------

    def _on_source_packet(self, tap: SourceTap, packet: RtpPacket) -> None:
        t0 = time.perf_counter()
        source = tap.source
        assert source is not None
        by_codec: dict[str, list[int]] = {}
        for entry in self.listeners.values():
            if source in entry.forwarded:
                by_codec.setdefault(entry.codec, []).append(entry.pid)
        if not by_codec:
            return
        pcm = tap.pcm16(packet.payload)
        if pcm is None or len(pcm) != FRAME_16K:
            return
        stats = self.stats
        stats.frames += 1
        for codec, pids in by_codec.items():
            enc = tap.encoders.get(codec)
            if enc is None:
                enc = tap.encoders[codec] = self.encoder_factory(codec, 1)
            seq = tap.seqs.get(codec, -1) + 1
            tap.seqs[codec] = seq
            data = self.encode_message(
                {"t": "voice", "from": source, "codec": codec, "seq": seq, "pcm": enc.encode(pcm)}
            )
            stats.encodes += 1
            stats.per_source[source] = stats.per_source.get(source, 0) + 1
            stats.messages_built += 1
            self._fan_out(pids, data)
        stats.seconds += time.perf_counter() - t0

    def on_bed(self, bed: NDArray[np.float32], members: list[int], tick: int) -> None:
        """One distinct bed (planar float (2, 960) at 48 kHz) shared by these WebSocket listeners."""
        t0 = time.perf_counter()
        leader = min(members)
        state = self._bed_state.get(leader)
        if state is None:
            state = self._bed_state[leader] = (Decimator(channels=2), {})
        decimator, encoders = state
        pcm = to_int16(decimator(bed).T)  # (320, 2)
        by_codec: dict[str, list[int]] = {}
        for pid in members:
            entry = self.listeners.get(pid)
            if entry is not None:
                by_codec.setdefault(entry.codec, []).append(pid)
        self.stats.bed_frames += 1
        for codec, pids in by_codec.items():
            enc = encoders.get(codec)
            if enc is None:
                enc = encoders[codec] = self.encoder_factory(codec, 2)
            data = self.encode_message(
                {"t": "voice", "from": None, "codec": codec, "seq": tick, "ch": 2, "pcm": enc.encode(pcm)}
            )
            self.stats.bed_encodes += 1
            self._fan_out(pids, data)
        self.stats.seconds += time.perf_counter() - t0

    def _fan_out(self, pids: list[int], data: bytes) -> None:
        for pid in pids:
            send = self.send.get(pid)
            entry = self.listeners.get(pid)
            if send is None or entry is None:
                continue
            try:
                ok = send(data)
            except Exception:
                logger.exception("pid %d: voice send failed", pid)
                ok = False
            if ok:
                entry.received += 1
                self.stats.sent += 1
            else:
                entry.dropped += 1
                self.stats.dropped += 1

    def report(self) -> dict[str, Any]:
        s = self.stats
        transcoded = s.frames + s.bed_frames
        return {
            "listeners": len(self.listeners),
            "taps": len(self.taps),
            "frames": s.frames,
            "decodes": s.decodes,
            "encodes": s.encodes,
            "encodes_per_source": dict(s.per_source),
            "messages_built": s.messages_built,
            "sent": s.sent,
            "dropped": s.dropped,
            "decode_errors": s.decode_errors,
            "bed_frames": s.bed_frames,
            "bed_encodes": s.bed_encodes,
            "us_per_frame": (s.seconds / transcoded * 1e6) if transcoded else 0.0,
        }
