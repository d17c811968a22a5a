"""Spherical-head HRTF (Brown & Duda 1998): ITD sign and size, level difference, and the mixer's
tap decomposition against a direct implementation (fractional delay + bilinear shelf filter)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from spatial import DistanceModel, Mixer, SphericalHead

N = 960
RATE = 48000
IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


def render(az_deg: float, x: np.ndarray, distance: float = 1.0, el_deg: float = 0.0) -> np.ndarray:
    """Run `x` (multiple of N samples) from one direction through an HRTF mixer; returns (2, len)."""
    a, e = math.radians(az_deg), math.radians(el_deg)
    pos = distance * np.array([[math.sin(a) * math.cos(e), math.sin(e), -math.cos(a) * math.cos(e)]])
    mixer = Mixer(DistanceModel(), pan="hrtf", gain_step_db=0.0)
    out = []
    for i in range(len(x) // N):
        res = mixer.mix(x[None, i * N : (i + 1) * N], pos, np.zeros((1, 3)), IDENTITY[None], [0, 1], [0])
        assert res.distinct == 1
        out.append(res.buffers[0].copy())
    return np.concatenate(out, axis=1)


def lag_of(left: np.ndarray, right: np.ndarray) -> int:
    """Samples by which `left` lags `right` (positive: left is later)."""
    corr = signal.correlate(left, right, mode="full")
    return int(np.argmax(corr)) - (len(right) - 1)


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return (0.3 * np.random.default_rng(0).standard_normal(8 * N)).astype(np.float32)


@pytest.mark.parametrize("side", [+1, -1])
def test_itd_sign_and_size(noise: np.ndarray, side: int) -> None:
    y = render(90.0 * side, noise)[:, 2 * N :]
    lag = lag_of(y[0], y[1])
    head = SphericalHead()
    a_c = head.radius / head.speed_of_sound
    # Far ear at 170° from its axis, near ear at 10°: ITD = (a/c)·(θ_far − π/2 + cos θ_near).
    itd = a_c * (math.radians(170) - math.pi / 2 + math.cos(math.radians(10))) * RATE
    assert 25 < itd < 32
    assert lag == pytest.approx(side * itd, abs=1.0)  # source on the right: left ear later


def test_front_and_back_have_no_itd(noise: np.ndarray) -> None:
    for az in (0.0, 180.0):
        y = render(az, noise)[:, 2 * N :]
        assert lag_of(y[0], y[1]) == 0
        np.testing.assert_allclose(y[0], y[1], atol=1e-6)


@pytest.mark.parametrize("side", [+1, -1])
def test_level_difference_favours_the_near_ear(noise: np.ndarray, side: int) -> None:
    y = render(60.0 * side, noise)[:, 2 * N :]
    rms = np.sqrt((y**2).mean(axis=1))
    ild_db = 20 * math.log10(rms[1] / rms[0])  # right over left
    assert side * ild_db > 3.0


def test_head_shadow_is_a_high_frequency_effect() -> None:
    head = SphericalHead()
    right = np.array([1.0, 0.0, 0.0])
    low, high = np.abs(head.response(right, np.array([50.0, 16000.0])))
    # Below ω0/2π ≈ 620 Hz the head is transparent; at 16 kHz the near ear gains ~+6 dB, the far ear loses.
    np.testing.assert_allclose(low, head.output_gain, rtol=0.01)
    assert high[1] / head.output_gain > 1.8 and high[0] / head.output_gain < 0.3


@pytest.mark.parametrize(("az", "el"), [(90.0, 0.0), (-37.0, 0.0), (150.0, 20.0)])
def test_mixer_equals_direct_fractional_delay_and_shelf(noise: np.ndarray, az: float, el: float) -> None:
    distance = 3.0
    y = render(az, noise, distance=distance, el_deg=el)
    head = SphericalHead()
    a, e = math.radians(az), math.radians(el)
    direction = np.array([[math.sin(a) * math.cos(e), math.sin(e), -math.cos(a) * math.cos(e)]])
    delay, alpha = head.ear_params(direction)
    tau = head.radius / (2 * head.speed_of_sound)
    g = head.output_gain / distance
    x = noise.astype(np.float64)
    for ear in range(2):
        k = math.floor(float(delay[0, ear]))
        f = delay[0, ear] - k
        xd = np.zeros_like(x)
        xd[k:] += (1 - f) * x[: len(x) - k]
        xd[k + 1 :] += f * x[: len(x) - k - 1]
        b, a_ = signal.bilinear([alpha[0, ear] * tau, 1.0], [tau, 1.0], fs=RATE)
        ref = g * signal.lfilter(b, a_, xd)
        # After the first frame's fade-in the mix is the time-invariant filter, exactly.
        np.testing.assert_allclose(y[ear, N:], ref[N:], atol=2e-6)


def test_moving_source_stays_click_free() -> None:
    tone = (0.5 * np.sin(2 * np.pi * 200 * np.arange(12 * N) / RATE)).astype(np.float32)
    mixer = Mixer(pan="hrtf")
    out = []
    for i in range(12):  # sweep from hard left to hard right, 15° per frame
        a = math.radians(-90 + 15 * i)
        pos = np.array([[2 * math.sin(a), 0.0, -2 * math.cos(a)]])
        res = mixer.mix(tone[None, i * N : (i + 1) * N], pos, np.zeros((1, 3)), IDENTITY[None], [0, 1], [0])
        out.append(res.buffers[0].copy())
    y = np.concatenate(out, axis=1)
    assert np.abs(np.diff(y, n=2, axis=1)).max() < 5e-3  # the tone alone has ≈ 4e-4
    assert np.abs(y[:, N:]).max() > 0.1
