"""Vectorized point-in-shape tests: N points against one shape at once."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from interest.params import Box, Cylinder, PolygonPrism, Shape

BoolArray = npt.NDArray[np.bool_]


def contains(shape: Shape, positions: npt.NDArray[np.floating]) -> BoolArray:
    """Which of the (N, 3) `positions` are inside `shape` (boundaries count as inside for boxes and
    cylinders; polygons use the crossing-number rule, so an edge point may fall on either side)."""
    p = np.asarray(positions, dtype=np.float64)
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    if isinstance(shape, Box):
        lo, hi = shape.min, shape.max
        return (
            (x >= lo[0]) & (x <= hi[0]) & (y >= lo[1]) & (y <= hi[1]) & (z >= lo[2]) & (z <= hi[2])
        )
    if isinstance(shape, Cylinder):
        cx, cz = shape.center
        inside = (x - cx) ** 2 + (z - cz) ** 2 <= shape.radius**2
        return inside & (y >= shape.y_min) & (y <= shape.y_max)
    if isinstance(shape, PolygonPrism):
        return _in_polygon(shape.points, x, z) & (y >= shape.y_min) & (y <= shape.y_max)
    raise TypeError(f"unknown shape {shape!r}")


def _in_polygon(points: tuple[tuple[float, float], ...], x: np.ndarray, z: np.ndarray) -> BoolArray:
    """Crossing number in the X-Z plane: a ray towards +X crosses the boundary an odd number of times.

    The loop is over the polygon's edges (a handful), each edge is tested against all points at once.
    """
    inside = np.zeros(x.shape, dtype=bool)
    n = len(points)
    if n < 3:
        return inside
    for i in range(n):
        ax, az = points[i]
        bx, bz = points[(i + 1) % n]
        straddles = (az > z) != (bz > z)
        if az == bz:
            continue  # a horizontal edge never straddles
        cross_x = ax + (z - az) * (bx - ax) / (bz - az)
        inside ^= straddles & (x < cross_x)
    return inside
