"""Compile the numba kernels of `interest/` and `spatial/` before the first tick.

The kernels are compiled on first use (and cached on disk next to their modules). Doing that inside the
first tick would stall the event loop for seconds, so the server runs one tiny tick and one tiny mix at
start-up, before it accepts connections. `python -m world.warmup` does the same from the shell (the test
command runs it once so that no test pays the compile time).
"""

from __future__ import annotations

import time

import numpy as np

from interest import InterestEngine, InterestParams
from interest.params import Box, Zone
from spatial import FRAME_SIZE, Mixer


def warm_kernels() -> float:
    """Run every kernel once on a small world; returns the seconds it took."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    n = 64
    ids = np.arange(1, n + 1, dtype=np.uint32)
    positions = (rng.random((n, 3), dtype=np.float32) * 40.0 - 20.0).astype(np.float32)
    positions[:, 1] = 0.0
    quats = np.tile(np.array([0, 0, 0, 1], np.float32), (n, 1))
    flags = np.ones(n, np.uint8)
    levels = rng.random(n).astype(np.float32)
    stage = Zone("stage", "stage", Box((-2, -1, -2), (2, 3, 2)), audience=Box((-20, -1, -20), (20, 3, 20)))
    for params in (InterestParams(), InterestParams(zones=(stage,))):
        engine = InterestEngine(params)
        for _ in range(2):  # the second tick exercises hysteresis and diffs
            engine.tick(ids, positions, quats, flags, levels)
            positions[::10] += 0.5
    for pan in ("equal_power", "hrtf"):
        mixer = Mixer(pan=pan)
        frames = rng.standard_normal((n, FRAME_SIZE)).astype(np.float32) * 0.1
        indptr = np.arange(0, n * 4 + 1, 4, dtype=np.int64)
        indices = (np.arange(n * 4) % n).astype(np.int64)
        for _ in range(2):
            mixer.mix(frames, positions, positions, quats, indptr, indices)
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(f"kernels ready in {warm_kernels():.1f} s")
