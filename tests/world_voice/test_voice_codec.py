"""world.voice_codec against the shared vectors, the G.711 / IMA ADPCM definitions and basic audio sanity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from world import voice_codec as vc

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "codec_vectors.json").read_text())


@pytest.mark.parametrize("codec", ["ulaw16k", "adpcm16k"])
def test_codec_matches_vectors(codec: str) -> None:
    encoder = vc.VoiceEncoder(codec)  # one encoder over the sequence, as the generator did
    spec: dict[str, Any] = VECTORS[codec]
    assert spec["frame_bytes"] == vc.frame_bytes(codec)
    for frame in spec["frames"]:
        payload = encoder.encode(np.array(frame["pcm"], dtype=np.int16))
        assert payload.hex() == frame["encoded"], frame["name"]
        assert vc.decode_frame(codec, payload).tolist() == frame["decoded"], frame["name"]


def test_stereo_vector() -> None:
    spec = VECTORS["stereo_adpcm16k"]
    out = vc.decode_frame("adpcm16k", bytes.fromhex(spec["encoded"]), channels=2)
    assert out.shape == (vc.FRAME_SAMPLES, 2)
    assert out.tolist() == spec["decoded"]


def test_bandwidth() -> None:
    assert vc.FRAME_SAMPLES == 320
    assert vc.frame_bytes("ulaw16k") == 320 and vc.bitrate("ulaw16k") == 128_000
    assert vc.frame_bytes("adpcm16k") == 164 and vc.bitrate("adpcm16k") == 65_600


def test_ulaw_decode_table_is_g711() -> None:
    # G.711 μ-law: 0xFF and 0x7F are zero, 0x80 / 0x00 are the extremes ±32124.
    table = vc.ulaw_decode(bytes(range(256)))
    assert table[0xFF] == 0 and table[0x7F] == 0
    assert table[0x80] == 32124 and table[0x00] == -32124
    assert np.all(np.diff(table[0x80:0xFF].astype(int)) < 0)  # monotone within a sign half


def test_ulaw_error_is_within_half_a_quantisation_step() -> None:
    x = np.arange(-32124, 32125, dtype=np.int16)
    y = vc.ulaw_decode(vc.ulaw_encode(x)).astype(np.int32)
    err = np.abs(y - x)
    # |x|+132 in segment s = [2^(s+7), 2^(s+8)) is quantised in steps of 2^(s+3): the error is at most
    # half a step, 2^(s+2) <= (|x| + 132) / 32
    assert np.all(err <= (np.abs(x.astype(np.int32)) + 132) / 32)


def test_ulaw_is_symmetric() -> None:
    x = np.arange(1, 32768, dtype=np.int16)
    assert np.array_equal(vc.ulaw_decode(vc.ulaw_encode(x)), -vc.ulaw_decode(vc.ulaw_encode(-x)))


def _tone(freq: float, seconds: float, amplitude: float, rate: int = vc.SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


@pytest.mark.parametrize("codec,min_snr_db", [("ulaw16k", 35.0), ("adpcm16k", 20.0)])
def test_speech_band_tone_survives(codec: str, min_snr_db: float) -> None:
    x = vc.float_to_int16(_tone(440, 1.0, 0.3) + _tone(1700, 1.0, 0.1))
    enc = vc.VoiceEncoder(codec)
    frames = x.reshape(-1, vc.FRAME_SAMPLES)
    y = np.concatenate([vc.decode_frame(codec, enc.encode(f)) for f in frames]).astype(float)
    skip = vc.FRAME_SAMPLES  # ADPCM's step size adapts during the first frame
    snr = 10 * np.log10(np.sum(x[skip:].astype(float) ** 2) / np.sum((x[skip:] - y[skip:]) ** 2))
    assert snr > min_snr_db


def test_adpcm_frames_decode_independently() -> None:
    x = vc.float_to_int16(_tone(300, 0.2, 0.5))
    enc = vc.VoiceEncoder("adpcm16k")
    payloads = [enc.encode(f) for f in x.reshape(-1, vc.FRAME_SAMPLES)]
    # decoding frame 5 alone equals decoding it in sequence: the header carries the state
    assert np.array_equal(vc.decode_frame("adpcm16k", payloads[5]), vc.adpcm_decode(payloads[5]))
    header_pred = int.from_bytes(payloads[5][:2], "little", signed=True)
    assert abs(header_pred - int(vc.adpcm_decode(payloads[4])[-1])) == 0


def test_adpcm_full_scale_does_not_wrap() -> None:
    x = np.where(np.arange(vc.FRAME_SAMPLES * 4) % 40 < 20, 32767, -32768).astype(np.int16)
    enc = vc.AdpcmEncoder()
    y = np.concatenate([vc.adpcm_decode(enc.encode(f)) for f in x.reshape(-1, vc.FRAME_SAMPLES)])
    assert y.min() >= -32768 and y.max() <= 32767
    tail = slice(vc.FRAME_SAMPLES, None)
    assert np.corrcoef(x[tail].astype(float), y[tail].astype(float))[0, 1] > 0.9


@pytest.mark.parametrize(
    "codec,payload,channels",
    [
        ("ulaw16k", bytes(319), 1),
        ("adpcm16k", bytes(163), 1),
        ("adpcm16k", bytes(164), 2),
        ("opus", bytes(320), 1),
        ("adpcm16k", b"\x00\x00\x59\x00" + bytes(160), 1),  # step index 89 > 88
    ],
)
def test_bad_frames_raise_value_error(codec: str, payload: bytes, channels: int) -> None:
    with pytest.raises(ValueError):
        vc.decode_frame(codec, payload, channels)


def test_encoder_rejects_odd_adpcm_length() -> None:
    with pytest.raises(ValueError):
        vc.AdpcmEncoder().encode(np.zeros(3, dtype=np.int16))


def test_resample_48k_16k_keeps_tone_and_removes_alias() -> None:
    rate = 48_000
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    down = vc.resample_48k_to_16k(tone)
    assert len(down) == 16_000
    rms = float(np.sqrt(np.mean(down[1000:-1000] ** 2)))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    # 12 kHz is above the new Nyquist (8 kHz): it must not fold back into the band
    alias = vc.resample_48k_to_16k(0.5 * np.sin(2 * np.pi * 12_000 * t))
    assert float(np.sqrt(np.mean(alias[1000:-1000] ** 2))) < 0.005
    up = vc.resample_16k_to_48k(down)
    assert len(up) == rate
    np.testing.assert_allclose(up[3000:-3000], tone[3000:-3000], atol=0.01)


def test_float_int16_conversion_clips() -> None:
    assert vc.float_to_int16([2.0, -2.0, 0.0, 0.5]).tolist() == [32767, -32768, 0, 16384]
    assert vc.int16_to_float(np.array([-32768], dtype=np.int16))[0] == -1.0
