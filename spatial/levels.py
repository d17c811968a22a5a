"""Audio levels (RFC 6464 dBov) and an active-speaker detector with LiveKit's knobs.

Levels are in dBov: 20·log10(RMS) relative to the overload point, where a full-scale square
wave is 0 dBov, clamped to [−127, 0] (RFC 6464 carries the value negated, 0..127, in a 7-bit
field: see `to_rfc6464`). Digital silence is −127.

The detector follows LiveKit's `AudioLevel` (pkg/sfu/audio/audiolevel.go), vectorized over all
sources: during each `update_interval` it counts how long a source was louder than
`active_level` and remembers its loudest frame. At the end of the interval a source that was
active for at least `min_percentile` % of it scores the loudest level, adjusted by how much of
the interval was active; the score is smoothed over `smooth_intervals` intervals
(exponential), otherwise the score drops straight to 0. On top of LiveKit we add hysteresis:
a speaker joins the active list when its smoothed level reaches `active_level` and leaves only
when it falls `release_db` below it (or stops being active at all), so a voice hovering at the
threshold does not flicker in and out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

SILENCE_DBOV = -127.0


def frame_dbov(frames: ArrayLike) -> NDArray[np.float64]:
    """(S, N) float frames → (S,) levels in dBov, in [−127, 0]."""
    x = np.asarray(frames, dtype=np.float32)
    power = np.einsum("sn,sn->s", x, x, dtype=np.float64) / max(x.shape[-1], 1)
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(power)
    return np.clip(np.nan_to_num(db, nan=SILENCE_DBOV, neginf=SILENCE_DBOV), SILENCE_DBOV, 0.0)


def to_rfc6464(dbov: ArrayLike) -> NDArray[np.uint8]:
    """dBov → the RFC 6464 wire value (0 = loudest, 127 = silence)."""
    return np.clip(np.round(-np.asarray(dbov, dtype=np.float64)), 0, 127).astype(np.uint8)


class LevelMeter:
    """Per-source smoothed level: fast attack, slow release (a VU-style meter), keyed by source id.

    Smoothing is exponential on the RMS amplitude with time constant `attack_ms` while the level
    rises and `release_ms` while it falls (so a release is a straight line in dB). Sources
    missing from a frame (`present` False) fall as if silent.
    """

    def __init__(self, attack_ms: float = 20.0, release_ms: float = 300.0, frame_ms: float = 20.0) -> None:
        if attack_ms < 0 or release_ms < 0 or frame_ms <= 0:
            raise ValueError("attack_ms, release_ms >= 0 and frame_ms > 0")
        self.frame_ms = frame_ms
        self._up = 1.0 - np.exp(-frame_ms / attack_ms) if attack_ms > 0 else 1.0
        self._down = 1.0 - np.exp(-frame_ms / release_ms) if release_ms > 0 else 1.0
        self._ids = np.zeros(0, np.int64)
        self._amp = np.zeros(0, np.float64)

    def update(
        self, ids: ArrayLike, frames: ArrayLike, present: ArrayLike | None = None
    ) -> NDArray[np.float64]:
        """Feed one frame per source; returns the smoothed dBov of `ids` (same order)."""
        ids_ = np.asarray(ids, dtype=np.int64).reshape(-1)
        amp = 10.0 ** (frame_dbov(frames) / 20.0)
        if amp.shape != ids_.shape:
            raise ValueError("one frame per id")
        if present is not None:
            amp = np.where(np.asarray(present, dtype=bool), amp, 0.0)
        order = np.argsort(ids_)
        sorted_ids = ids_[order]
        prev = np.zeros(len(ids_))
        if len(self._ids):
            pos = np.minimum(np.searchsorted(self._ids, sorted_ids), len(self._ids) - 1)
            hit = self._ids[pos] == sorted_ids
            prev[hit] = self._amp[pos[hit]]
        cur = amp[order]
        rate = np.where(cur > prev, self._up, self._down)
        smoothed = prev + rate * (cur - prev)
        self._ids, self._amp = sorted_ids, smoothed
        out = np.empty_like(smoothed)
        out[order] = smoothed
        with np.errstate(divide="ignore"):
            return np.clip(20.0 * np.log10(out), SILENCE_DBOV, 0.0)


@dataclass(frozen=True)
class ActiveSpeakerConfig:
    """LiveKit's knobs (same names and units; active_level is −dBov, 0..127, lower = louder)."""

    active_level: int = 35
    min_percentile: int = 40
    update_interval_ms: int = 400
    smooth_intervals: int = 2
    release_db: float = 6.0  # hysteresis: leave the list only this far below active_level
    frame_ms: int = 20

    def __post_init__(self) -> None:
        if not 0 <= self.active_level <= 127 or not 0 <= self.min_percentile <= 100:
            raise ValueError("active_level in 0..127, min_percentile in 0..100")
        if self.update_interval_ms < self.frame_ms or self.smooth_intervals < 1 or self.release_db < 0:
            raise ValueError("update_interval_ms >= frame_ms, smooth_intervals >= 1, release_db >= 0")


class ActiveSpeakerDetector:
    """Feed it every frame's per-source levels; at each interval it may announce a new list.

    `observe(ids, dbov)` returns the ordered active speakers (loudest first) when that list
    changed at this interval boundary, otherwise None. Sources not observed during a frame count
    as silent; sources unseen for a whole interval are forgotten.
    """

    def __init__(self, config: ActiveSpeakerConfig | None = None) -> None:
        self.config = config if config is not None else ActiveSpeakerConfig()
        c = self.config
        self._frames_per_interval = max(1, round(c.update_interval_ms / c.frame_ms))
        self._min_active_frames = c.min_percentile / 100.0 * self._frames_per_interval
        self._on = 10.0 ** (-c.active_level / 20.0)
        self._off = self._on * 10.0 ** (-c.release_db / 20.0)
        self._frame = 0
        self._ids = np.zeros(0, np.int64)  # sorted
        self._active_frames = np.zeros(0, np.int64)
        self._loudest = np.zeros(0, np.float64)  # as −dBov (RFC 6464 sense): lower = louder
        self._seen = np.zeros(0, bool)
        self._smoothed = np.zeros(0, np.float64)  # linear amplitude
        self._is_active = np.zeros(0, bool)
        self._speakers: list[int] = []

    @property
    def speakers(self) -> list[int]:
        """The current ordered active list (loudest first)."""
        return list(self._speakers)

    def levels(self) -> dict[int, float]:
        """Smoothed level (linear amplitude) per tracked source id."""
        return {int(i): float(v) for i, v in zip(self._ids, self._smoothed, strict=True)}

    def observe(self, ids: ArrayLike, dbov: ArrayLike) -> list[int] | None:
        ids_ = np.asarray(ids, dtype=np.int64).reshape(-1)
        level = -np.asarray(dbov, dtype=np.float64).reshape(-1)  # LiveKit's 0..127, lower = louder
        if level.shape != ids_.shape:
            raise ValueError("one level per id")
        self._track(ids_)
        pos = np.searchsorted(self._ids, ids_)
        self._seen[pos] = True
        loud = level <= self.config.active_level
        np.add.at(self._active_frames, pos[loud], 1)
        np.minimum.at(self._loudest, pos[loud], level[loud])
        self._frame += 1
        if self._frame % self._frames_per_interval:
            return None
        return self._close_interval()

    def _track(self, ids: NDArray[np.int64]) -> None:
        new = np.setdiff1d(ids, self._ids)
        if len(new) == 0:
            return
        merged = np.union1d(self._ids, new)
        where_old = np.searchsorted(merged, self._ids)

        def grow(a: NDArray[Any], fill: float | bool) -> NDArray[Any]:
            out = np.full(len(merged), fill, dtype=a.dtype)
            out[where_old] = a
            return out

        self._active_frames = grow(self._active_frames, 0)
        self._loudest = grow(self._loudest, 127.0)
        self._seen = grow(self._seen, False)
        self._smoothed = grow(self._smoothed, 0.0)
        self._is_active = grow(self._is_active, False)
        self._ids = merged

    def _close_interval(self) -> list[int] | None:
        c = self.config
        active_enough = self._active_frames >= self._min_active_frames
        frac = np.maximum(self._active_frames, 1) / self._frames_per_interval
        # LiveKit: weight the loudest level by the active fraction (0 dB when active throughout).
        adjusted = self._loudest - 20.0 * np.log10(frac)
        linear = 10.0 ** (-adjusted / 20.0)
        self._smoothed = np.where(
            active_enough, self._smoothed + (linear - self._smoothed) / c.smooth_intervals, 0.0
        )
        self._is_active = np.where(self._is_active, self._smoothed >= self._off, self._smoothed >= self._on)
        # Forget sources that were not seen at all in this interval.
        keep = self._seen
        self._ids, self._smoothed, self._is_active = (
            self._ids[keep],
            self._smoothed[keep],
            self._is_active[keep],
        )
        self._active_frames = np.zeros(len(self._ids), np.int64)
        self._loudest = np.full(len(self._ids), 127.0)
        self._seen = np.zeros(len(self._ids), bool)

        act = np.flatnonzero(self._is_active)
        order = act[np.lexsort((self._ids[act], -self._smoothed[act]))]
        speakers = [int(i) for i in self._ids[order]]
        if speakers == self._speakers:
            return None
        self._speakers = speakers
        return list(speakers)
