"""RFC 6464 levels, the smoothed level meter and the active-speaker detector (with hysteresis)."""

from __future__ import annotations

import numpy as np
import pytest

from spatial import ActiveSpeakerConfig, ActiveSpeakerDetector, LevelMeter, frame_dbov, to_rfc6464

N = 960


def test_dbov_reference_points() -> None:
    t = np.arange(N)
    frames = np.stack(
        [
            np.where(t % 96 < 48, 1.0, -1.0),  # full-scale square: 0 dBov
            np.sin(2 * np.pi * 1000 * t / 48000),  # full-scale sine: −3.01 dBov
            0.5 * np.where(t % 96 < 48, 1.0, -1.0),  # −6.02
            np.zeros(N),  # digital silence: −127
            np.full(N, 1e-9),  # below the floor
        ]
    )
    np.testing.assert_allclose(frame_dbov(frames), [0.0, -3.0103, -6.0206, -127.0, -127.0], atol=1e-3)
    wire = to_rfc6464([0.0, -3.01, -6.02, -127.0, -200.0, 5.0])
    np.testing.assert_array_equal(wire, [0, 3, 6, 127, 127, 0])


def test_level_meter_attacks_fast_and_releases_slowly() -> None:
    meter = LevelMeter(attack_ms=20, release_ms=300)
    loud = np.full((1, N), 0.5, np.float32)  # −6 dBov
    quiet = np.zeros((1, N), np.float32)
    levels = [meter.update([7], loud)[0] for _ in range(5)]
    assert levels[0] > -12 and levels[-1] == pytest.approx(-6.02, abs=0.5)
    after = [meter.update([7], quiet)[0] for _ in range(5)]
    assert all(b < a for a, b in zip([levels[-1], *after], after, strict=False))
    assert after[0] > -20  # a 20 ms gap does not drop a talker to silence
    # Missing frames count as silence; ids are tracked independently of order.
    both = meter.update([9, 7], np.vstack([loud, loud]), present=[True, False])
    assert both[1] < after[-1]  # 7 kept falling although its frame carried a loud signal
    assert both[0] == pytest.approx(levels[0])  # 9 is new: one attack step from silence


def feed(det: ActiveSpeakerDetector, pattern: dict[int, list[float]]) -> list[list[int] | None]:
    """pattern: id -> per-frame dBov (None-free). Returns what observe() said each frame."""
    n_frames = len(next(iter(pattern.values())))
    ids = np.array(sorted(pattern))
    said = []
    for f in range(n_frames):
        said.append(det.observe(ids, np.array([pattern[i][f] for i in ids])))
    return said


def test_active_speakers_ordered_and_announced_only_on_change() -> None:
    cfg = ActiveSpeakerConfig(active_level=35, min_percentile=40, update_interval_ms=400, smooth_intervals=2)
    det = ActiveSpeakerDetector(cfg)
    frames = 20 * 4  # four intervals
    said = feed(det, {1: [-20.0] * frames, 2: [-10.0] * frames, 3: [-60.0] * frames})
    announcements = [s for s in said if s is not None]
    assert announcements == [[2, 1]]  # loudest first, once; the silent source never appears
    assert said.index([2, 1]) == 19  # at the first interval boundary
    assert det.speakers == [2, 1]


def test_min_percentile_ignores_short_bursts() -> None:
    det = ActiveSpeakerDetector(ActiveSpeakerConfig(min_percentile=40))
    burst = ([-10.0] * 4 + [-90.0] * 16) * 5  # loud 20 % of the time: clicks, coughs
    said = feed(det, {5: burst})
    assert all(s is None for s in said) and det.speakers == []


def test_hysteresis_keeps_a_speaker_that_dips_but_never_admits_a_newcomer_at_that_level() -> None:
    det = ActiveSpeakerDetector(ActiveSpeakerConfig(active_level=35, min_percentile=40, release_db=6))
    talk = [-30.0] * 20 * 3
    # Intermittent: −30 dBov for 40 % of each interval -> LiveKit-adjusted level ≈ −38 dBov,
    # below active_level (−35) but within the 6 dB release band.
    patchy = ([-30.0] * 8 + [-90.0] * 12) * 6
    said = feed(det, {1: talk + patchy, 2: [-90.0] * 60 + patchy})
    assert [s for s in said if s is not None] == [[1]]
    assert det.speakers == [1]  # 1 stays, 2 never joins although both now sound the same
    said = feed(det, {1: [-90.0] * 40, 2: [-90.0] * 40})
    assert [s for s in said if s is not None] == [[]]  # silence: leaves at the next interval


def test_sources_that_vanish_are_forgotten() -> None:
    det = ActiveSpeakerDetector()
    feed(det, {4: [-15.0] * 20})
    assert det.speakers == [4]
    said = [det.observe(np.array([], dtype=np.int64), np.array([])) for _ in range(20)]
    assert said[-1] == [] and det.levels() == {}


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        ActiveSpeakerConfig(active_level=200)
    with pytest.raises(ValueError):
        ActiveSpeakerConfig(update_interval_ms=10)
