"""Bot motion patterns: they stay in the world, near their area, and never outrun the speed limit
(so the server never has to correct a bot)."""

from __future__ import annotations

import math

import pytest
from hubbub_client.bots import PATTERNS, Area, Mover

WORLD = {
    "spawn_points": [{"p": [5.0, 0.0, -5.0]}],
    "bounds": {"min": [-20.0, -5.0, -20.0], "max": [20.0, 10.0, 20.0]},
    "zones": [
        {"kind": "stage", "shape": {"type": "box", "min": [-4.0, 0.0, -18.0], "max": [4.0, 3.0, -14.0]}}
    ],
}


@pytest.mark.parametrize("pattern", PATTERNS)
def test_patterns_stay_in_bounds_and_under_the_speed(pattern: str) -> None:
    area = Area.from_world(WORLD, radius=12.0)
    assert area.center == (5.0, -5.0) and area.stage == (0.0, -16.0)
    speed, dt = 1.4, 0.1
    movers = [Mover(pattern, i, 30, area, speed, seed=3) for i in range(30)]
    for m in movers:
        x, z, _ = m.step(0.0)
        for _ in range(600):  # one minute
            nx, nz, yaw = m.step(dt)
            assert math.isfinite(yaw)
            assert -20.0 < nx < 20.0 and -20.0 < nz < 20.0
            # crowd shuffles ±0.3 m around its spot: 0.7 rad/s · 0.3 m ≈ 0.2 m/s; orbit is exactly `speed`.
            assert math.hypot(nx - x, nz - z) <= speed * dt * 1.01 + 1e-9
            x, z = nx, nz
    if pattern == "stage":
        # The audience stands in front of the stage (on its +Z side) and faces it.
        for m in movers[:10]:
            x, z, yaw = m.step(0.0)
            to_stage = (0.0 - x, -16.0 - z)
            facing = (-math.sin(yaw), -math.cos(yaw))  # forward (-Z) rotated by yaw about +Y
            cos = (to_stage[0] * facing[0] + to_stage[1] * facing[1]) / math.hypot(*to_stage)
            assert z > -14.0 and cos > 0.999


def test_unknown_pattern_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown pattern"):
        Mover("teleport", 0, 1, Area(), 1.0, 0)
