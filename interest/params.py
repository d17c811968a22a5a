"""Plain, immutable parameters of the interest engine.

`world/config.py` validates the TOML with pydantic and converts it into these dataclasses, so that
`interest/` stays free of I/O and of the config library: a test can build an `InterestParams` by hand.

Coordinates: metres, Y up (Godot's convention). The ground plane is X-Z.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ZoneKind = Literal["stage", "private", "meeting"]
StageDelivery = Literal["forward", "mix"]


@dataclass(frozen=True)
class Box:
    """Axis-aligned box."""

    min: tuple[float, float, float]
    max: tuple[float, float, float]


@dataclass(frozen=True)
class Cylinder:
    """Vertical cylinder: a disc of `radius` around (x, z) = `center`, from `y_min` to `y_max`."""

    center: tuple[float, float]
    radius: float
    y_min: float = -1e9
    y_max: float = 1e9


@dataclass(frozen=True)
class PolygonPrism:
    """A simple polygon in the X-Z plane (vertices in order), extruded from `y_min` to `y_max`."""

    points: tuple[tuple[float, float], ...]
    y_min: float = -1e9
    y_max: float = 1e9


Shape = Box | Cylinder | PolygonPrism


@dataclass(frozen=True)
class Zone:
    """A region with hearing rules.

    - ``stage``: publishers inside `shape` are heard by every listener inside `audience`
      regardless of distance, delivered as `delivery` ("forward" or "mix").
    - ``private``: audio inside never leaves and audio outside never enters, unless `open`.
    - ``meeting``: every member hears every other member at full level (no attenuation).
    """

    name: str
    kind: ZoneKind
    shape: Shape
    audience: Shape | None = None
    delivery: StageDelivery = "forward"
    open: bool = False


@dataclass(frozen=True)
class PositionTier:
    """Avatars within `distance` metres (and beyond the previous tier) get poses at `rate_hz`."""

    distance: float
    rate_hz: float


@dataclass(frozen=True)
class InterestParams:
    forward_radius: float = 10.0
    hearing_radius: float = 40.0
    max_forwarded: int = 8
    # Cap on the server-mixed bed per listener (nearest first): bounds mixer cost in dense crowds.
    max_mixed: int = 64
    video_radius: float = 15.0
    video_max: int = 4
    position_radius: float = 60.0
    # Cap on position peers per listener (nearest first), like Archipelago's max peers per island.
    position_max: int = 128
    position_tiers: tuple[PositionTier, ...] = (
        PositionTier(10.0, 20.0),
        PositionTier(30.0, 10.0),
        PositionTier(60.0, 2.0),
    )
    # Enter a set at r, leave it at r * (1 + hysteresis).
    hysteresis: float = 0.1
    # A source is a *current speaker* when its speaking level (smoothed linear level, 0..1) is at
    # least this; speakers win forwarded slots over nearer silent publishers.
    speaking_threshold: float = 0.05
    zones: tuple[Zone, ...] = field(default_factory=tuple)
