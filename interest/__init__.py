"""Interest management: who hears, sees and tracks whom, every tick.

Pure computation (no I/O, no clock, no global state beyond the engine's last-tick sets), written
with numpy plus **numba** for the per-listener kernel (`interest.kernels`, `interest.grid`). Why
numba, against the project's "numpy/scipy only" default: the work is a small, branchy top-k per
listener (~200 entries from a few hundred candidates, exact priority order, hysteresis, diffs).
Vectorized numpy has to materialize and sort padded candidate matrices in dozens of passes, which
measured 100x over the tick budget; a compiled loop does it in one pass over memory. numba is a
compute library (LLVM, no services, no I/O), compiled functions are cached on disk
(``cache=True``), and the first tick of a process pays the compile (tens of seconds) or the cache
load (well under a second) once: call `warm_up()` at server start.
"""

from interest.csr import CsrDiff, CsrSets, apply_diff
from interest.engine import CATEGORIES, InterestEngine, TickDiffs, TickResult, warm_up
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
    "warm_up",
]
