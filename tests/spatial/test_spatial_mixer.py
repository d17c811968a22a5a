"""The server-side mixer: correctness against a brute-force mix, ramps, limiter, mix-minus,
shared mixes (including forced hash collisions), missing frames, stable-id state, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import spatial.mixer as mixer_module
from spatial import DistanceModel, Mixer, MixInputError, pan_gains, quaternion_about_y, soft_limit
from spatial.geometry import rotation_matrices, to_listener_local, unit_directions
from spatial.sparse_sum import accumulate

N = 960
IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


def scene(seed: int = 0, n_src: int = 40, n_lis: int = 12, per: int = 6):
    rng = np.random.default_rng(seed)
    frames = (0.2 * rng.standard_normal((n_src, N))).astype(np.float32)
    spos = rng.uniform(-15, 15, (n_src, 3)) * [1, 0.1, 1]
    lpos = rng.uniform(-15, 15, (n_lis, 3)) * [1, 0.1, 1]
    quats = quaternion_about_y(rng.uniform(-math.pi, math.pi, n_lis))
    rows = [np.sort(rng.choice(n_src, per, replace=False)) for _ in range(n_lis)]
    indptr = np.r_[0, np.cumsum([len(r) for r in rows])]
    return frames, spos, lpos, quats, indptr, np.concatenate(rows)


def brute_force(dm, law, frames, spos, lpos, quats, indptr, indices, own=None, flat=None, present=None):
    """Per listener, per source, in plain loops: the mix the vectorized mixer must reproduce."""
    out = np.zeros((len(lpos), 2, N))
    rots = rotation_matrices(quats)
    for lis in range(len(lpos)):
        for e in range(indptr[lis], indptr[lis + 1]):
            s = indices[e]
            if own is not None and own[lis] == s:
                continue
            if present is not None and not present[s]:
                continue
            if flat is not None and flat[e]:
                g = pan_gains(law, np.array([0.0, 0.0, -1.0]))
            else:
                local = to_listener_local((spos[s] - lpos[lis])[None], rots[lis][None])
                unit, dist = unit_directions(local)
                g = pan_gains(law, unit[0]) * dm.gains(dist[0])
            out[lis] += np.outer(g, frames[s])
    return out


def steady(mixer: Mixer, *args, **kwargs):
    mixer.mix(*args, **kwargs)  # first frame fades everything in
    return mixer.mix(*args, **kwargs)


@pytest.mark.parametrize("law", ["equal_power", "godot", "openal"])
def test_mix_equals_brute_force(law: str) -> None:
    sc = scene()
    dm = DistanceModel("inverse_clamped", reference_distance=2.0, rolloff=1.2, max_distance=20)
    res = steady(Mixer(dm, law, gain_step_db=0.0), *sc)
    ref = brute_force(dm, law, *sc)
    assert res.buffers.shape == (res.distinct, 2, N)
    np.testing.assert_allclose(res.buffers[res.listener_buffer], ref, atol=1e-5)
    assert np.abs(ref).max() > 0.05


def test_quantized_gains_stay_within_a_quarter_db() -> None:
    sc = scene(1)
    res = steady(Mixer(gain_step_db=0.5), *sc)
    ref = brute_force(DistanceModel(), "equal_power", *sc)
    got = res.buffers[res.listener_buffer]
    # Each entry is off by at most ±0.25 dB (2.9 %), so each mix is too.
    scale = np.abs(ref).max(axis=2, keepdims=True)
    assert np.all(np.abs(got - ref) <= 0.03 * scale * 6)
    assert np.abs(got - ref).max() > 0  # it really quantized


def test_source_on_my_left_is_in_my_left_ear_and_turning_swaps() -> None:
    frames = np.ones((1, N), np.float32) * 0.5
    spos = np.array([[-3.0, 0.0, 0.0]])
    lpos = np.zeros((2, 3))
    quats = np.stack([quaternion_about_y(0.0), quaternion_about_y(math.pi)])
    res = steady(Mixer(pan="equal_power"), frames, spos, lpos, quats, [0, 1, 2], [0, 0])
    left_ear, right_ear = res.buffers[res.listener_buffer[0]].mean(axis=1)
    assert left_ear > 0.15 and right_ear == pytest.approx(0, abs=1e-6)
    left_ear, right_ear = res.buffers[res.listener_buffer[1]].mean(axis=1)
    assert right_ear > 0.15 and left_ear == pytest.approx(0, abs=1e-6)


def clicks(y: np.ndarray, threshold: float = 2e-3) -> int:
    """Click detector: samples whose second difference jumps (a smooth signal has a tiny one)."""
    return int(np.count_nonzero(np.abs(np.diff(y, n=2)) > threshold))


def test_gain_jump_ramps_without_clicks() -> None:
    t = np.arange(4 * N)
    tone = (0.5 * np.sin(2 * np.pi * 110 * t / 48000)).astype(np.float32)  # max Δ² ≈ 1e-4
    mixer = Mixer(gain_step_db=0.5)
    near, far = np.array([[0.0, 0.0, -1.0]]), np.array([[0.0, 0.0, -8.0]])
    out = []
    for i, pos in enumerate([far, far, near, near]):  # gain jumps ×8 (18 dB) at frame 2
        res = mixer.mix(tone[None, i * N : (i + 1) * N], pos, np.zeros((1, 3)), IDENTITY[None], [0, 1], [0])
        out.append(res.buffers[0, 0].copy())
    y = np.concatenate(out)
    assert clicks(y) == 0
    # The ramp really happened: frame 2 goes from the far gain to the near gain.
    seg, ref = y[2 * N : 3 * N], tone[2 * N : 3 * N]
    loud = np.abs(ref) > 0.2
    gain = seg[loud] / ref[loud]
    g_far, g_near = math.sqrt(0.5) / 8, math.sqrt(0.5)
    assert gain[0] == pytest.approx(g_far, rel=0.1) and gain[-1] == pytest.approx(g_near, rel=0.05)
    assert np.all(np.diff(gain) >= -1e-6)
    # And the detector does catch an unramped jump of the same size.
    hard = np.concatenate([tone[: 2 * N] * 0.088, tone[2 * N :] * 0.707])
    assert clicks(hard) > 0


def test_ramps_match_a_brute_force_ramp() -> None:
    """Move some sources between two frames: each entry ramps linearly from its old to its new
    gain across the frame, the unmoved ones stay put (rows of 7: steady and ramping groups)."""
    frames, spos, lpos, quats, indptr, indices = scene(12, per=7)
    moved = spos.copy()
    moved[::3] += [1.5, 0.0, -2.0]
    dm = DistanceModel()
    mixer = Mixer(dm, gain_step_db=0.0)
    steady(mixer, frames, spos, lpos, quats, indptr, indices)
    res = mixer.mix(frames, moved, lpos, quats, indptr, indices)
    # brute_force is linear in the gains: old·x + r ⊙ (new − old)·x, r = 1/N … 1.
    old = brute_force(dm, "equal_power", frames, spos, lpos, quats, indptr, indices)
    new = brute_force(dm, "equal_power", frames, moved, lpos, quats, indptr, indices)
    r = np.arange(1, N + 1) / N
    np.testing.assert_allclose(res.buffers[res.listener_buffer], old + r * (new - old), atol=1e-5)
    assert np.abs(new - old).max() > 0.01  # something really ramped


def test_nan_in_a_delivered_frame_is_scrubbed_not_spread() -> None:
    frames, spos, lpos, quats, indptr, indices = scene(13)
    bad = int(indices[0])
    poisoned = frames.copy()
    poisoned[bad, 100:110] = np.nan
    poisoned[bad, 200] = np.inf
    res = steady(Mixer(gain_step_db=0.0), poisoned, spos, lpos, quats, indptr, indices)
    hears = np.array([bad in indices[indptr[i] : indptr[i + 1]] for i in range(len(lpos))])
    got = res.buffers[res.listener_buffer]
    assert np.all(np.isfinite(got)) and np.abs(got).max() <= 1.0
    assert res.limited >= 1
    ref = brute_force(DistanceModel(), "equal_power", frames, spos, lpos, quats, indptr, indices)
    np.testing.assert_allclose(got[~hears], ref[~hears], atol=1e-5)


def test_new_source_fades_in_and_first_frame_starts_silent() -> None:
    mixer = Mixer()
    frames = np.ones((1, N), np.float32) * 0.5
    res = mixer.mix(frames, [[0.0, 0.0, -1.0]], np.zeros((1, 3)), IDENTITY[None], [0, 1], [0])
    left = res.buffers[0, 0]
    assert left[0] < 0.001 and left[-1] == pytest.approx(0.5 * math.sqrt(0.5), rel=0.03)
    assert np.all(np.diff(left) >= 0)


def test_200_full_scale_sources_stay_inside_full_scale() -> None:
    n_src = 200
    rng = np.random.default_rng(3)
    sign = np.sign(np.sin(2 * np.pi * 50 * np.arange(N) / 48000))
    frames = (np.tile(sign, (n_src, 1)) * rng.uniform(0.9, 1.0, (n_src, 1))).astype(np.float32)
    spos = rng.uniform(-2, 2, (n_src, 3))
    lpos = np.zeros((2, 3))
    indptr = [0, n_src, 2 * n_src]
    indices = np.r_[np.arange(n_src), np.arange(n_src)]
    flat = np.r_[np.ones(n_src, bool), np.zeros(n_src, bool)]  # one flat listener, one spatial
    mixer = Mixer(DistanceModel(max_gain=1.0))
    for _ in range(3):
        res = mixer.mix(frames, spos, lpos, np.tile(IDENTITY, (2, 1)), indptr, indices, flat=flat)
        assert res.limited == 2
        assert np.all(np.abs(res.buffers) <= 1.0)
        assert np.abs(res.buffers).max() > 0.95  # limited, not muted


def test_soft_limit_leaves_quiet_buffers_alone_and_is_monotonic() -> None:
    quiet = (0.5 * np.sin(np.linspace(0, 20, 2 * N))).astype(np.float32).reshape(1, 2, N)
    before = quiet.copy()
    assert soft_limit(quiet) == 0
    np.testing.assert_array_equal(quiet, before)
    ramp = np.linspace(-50, 50, 2 * N, dtype=np.float32).reshape(1, 2, N)
    assert soft_limit(ramp) == 1
    y = ramp.ravel()
    assert np.all(np.diff(y) >= 0) and np.abs(y).max() <= 1.0
    knee = np.linspace(0, 0.8, 10, dtype=np.float32).reshape(1, 1, 10)
    np.testing.assert_array_equal(soft_limit(knee.copy()) or knee, knee)


def test_mix_minus_never_hears_yourself() -> None:
    frames, spos, lpos, quats, indptr, indices = scene(4)
    own = indices[indptr[:-1]].copy()  # each listener is the first source in its own row
    own[0] = -1  # listener 0 is not a source
    flat = np.zeros(len(indices), bool)
    flat[indptr[1]] = True  # even a flat (stage) entry is removed for its own speaker
    mixer = Mixer(gain_step_db=0.0)
    res = steady(mixer, frames, spos, lpos, quats, indptr, indices, own_source=own, flat=flat)
    dm = DistanceModel()
    ref = brute_force(dm, "equal_power", frames, spos, lpos, quats, indptr, indices, own=own, flat=flat)
    np.testing.assert_allclose(res.buffers[res.listener_buffer], ref, atol=1e-5)
    # Listener 3 alone with its own voice: exactly silent.
    res = steady(Mixer(), frames, spos, lpos[3:4], quats[3:4], [0, 1], [7], own_source=[7])
    assert np.all(res.buffers[res.listener_buffer[0]] == 0)


def test_listeners_with_equal_mixes_share_one_buffer() -> None:
    rng = np.random.default_rng(5)
    n_src = 10
    frames = (0.1 * rng.standard_normal((n_src, N))).astype(np.float32)
    spos = rng.uniform(-5, 5, (n_src, 3))
    # 0-3: audience hearing only the stage PA (source 9, flat) from different places.
    # 4, 5: same place, same orientation, same two sources -> share.
    # 6: mirror image of 4 -> different panning, no share. 7: hears nothing.
    lpos = np.array(
        [[50, 0, 50], [-40, 0, 3], [7, 0, -60], [0, 0, 80], [1, 0, 1], [1, 0, 1], [1, 0, 1], [0, 0, 0]]
    )
    quats = np.tile(IDENTITY, (8, 1))
    quats[6] = quaternion_about_y(math.pi)
    rows = [[9], [9], [9], [9], [2, 3], [2, 3], [2, 3], []]
    flat = np.array([True] * 4 + [False] * 6)
    indptr = np.r_[0, np.cumsum([len(r) for r in rows])]
    indices = np.array([i for r in rows for i in r])
    lids = np.array([100, 101, 102, 103, 104, 105, 106, 107])
    mixer = Mixer()
    for _ in range(3):
        res = mixer.mix(frames, spos, lpos, quats, indptr, indices, flat=flat, listener_ids=lids)
        b = res.listener_buffer
        assert b[0] == b[1] == b[2] == b[3]
        assert b[4] == b[5] and b[6] != b[4] and len({b[0], b[4], b[6], b[7]}) == 4
        assert res.distinct == 4
        assert np.all(res.buffers[b[7]] == 0)
        np.testing.assert_array_equal(sorted(res.listeners_of(int(b[0]))), [0, 1, 2, 3])
    ref = brute_force(DistanceModel(), "equal_power", frames, spos, lpos, quats, indptr, indices, flat=flat)
    np.testing.assert_allclose(res.buffers[b], ref, atol=0.04 * np.abs(ref).max())


def test_hash_collisions_never_merge_different_mixes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every hash collide: verification must still keep different mixes apart (privacy)."""
    monkeypatch.setattr(mixer_module, "listener_hashes", lambda ptr, *_: np.zeros(len(ptr) - 1, np.uint64))
    sc = scene(6)
    res = steady(Mixer(gain_step_db=0.0), *sc)
    np.testing.assert_allclose(
        res.buffers[res.listener_buffer], brute_force(DistanceModel(), "equal_power", *sc), atol=1e-5
    )
    assert res.distinct == len(sc[2])
    # Verification still finds the truly equal mixes among the collisions: duplicate listeners
    # 0 and 3 (same place, orientation and row) and they share again.
    frames, spos, lpos, quats, indptr, indices = sc
    rows = [indices[indptr[i] : indptr[i + 1]] for i in range(len(lpos))]
    pick = [0, 1, 2, 0, 3, 0]
    res = steady(
        Mixer(gain_step_db=0.0),
        frames,
        spos,
        lpos[pick],
        quats[pick],
        np.r_[0, np.cumsum([len(rows[i]) for i in pick])],
        np.concatenate([rows[i] for i in pick]),
    )
    b = res.listener_buffer
    assert b[0] == b[3] == b[5] and res.distinct == 4


def test_missing_frames_are_silence_and_their_rows_are_never_read() -> None:
    frames, spos, lpos, quats, indptr, indices = scene(7)
    present = np.ones(len(frames), bool)
    present[indices[::3]] = False
    poisoned = frames.copy()
    poisoned[~present] = np.nan
    res = steady(Mixer(gain_step_db=0.0), poisoned, spos, lpos, quats, indptr, indices, present=present)
    ref = brute_force(
        DistanceModel(), "equal_power", frames, spos, lpos, quats, indptr, indices, present=present
    )
    assert np.all(np.isfinite(res.buffers))
    np.testing.assert_allclose(res.buffers[res.listener_buffer], ref, atol=1e-5)


def test_state_follows_ids_when_rows_are_reordered() -> None:
    """Shuffle source and listener rows between frames: no spurious ramps (output unchanged)."""
    frames, spos, lpos, quats, indptr, indices = scene(8)
    sids = np.arange(len(frames)) * 7 + 3
    lids = np.arange(len(lpos)) * 5 + 1
    mixer = Mixer()
    mixer.mix(frames, spos, lpos, quats, indptr, indices, source_ids=sids, listener_ids=lids)
    base = mixer.mix(frames, spos, lpos, quats, indptr, indices, source_ids=sids, listener_ids=lids)
    expected = base.buffers[base.listener_buffer].copy()

    rng = np.random.default_rng(9)
    sp, lp = rng.permutation(len(frames)), rng.permutation(len(lpos))
    inv_sp = np.argsort(sp)
    rows = [inv_sp[indices[indptr[i] : indptr[i + 1]]] for i in lp]
    indptr2 = np.r_[0, np.cumsum([len(r) for r in rows])]
    res = mixer.mix(
        frames[sp],
        spos[sp],
        lpos[lp],
        quats[lp],
        indptr2,
        np.concatenate(rows),
        source_ids=sids[sp],
        listener_ids=lids[lp],
    )
    np.testing.assert_allclose(res.buffers[res.listener_buffer], expected[lp], atol=1e-6)


def test_entry_leaving_a_mix_stops_at_once() -> None:
    """Hearing rules win: a source removed from my row is gone in the very next frame."""
    frames = np.ones((2, N), np.float32) * 0.3
    spos = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    mixer = Mixer()
    steady(mixer, frames, spos, np.zeros((1, 3)), IDENTITY[None], [0, 2], [0, 1])
    res = mixer.mix(frames, spos, np.zeros((1, 3)), IDENTITY[None], [0, 1], [1])
    np.testing.assert_allclose(res.buffers[0], 0.3 * math.sqrt(0.5), rtol=0.03)


def test_hrtf_and_pan_listeners_in_one_call() -> None:
    sc = scene(10)
    hrtf = np.zeros(len(sc[2]), bool)
    hrtf[::4] = True
    res = steady(Mixer(gain_step_db=0.0), *sc, hrtf=hrtf)
    ref = brute_force(DistanceModel(), "equal_power", *sc)
    got = res.buffers[res.listener_buffer]
    np.testing.assert_allclose(got[~hrtf], ref[~hrtf], atol=1e-5)
    assert len(set(res.listener_buffer[hrtf])) == hrtf.sum()
    assert not set(res.listener_buffer[hrtf]) & set(res.listener_buffer[~hrtf])
    # Binaural output carries comparable energy.
    e_h, e_p = (got[hrtf] ** 2).sum(), (ref[hrtf] ** 2).sum()
    assert 0.3 < e_h / e_p < 3


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda a: a.update(frames=np.zeros((3, 100), np.float32)), "bad_frames"),
        (lambda a: a.update(source_positions=np.zeros((2, 3))), "bad_shape"),
        (lambda a: a.update(listener_positions=np.full((2, 3), np.nan)), "non_finite"),
        (lambda a: a.update(listener_orientations=np.zeros((2, 4))), "bad_orientation"),
        (lambda a: a.update(indptr=[0, 1]), "bad_csr"),
        (lambda a: a.update(indptr=[0, 2, 1]), "bad_csr"),
        (lambda a: a.update(indices=[0, 5]), "bad_index"),
        (lambda a: a.update(own_source=[0, 9]), "bad_index"),
        (lambda a: a.update(source_ids=[1, 1, 2]), "bad_ids"),
        (lambda a: a.update(listener_ids=[-1, 2]), "bad_ids"),
        (lambda a: a.update(flat=[True]), "bad_shape"),
    ],
)
def test_bad_input_raises_a_coded_error_and_the_mixer_keeps_working(change, code: str) -> None:
    good = {
        "frames": np.zeros((3, N), np.float32),
        "source_positions": np.zeros((3, 3)),
        "listener_positions": np.zeros((2, 3)),
        "listener_orientations": np.tile(IDENTITY, (2, 1)),
        "indptr": [0, 1, 2],
        "indices": [0, 2],
    }
    bad = dict(good)
    change(bad)
    mixer = Mixer()
    with pytest.raises(MixInputError) as info:
        mixer.mix(**bad)
    assert info.value.code == code
    assert mixer.mix(**good).distinct >= 1


def test_empty_world() -> None:
    res = Mixer().mix(
        np.zeros((0, N), np.float32), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 4)), [0], []
    )
    assert res.distinct == 0 and len(res.listener_buffer) == 0
    res = Mixer().mix(
        np.zeros((0, N), np.float32),
        np.zeros((0, 3)),
        np.zeros((2, 3)),
        np.tile(IDENTITY, (2, 1)),
        [0, 0, 0],
        [],
    )
    assert res.distinct == 1 and np.all(res.buffers == 0)


def test_numpy_fallback_matches_scipy_kernel() -> None:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((30, 64)).astype(np.float32)
    rows = 9
    counts = rng.integers(0, 6, rows)
    indptr = np.r_[0, np.cumsum(counts)].astype(np.int32)
    cols = rng.integers(0, 30, indptr[-1]).astype(np.int32)
    data = rng.standard_normal(indptr[-1]).astype(np.float32)
    a, b = np.zeros((rows, 64), np.float32), np.zeros((rows, 64), np.float32)
    accumulate(indptr, cols, data, x.ravel(), 64, a)
    accumulate(indptr, cols, data, x.ravel(), 64, b, use_numpy=True)
    np.testing.assert_allclose(a, b, atol=1e-5)
    dense = np.zeros((rows, 30))
    for r in range(rows):
        for e in range(indptr[r], indptr[r + 1]):
            dense[r, cols[e]] += data[e]
    np.testing.assert_allclose(a, dense @ x, atol=1e-5)
    with pytest.raises(IndexError):
        accumulate(indptr, cols + 30, data, x.ravel(), 64, a)
