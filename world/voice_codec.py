"""Voice codecs for WebSocket-only clients (Godot without WebRTC): 16 kHz mono, 20 ms frames.

Godot core has no Opus, so clients that cannot open WebRTC media send and receive `voice` messages
carrying one of two small codecs that are easy to implement byte-exactly in GDScript
(clients/godot_plugin/addons/hubbub/voice_codec.gd is the other implementation; tests/vectors/ holds the
shared vectors both are checked against):

``ulaw16k``  ITU-T G.711 μ-law, 8 bits per sample: 320 bytes per frame, 128 kbit/s payload.
``adpcm16k`` IMA ADPCM, 4 bits per sample plus a 4-byte header per frame: 164 bytes per frame,
             65.6 kbit/s payload. Header = predictor (int16 LE), step index (uint8, 0..88), 0 (uint8);
             then 320 samples as nibbles, low nibble first. The header carries the decoder state, so
             every frame decodes on its own (a lost frame costs 20 ms, nothing more).

A frame may carry stereo (``ch: 2`` in the message, used for the mixed bed): the payload is the left frame
followed by the right frame, each encoded exactly as a mono frame.

PCM is int16 at 16 kHz. Float conversion: ``round(x·32767)`` clipped to int16; back: ``x/32768``.
The server works at 48 kHz (Opus), hence the resampling helpers.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

SAMPLE_RATE = 16_000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 320
ADPCM_HEADER_BYTES = 4

Int16Array = npt.NDArray[np.int16]
FloatArray = npt.NDArray[np.float32]


class VoiceCodec(StrEnum):
    ULAW16K = "ulaw16k"
    ADPCM16K = "adpcm16k"


def frame_bytes(codec: VoiceCodec | str, samples: int = FRAME_SAMPLES) -> int:
    """Encoded size of one mono frame of `samples` samples."""
    if VoiceCodec(codec) is VoiceCodec.ULAW16K:
        return samples
    return ADPCM_HEADER_BYTES + (samples + 1) // 2


def bitrate(codec: VoiceCodec | str) -> int:
    """Payload bits per second of a mono stream (without the ~30 bytes of msgpack framing per frame)."""
    return frame_bytes(codec) * 8 * 1000 // FRAME_MS


# --------------------------------------------------------------------------- sample conversion


def float_to_int16(x: npt.ArrayLike) -> Int16Array:
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 32767.0), -32768, 32767).astype(np.int16)


def int16_to_float(x: npt.ArrayLike) -> FloatArray:
    return (np.asarray(x, dtype=np.float32) / np.float32(32768.0)).astype(np.float32)


def resample_48k_to_16k(x: npt.ArrayLike) -> FloatArray:
    """Polyphase decimation by 3 (scipy's Kaiser-windowed FIR doubles as the anti-alias filter)."""
    return np.asarray(resample_poly(np.asarray(x, dtype=np.float32), 1, 3), dtype=np.float32)


def resample_16k_to_48k(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(resample_poly(np.asarray(x, dtype=np.float32), 3, 1), dtype=np.float32)


# --------------------------------------------------------------------------- μ-law (G.711)

_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635


def ulaw_encode(pcm: npt.ArrayLike) -> bytes:
    """int16 samples -> one μ-law byte each (vectorised G.711, the classic biased-segment form)."""
    x = np.asarray(pcm, dtype=np.int32)
    sign = np.where(x < 0, 0x80, 0).astype(np.int32)
    mag = np.minimum(np.abs(x), _ULAW_CLIP) + _ULAW_BIAS  # 132 .. 32767
    exponent = np.frexp(mag.astype(np.float64))[1].astype(np.int32) - 8  # floor(log2(mag)) - 7, 0..7
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def _ulaw_table() -> Int16Array:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    t = (((u & 0x0F) << 3) + _ULAW_BIAS) << exponent
    return np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


_ULAW_DECODE = _ulaw_table()


def ulaw_decode(data: bytes) -> Int16Array:
    return _ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


# --------------------------------------------------------------------------- IMA ADPCM

_STEPS = (
    7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 21, 23, 25, 28, 31, 34, 37, 41, 45, 50, 55, 60, 66, 73, 80,
    88, 97, 107, 118, 130, 143, 157, 173, 190, 209, 230, 253, 279, 307, 337, 371, 408, 449, 494, 544,
    598, 658, 724, 796, 876, 963, 1060, 1166, 1282, 1411, 1552, 1707, 1878, 2066, 2272, 2499, 2749,
    3024, 3327, 3660, 4026, 4428, 4871, 5358, 5894, 6484, 7132, 7845, 8630, 9493, 10442, 11487, 12635,
    13899, 15289, 16818, 18500, 20350, 22385, 24623, 27086, 29794, 32767,
)  # fmt: skip
_INDEX_DELTA = (-1, -1, -1, -1, 2, 4, 6, 8, -1, -1, -1, -1, 2, 4, 6, 8)
_MAX_INDEX = len(_STEPS) - 1


class AdpcmEncoder:
    """Stateful IMA ADPCM encoder: the predictor and step index carry across frames (better adaptation);
    each frame's header records them, so decoding needs no state.

    The per-sample loop is inherently sequential (each step depends on the previous reconstruction); it is
    a plain-int loop over locals, ~0.15 ms per 20 ms frame here.
    """

    def __init__(self) -> None:
        self.predictor = 0
        self.index = 0

    def encode(self, pcm: npt.ArrayLike) -> bytes:
        samples = np.asarray(pcm, dtype=np.int16)
        if samples.ndim != 1 or len(samples) % 2:
            raise ValueError("ADPCM frames need a 1-D, even number of samples")
        header = int(self.predictor).to_bytes(2, "little", signed=True) + bytes((self.index, 0))
        predictor, index = self.predictor, self.index
        steps, deltas = _STEPS, _INDEX_DELTA
        nibbles = bytearray(len(samples))
        for i, sample in enumerate(samples.tolist()):
            step = steps[index]
            diff = sample - predictor
            code = 0
            if diff < 0:
                code = 8
                diff = -diff
            vpdiff = step >> 3
            if diff >= step:
                code |= 4
                diff -= step
                vpdiff += step
            step >>= 1
            if diff >= step:
                code |= 2
                diff -= step
                vpdiff += step
            step >>= 1
            if diff >= step:
                code |= 1
                vpdiff += step
            predictor = predictor - vpdiff if code & 8 else predictor + vpdiff
            if predictor > 32767:
                predictor = 32767
            elif predictor < -32768:
                predictor = -32768
            index += deltas[code]
            if index < 0:
                index = 0
            elif index > _MAX_INDEX:
                index = _MAX_INDEX
            nibbles[i] = code
        self.predictor, self.index = predictor, index
        packed = np.frombuffer(bytes(nibbles), dtype=np.uint8)
        return header + (packed[0::2] | (packed[1::2] << 4)).astype(np.uint8).tobytes()


def adpcm_decode(data: bytes) -> Int16Array:
    """One ADPCM frame (header + nibbles) -> int16 samples (2 per payload byte)."""
    if len(data) < ADPCM_HEADER_BYTES:
        raise ValueError("ADPCM frame shorter than its 4-byte header")
    predictor = int.from_bytes(data[0:2], "little", signed=True)
    index = data[2]
    if index > _MAX_INDEX:
        raise ValueError(f"ADPCM step index {index} out of range 0..{_MAX_INDEX}")
    raw = np.frombuffer(data, dtype=np.uint8, offset=ADPCM_HEADER_BYTES)
    codes = np.empty(2 * len(raw), dtype=np.uint8)
    codes[0::2] = raw & 0x0F
    codes[1::2] = raw >> 4
    out = [0] * len(codes)
    steps, deltas = _STEPS, _INDEX_DELTA
    for i, code in enumerate(codes.tolist()):
        step = steps[index]
        vpdiff = step >> 3
        if code & 4:
            vpdiff += step
        if code & 2:
            vpdiff += step >> 1
        if code & 1:
            vpdiff += step >> 2
        predictor = predictor - vpdiff if code & 8 else predictor + vpdiff
        if predictor > 32767:
            predictor = 32767
        elif predictor < -32768:
            predictor = -32768
        index += deltas[code]
        if index < 0:
            index = 0
        elif index > _MAX_INDEX:
            index = _MAX_INDEX
        out[i] = predictor
    return np.asarray(out, dtype=np.int16)


# --------------------------------------------------------------------------- frame level API


class VoiceEncoder:
    """Encodes successive 20 ms frames of one source (one per source: ADPCM keeps state)."""

    def __init__(self, codec: VoiceCodec | str = VoiceCodec.ADPCM16K, channels: int = 1) -> None:
        if channels not in (1, 2):
            raise ValueError("channels must be 1 or 2")
        self.codec = VoiceCodec(codec)
        self.channels = channels
        self._adpcm = [AdpcmEncoder() for _ in range(channels)]

    def encode(self, pcm: npt.ArrayLike) -> bytes:
        """pcm: int16, shape (FRAME_SAMPLES,) mono or (FRAME_SAMPLES, 2) stereo."""
        x = np.asarray(pcm, dtype=np.int16).reshape(FRAME_SAMPLES, self.channels)
        parts = []
        for ch in range(self.channels):
            column = np.ascontiguousarray(x[:, ch])
            if self.codec is VoiceCodec.ULAW16K:
                parts.append(ulaw_encode(column))
            else:
                parts.append(self._adpcm[ch].encode(column))
        return b"".join(parts)


def decode_frame(codec: VoiceCodec | str, payload: bytes, channels: int = 1) -> Int16Array:
    """Decode one 20 ms frame; raises ValueError for an unknown codec or a payload of the wrong size.

    Returns int16 of shape (FRAME_SAMPLES,) for mono, (FRAME_SAMPLES, 2) for stereo.
    """
    try:
        kind = VoiceCodec(codec)
    except ValueError:
        raise ValueError(f"unknown voice codec {codec!r}") from None
    if channels not in (1, 2):
        raise ValueError("channels must be 1 or 2")
    size = frame_bytes(kind)
    if len(payload) != size * channels:
        raise ValueError(f"{kind.value} frame must be {size * channels} bytes, got {len(payload)}")
    decode = ulaw_decode if kind is VoiceCodec.ULAW16K else adpcm_decode
    chans = [decode(payload[c * size : (c + 1) * size]) for c in range(channels)]
    return chans[0] if channels == 1 else np.stack(chans, axis=1)
