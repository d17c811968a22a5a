"""The server-side crowd mixer: every listener's distance-attenuated stereo bed, one frame at a time.

Each 20 ms the SFU hands over the decoded mono frames of the sources that anybody mixes, where
everybody is, and — as CSR arrays — which sources each listener mixes. `Mixer.mix` returns one
stereo buffer per *distinct* mix and, per listener, which buffer is theirs: listeners whose
mixes are equal (same sources at the same quantized gains, e.g. the 4,000 people far from a
stage who hear only its PA) share one buffer, so the SFU encodes it once and sends it to all.

How a frame is computed (compiled passes in `spatial.kernels`; no Python loop over listeners,
sources or samples):

1. Per (listener, source) entry, in one loop: listener-local direction and distance → distance
   gain × pan law = (left, right) gain, quantized to `gain_step_db` (0.5 dB by default; this is
   also what makes equal mixes detectable). `flat` entries are unattenuated and centred.
2. Each entry's previous gains come from state keyed by (listener id, source id), so the state
   survives listeners and sources joining, leaving or being reordered. An entry new to a mix
   starts from 0: it fades in over the frame. The gain ramps linearly from old to new across the
   frame, g = g_old + r·(g_new − g_old) with r = 1/N … 1, which is click-free.
3. Equal mixes are found by hashing each listener's (source, old gains, new gains) entries and
   then *verifying* candidates entry by entry — a hash collision can never leak one listener's
   audio to another. Only the distinct mixes are computed.
4. One pass per distinct mix sums its sources into two cache-resident accumulators, stores the
   buffer and soft-limits it (memoryless, keeps it inside [−1, 1]) only if it crossed the knee.
5. HRTF listeners (`hrtf` mask, or pan="hrtf") get a binaural mix (`spatial.hrtf`, sparse sums
   via `sparse_sum.accumulate`); they never share buffers (documented simplification: their
   output also depends on per-source filter history, which is the same for everyone, but we
   keep the rule simple).

Mix-minus: a listener never hears their own source (`own_source`). Privacy: a listener's buffer
only ever contains the sources of their own CSR row; an entry that leaves a row stops at once
(no fade-out), because the hearing rules decide and the interest layer already drops far
sources only where they are quiet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import signal

from .distance import DistanceModel
from .geometry import rotation_matrices
from .hrtf import SphericalHead, ear_taps
from .kernels import (
    audible_entries,
    entry_gains,
    gain_grid,
    group_listeners,
    listener_hashes,
    locality_order,
    mix_buffers,
    quantize_many,
)
from .limiter import soft_limit
from .pan import PAN_LAWS, law_code
from .sparse_sum import accumulate, delayed_rows

FRAME_SIZE = 960  # 20 ms at 48 kHz
SAMPLE_RATE = 48000


class MixInputError(ValueError):
    """Bad arguments to `Mixer.mix`; `code` is a stable machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class MixResult:
    """The output of one frame.

    buffers: float32 (M, 2, N), planar stereo (row 0 left, row 1 right), ready for
        ``av.AudioFrame.from_ndarray(buf, format="fltp", layout="stereo")``. The array belongs
        to the mixer and is overwritten by the next `mix` call: encode (or copy) it first.
    listener_buffer: int32 (L,), the buffer index of each listener.
    limited: how many buffers needed the soft limiter this frame.
    """

    buffers: NDArray[np.float32]
    listener_buffer: NDArray[np.int32]
    limited: int = 0

    @property
    def distinct(self) -> int:
        """M, the number of distinct mixes: how many encodes the SFU needs."""
        return int(self.buffers.shape[0])

    def listeners_of(self, buffer: int) -> NDArray[np.int64]:
        """Listener rows that receive buffer `buffer`."""
        return np.flatnonzero(self.listener_buffer == buffer)

    def stereo(self, listener: int) -> NDArray[np.float32]:
        """Listener `listener`'s frame as an interleaved (N, 2) copy."""
        return np.ascontiguousarray(self.buffers[self.listener_buffer[listener]].T)


@dataclass
class _PairState:
    """Previous-frame values per (listener id, source id) key, keys sorted."""

    keys: NDArray[np.uint64] = field(default_factory=lambda: np.zeros(0, np.uint64))
    values: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 2), np.float32))

    def lookup(self, keys: NDArray[np.uint64], default: NDArray[np.float32]) -> NDArray[np.float32]:
        if len(keys) == len(self.keys) and np.array_equal(keys, self.keys):
            return self.values  # the common case: nobody joined, left or was reordered
        out = np.array(default, dtype=self.values.dtype, copy=True)
        if len(self.keys) == 0 or len(keys) == 0:
            return out
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        hit = self.keys[pos] == keys
        out[hit] = self.values[pos[hit]]
        return out


class _EntryArrays:
    """Per-entry outputs of one frame, kept between frames: allocating ~1 MB afresh every frame
    costs page faults comparable to computing it."""

    def __init__(self) -> None:
        self.ptr = np.empty(1, np.int64)
        self.src = np.empty(0, np.int64)
        self.keys = np.empty(0, np.uint64)
        self.direction = np.empty((0, 3))
        self.gain = np.empty(0)
        self.g = np.empty((0, 2), np.float32)

    def reserve(self, entries: int, listeners: int) -> None:
        """Make room for `entries` entries of `listeners` listeners (growing 2× at a time)."""
        if len(self.ptr) <= listeners:
            self.ptr = np.empty(max(listeners + 1, 2 * len(self.ptr)), np.int64)
        if len(self.src) < entries:
            e = max(entries, 2 * len(self.src))
            self.src = np.empty(e, np.int64)
            self.keys = np.empty(e, np.uint64)
            self.direction = np.empty((e, 3))
            self.gain = np.empty(e)
            self.g = np.empty((e, 2), np.float32)


def _sorted_state(keys: NDArray[np.uint64], values: NDArray[np.float32]) -> _PairState:
    if len(keys) > 1 and not np.all(keys[1:] > keys[:-1]):
        order = np.argsort(keys, kind="stable")
        keys, values = keys[order], values[order]
        keep = np.r_[True, keys[1:] != keys[:-1]]
        keys, values = keys[keep], values[keep]
    return _PairState(keys, values)


# Representatives a listener is compared with under one hash before it gets its own buffer: only
# adversarial collisions come near it, and then the cost stays linear (privacy is never at stake).
_MAX_TRIES = 8


_warm = False


def warm_up() -> None:
    """Compile (or load from numba's on-disk cache) every kernel a mix runs, once per process.

    `Mixer()` calls it, so a server pays the compile at start-up (≈ 10 s the very first time on
    the 2-core CI machine, ≈ 0.3 s loading the cache afterwards), not in its first 20 ms frame.
    """
    global _warm
    if _warm:
        return
    _warm = True
    mixer = Mixer()  # its own warm_up() call returns at once: _warm is already set
    frames = np.full((2, FRAME_SIZE), 0.5, np.float32)
    args = (frames, [[0.0, 0.0, -1.0], [1.0, 0.0, 0.0]], np.zeros((2, 3)), [[0, 0, 0, 1.0]] * 2, [0, 2, 4])
    for _ in range(2):  # the second frame takes the steady-state path
        mixer.mix(*args, [0, 1, 0, 1], hrtf=[False, True])


class Mixer:
    """Stateful per-frame mixer; create one per world (or per SFU worker) and call `mix` every frame.

    distance: the world's distance model. pan: "equal_power", "godot", "openal" or "hrtf"
    (binaural for everybody; otherwise pass the `hrtf` mask per call). gain_step_db: gain
    quantization (0 disables it: exact gains, fewer shared mixes). silence_db: entries quieter
    than this are dropped.
    """

    def __init__(
        self,
        distance: DistanceModel | None = None,
        pan: str = "equal_power",
        *,
        frame_size: int = FRAME_SIZE,
        sample_rate: int = SAMPLE_RATE,
        gain_step_db: float = 0.5,
        silence_db: float = -100.0,
        limiter_threshold: float = 0.8,
        head: SphericalHead | None = None,
    ) -> None:
        if pan not in (*PAN_LAWS, "hrtf"):
            raise ValueError(f"unknown pan law {pan!r}; expected one of {', '.join((*PAN_LAWS, 'hrtf'))}")
        if frame_size <= 0 or sample_rate <= 0 or gain_step_db < 0 or not 0 < limiter_threshold < 1:
            raise ValueError("frame_size, sample_rate > 0; gain_step_db >= 0; 0 < limiter_threshold < 1")
        self.distance = distance if distance is not None else DistanceModel()
        self.pan = pan
        self.frame_size = frame_size
        self.sample_rate = sample_rate
        self.gain_step_db = gain_step_db
        self.silence_gain = 10.0 ** (silence_db / 20.0)
        self.limiter_threshold = limiter_threshold
        self.head = head if head is not None else SphericalHead(sample_rate=sample_rate)
        if self.head.sample_rate != sample_rate:
            raise ValueError("head.sample_rate must equal the mixer's sample_rate")
        self._law = law_code("equal_power" if pan == "hrtf" else pan)
        self._curve = self.distance.params()
        self._quant = gain_grid(silence_db, gain_step_db, self.distance.max_gain)
        self._ramp = np.arange(1, frame_size + 1, dtype=np.float32) / np.float32(frame_size)
        self._pool = np.zeros((0, 2, frame_size), np.float32)
        self._frame_arrays = [_EntryArrays(), _EntryArrays()]
        warm_up()
        self._lp_b, self._lp_a = self.head.lowpass()
        self._max_delay = self.head.max_delay_samples
        if self._max_delay + 1 > frame_size:
            raise ValueError("frame too short for the HRTF's interaural delay")
        self.reset()

    def reset(self) -> None:
        """Forget all ramp and filter state (next frame fades everything in)."""
        self._pan_state = _PairState()
        self._hrtf_state = _PairState(np.zeros(0, np.uint64), np.zeros((0, 2, 5), np.float32))
        self._src_keys = np.zeros(0, np.uint64)
        self._src_hist = np.zeros((0, 2, self._max_delay), np.float32)  # x and lp history
        self._src_zi = np.zeros((0, 1), np.float64)

    # ------------------------------------------------------------------------------------
    def mix(
        self,
        frames: ArrayLike,
        source_positions: ArrayLike,
        listener_positions: ArrayLike,
        listener_orientations: ArrayLike,
        indptr: ArrayLike,
        indices: ArrayLike,
        *,
        flat: ArrayLike | None = None,
        own_source: ArrayLike | None = None,
        present: ArrayLike | None = None,
        source_ids: ArrayLike | None = None,
        listener_ids: ArrayLike | None = None,
        hrtf: ArrayLike | None = None,
    ) -> MixResult:
        """Mix one frame.

        frames: float32 (S, N) decoded mono source frames. present: bool (S,), False = the frame
            is missing or late and counts as silence (the row's content is ignored).
        source_positions (S, 3); listener_positions (L, 3); listener_orientations (L, 4) quaternions.
        indptr (L+1,), indices (nnz,): CSR, the source rows each listener mixes.
        flat: bool (nnz,), entry is unattenuated and centred (stage PA, meeting mode).
        own_source: int (L,), each listener's own source row or −1 (mix-minus).
        source_ids / listener_ids: stable uint32 ids (participant ids) keying the ramp state;
            default the row numbers, which is only right if rows never change meaning.
        hrtf: bool (L,), listeners who get the binaural (HRTF) rendering.
        """
        n = self.frame_size
        x, present_, spos, lpos, rot, indptr_, src, flat_, own, sid, lid, hrtf_ = self._validate(
            frames,
            source_positions,
            listener_positions,
            listener_orientations,
            indptr,
            indices,
            flat,
            own_source,
            present,
            source_ids,
            listener_ids,
            hrtf,
        )
        n_lis = len(lpos)
        # Per entry (mix-minus applied): geometry, distance gain, pan law, quantized gains.
        # Entry arrays alternate between two sets: last frame's gains stay intact as ramp state.
        ea = self._frame_arrays[0]
        ea.reserve(len(src), n_lis)
        count = entry_gains(
            spos, lpos, rot, indptr_, src, flat_, own, sid, lid, self._law, self._curve, *self._quant,
            ea.ptr, ea.src, ea.keys, ea.direction, ea.gain, ea.g,
        )  # fmt: skip
        ptr, src, keys = ea.ptr[: n_lis + 1], ea.src[:count], ea.keys[:count]
        direction, gain, g_new = ea.direction[:count], ea.gain[:count], ea.g[:count]

        # --- pan-law listeners: ramp state, shared-mix detection, one buffer per distinct mix ----
        h_lis = np.flatnonzero(hrtf_)
        if len(h_lis):
            is_h = np.repeat(hrtf_, np.diff(ptr))
            pan_entries, h_entries = np.flatnonzero(~is_h), np.flatnonzero(is_h)
            p_ptr = np.r_[0, np.cumsum(np.where(hrtf_, 0, np.diff(ptr)))]
            p_src, p_keys, g_new = src[pan_entries], keys[pan_entries], g_new[pan_entries]
        else:
            p_ptr, p_src, p_keys = ptr, src, keys
        g_old = self._pan_state.lookup(p_keys, np.zeros_like(g_new))
        self._pan_state = _sorted_state(p_keys, g_new)
        self._frame_arrays.reverse()  # the state may now live in `ea`: write the other set next
        audible = audible_entries(p_src, g_old, g_new, present_)

        hashes = listener_hashes(p_ptr, p_src, g_old.view(np.uint32), g_new.view(np.uint32), audible)
        pan_lis = np.flatnonzero(~hrtf_) if len(h_lis) else np.arange(n_lis)
        order = pan_lis[np.argsort(hashes[pan_lis], kind="stable")]
        rep = group_listeners(order, hashes, p_ptr, p_src, g_old, g_new, audible, _MAX_TRIES)
        reps = np.flatnonzero(rep == np.arange(n_lis))  # buffers in the order of their first listener
        buffer_of_rep = np.zeros(n_lis, np.int32)
        buffer_of_rep[reps] = np.arange(len(reps), dtype=np.int32)
        buffer_of_listener = buffer_of_rep[rep]
        m_pan = len(reps)
        m_total = m_pan + len(h_lis)
        buffer_of_listener[h_lis] = m_pan + np.arange(len(h_lis), dtype=np.int32)

        if self._pool.shape[0] < m_total:  # grow the reused output; no per-frame allocation
            self._pool = np.empty((max(m_total, 2 * self._pool.shape[0]), 2, n), np.float32)
        out = self._pool[:m_total]
        limited = mix_buffers(
            out,
            reps,
            locality_order(lpos[reps]),
            p_ptr,
            p_src,
            g_old,
            g_new,
            audible,
            x,
            self._ramp,
            self.limiter_threshold,
        )

        if len(h_lis):
            out[m_pan:].fill(0.0)
            self._mix_hrtf(
                out[m_pan:],
                h_lis,
                x,
                present_,
                np.repeat(np.arange(n_lis), np.diff(ptr))[h_entries],
                src[h_entries],
                sid,
                keys[h_entries],
                direction[h_entries],
                gain[h_entries],
            )
            limited += soft_limit(out[m_pan:], self.limiter_threshold)
        else:
            self._hrtf_state = _PairState(np.zeros(0, np.uint64), np.zeros((0, 2, 5), np.float32))
            self._src_keys = np.zeros(0, np.uint64)
        return MixResult(out, buffer_of_listener, int(limited))

    # ------------------------------------------------------------------------------------
    def _mix_hrtf(
        self,
        out: NDArray[np.float32],
        h_lis: NDArray[np.int64],
        x: NDArray[np.float32],
        present: NDArray[np.bool_],
        lrow: NDArray[np.int64],
        src: NDArray[np.int64],
        sid: NDArray[np.uint64],
        keys: NDArray[np.uint64],
        direction: NDArray[np.float64],
        gain: NDArray[np.float64],
    ) -> None:
        """Binaural rendering for HRTF listeners, one buffer each (out is (len(h_lis), 2, N))."""
        n, hmax = self.frame_size, self._max_delay
        # Quantized parameters: ramps happen only when something audibly changed.
        g_q = quantize_many(gain, *self._quant).astype(np.float64)
        shift, coef = ear_taps(self.head, _quantize_direction(direction), g_q)
        coef32 = coef.astype(np.float32)
        new_state = np.concatenate([shift[..., None].astype(np.float32), coef32], axis=-1)  # (P, 2, 5)
        old_state = self._hrtf_state.lookup(
            keys, np.concatenate([new_state[..., :1], np.zeros_like(coef32)], -1)
        )
        self._hrtf_state = _sorted_state(keys, new_state)

        # Per-source signals: dry x and the fixed low-pass, each with `hmax` samples of history.
        used_src = np.unique(src)
        used_keys = sid[used_src]
        pos = (
            np.searchsorted(self._src_keys, used_keys)
            if len(self._src_keys)
            else np.zeros(len(used_keys), int)
        )
        pos = np.minimum(pos, max(len(self._src_keys) - 1, 0))
        known = (self._src_keys[pos] == used_keys) if len(self._src_keys) else np.zeros(len(used_keys), bool)
        hist = np.zeros((len(used_src), 2, hmax), np.float32)
        zi = np.zeros((len(used_src), 1), np.float64)
        hist[known] = self._src_hist[pos[known]]
        zi[known] = self._src_zi[pos[known]]
        dry = np.where(present[used_src, None], x[used_src], np.float32(0.0))
        lp, zf = signal.lfilter(self._lp_b, self._lp_a, dry, axis=1, zi=zi)
        lp = lp.astype(np.float32)
        banks = (delayed_rows(hist[:, 0], dry, hmax), delayed_rows(hist[:, 1], lp, hmax))
        order = np.argsort(used_keys)
        self._src_keys = used_keys[order]
        self._src_hist = np.stack([dry[:, n - hmax :], lp[:, n - hmax :]], axis=1)[order]
        self._src_zi = zf[order]

        # Every tap as (output row, source column, signal, shift, coefficient).
        col = 2 * np.searchsorted(used_src, src)
        hbuf = np.searchsorted(h_lis, lrow)
        row = 2 * hbuf[:, None] + np.arange(2)  # (P, 2): left row, right row
        changed = np.any(old_state != new_state, axis=(1, 2))

        def taps(
            state: NDArray[np.float32], which: NDArray[np.int64], sign: float
        ) -> list[NDArray[np.float64]]:
            k = state[which, :, 0].astype(np.int64)  # (Q, 2)
            c = state[which, :, 1:].astype(np.float64) * sign  # (Q, 2, 4)
            parts = []
            for t in range(4):  # t: 0 x@k, 1 x@k+1, 2 lp@k, 3 lp@k+1
                parts.append(
                    np.stack(
                        [
                            np.broadcast_to(row[which], k.shape).ravel(),
                            np.broadcast_to(col[which, None], k.shape).ravel(),
                            np.full(k.size, t // 2),
                            (k + t % 2).ravel(),
                            c[:, :, t].ravel(),
                        ]
                    )
                )
            return parts

        everyone = np.flatnonzero(present[src])
        moved = everyone[changed[everyone]]
        base = np.concatenate(taps(old_state, everyone, 1.0), axis=1)
        delta = np.concatenate(taps(new_state, moved, 1.0) + taps(old_state, moved, -1.0), axis=1)
        n_rows = 2 * len(h_lis)
        _accumulate_taps(base, banks, n, n_rows, out.reshape(n_rows, n))
        if delta.shape[1]:
            tmp = np.zeros((n_rows, n), np.float32)
            _accumulate_taps(delta, banks, n, n_rows, tmp)
            out.reshape(n_rows, n)[...] += tmp * self._ramp

    # ------------------------------------------------------------------------------------
    def _validate(
        self,
        frames: ArrayLike,
        source_positions: ArrayLike,
        listener_positions: ArrayLike,
        listener_orientations: ArrayLike,
        indptr: ArrayLike,
        indices: ArrayLike,
        flat: ArrayLike | None,
        own_source: ArrayLike | None,
        present: ArrayLike | None,
        source_ids: ArrayLike | None,
        listener_ids: ArrayLike | None,
        hrtf: ArrayLike | None,
    ) -> tuple:
        n = self.frame_size
        x = np.ascontiguousarray(frames, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != n:
            raise MixInputError("bad_frames", f"frames must be (sources, {n}) float32, got {x.shape}")
        n_src = x.shape[0]
        spos = _positions(source_positions, n_src, "source_positions")
        lpos = _positions(listener_positions, None, "listener_positions")
        n_lis = len(lpos)
        quat = np.asarray(listener_orientations, dtype=np.float64)
        if quat.shape != (n_lis, 4):
            raise MixInputError("bad_shape", f"listener_orientations must be ({n_lis}, 4), got {quat.shape}")
        try:
            rot = rotation_matrices(quat)
        except ValueError as exc:
            raise MixInputError("bad_orientation", str(exc)) from None
        indptr_ = np.asarray(indptr)
        src = np.asarray(indices)
        if indptr_.shape != (n_lis + 1,) or not np.issubdtype(indptr_.dtype, np.integer):
            raise MixInputError("bad_csr", f"indptr must be {n_lis + 1} integers")
        if not np.issubdtype(src.dtype, np.integer) and src.size:
            raise MixInputError("bad_csr", "indices must be integers")
        src = src.astype(np.int64, copy=False).reshape(-1)
        if indptr_[0] != 0 or indptr_[-1] != len(src) or np.any(np.diff(indptr_) < 0):
            raise MixInputError("bad_csr", "indptr must start at 0, never decrease and end at len(indices)")
        if len(src) and (src.min() < 0 or src.max() >= n_src):
            raise MixInputError("bad_index", f"source index outside 0..{n_src - 1}")
        flat_ = _bool_array(flat, len(src), "flat")
        present_ = _bool_array(present, n_src, "present", default=True)
        hrtf_ = _bool_array(hrtf, n_lis, "hrtf", default=self.pan == "hrtf")
        if own_source is None:
            own = np.full(n_lis, -1, np.int64)
        else:
            own = np.asarray(own_source).astype(np.int64).reshape(-1)
            if own.shape != (n_lis,) or np.any(own >= n_src) or np.any(own < -1):
                raise MixInputError("bad_index", "own_source must be (listeners,) rows in -1..sources-1")
        sid = _ids(source_ids, n_src, "source_ids")
        lid = _ids(listener_ids, n_lis, "listener_ids")
        indptr_ = indptr_.astype(np.int64, copy=False)
        return x, present_, spos, lpos, rot, indptr_, src, flat_, own, sid, lid, hrtf_


def _accumulate_taps(
    taps: NDArray[np.float64],
    banks: tuple[NDArray[np.float32], NDArray[np.float32]],
    n: int,
    n_rows: int,
    out: NDArray[np.float32],
) -> None:
    """Sum taps (rows: out row, column, signal, shift, coef) into out, one sparse call per (signal, shift)."""
    if taps.shape[1] == 0:
        return
    row = taps[0].astype(np.int64)
    col = taps[1].astype(np.int32)
    sig = taps[2].astype(np.int64)
    shift = taps[3].astype(np.int64)
    coef = taps[4].astype(np.float32)
    group = sig * (n + 1) + shift
    order = np.lexsort((row, group))
    row, col, coef, group = row[order], col[order], coef[order], group[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], len(group)]
    for a, b in zip(starts, ends, strict=True):
        g = int(group[a])
        k = g % (n + 1)
        bank = banks[g // (n + 1)]
        indptr = np.zeros(n_rows + 1, np.int32)
        indptr[1:] = np.cumsum(np.bincount(row[a:b], minlength=n_rows))
        accumulate(indptr, col[a:b], coef[a:b], bank[n - k :], n, out)


def _quantize_direction(
    d: NDArray[np.float64], steps_per_radian: float = 180.0 / math.pi
) -> NDArray[np.float64]:
    """Snap directions to a 1° azimuth/elevation grid so a still listener keeps still taps."""
    az = np.round(np.arctan2(d[:, 0], -d[:, 2]) * steps_per_radian) / steps_per_radian
    el = np.round(np.arcsin(np.clip(d[:, 1], -1, 1)) * steps_per_radian) / steps_per_radian
    return np.stack([np.sin(az) * np.cos(el), np.sin(el), -np.cos(az) * np.cos(el)], axis=1)


def _positions(p: ArrayLike, n: int | None, name: str) -> NDArray[np.float64]:
    arr = np.ascontiguousarray(p, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3 or (n is not None and arr.shape[0] != n):
        raise MixInputError(
            "bad_shape", f"{name} must be ({n if n is not None else 'N'}, 3), got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise MixInputError("non_finite", f"{name} contains NaN or infinity")
    return arr


def _bool_array(a: ArrayLike | None, n: int, name: str, default: bool = False) -> NDArray[np.bool_]:
    if a is None:
        return np.full(n, default, bool)
    arr = np.asarray(a).astype(bool, copy=False).reshape(-1)
    if arr.shape != (n,):
        raise MixInputError("bad_shape", f"{name} must have {n} entries, got {arr.shape[0]}")
    return arr


def _ids(a: ArrayLike | None, n: int, name: str) -> NDArray[np.uint64]:
    if a is None:
        return np.arange(n, dtype=np.uint64)
    arr = np.asarray(a)
    if arr.shape != (n,) or (
        n and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= 2**32)
    ):
        raise MixInputError("bad_ids", f"{name} must be {n} integers in 0..2**32-1")
    ids = arr.astype(np.uint64)
    if len(np.unique(ids)) != n:
        raise MixInputError("bad_ids", f"{name} must be unique")
    return ids
