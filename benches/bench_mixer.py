"""Mixer cost per 20 ms frame (960 samples at 48 kHz) on realistic crowds.

A 2000-speaker crowd stands on a 200 m × 200 m plane; each listener mixes the 16 nearest
speakers (never themselves: the first 2000 listeners are the speakers). Target on the 2-core CI
machine: 1000 listeners × 16 ≤ 4 ms per frame. Run: ``pytest benches/bench_mixer.py``
(``--benchmark-disable`` runs each case once, as CI does).

The mixer's numba kernels compile (or load from the on-disk cache) when the first `Mixer` is
built, and every case mixes one frame before it is timed, so no case measures compilation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

from spatial import DistanceModel, Mixer, quaternion_about_y

N = 960
PER_LISTENER = 16
SIDE = 200.0


def crowd(listeners: int, sources: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    spos = np.c_[rng.uniform(0, SIDE, sources), np.full(sources, 1.7), rng.uniform(0, SIDE, sources)]
    extra = max(0, listeners - sources)
    lpos = np.vstack(
        [
            spos[: min(listeners, sources)],
            np.c_[rng.uniform(0, SIDE, extra), np.full(extra, 1.7), rng.uniform(0, SIDE, extra)],
        ]
    )
    quats = quaternion_about_y(rng.uniform(-math.pi, math.pi, listeners))
    own = np.where(np.arange(listeners) < sources, np.arange(listeners), -1)
    _, nearest = cKDTree(spos).query(lpos, k=PER_LISTENER + 1)
    rows = [np.sort(r[r != o][:PER_LISTENER]) for r, o in zip(nearest, own, strict=True)]
    indptr = np.r_[0, np.cumsum([len(r) for r in rows])]
    frames = (0.1 * rng.standard_normal((sources, N))).astype(np.float32)
    return frames, spos, lpos, quats, indptr, np.concatenate(rows), own


def model() -> DistanceModel:
    return DistanceModel("inverse_clamped", reference_distance=1.0, rolloff=1.0, max_distance=40.0)


@pytest.mark.parametrize("sources", [2000])
@pytest.mark.parametrize("listeners", [100, 1000, 5000])
def bench_mix_crowd_walking(benchmark, listeners: int, sources: int) -> None:
    """Everybody walks (1.4 m/s): gains drift, a few cross a 0.5 dB step and ramp each frame."""
    frames, spos, lpos, quats, indptr, indices, own = crowd(listeners, sources)
    mixer = Mixer(model(), "equal_power")
    rng = np.random.default_rng(1)
    heading = rng.uniform(-math.pi, math.pi, sources)
    step = 1.4 * 0.02 * np.c_[np.sin(heading), np.zeros(sources), -np.cos(heading)]
    state = {"t": 0}

    def frame():
        state["t"] += 1
        moved = spos + state["t"] * step
        lmoved = lpos.copy()
        lmoved[: min(listeners, sources)] = moved[: min(listeners, sources)]
        return mixer.mix(frames, moved, lmoved, quats, indptr, indices, own_source=own)

    frame()
    res = benchmark(frame)
    benchmark.extra_info.update(distinct_mixes=res.distinct, entries=int(indptr[-1]))
    assert res.distinct == listeners and np.abs(res.buffers).max() <= 1.0


@pytest.mark.parametrize("sources", [2000])
@pytest.mark.parametrize("listeners", [1000])
def bench_mix_crowd_all_ramping(benchmark, listeners: int, sources: int) -> None:
    """Worst case: every gain of every mix changes every frame (two sparse products per frame)."""
    frames, spos, lpos, quats, indptr, indices, own = crowd(listeners, sources)
    mixer = Mixer(model(), "equal_power")
    jitter = [np.random.default_rng(i).normal(0, 0.5, spos.shape) * [1, 0, 1] for i in range(4)]
    state = {"t": 0}

    def frame():
        state["t"] += 1
        return mixer.mix(frames, spos + jitter[state["t"] % 4], lpos, quats, indptr, indices, own_source=own)

    frame()
    res = benchmark(frame)
    benchmark.extra_info.update(distinct_mixes=res.distinct)


@pytest.mark.parametrize("sources", [2000])
@pytest.mark.parametrize("listeners", [5000])
def bench_mix_shared_stage(benchmark, listeners: int, sources: int) -> None:
    """5000 listeners; 4000 of them (the audience) hear only the stage PA, flat."""
    frames, spos, lpos, quats, indptr, indices, own = crowd(listeners, sources)
    audience = np.arange(listeners) >= 1000
    stage = 0
    counts = np.where(audience, 1, np.diff(indptr))
    rows = [
        np.array([stage]) if audience[i] else indices[indptr[i] : indptr[i + 1]] for i in range(listeners)
    ]
    indptr2 = np.r_[0, np.cumsum(counts)]
    indices2 = np.concatenate(rows)
    flat = np.repeat(audience, counts)
    mixer = Mixer(model(), "equal_power")

    def frame():
        return mixer.mix(frames, spos, lpos, quats, indptr2, indices2, flat=flat, own_source=own)

    frame()
    res = benchmark(frame)
    shared = int(np.unique(res.listener_buffer[audience]).size)
    benchmark.extra_info.update(distinct_mixes=res.distinct, audience_buffers=shared)
    assert shared == 1 and res.distinct <= 1001


@pytest.mark.parametrize("sources", [2000])
@pytest.mark.parametrize("listeners", [100])
def bench_mix_hrtf(benchmark, listeners: int, sources: int) -> None:
    """Binaural (spherical-head HRTF) mixes, 16 sources each, everybody walking."""
    frames, spos, lpos, quats, indptr, indices, own = crowd(listeners, sources)
    mixer = Mixer(model(), "hrtf")
    jitter = [np.random.default_rng(i).normal(0, 0.3, spos.shape) * [1, 0, 1] for i in range(4)]
    state = {"t": 0}

    def frame():
        state["t"] += 1
        return mixer.mix(frames, spos + jitter[state["t"] % 4], lpos, quats, indptr, indices, own_source=own)

    frame()
    res = benchmark(frame)
    benchmark.extra_info.update(distinct_mixes=res.distinct, hrtf_listeners=listeners)
    assert res.distinct == listeners


@pytest.mark.parametrize("sources", [2000])
@pytest.mark.parametrize("listeners", [1000])
def bench_mix_kernel_floor(benchmark, listeners: int, sources: int) -> None:
    """scipy's sparse multiply-accumulate alone (no geometry, ramps, sharing or limiter), which the
    pan-law mix used before its compiled kernels and the HRTF path still uses: a fixed yardstick
    to compare the full mix of the same crowd with, within one run on a noisy machine."""
    from spatial.sparse_sum import accumulate

    frames, _, _, _, indptr, indices, _ = crowd(listeners, sources)
    counts = np.diff(indptr)
    # Rows 2l (left) and 2l+1 (right) both take listener l's sources.
    row_counts = np.repeat(counts, 2)
    rows = [indices[indptr[i] : indptr[i + 1]] for i in range(listeners)]
    cols = np.concatenate([np.r_[r, r] for r in rows]).astype(np.int32)
    ptr = np.r_[0, np.cumsum(row_counts)].astype(np.int32)
    data = np.full(len(cols), 0.1, np.float32)
    out = np.zeros((2 * listeners, N), np.float32)

    def kernel():
        out.fill(0.0)
        accumulate(ptr, cols, data, frames.reshape(-1), N, out)

    benchmark(kernel)
    assert np.abs(out).max() > 0
