"""Small RTP helpers used on the forwarding path: header extensions, VP8 keyframes, NTP time.

Kept free of aiortc objects so they can be unit-tested byte for byte.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct("!BBHII")
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

# LEVEL_TAIL[pad][byte] = the audio-level value byte followed by `pad` zero bytes, prebuilt so the hot
# path appends one ready-made bytes object instead of packing.
LEVEL_TAIL = [[bytes((b,)) + b"\0" * pad for b in range(256)] for pad in range(4)]


def ntp_from_unix(t: float) -> int:
    """64-bit NTP timestamp of a Unix time (as RTCP sender reports carry it)."""
    return int((t + NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


class ExtensionTemplate:
    """Precomputed one-byte-header extension block (RFC 8285) carrying the slot's `mid` and,
    when the source packet has one, its audio level (so a browser's active-speaker logic still works).
    """

    __slots__ = ("level_head", "level_pad", "plain")

    def __init__(self, mid: str | None, mid_id: int | None, level_id: int | None) -> None:
        elements = b""
        if mid and mid_id:
            raw = mid.encode()
            elements = bytes(((mid_id << 4) | (len(raw) - 1),)) + raw
        self.plain = _block(elements) if elements else b""
        if level_id:
            with_level = elements + bytes(((level_id << 4),))
            # +1 for the level value byte appended per packet.
            size = len(with_level) + 1
            self.level_pad = (-size) % 4
            self.level_head = b"\xbe\xde" + struct.pack("!H", (size + self.level_pad) // 4) + with_level
        else:
            self.level_pad = -1
            self.level_head = b""

    def build(self, level_byte: int | None) -> bytes:
        if level_byte is None or self.level_pad < 0:
            return self.plain
        return self.level_head + LEVEL_TAIL[self.level_pad][level_byte]


def _block(elements: bytes) -> bytes:
    pad = (-len(elements)) % 4
    return b"\xbe\xde" + struct.pack("!H", (len(elements) + pad) // 4) + elements + b"\0" * pad


def vp8_keyframe_start(payload: bytes) -> bool:
    """True if this VP8 RTP payload (RFC 7741) starts a keyframe: S=1, PID=0 and the VP8 frame tag's
    inverse keyframe bit P is 0."""
    n = len(payload)
    if n < 1:
        return False
    b0 = payload[0]
    if not (b0 & 0x10) or (b0 & 0x0F):
        return False
    pos = 1
    if b0 & 0x80:
        if n < 2:
            return False
        x = payload[1]
        pos = 2
        if x & 0x80:  # I: picture id, 7 or 15 bits
            if n <= pos:
                return False
            pos += 2 if payload[pos] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            pos += 1
        if x & 0x30:  # T/K: TID/KEYIDX byte
            pos += 1
    if n <= pos:
        return False
    return (payload[pos] & 0x01) == 0
