"""Forwarding without re-encoding: publisher packets go straight to the slots that carry them.

An `OutSlot` is one sendonly transceiver of a listener (an audio or video slot, or the mixed track).
It owns the outgoing RTP identity of that transceiver (SSRC, payload type, sequence numbers,
timestamps) and rewrites every packet of whichever source it currently carries so the client sees one
continuous stream: on a source switch, the sequence number continues at last + 1 and the timestamp at
last + the elapsed wall time in clock units. The rewritten packet is protected with the listener's
SRTP session and written to its UDP socket directly (see `peer.Peer.send_rtp`), skipping aiortc's
per-frame encoder path entirely.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .rtp import HEADER, ExtensionTemplate, vp8_keyframe_start

if TYPE_CHECKING:
    from aiortc.rtp import RtpPacket

# After a switch, packets older than the first forwarded one belong to the previous stream position
# and are dropped; checking stops after this many packets so 16-bit wrap-around cannot bite.
_SWITCH_GUARD = 64


def _drop(data: bytes) -> None:
    return None


class RtcpReport:
    """Latest receiver report a listener sent about one slot (RFC 3550 section 6.4.1)."""

    __slots__ = ("fraction_lost", "jitter", "packets_lost")

    def __init__(self) -> None:
        self.fraction_lost = 0
        self.packets_lost = 0
        self.jitter = 0


class OutSlot:
    """One outgoing RTP stream of a listener (a slot or the mixed track)."""

    __slots__ = (
        "_base",
        "_guard",
        "_resync",
        "_seq",
        "_seq_off",
        "_ts",
        "_ts_off",
        "clock_rate",
        "ext",
        "history",
        "index",
        "kind",
        "last_wall",
        "listener",
        "mid",
        "min_step",
        "octets",
        "on_keyframe_request",
        "packets",
        "pt",
        "report",
        "rtx_pt",
        "rtx_seq",
        "rtx_ssrc",
        "send",
        "sent_any",
        "source",
        "ssrc",
        "waiting_keyframe",
    )

    def __init__(
        self,
        listener: int,
        kind: str,
        index: int,
        *,
        clock_rate: int,
        min_step: int,
        history_size: int = 0,
    ) -> None:
        self.listener = listener
        self.kind = kind  # "audio" | "video" | "mixed"
        self.index = index
        self.clock_rate = clock_rate
        self.min_step = min_step  # smallest timestamp advance across a switch (one audio frame)
        self.mid: str | None = None
        self.ssrc = random.getrandbits(32)
        self.pt = 0
        self.ext = ExtensionTemplate(None, None, None)
        self.send: Callable[[bytes], None] = _drop
        self.source: int | None = None
        self.sent_any = False
        self.waiting_keyframe = False
        # Last sent sequence number / timestamp (random start, as RFC 3550 asks).
        self._seq = random.getrandbits(15)
        self._ts = random.getrandbits(32)
        self._seq_off = 0
        self._ts_off = 0
        self._resync = True
        self._base = 0
        self._guard = 0
        self.packets = 0
        self.octets = 0
        self.last_wall = 0.0
        # Video: (seq, ts, marker, payload) of recent packets, to answer NACKs (RTX when negotiated).
        self.history: list[tuple[int, int, int, bytes] | None] | None = (
            [None] * history_size if history_size else None
        )
        self.rtx_pt: int | None = None
        self.rtx_ssrc = random.getrandbits(32)
        self.rtx_seq = random.getrandbits(15)
        self.report = RtcpReport()
        self.on_keyframe_request: Callable[[OutSlot], None] | None = None

    # -- source changes ------------------------------------------------------------------------

    def switch(self, source: int | None) -> None:
        """Carry `source` from now on (None: fall silent)."""
        self.source = source
        self._resync = True
        self.waiting_keyframe = self.kind == "video" and source is not None

    # -- the hot path --------------------------------------------------------------------------

    def forward(self, packet: RtpPacket, now: float) -> None:
        """Rewrite and send one packet of the current source."""
        payload = packet.payload
        if not payload:
            return  # padding-only probe
        seq = packet.sequence_number
        if self._resync:
            if self.waiting_keyframe:
                if not vp8_keyframe_start(payload):
                    return
                self.waiting_keyframe = False
            self._restart(seq, packet.timestamp, now)
        elif self._guard:
            self._guard -= 1
            if (seq - self._base) & 0x8000:
                return
        out_seq = (seq + self._seq_off) & 0xFFFF
        out_ts = (packet.timestamp + self._ts_off) & 0xFFFFFFFF
        level = packet.extensions.audio_level
        ext = self.ext.plain if level is None else self.ext.build((0x80 if level[0] else 0) | level[1])
        data = (
            HEADER.pack(0x90 if ext else 0x80, (packet.marker << 7) | self.pt, out_seq, out_ts, self.ssrc)
            + ext
            + payload
        )
        self.send(data)
        if not (out_seq - self._seq) & 0x8000:
            self._seq = out_seq
            self._ts = out_ts
        self.packets += 1
        self.octets += len(payload)
        self.last_wall = now
        history = self.history
        if history is not None:
            history[out_seq % len(history)] = (out_seq, out_ts, packet.marker, payload)

    def send_payload(self, payload: bytes, src_seq: int, src_ts: int, marker: int, now: float) -> None:
        """Send a payload produced by the server itself (the mixed bed), numbered by the producer."""
        if self._resync:
            self._restart(src_seq, src_ts, now)
        out_seq = (src_seq + self._seq_off) & 0xFFFF
        out_ts = (src_ts + self._ts_off) & 0xFFFFFFFF
        ext = self.ext.plain
        self.send(
            HEADER.pack(0x90 if ext else 0x80, (marker << 7) | self.pt, out_seq, out_ts, self.ssrc)
            + ext
            + payload
        )
        self._seq = out_seq
        self._ts = out_ts
        self.packets += 1
        self.octets += len(payload)
        self.last_wall = now

    def _restart(self, seq: int, ts: int, now: float) -> None:
        """Map a new source position onto the end of what this slot already sent."""
        if self.sent_any:
            step = max(int((now - self.last_wall) * self.clock_rate), self.min_step)
        else:
            step = 0
            self.sent_any = True
        self._seq_off = (self._seq + 1 - seq) & 0xFFFF
        self._ts_off = (self._ts + step - ts) & 0xFFFFFFFF
        self._base = seq
        self._guard = _SWITCH_GUARD
        self._resync = False

    # -- feedback from the listener ------------------------------------------------------------

    def retransmit(self, lost: list[int]) -> int:
        """Resend packets a listener NACKed, if still in the history ring. Returns how many."""
        history = self.history
        if history is None:
            return 0
        sent = 0
        ext = self.ext.plain
        first = 0x90 if ext else 0x80
        for seq in lost:
            entry = history[seq % len(history)]
            if entry is None or entry[0] != seq:
                continue
            _, ts, marker, payload = entry
            if self.rtx_pt is not None:
                # RFC 4588: own SSRC and sequence space, original sequence number first in the payload.
                self.rtx_seq = (self.rtx_seq + 1) & 0xFFFF
                header = HEADER.pack(first, (marker << 7) | self.rtx_pt, self.rtx_seq, ts, self.rtx_ssrc)
                self.send(header + ext + seq.to_bytes(2, "big") + payload)
            else:
                self.send(HEADER.pack(first, (marker << 7) | self.pt, seq, ts, self.ssrc) + ext + payload)
            sent += 1
        return sent


# RFC 6464 level (0..127 = -dBov) -> linear amplitude.
_LEVEL_LINEAR = [10 ** (-db / 20) for db in range(128)]
_LEVEL_SMOOTHING = 0.1  # per packet (20 ms): ~200 ms time constant


class Publisher:
    """A participant's published tracks and the slots currently carrying them."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.audio_out: list[OutSlot] = []
        self.video_out: list[OutSlot] = []
        # Set while at least one listener mixes this source: receives each Opus payload to decode.
        self.mix_sink: Callable[[bytes], None] | None = None
        self.keyframe_requester: Callable[[], None] | None = None
        self.audio_packets = 0
        self.video_packets = 0
        self.audio_bytes = 0
        self.video_bytes = 0
        # Smoothed speaking level from the publisher's audio-level header extension (None: never seen).
        self.level: float | None = None
        self._last_keyframe_request = 0.0
        # time.monotonic() of the last packet per kind: tells "publishes" from "allowed to publish".
        self.last_audio = -1e9
        self.last_video = -1e9

    def on_audio(self, packet: RtpPacket) -> None:
        self.audio_packets += 1
        self.last_audio = time.monotonic()
        self.audio_bytes += len(packet.payload)
        now = time.time()
        for slot in self.audio_out:
            slot.forward(packet, now)
        sink = self.mix_sink
        if sink is not None and packet.payload:
            sink(packet.payload)
        level = packet.extensions.audio_level
        if level is not None:
            previous = self.level or 0.0
            self.level = previous + _LEVEL_SMOOTHING * (_LEVEL_LINEAR[level[1]] - previous)

    def on_video(self, packet: RtpPacket) -> None:
        self.video_packets += 1
        self.last_video = time.monotonic()
        self.video_bytes += len(packet.payload)
        now = time.time()
        waiting = False
        for slot in self.video_out:
            slot.forward(packet, now)
            waiting = waiting or slot.waiting_keyframe
        if waiting:
            self.request_keyframe(now)

    def request_keyframe(self, now: float | None = None, *, min_interval: float = 0.5) -> bool:
        """Ask the publisher for a keyframe (PLI), at most once per `min_interval` seconds."""
        now = time.time() if now is None else now
        if self.keyframe_requester is None or now - self._last_keyframe_request < min_interval:
            return False
        self._last_keyframe_request = now
        self.keyframe_requester()
        return True
