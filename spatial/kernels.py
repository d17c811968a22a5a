"""The mixer's compiled per-frame passes (the order `Mixer.mix` runs them in).

1. `entry_gains`: one loop over every (listener, source) entry — mix-minus, listener-local
   geometry, distance gain, pan law, quantization, state key — with no temporary arrays.
2. `listener_hashes` and `group_listeners`: which listeners hear exactly the same mix. The hash
   only proposes; `group_listeners` compares every member with its representative entry by
   entry, so a collision can never leak one listener's audio to another.
3. `mix_buffers`: one stereo buffer per distinct mix, each source row read once per entry, both
   channels accumulated in small cache-resident arrays, gains ramped, then soft-limited while
   the buffer is still in cache.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .distance import attenuation
from .jit import kernel, sample_kernel
from .limiter import limit_in_place, over_knee
from .pan import pan_pair


def gain_grid(
    silence_db: float, step_db: float, max_gain: float
) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
    """The quantization grid `quantize` reads: (silence gain, steps per octave, first step) and
    the table of dequantized gains, one per step from just below the silence floor up to
    `max_gain` (step_db 0: no grid, exact float32 gains)."""
    silence_gain = 10.0 ** (silence_db / 20.0)
    if step_db == 0:
        return np.array([silence_gain, 0.0, 0.0]), np.zeros(1, np.float32)
    first = math.floor(silence_db / step_db) - 1
    # An entry's gain is a pan gain (<= 1) times a distance gain (<= max_gain); 6 dB of margin.
    last = math.ceil((20.0 * math.log10(max(max_gain, 1.0)) + 6.0) / step_db)
    steps = np.arange(first, last + 1)
    table = (10.0 ** (steps * step_db / 20.0)).astype(np.float32)
    return np.array([silence_gain, 20.0 * math.log10(2.0) / step_db, first]), table


@kernel
def quantize(g: float, grid: NDArray[np.float64], table: NDArray[np.float32]) -> float:
    """A gain snapped to the dB grid (`gain_grid`); quieter than the silence floor → exactly 0.

    Equal mixes are detected by comparing quantized gains, so walking a little changes nothing.
    (log2 rather than log10: the same grid, at half the cost.)
    """
    if not g >= grid[0]:
        return 0.0
    if grid[1] == 0.0:
        return float(np.float32(g))
    i = math.floor(math.log2(g) * grid[1] + 0.5) - int(grid[2])
    return table[min(max(i, 0), table.shape[0] - 1)]


@kernel
def quantize_many(
    g: NDArray[np.float64], grid: NDArray[np.float64], table: NDArray[np.float32]
) -> NDArray[np.float32]:
    out = np.empty(g.shape[0], np.float32)
    for i in range(g.shape[0]):
        out[i] = quantize(g[i], grid, table)
    return out


@kernel
def entry_gains(
    spos: NDArray[np.float64],
    lpos: NDArray[np.float64],
    rot: NDArray[np.float64],
    indptr: NDArray[np.int64],
    src: NDArray[np.int64],
    flat: NDArray[np.bool_],
    own: NDArray[np.int64],
    sid: NDArray[np.uint64],
    lid: NDArray[np.uint64],
    law: int,
    curve: NDArray[np.float64],
    grid: NDArray[np.float64],
    table: NDArray[np.float32],
    out_ptr: NDArray[np.int64],
    e_src: NDArray[np.int64],
    keys: NDArray[np.uint64],
    direction: NDArray[np.float64],
    gain: NDArray[np.float64],
    g: NDArray[np.float32],
) -> int:
    """Every entry except a listener's own source, with its geometry and quantized pan gains.

    Fills (listeners + 1 and at least len(src) long, reused between frames): out_ptr, the CSR
    row pointer of the kept entries; per kept entry its source row, its state key (listener
    id << 32 | source id), listener-local unit direction (E, 3), distance gain, and quantized
    (left, right) gains (E, 2). Returns E. A flat entry is straight ahead at gain 1, and so is
    a source at the listener's own position (at its distance gain).
    """
    n_lis = lpos.shape[0]
    out_ptr[0] = 0
    k = 0
    for lis in range(n_lis):
        px, py, pz = lpos[lis, 0], lpos[lis, 1], lpos[lis, 2]
        r = rot[lis]
        for e in range(indptr[lis], indptr[lis + 1]):
            s = src[e]
            if s == own[lis]:
                continue
            dx, dy, dz, dist_gain = 0.0, 0.0, -1.0, 1.0
            if not flat[e]:
                ox, oy, oz = spos[s, 0] - px, spos[s, 1] - py, spos[s, 2] - pz
                # local = Rᵀ·offset (R maps listener-local to world)
                lx = r[0, 0] * ox + r[1, 0] * oy + r[2, 0] * oz
                ly = r[0, 1] * ox + r[1, 1] * oy + r[2, 1] * oz
                lz = r[0, 2] * ox + r[1, 2] * oy + r[2, 2] * oz
                dist = math.sqrt(lx * lx + ly * ly + lz * lz)
                if dist > 1e-9:
                    dx, dy, dz = lx / dist, ly / dist, lz / dist
                dist_gain = attenuation(dist, curve)
            pl, pr = pan_pair(law, dx, dy, dz)
            e_src[k] = s
            keys[k] = (lid[lis] << np.uint64(32)) | sid[s]
            direction[k, 0], direction[k, 1], direction[k, 2] = dx, dy, dz
            gain[k] = dist_gain
            g[k, 0] = pl * dist_gain
            g[k, 1] = pr * dist_gain
            k += 1
        out_ptr[lis + 1] = k
    for e in range(k):  # a loop of its own: measurably faster than quantizing inline
        g[e, 0] = quantize(g[e, 0], grid, table)
        g[e, 1] = quantize(g[e, 1], grid, table)
    return k


@kernel
def locality_order(positions: NDArray[np.float64]) -> NDArray[np.int64]:
    """Rows sorted along a Z-order (Morton) curve over the ground plane (X, Z): rows that are
    near each other in the world come out near each other in the order."""
    n = positions.shape[0]
    if n == 0:
        return np.zeros(0, np.int64)
    lo_x, hi_x = positions[:, 0].min(), positions[:, 0].max()
    lo_z, hi_z = positions[:, 2].min(), positions[:, 2].max()
    scale = 1023.0 / max(hi_x - lo_x, hi_z - lo_z, 1e-9)  # a 1024 × 1024 grid over the crowd
    code = np.empty(n, np.int64)
    for i in range(n):
        cx = int((positions[i, 0] - lo_x) * scale)
        cz = int((positions[i, 2] - lo_z) * scale)
        c = 0
        for bit in range(10):
            c |= ((cx >> bit) & 1) << (2 * bit) | ((cz >> bit) & 1) << (2 * bit + 1)
        code[i] = c
    return np.argsort(code)


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@kernel
def _mix64(z: np.uint64) -> np.uint64:
    """splitmix64's finaliser: a cheap, well-spread 64-bit hash (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@kernel
def audible_entries(
    src: NDArray[np.int64], g_old: NDArray[np.float32], g_new: NDArray[np.float32], present: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """Entries that contribute a sample: the source's frame arrived and a gain is not zero."""
    out = np.empty(src.shape[0], np.bool_)
    for e in range(src.shape[0]):
        out[e] = present[src[e]] and (
            g_old[e, 0] != 0 or g_old[e, 1] != 0 or g_new[e, 0] != 0 or g_new[e, 1] != 0
        )
    return out


@kernel
def listener_hashes(
    indptr: NDArray[np.int64],
    src: NDArray[np.int64],
    bits_old: NDArray[np.uint32],
    bits_new: NDArray[np.uint32],
    audible: NDArray[np.bool_],
) -> NDArray[np.uint64]:
    """Per listener, a hash of its audible (source, old gains, new gains) entries, in order.

    bits_old / bits_new are the float32 gains viewed as uint32 (E, 2).
    """
    n_lis = indptr.shape[0] - 1
    out = np.empty(n_lis, np.uint64)
    for lis in range(n_lis):
        h = _GOLDEN
        for e in range(indptr[lis], indptr[lis + 1]):
            if audible[e]:
                old = np.uint64(bits_old[e, 0]) | (np.uint64(bits_old[e, 1]) << np.uint64(32))
                new = np.uint64(bits_new[e, 0]) | (np.uint64(bits_new[e, 1]) << np.uint64(32))
                # One finaliser per entry; the chain through h keeps the order significant.
                h = _mix64(h * _M2 + (np.uint64(src[e]) ^ old * _GOLDEN ^ new * _M1))
        out[lis] = h
    return out


@kernel
def _same_mix(
    a: int,
    b: int,
    indptr: NDArray[np.int64],
    src: NDArray[np.int64],
    g_old: NDArray[np.float32],
    g_new: NDArray[np.float32],
    audible: NDArray[np.bool_],
) -> bool:
    """Do listeners a and b mix exactly the same audible entries (same order, same gains)?"""
    i, i_end = indptr[a], indptr[a + 1]
    j, j_end = indptr[b], indptr[b + 1]
    while True:
        while i < i_end and not audible[i]:
            i += 1
        while j < j_end and not audible[j]:
            j += 1
        if i == i_end or j == j_end:
            return i == i_end and j == j_end
        if (
            src[i] != src[j]
            or g_old[i, 0] != g_old[j, 0]
            or g_old[i, 1] != g_old[j, 1]
            or g_new[i, 0] != g_new[j, 0]
            or g_new[i, 1] != g_new[j, 1]
        ):
            return False
        i += 1
        j += 1


@kernel
def group_listeners(
    order: NDArray[np.int64],
    hashes: NDArray[np.uint64],
    indptr: NDArray[np.int64],
    src: NDArray[np.int64],
    g_old: NDArray[np.float32],
    g_new: NDArray[np.float32],
    audible: NDArray[np.bool_],
    max_tries: int,
) -> NDArray[np.int64]:
    """The representative (lowest row with the same mix) of each listener in `order`, else −1.

    `order` lists the listeners to group, sorted by hash and, within a hash, by row. Each is
    verified against up to `max_tries` representatives of its hash; one that matches none (a
    collision, or too many different mixes under one hash) becomes a representative itself.
    """
    rep = np.full(indptr.shape[0] - 1, -1, np.int64)
    reps_in_run = np.empty(max_tries, np.int64)
    i = 0
    while i < order.shape[0]:
        j = i
        n_reps = 0
        while j < order.shape[0] and hashes[order[j]] == hashes[order[i]]:
            lis = order[j]
            rep[lis] = lis
            for t in range(n_reps):
                if _same_mix(lis, reps_in_run[t], indptr, src, g_old, g_new, audible):
                    rep[lis] = reps_in_run[t]
                    break
            if rep[lis] == lis and n_reps < max_tries:
                reps_in_run[n_reps] = lis
                n_reps += 1
            j += 1
        i = j
    return rep


@sample_kernel
def mix_buffers(
    out: NDArray[np.float32],
    reps: NDArray[np.int64],
    order: NDArray[np.int64],
    indptr: NDArray[np.int64],
    src: NDArray[np.int64],
    g_old: NDArray[np.float32],
    g_new: NDArray[np.float32],
    audible: NDArray[np.bool_],
    x: NDArray[np.float32],
    ramp: NDArray[np.float32],
    threshold: float,
) -> int:
    """out[b] (2, N) = listener reps[b]'s audible entries, ramped old → new gain, soft-limited.

    Buffers are computed in `order` (`locality_order`: neighbours hear mostly the same sources,
    so those rows are still in cache). Returns how many buffers needed the limiter.

    Written for LLVM's vectorizer and the cache: a buffer is summed in two small accumulators
    (they stay in L1 and cannot alias the sources), four sources per pass (one accumulator store
    per four multiply-adds: the store port, not arithmetic, limits a one-source-per-pass loop),
    the ramp is read from an array (an int → float conversion would not vectorize), and the
    store to `out` is a hand-written loop that also sums the limiter's excess (numba's slice
    assignment is a slow generic copy).
    """
    n = x.shape[1]
    acc_l = np.empty(n, np.float32)
    acc_r = np.empty(n, np.float32)
    silent = np.zeros(n, np.float32)  # pads the last group of four
    zero = np.float32(0.0)
    knee = np.float32(threshold)
    most = 0
    for b in range(reps.shape[0]):
        most = max(most, indptr[reps[b] + 1] - indptr[reps[b]])
    todo = np.empty(most, np.int64)
    limited = 0
    for b in order:
        lis = reps[b]
        # Audible entries, steady gains first: a group of four takes the cheaper loop unless
        # one of its entries ramps.
        steady = 0
        for e in range(indptr[lis], indptr[lis + 1]):
            if audible[e] and g_old[e, 0] == g_new[e, 0] and g_old[e, 1] == g_new[e, 1]:
                todo[steady] = e
                steady += 1
        count = steady
        for e in range(indptr[lis], indptr[lis + 1]):
            if audible[e] and (g_old[e, 0] != g_new[e, 0] or g_old[e, 1] != g_new[e, 1]):
                todo[count] = e
                count += 1
        for i in range(n):
            acc_l[i] = zero
            acc_r[i] = zero
        for k in range(0, count, 4):
            # acc += entries todo[k : k+4]; a short last group reads the silent row at gain 0.
            x0, x1, x2, x3 = silent, silent, silent, silent
            l0 = l1 = l2 = l3 = r0 = r1 = r2 = r3 = zero  # old gains
            dl0 = dl1 = dl2 = dl3 = dr0 = dr1 = dr2 = dr3 = zero  # new − old
            e = todo[k]
            x0, l0, r0 = x[src[e]], g_old[e, 0], g_old[e, 1]
            dl0, dr0 = g_new[e, 0] - l0, g_new[e, 1] - r0
            if k + 1 < count:
                e = todo[k + 1]
                x1, l1, r1 = x[src[e]], g_old[e, 0], g_old[e, 1]
                dl1, dr1 = g_new[e, 0] - l1, g_new[e, 1] - r1
            if k + 2 < count:
                e = todo[k + 2]
                x2, l2, r2 = x[src[e]], g_old[e, 0], g_old[e, 1]
                dl2, dr2 = g_new[e, 0] - l2, g_new[e, 1] - r2
            if k + 3 < count:
                e = todo[k + 3]
                x3, l3, r3 = x[src[e]], g_old[e, 0], g_old[e, 1]
                dl3, dr3 = g_new[e, 0] - l3, g_new[e, 1] - r3
            if min(k + 4, count) <= steady:
                for i in range(n):
                    v0, v1, v2, v3 = x0[i], x1[i], x2[i], x3[i]
                    acc_l[i] += l0 * v0 + l1 * v1 + l2 * v2 + l3 * v3
                    acc_r[i] += r0 * v0 + r1 * v1 + r2 * v2 + r3 * v3
            else:  # linear ramp across the frame, t = 1/N … 1: click-free
                for i in range(n):
                    t = ramp[i]
                    v0, v1, v2, v3 = x0[i], x1[i], x2[i], x3[i]
                    acc_l[i] += (l0 + t * dl0) * v0 + (l1 + t * dl1) * v1 + (l2 + t * dl2) * v2 + (
                        l3 + t * dl3
                    ) * v3
                    acc_r[i] += (r0 + t * dr0) * v0 + (r1 + t * dr1) * v1 + (r2 + t * dr2) * v2 + (
                        r3 + t * dr3
                    ) * v3
        # Store, checking the peak on the way (as `needs_limit` does): the limiter then runs
        # only on buffers that need it, while they are still in cache.
        out_l, out_r = out[b, 0], out[b, 1]
        excess = zero
        for i in range(n):
            a, c = acc_l[i], acc_r[i]
            out_l[i], out_r[i] = a, c
            excess += over_knee(a, knee) + over_knee(c, knee)
        if not (excess <= 0.0):
            limit_in_place(out_l, threshold)
            limit_in_place(out_r, threshold)
            limited += 1
    return limited
