"""Distance attenuation, exactly as the OpenAL 1.1 specification (and OpenAL Soft) computes it.

Every model turns a distance array into a gain array in one vectorized pass. The six model
names are the strings a world config uses:

    inverse, inverse_clamped, linear, linear_clamped, exponential, exponential_clamped

``*_clamped`` first clamps the distance to [reference_distance, max_distance]. Then

    inverse      g = ref / (ref + rolloff·(d − ref))
    linear       g = max(0, 1 − rolloff·(d − ref) / (max − ref))
    exponential  g = (d / ref) ^ −rolloff

and the result is clamped to [min_gain, max_gain]. Degenerate parameters behave as OpenAL Soft
1.19 does (its `CalcAttnSourceParams`): a clamped model with max < ref, an inverse denominator
that is not positive, a linear model with max == ref, or an exponential at d == 0 apply no
attenuation at all.

Presets reproduce other engines with the same formulas (see `DistanceModel.preset`):
Godot 4's AudioStreamPlayer3D, Web Audio's PannerNode and Vivox's 3D channel properties.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .jit import kernel

MODELS = (
    "inverse",
    "inverse_clamped",
    "linear",
    "linear_clamped",
    "exponential",
    "exponential_clamped",
)

FLT_MAX = 3.4028234663852886e38  # OpenAL's default AL_MAX_DISTANCE


@dataclass(frozen=True)
class DistanceModel:
    """One distance-attenuation curve.

    `fade_to_max` multiplies by max(0, 1 − d/max_distance), Godot's max_distance fade.
    `silent_beyond_max` makes sources beyond max_distance inaudible (Vivox's audible distance).
    """

    model: str = "inverse_clamped"
    reference_distance: float = 1.0
    rolloff: float = 1.0
    max_distance: float = FLT_MAX
    min_gain: float = 0.0
    max_gain: float = 1.0
    fade_to_max: bool = False
    silent_beyond_max: bool = False

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown distance model {self.model!r}; expected one of {', '.join(MODELS)}")
        numbers = {
            "reference_distance": self.reference_distance,
            "rolloff": self.rolloff,
            "max_distance": self.max_distance,
            "min_gain": self.min_gain,
            "max_gain": self.max_gain,
        }
        for name, value in numbers.items():
            # The same ranges alSourcef accepts (AL_INVALID_VALUE otherwise).
            if not (math.isfinite(value) or (name == "max_distance" and value == math.inf)) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.min_gain > self.max_gain:
            raise ValueError(f"min_gain {self.min_gain} exceeds max_gain {self.max_gain}")
        if (self.fade_to_max or self.silent_beyond_max) and not self.max_distance > 0:
            raise ValueError("fade_to_max / silent_beyond_max need max_distance > 0")

    def gains(self, distance: ArrayLike) -> NDArray[np.float64]:
        """Gain for each distance (any shape), in [min_gain, max_gain]."""
        d = np.asarray(distance, dtype=np.float64)
        flat = np.ascontiguousarray(d.reshape(-1))
        out = np.empty_like(flat)
        _gains_many(flat, self.params(), out)
        return out.reshape(d.shape)

    def params(self) -> NDArray[np.float64]:
        """The curve as the flat array `attenuation` reads (model code first)."""
        base = _BASES.index(self.model.removesuffix("_clamped"))
        return np.array(
            [
                base,
                self.model.endswith("_clamped"),
                self.reference_distance,
                self.rolloff,
                self.max_distance,
                self.min_gain,
                self.max_gain,
                self.fade_to_max,
                self.silent_beyond_max,
            ],
            dtype=np.float64,
        )

    def with_(self, **changes: Any) -> DistanceModel:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    # ---- presets -------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **kwargs: Any) -> DistanceModel:
        """A named curve from another engine, expressed in OpenAL terms.

        Names (keyword arguments in brackets, engine defaults otherwise):

        - ``openal`` [any field]: OpenAL's default, inverse_clamped, ref 1, rolloff 1.
        - ``godot_inverse`` / ``godot_inverse_square`` / ``godot_logarithmic``
          [unit_size=10, max_db=3, max_distance=0]: Godot 4 AudioStreamPlayer3D's attenuation
          models. Godot computes 1/(r+ε), 1/(r²+ε), (r+ε)^−ln10 with r = d/unit_size, caps at
          max_db and fades linearly to zero at max_distance when max_distance > 0. These are
          OpenAL's *unclamped* inverse (ref=unit_size, rolloff 1) and exponential (rolloff 2,
          rolloff ln 10) with max_gain = 10^(max_db/20); ε = 1e-5 is below float precision of the
          result except within 1e-5·unit_size of the listener. At exactly d = 0 OpenAL applies no
          attenuation (gain 1) where Godot reaches max_db.
        - ``webaudio_inverse`` / ``webaudio_linear`` / ``webaudio_exponential``
          [ref_distance=1, max_distance=10000, rolloff_factor=1]: PannerNode's distanceModel.
          inverse and exponential use max(d, ref) and no upper clamp; linear clamps both ends and
          the spec clamps rolloff_factor to [0, 1].
        - ``vivox_inverse`` / ``vivox_linear`` / ``vivox_exponential``
          [conversational_distance=1, audible_distance=32, fade_intensity=1]: Vivox's
          audioFadeModel. conversational distance → reference distance, audible distance →
          max distance (silent beyond it), fade intensity → rolloff.
        """
        key = name.lower()
        if key == "openal":
            return cls(**kwargs)
        if key.startswith("godot_"):
            unit_size = float(kwargs.pop("unit_size", 10.0))
            max_db = float(kwargs.pop("max_db", 3.0))
            max_distance = float(kwargs.pop("max_distance", 0.0))
            _no_more(name, kwargs)
            shape = {
                "godot_inverse": ("inverse", 1.0),
                "godot_inverse_square": ("exponential", 2.0),
                "godot_logarithmic": ("exponential", math.log(10.0)),
            }.get(key)
            if shape is None:
                raise ValueError(f"unknown distance preset {name!r}")
            return cls(
                model=shape[0],
                reference_distance=unit_size,
                rolloff=shape[1],
                max_distance=max_distance if max_distance > 0 else FLT_MAX,
                max_gain=10.0 ** (max_db / 20.0),
                fade_to_max=max_distance > 0,
            )
        if key.startswith("webaudio_"):
            ref = float(kwargs.pop("ref_distance", 1.0))
            dmax = float(kwargs.pop("max_distance", 10000.0))
            rolloff = float(kwargs.pop("rolloff_factor", 1.0))
            _no_more(name, kwargs)
            if key == "webaudio_inverse":
                return cls("inverse_clamped", ref, rolloff, math.inf)
            if key == "webaudio_linear":
                return cls("linear_clamped", ref, min(max(rolloff, 0.0), 1.0), dmax)
            if key == "webaudio_exponential":
                return cls("exponential_clamped", ref, rolloff, math.inf)
            raise ValueError(f"unknown distance preset {name!r}")
        if key.startswith("vivox_"):
            ref = float(kwargs.pop("conversational_distance", 1.0))
            audible = float(kwargs.pop("audible_distance", 32.0))
            rolloff = float(kwargs.pop("fade_intensity", 1.0))
            _no_more(name, kwargs)
            model = {"vivox_inverse": "inverse", "vivox_linear": "linear", "vivox_exponential": "exponential"}
            if key not in model:
                raise ValueError(f"unknown distance preset {name!r}")
            return cls(model[key] + "_clamped", ref, rolloff, audible, silent_beyond_max=True)
        raise ValueError(f"unknown distance preset {name!r}")


_BASES = ("inverse", "linear", "exponential")


@kernel
def attenuation(d: float, p: NDArray[np.float64]) -> float:
    """One distance's gain under the curve `p` (`DistanceModel.params()`); scalar and compiled so
    the mixer calls it inside its per-entry loop. Branch for branch what OpenAL Soft computes."""
    base, clamped, ref, rolloff, dmax = int(p[0]), p[1] != 0.0, p[2], p[3], p[4]
    if clamped and dmax < ref:  # OpenAL Soft: attenuation disabled
        g = 1.0
    else:
        dc = min(max(d, ref), dmax) if clamped else d
        if base == 0:  # inverse
            denom = ref + rolloff * (dc - ref)
            g = ref / denom if ref > 0.0 and denom > 0.0 else 1.0
        elif base == 1:  # linear
            g = 1.0 if dmax == ref else max(0.0, 1.0 - rolloff * (dc - ref) / (dmax - ref))
        else:  # exponential
            g = (dc / ref) ** -rolloff if dc > 0.0 and ref > 0.0 else 1.0
    g = min(max(g, p[5]), p[6])
    if p[7] != 0.0:  # fade_to_max
        g *= max(0.0, 1.0 - d / dmax)
    if p[8] != 0.0 and d > dmax:  # silent_beyond_max
        g = 0.0
    return g


@kernel
def _gains_many(d: NDArray[np.float64], p: NDArray[np.float64], out: NDArray[np.float64]) -> None:
    for i in range(d.shape[0]):
        out[i] = attenuation(d[i], p)


PRESETS = (
    "openal",
    "godot_inverse",
    "godot_inverse_square",
    "godot_logarithmic",
    "webaudio_inverse",
    "webaudio_linear",
    "webaudio_exponential",
    "vivox_inverse",
    "vivox_linear",
    "vivox_exponential",
)


def _no_more(name: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise TypeError(f"preset {name!r} got unexpected arguments: {', '.join(sorted(kwargs))}")
