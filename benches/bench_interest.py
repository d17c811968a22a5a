"""Interest engine benchmarks: one tick after warm-up, 10% of avatars moved, three crowd shapes.

Scenarios (densities chosen to look like the real thing):

- ``festival``: a 20 m x 10 m stage with 5 performers (a stage zone, audience everywhere) and a crowd
  in front of it whose density falls off with distance r from the stage as 2·exp(-r/L) people/m²
  (2/m² at the barrier; L chosen so the crowd holds N: L = sqrt(N/2π), 40 m for 10k, 126 m for 100k).
  A barrier keeps the audience off the stage and the performers on it.
- ``plaza``: uniform wanderers, one person per 36 m² (a square of side 6·sqrt(N) m).
- ``expo``: booths on a 40 m grid, 40 visitors per booth in a Gaussian blob (σ 4 m), plus 20% of
  people walking the aisles uniformly.

Everybody publishes audio, 5% publish video, 5% are speaking. Each tick 10% of avatars take a
step (σ 0.3 m). Default InterestParams (forward 10 m, hearing 40 m, 8 forwarded, 64 mixed,
position 60 m with 128 peers, video 15 m x 4).

``bench_interest_churn_tick``: the plaza while 0.1% of avatars leave and as many join each tick
(plus the 10% who move), rows renumbered the way the world's table does it. The other scenarios
keep their ids; this one measures what joins and leaves cost.

Compile time is excluded: the engine's numba kernels compile (or load from the on-disk cache) on
the first tick, which `scenario()` runs before anything is measured; ``bench_interest_first_tick``
measures that first tick of a fresh engine (everything added, kernels already loaded) on its own.

The process keeps freed memory (`world.allocator`, as the server does), so ticks do not pay page
faults on their output arrays.

Baseline (``kdtree`` in the name): rebuild a scipy cKDTree and query the `position_max` nearest
within `position_radius` for everybody: the work a straightforward implementation does for the
largest per-listener set, with no caps per category, zones, hysteresis or diffs. ``workers`` is
the query's thread count: 1 (scipy's default) and every core, which is what the engine uses (its
numba kernels run on all threads), so the fair ratio is the one against every core.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numba
import numpy as np
import pytest
from scipy.spatial import cKDTree

from interest import AvatarFlags, Box, InterestEngine, InterestParams, Zone
from world.allocator import keep_freed_memory

keep_freed_memory()  # as `hubbub serve` does: the engine measured as the server runs it

# HUBBUB_BENCH_MAX_AVATARS caps the sizes (CI may skip the 100k worlds: building them and the
# k-d tree baseline take a few seconds each).
SIZES = [n for n in (1000, 10_000, 100_000) if n <= int(os.environ.get("HUBBUB_BENCH_MAX_AVATARS", "100000"))]
SCENARIOS = ["festival", "plaza", "expo"]
STAGE = Zone("main-stage", "stage", Box((-10.0, -1.0, -10.0), (10.0, 4.0, 0.0)))


class Scenario:
    def __init__(self, name: str, n: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.n = n
        pos = np.zeros((n, 3), dtype=np.float32)
        zones: tuple[Zone, ...] = ()
        if name == "festival":
            scale = np.sqrt(n / (2 * np.pi))
            r = rng.gamma(2.0, scale, n) + 0.5
            a = rng.uniform(0, np.pi, n)
            pos[:, 0] = r * np.cos(a)
            pos[:, 2] = r * np.sin(a)
            pos[:5, 0] = np.linspace(-8, 8, 5)  # performers on stage
            pos[:5, 2] = -5.0
            zones = (STAGE,)
        elif name == "plaza":
            side = 6.0 * np.sqrt(n)
            pos[:, [0, 2]] = rng.uniform(0, side, (n, 2))
        elif name == "expo":
            booths = max(1, int(0.8 * n / 40))
            g = int(np.ceil(np.sqrt(booths)))
            centres = np.stack(np.meshgrid(np.arange(g), np.arange(g)), -1).reshape(-1, 2)[:booths] * 40.0
            k = int(0.8 * n)
            pos[:k, [0, 2]] = centres[rng.integers(0, booths, k)] + rng.normal(0, 4.0, (k, 2))
            pos[k:, [0, 2]] = rng.uniform(-20, g * 40.0, (n - k, 2))
        else:
            raise ValueError(name)
        self.stage = name == "festival"
        if self.stage:
            np.maximum(pos[5:, 2], 0.5, out=pos[5:, 2])
        self.pos = pos
        self.ids = rng.permutation(n).astype(np.uint32)
        self.ori = np.zeros((n, 4), np.float32)
        self.ori[:, 3] = 1
        flags = np.full(n, AvatarFlags.PUBLISH_AUDIO, dtype=np.int64)
        flags[rng.random(n) < 0.05] |= AvatarFlags.PUBLISH_VIDEO
        flags[:5] |= AvatarFlags.PUBLISH_VIDEO
        self.flags = flags
        self.levels = np.where(rng.random(n) < 0.05, 0.5, 0.0).astype(np.float32)
        self.levels[:5] = 0.8
        self.params = InterestParams(zones=zones)
        self.engine = InterestEngine(self.params)

    def move(self) -> None:
        movers = self.rng.random(self.n) < 0.10
        step = self.rng.normal(0, 0.3, (int(movers.sum()), 2)).astype(np.float32)
        self.pos[np.nonzero(movers)[0][:, None], [0, 2]] += step
        if self.stage:
            # The barrier: performers stay on the stage, the audience in front of it (z >= 0), so
            # the scenario stays the one described however many ticks run. Without it the crowd
            # seeps onto the stage, and every listener hears every newcomer there.
            self.pos[:5, 0] = np.clip(self.pos[:5, 0], -9.5, 9.5)
            self.pos[:5, 2] = np.clip(self.pos[:5, 2], -9.5, -0.5)
            np.maximum(self.pos[5:, 2], 0.5, out=self.pos[5:, 2])

    def churn(self, k: int) -> None:
        """k avatars leave and k join, the way `world.state` keeps its table: a leaver's row takes the
        last row, joiners are appended (next to somebody, with a new id)."""
        n = self.n
        for r in self.rng.choice(n, k, replace=False).tolist():
            last = n - 1
            r = min(r, last)  # (an earlier leaver's row may have been the last)
            for a in (self.ids, self.pos, self.ori, self.flags, self.levels):
                a[r] = a[last]
            n -= 1
        near = self.rng.integers(0, n, k)
        pos = self.pos[near] + np.float32(2.0) * self.rng.normal(0, 1, (k, 3)).astype(np.float32) * [1, 0, 1]
        new_ids = np.arange(k, dtype=self.ids.dtype) + self.ids.max() + 1
        self.ids = np.concatenate([self.ids[:n], new_ids])
        self.pos = np.concatenate([self.pos[:n], pos.astype(np.float32)])
        self.ori = np.concatenate([self.ori[:n], self.ori[near]])
        self.flags = np.concatenate([self.flags[:n], self.flags[near]])
        self.levels = np.concatenate([self.levels[:n], np.zeros(k, np.float32)])

    def tick(self) -> object:
        return self.engine.tick(self.ids, self.pos, self.ori, self.flags, self.levels)

    def kdtree(self, workers: int = 1) -> object:
        tree = cKDTree(self.pos)
        k, radius = self.params.position_max + 1, self.params.position_radius
        return tree.query(self.pos, k=k, distance_upper_bound=radius, workers=workers)


_cache: dict[tuple[str, int], Scenario] = {}


def scenario(name: str, n: int) -> Scenario:
    if (name, n) not in _cache:
        _cache.clear()  # keep one world in memory at a time
        s = Scenario(name, n)
        s.tick()  # warm-up: the first tick adds everything
        if n < 100_000:
            s.move()
            s.tick()
        _cache[(name, n)] = s
    return _cache[(name, n)]


def rounds(n: int) -> int:
    return {1000: 10, 10_000: 3, 100_000: 1}[n]


def _run(benchmark: Callable[..., object], s: Scenario, fn: Callable[[], object], n: int) -> None:
    benchmark.pedantic(fn, setup=s.move, rounds=rounds(n), iterations=1)  # type: ignore[attr-defined]


@pytest.mark.parametrize("avatars", SIZES)
@pytest.mark.parametrize("world", SCENARIOS)
def bench_interest_tick(benchmark: Callable[..., object], world: str, avatars: int) -> None:
    s = scenario(world, avatars)
    _run(benchmark, s, s.tick, avatars)
    assert s.engine.params.position_max == 128


@pytest.mark.parametrize("avatars", SIZES)
def bench_interest_churn_tick(benchmark: Callable[..., object], avatars: int) -> None:
    """The plaza while people come and go: each tick 10% move, 0.1% leave and as many join. Rows
    are renumbered (a leaver's row takes the last one) and the id ranks that break distance ties
    shift, so the engine remaps its rows and separators every such tick."""
    s = Scenario("plaza", avatars, seed=8)  # its own world: churn changes it
    k = max(1, avatars // 1000)

    def step() -> None:
        s.move()
        s.churn(k)

    for _ in range(2):
        step()
        s.tick()
    benchmark.pedantic(s.tick, setup=step, rounds=rounds(avatars), iterations=1)  # type: ignore[attr-defined]
    assert len(s.ids) == avatars


@pytest.mark.parametrize("avatars", [n for n in SIZES if n <= 10_000])
def bench_interest_first_tick(benchmark: Callable[..., object], avatars: int) -> None:
    """A fresh engine's first tick: every entry is "added" (the join, or a restart)."""
    s = scenario("plaza", avatars)

    def fresh() -> None:
        s.engine.reset()

    benchmark.pedantic(s.tick, setup=fresh, rounds=rounds(avatars), iterations=1)  # type: ignore[attr-defined]


@pytest.mark.parametrize("workers", [1, numba.get_num_threads()])
@pytest.mark.parametrize("avatars", SIZES)
@pytest.mark.parametrize("world", SCENARIOS)
def bench_kdtree_baseline(benchmark: Callable[..., object], world: str, avatars: int, workers: int) -> None:
    s = scenario(world, avatars)
    _run(benchmark, s, lambda: s.kdtree(workers), avatars)
