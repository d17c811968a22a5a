"""Spatial audio for Hubbub: distance models, pan laws, a spherical-head HRTF, the server-side
crowd mixer, audio levels and active speakers. Pure numpy/scipy, sans-I/O."""

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
