"""A spherical-head HRTF (Brown & Duda 1998), built from first principles: no measured data.

Each ear hears the source

  * delayed by the extra path around a rigid sphere (interaural time difference):
      T(θ) = −(a/c)·cos θ  for θ < 90°,   (a/c)·(θ − π/2)  for θ ≥ 90°
    where θ is the angle between the source direction and the ear's axis, shifted by a/c so no
    delay is negative (the whole binaural mix is a/c ≈ 0.26 ms late);
  * through the head-shadow shelf  H(s) = (1 + α(θ)·s/2ω₀) / (1 + s/2ω₀),  ω₀ = c/a,
      α(θ) = (1 + α_min/2) + (1 − α_min/2)·cos(π·θ/θ_min),   α_min = 0.1, θ_min = 150°:
    +6 dB of high frequencies at the ear facing the source, −20 dB at 150° from it.

The trick that keeps it cheap: H = α + (1 − α)·LP(s) with one *fixed* low-pass
LP = 1/(1 + s/2ω₀). So every source is low-passed once (scipy.signal.lfilter, state per
source), and every (listener, source, ear) becomes four taps on two per-source signals: the
dry x and low-passed x at the two integer delays around the fractional ITD (linear
interpolation). No per-pair filter state exists, so a mix is again a sparse sum.

Ears sit at ±100° azimuth on the horizontal plane (Brown & Duda's choice), i.e. slightly behind
the head's centre line: listener-local (±sin 100°, 0, −cos 100°).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import signal


@dataclass(frozen=True)
class SphericalHead:
    radius: float = 0.0875  # metres, an average adult head
    speed_of_sound: float = 343.0
    sample_rate: int = 48000
    ear_azimuth_deg: float = 100.0
    alpha_min: float = 0.1
    theta_min_deg: float = 150.0
    # Overall level: 1/√2 per ear makes a frontal source's low frequencies carry the same power as
    # the equal-power pan law's centre.
    output_gain: float = 1.0 / math.sqrt(2.0)

    @property
    def ear_axes(self) -> NDArray[np.float64]:
        """(2, 3): left ear, right ear, listener-local unit vectors."""
        a = math.radians(self.ear_azimuth_deg)
        return np.array([[-math.sin(a), 0.0, -math.cos(a)], [math.sin(a), 0.0, -math.cos(a)]])

    @property
    def max_delay_samples(self) -> int:
        """Largest delay (θ = 180°) rounded up, plus one sample for the interpolation tap."""
        t = (self.radius / self.speed_of_sound) * (1.0 + math.pi / 2)
        return math.ceil(t * self.sample_rate) + 1

    def lowpass(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Digital (b, a) of LP(s) = 1/(1 + s/2ω₀), by the bilinear transform."""
        tau = self.radius / (2.0 * self.speed_of_sound)
        b, a = signal.bilinear([1.0], [tau, 1.0], fs=self.sample_rate)
        return np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64)

    def ear_params(self, directions: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Unit directions (N, 3) → (delay in samples (N, 2), shelf α (N, 2)); column 0 = left ear."""
        cos_t = np.clip(np.asarray(directions, dtype=np.float64) @ self.ear_axes.T, -1.0, 1.0)
        theta = np.arccos(cos_t)
        a_c = self.radius / self.speed_of_sound
        t = np.where(theta < np.pi / 2, -a_c * cos_t, a_c * (theta - np.pi / 2)) + a_c
        theta_min = math.radians(self.theta_min_deg)
        alpha = (1 + self.alpha_min / 2) + (1 - self.alpha_min / 2) * np.cos(theta / theta_min * np.pi)
        return t * self.sample_rate, alpha

    def response(
        self, direction: NDArray[np.float64], freqs_hz: NDArray[np.float64]
    ) -> NDArray[np.complex128]:
        """Analytic (continuous-time) response (len(freqs), 2) of both ears, for checks and plots."""
        delay, alpha = self.ear_params(np.asarray(direction, dtype=np.float64).reshape(1, 3))
        w = 2 * np.pi * np.asarray(freqs_hz, dtype=np.float64)[:, None]
        w0 = self.speed_of_sound / self.radius
        shelf = (1 + 1j * alpha * w / (2 * w0)) / (1 + 1j * w / (2 * w0))
        return self.output_gain * shelf * np.exp(-1j * w * delay / self.sample_rate)


def ear_taps(
    head: SphericalHead, directions: NDArray[np.float64], gains: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Per source direction and gain, the taps that render it at both ears.

    Returns (shift (N, 2), coef (N, 2, 4)): for ear e the ear signal is
        c0·x[n−k] + c1·x[n−k−1] + c2·lp[n−k] + c3·lp[n−k−1]     with k = shift[:, e].
    """
    delay, alpha = head.ear_params(directions)
    k = np.floor(delay).astype(np.int64)
    frac = delay - k
    g = (np.asarray(gains, dtype=np.float64) * head.output_gain)[:, None]
    coef = np.stack(
        [g * (1 - frac) * alpha, g * frac * alpha, g * (1 - frac) * (1 - alpha), g * frac * (1 - alpha)],
        axis=-1,
    )
    return k, coef
