"""Spatial audio for Hubbub: distance models, pan laws, a spherical-head HRTF, the server-side
crowd mixer, audio levels and active speakers. numpy/scipy plus numba, sans-I/O.

Why numba: the mixer must compute 1000 listeners × 16 sources in ≤ 4 ms of every 20 ms frame
on a 2-core machine. As numpy it needed ~15 ms: a few dozen whole-array passes over the
16,000 entries (each allocating), then scipy's sparse kernel reading every source row twice
(left, right) and more passes over the output (zeroing, ramp, limiter check). Compiled loops do
each step in one pass without temporaries — per entry: geometry, distance, pan, quantization;
per mix: both channels from one read of each source row, summed in cache-resident
accumulators, limiter check fused into the store — and meet the target (see
docs/bench/spatial.md). The pan laws, distance curves and limiter are single compiled scalar
functions that the numpy-facing API (`pan_gains`, `DistanceModel.gains`, `soft_limit`) runs
over arrays too, so there is one implementation of each, tested against OpenAL Soft.
Kernels compile on first use and are cached on disk (`spatial.jit`); `Mixer()` warms them up.
"""

from .distance import MODELS, PRESETS, DistanceModel
from .geometry import quaternion_about_y, rotation_matrices, to_listener_local, unit_directions
from .hrtf import SphericalHead
from .levels import ActiveSpeakerConfig, ActiveSpeakerDetector, LevelMeter, frame_dbov, to_rfc6464
from .limiter import soft_limit
from .mixer import FRAME_SIZE, SAMPLE_RATE, Mixer, MixInputError, MixResult, warm_up
from .pan import PAN_LAWS, centre_gains, pan_gains

__all__ = [
    "FRAME_SIZE",
    "MODELS",
    "PAN_LAWS",
    "PRESETS",
    "SAMPLE_RATE",
    "ActiveSpeakerConfig",
    "ActiveSpeakerDetector",
    "DistanceModel",
    "LevelMeter",
    "MixInputError",
    "MixResult",
    "Mixer",
    "SphericalHead",
    "centre_gains",
    "frame_dbov",
    "pan_gains",
    "quaternion_about_y",
    "rotation_matrices",
    "soft_limit",
    "to_listener_local",
    "to_rfc6464",
    "unit_directions",
    "warm_up",
]
