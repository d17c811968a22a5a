"""Compile the numba kernels of `interest/`, `spatial/` and the tick's pose batches before the first tick.

The kernels are compiled on first use (and cached on disk next to their modules). Doing that inside the
first tick would stall the event loop for seconds, so the server runs one tiny tick and one tiny mix at
start-up, before it accepts connections. `python -m world.warmup` does the same from the shell (the test
command runs it once so that no test pays the compile time).
"""

from __future__ import annotations

import time

import numpy as np

from interest import InterestEngine, InterestParams
from interest import warm_up as interest_warm_up
from interest.params import Box, Zone
from spatial import FRAME_SIZE, Mixer
from spatial import warm_up as spatial_warm_up
from world.pose_batch import encode_batches


def warm_kernels() -> float:
    """Run every kernel once on a small and a mid-sized world; returns the seconds it took."""
    t0 = time.perf_counter()
    interest_warm_up()
    spatial_warm_up()
    keys = np.array([1 << 32, 1 << 32 | 2], np.int64)  # one listener's two due peers
    encode_batches(1, keys, np.zeros(2, "<u4"), np.zeros((2, 3), "<i4"), np.zeros((2, 4), "<i2"))
    rng = np.random.default_rng(0)
    for n in (64, 2000):  # small worlds take an all-pairs path, large ones the grid: compile both
        _run_world(rng, n)
    return time.perf_counter() - t0


def _run_world(rng: np.random.Generator, n: int) -> None:
    ids = np.arange(1, n + 1, dtype=np.uint32)
    half = 20.0 if n < 1000 else 150.0
    positions = (rng.random((n, 3), dtype=np.float32) * 2 * half - half).astype(np.float32)
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
    if n > 100:
        return  # the mixer's kernels do not depend on the crowd size
    for pan in ("equal_power", "hrtf"):
        mixer = Mixer(pan=pan)
        frames = rng.standard_normal((n, FRAME_SIZE)).astype(np.float32) * 0.1
        indptr = np.arange(0, n * 4 + 1, 4, dtype=np.int64)
        indices = (np.arange(n * 4) % n).astype(np.int64)
        for _ in range(2):
            mixer.mix(frames, positions, positions, quats, indptr, indices)


if __name__ == "__main__":
    print(f"kernels ready in {warm_kernels():.1f} s")
