"""Audio in and out of the SDK: synthetic voices, WAV files and numpy generators as aiortc tracks
(20 ms, 48 kHz mono frames), level meters for received audio, and the distance models clients apply to
forwarded voices.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
import wave
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
SILENCE_DBFS = -120.0
STALE_S = 0.5  # a meter without frames for this long reads silence

FrameSource = Iterable[np.ndarray] | AsyncIterator[np.ndarray]


# --------------------------------------------------------------------------- synthetic voices


def tone(freq: float = 440.0, amplitude: float = 0.3) -> Iterator[np.ndarray]:
    """An endless sine, as float32 frames of FRAME_SAMPLES."""
    n = 0
    t = np.arange(FRAME_SAMPLES)
    while True:
        yield (amplitude * np.sin(2 * np.pi * freq * (n + t) / SAMPLE_RATE)).astype(np.float32)
        n += FRAME_SAMPLES


def noise(amplitude: float = 0.2, seed: int = 0) -> Iterator[np.ndarray]:
    """Endless white noise."""
    rng = np.random.default_rng(seed)
    while True:
        yield (amplitude * rng.uniform(-1, 1, FRAME_SAMPLES)).astype(np.float32)


def speechlike(amplitude: float = 0.3, seed: int = 0) -> Iterator[np.ndarray]:
    """Voice-like test signal: a gliding harmonic buzz in ~4 Hz syllables with pauses between phrases.

    Cheap to make, and it exercises what real speech does to Opus and to active-speaker detection
    (onsets, silence), unlike a steady tone.
    """
    rng = np.random.default_rng(seed)
    n = 0
    phase = 0.0
    t = np.arange(FRAME_SAMPLES) / SAMPLE_RATE
    phrase_end = 0.0
    talking = True
    while True:
        now = n / SAMPLE_RATE
        if now >= phrase_end:
            talking = not talking
            phrase_end = now + (rng.uniform(1.0, 3.0) if talking else rng.uniform(0.2, 0.8))
        f0 = 120.0 + 30.0 * math.sin(2 * math.pi * 0.7 * now)
        ph = phase + 2 * np.pi * f0 * t
        phase = float(ph[-1] + 2 * np.pi * f0 / SAMPLE_RATE)
        sig = sum(np.sin(k * ph) / k for k in range(1, 8))
        env = 0.5 * (1 - np.cos(2 * np.pi * 4.0 * (now + t))) if talking else np.zeros(FRAME_SAMPLES)
        yield (amplitude * 0.6 * env * sig).astype(np.float32)
        n += FRAME_SAMPLES


def clicks(period: float = 1.0, amplitude: float = 0.8, length_ms: float = 20.0) -> Iterator[np.ndarray]:
    """Silence with a short 1 kHz burst every `period` seconds (for mouth-to-ear latency)."""
    frames_per_period = max(1, round(period * SAMPLE_RATE / FRAME_SAMPLES))
    burst_frames = max(1, round(length_ms / 20.0))
    burst = (amplitude * np.sin(2 * np.pi * 1000 * np.arange(FRAME_SAMPLES) / SAMPLE_RATE)).astype(np.float32)
    silence = np.zeros(FRAME_SAMPLES, np.float32)
    i = 0
    while True:
        yield burst if i % frames_per_period < burst_frames else silence
        i += 1


def wav_frames(path: str | Path, loop: bool = True) -> Iterator[np.ndarray]:
    """Frames from a 16-bit PCM WAV (any rate, channels are averaged; resampled linearly to 48 kHz)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        rate, channels = w.getframerate(), w.getnchannels()
        raw = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    mono = raw.reshape(-1, channels).mean(axis=1).astype(np.float32) / 32768.0
    if rate != SAMPLE_RATE and len(mono):
        n_out = int(len(mono) * SAMPLE_RATE / rate)
        mono = np.interp(np.arange(n_out) * rate / SAMPLE_RATE, np.arange(len(mono)), mono).astype(np.float32)
    if len(mono) == 0:
        raise ValueError(f"{path}: no audio")
    pad = (-len(mono)) % FRAME_SAMPLES
    mono = np.concatenate([mono, np.zeros(pad, np.float32)])
    while True:
        yield from mono.reshape(-1, FRAME_SAMPLES)
        if not loop:
            return


def voice(spec: str, seed: int = 0) -> Iterator[np.ndarray]:
    """A voice by name: ``tone``, ``noise``, ``speechlike``, ``clicks`` or a path to a WAV file."""
    if spec == "tone":
        return tone(220.0 + 20.0 * (seed % 20))
    if spec == "noise":
        return noise(seed=seed)
    if spec == "speechlike":
        return speechlike(seed=seed)
    if spec == "clicks":
        return clicks()
    return wav_frames(spec)


# --------------------------------------------------------------------------- publishing


class PcmTrack(MediaStreamTrack):
    """An aiortc audio track that plays frames from a numpy source in real time.

    `source` yields mono float32 (-1..1) or int16 arrays of FRAME_SAMPLES (shorter frames are padded).
    When it ends the track sends silence. `on_frame(pts_seconds, frame)` observes what goes out (the
    latency bench uses it to timestamp clicks). `muted` sends silence without stopping the track.
    """

    kind = "audio"

    def __init__(
        self, source: FrameSource, on_frame: Callable[[float, np.ndarray], None] | None = None
    ) -> None:
        super().__init__()
        self._source = source
        self._iter: Iterator[np.ndarray] | None = None
        self._aiter: AsyncIterator[np.ndarray] | None = None
        if isinstance(source, AsyncIterator):
            self._aiter = source
        else:
            self._iter = iter(source)
        self._on_frame = on_frame
        self._pts = 0
        self._start: float | None = None
        self.muted = False
        self.frames_sent = 0

    async def _next_samples(self) -> np.ndarray:
        try:
            if self._aiter is not None:
                data = await self._aiter.__anext__()
            else:
                assert self._iter is not None
                data = next(self._iter)
        except (StopIteration, StopAsyncIteration):
            return np.zeros(FRAME_SAMPLES, np.int16)
        arr = np.asarray(data).reshape(-1)[:FRAME_SAMPLES]
        if arr.dtype != np.int16:
            arr = (np.clip(arr.astype(np.float32), -1.0, 1.0) * 32767).astype(np.int16)
        if len(arr) < FRAME_SAMPLES:
            arr = np.concatenate([arr, np.zeros(FRAME_SAMPLES - len(arr), np.int16)])
        return arr

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        # Pace to real time from a fixed start, so jitter in the event loop does not accumulate.
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._pts / SAMPLE_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -0.2:
                # Far behind (a reconnect, a stalled loop): resume from now instead of bursting to catch up.
                self._start = time.monotonic() - self._pts / SAMPLE_RATE
        samples = await self._next_samples()
        if self.muted:
            samples = np.zeros(FRAME_SAMPLES, np.int16)
        if self._on_frame is not None:
            self._on_frame(self._pts / SAMPLE_RATE, samples)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._pts += FRAME_SAMPLES
        self.frames_sent += 1
        return frame


# --------------------------------------------------------------------------- receiving


def frame_to_float(frame: av.AudioFrame) -> np.ndarray:
    """A decoded aiortc frame as float32 (samples, channels) in -1..1."""
    arr = frame.to_ndarray()
    channels = len(frame.layout.channels)
    out = arr.T if frame.format.is_planar else arr.reshape(-1, channels)
    if out.dtype == np.int16:
        return out.astype(np.float32) / 32768.0
    return out.astype(np.float32)


def dbfs(samples: np.ndarray) -> float:
    """RMS level in dBFS (full-scale sine = -3 dB)."""
    if samples.size == 0:
        return SILENCE_DBFS
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(SILENCE_DBFS, 20 * math.log10(rms)) if rms > 0 else SILENCE_DBFS


class LevelMeter:
    """Level of one received source: the latest frame and a smoothed value (≈ 200 ms time constant)."""

    def __init__(self, smoothing: float = 0.1) -> None:
        self.smoothing = smoothing
        self.last_dbfs = SILENCE_DBFS
        self.power = 0.0  # smoothed mean square
        self.peak = 0.0
        self.frames = 0
        self.updated = 0.0  # time.monotonic() of the last frame

    def add(self, samples: np.ndarray) -> None:
        ms = float(np.mean(np.square(samples, dtype=np.float64))) if samples.size else 0.0
        self.last_dbfs = 10 * math.log10(ms) if ms > 1e-12 else SILENCE_DBFS
        self.power += self.smoothing * (ms - self.power)
        self.peak = max(self.peak * 0.99, float(np.max(np.abs(samples))) if samples.size else 0.0)
        self.frames += 1
        self.updated = time.monotonic()

    @property
    def stale(self) -> bool:
        """No frame for STALE_S: the sender stopped (an idle slot, an empty mix), which is silence."""
        return time.monotonic() - self.updated > STALE_S

    @property
    def dbfs(self) -> float:
        if self.stale or self.power <= 1e-12:
            return SILENCE_DBFS
        return 10 * math.log10(self.power)


# --------------------------------------------------------------------------- distance models


def distance_gain(
    model: str, distance: float, reference: float = 1.0, rolloff: float = 1.0, maximum: float = 1e30
) -> float:
    """Gain of a source at `distance` under the world's distance model (OpenAL 1.1 / Web Audio formulas).

    `model` is one of inverse_clamped, linear_clamped, exponential (the config's names) or inverse,
    linear, exponential_clamped (OpenAL's).
    """
    d = distance
    if model.endswith("_clamped") or model == "linear":
        d = min(max(d, reference), maximum)
    base = model.removesuffix("_clamped")
    if base == "inverse":
        denom = reference + rolloff * (d - reference)
        return 1.0 if denom <= 0 else min(1.0, reference / denom)
    if base == "linear":
        if maximum <= reference:
            return 1.0
        return max(0.0, min(1.0, 1.0 - rolloff * (d - reference) / (maximum - reference)))
    if base == "exponential":
        return min(1.0, (max(d, reference) / reference) ** (-rolloff))
    raise ValueError(f"unknown distance model {model!r}")
