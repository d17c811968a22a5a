"""Interest management: who hears, sees and tracks whom, every tick (pure numpy/scipy)."""

from interest.csr import CsrDiff, CsrSets, apply_diff
from interest.engine import CATEGORIES, InterestEngine, TickDiffs, TickResult
from interest.flags import AvatarFlags
from interest.params import Box, Cylinder, InterestParams, PolygonPrism, PositionTier, Zone
from interest.shapes import contains

__all__ = [
    "CATEGORIES",
    "AvatarFlags",
    "Box",
    "CsrDiff",
    "CsrSets",
    "Cylinder",
    "InterestEngine",
    "InterestParams",
    "PolygonPrism",
    "PositionTier",
    "TickDiffs",
    "TickResult",
    "Zone",
    "apply_diff",
    "contains",
]
