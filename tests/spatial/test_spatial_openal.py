"""Hubbub's `openal` pan law × distance models against a real OpenAL Soft render (loopback device).

Sources at several distances and azimuths (and one elevation) are rendered one at a time through
libopenal's ALC_SOFT_loopback device under every distance model; the left/right gains measured
from the render must match `pan_gains("openal", …) × DistanceModel(…).gains(…)` to within 1%,
and the same scene pushed through `Mixer(pan="openal")` must match the render sample by sample.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from spatial import MODELS, DistanceModel, Mixer, pan_gains, quaternion_about_y, rotation_matrices
from spatial.geometry import to_listener_local, unit_directions

pytestmark = pytest.mark.openal


def _load_renderer():  # loaded by path: other test folders may have their own `openal_render`
    name = "hubbub_tests_spatial_openal_render"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("openal_render.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


oal = _load_renderer()

RATE = 48000
N = 4800  # 100 ms
# Quiet enough that no render exceeds full scale (OpenAL clamps float output to ±1).
SIGNAL = (0.25 * np.sin(2 * np.pi * 997 * np.arange(N) / RATE)).astype(np.float32)
DISTANCES = [0.5, 1.0, 2.0, 3.5, 7.0, 12.0, 25.0]
# 58° and ±105°: where 1.19 clips a channel gain to 1 and to 0.
AZIMUTHS = [0.0, 20.0, -30.0, 45.0, 58.0, 75.0, -90.0, 105.0, -110.0, 120.0, 180.0]
PARAMS = {"reference_distance": 2.0, "rolloff": 1.5, "max_distance": 15.0, "min_gain": 0.0, "max_gain": 1.0}


def _positions(listener_yaw: float = 0.0) -> np.ndarray:
    pos = []
    for d in DISTANCES:
        for az in AZIMUTHS:
            a = math.radians(az) + listener_yaw  # relative to where the listener faces
            pos.append((d * math.sin(a), 0.0, -d * math.cos(a)))
    pos.append((1.5, 2.0, -1.0))  # one elevated source
    return np.array(pos)


@pytest.fixture(scope="module")
def device():
    with oal.OpenALLoopback(RATE) as al:
        print("OpenAL:", al.version)
        yield al


def _expected(model: str, positions: np.ndarray, quat: np.ndarray) -> np.ndarray:
    rot = rotation_matrices(quat.reshape(1, 4))
    local = to_listener_local(positions, np.repeat(rot, len(positions), axis=0))
    direction, dist = unit_directions(local)
    return pan_gains("openal", direction) * DistanceModel(model, **PARAMS).gains(dist)[:, None]


def _render(device, model: str, positions: np.ndarray, quat: np.ndarray) -> np.ndarray:
    rot = rotation_matrices(quat.reshape(1, 4))[0]
    device.set_listener((0, 0, 0), forward=rot @ [0, 0, -1], up=rot @ [0, 1, 0])
    specs = [oal.SourceSpec(tuple(p), **PARAMS) for p in positions]
    return device.render(model, specs, SIGNAL)


@pytest.mark.parametrize("yaw_deg", [0.0, 60.0])
@pytest.mark.parametrize("model", MODELS)
def test_openal_pan_and_distance_match_openal_soft(device, model: str, yaw_deg: float) -> None:
    yaw = math.radians(yaw_deg)
    quat = quaternion_about_y(yaw)
    # A listener turned left by `yaw` sees each source at its intended azimuth.
    positions = _positions(listener_yaw=-yaw)
    measured = oal.channel_gains(_render(device, model, positions, quat), SIGNAL)
    expected = _expected(model, positions, quat)
    assert np.abs(expected).max() > 0.5 and np.count_nonzero(expected > 0.01) > 40  # a real scene
    err = np.abs(measured - expected)
    worst = np.unravel_index(np.argmax(err - 0.01 * expected), err.shape)
    assert np.all(err <= 0.01 * expected + 2e-4), (
        f"{model}: source {positions[worst[0]]} channel {worst[1]}: "
        f"OpenAL {measured[worst]:.5f} vs Hubbub {expected[worst]:.5f}"
    )


@pytest.mark.parametrize("model", ["inverse_clamped", "linear", "exponential_clamped"])
def test_openal_mixer_output_matches_openal_soft_render(device, model: str) -> None:
    """End to end: the mixer (exact gains) renders each source like OpenAL Soft, sample for sample."""
    positions = _positions()
    quat = quaternion_about_y(0.3)
    rendered = _render(device, model, positions, quat)  # (S, N, 2)
    n_src = len(positions)
    frame = 960
    # One listener per source, each mixing just that source: buffer s is source s alone.
    mixer = Mixer(DistanceModel(model, **PARAMS), pan="openal", gain_step_db=0.0, silence_db=-200.0)
    lis_pos = np.zeros((n_src, 3))
    quats = np.tile(quat, (n_src, 1))
    indptr = np.arange(n_src + 1)
    indices = np.arange(n_src)
    frames = np.tile(SIGNAL[:frame], (n_src, 1))
    mixer.mix(frames, positions, lis_pos, quats, indptr, indices)  # frame 0 fades in
    out = mixer.mix(
        np.tile(SIGNAL[frame : 2 * frame], (n_src, 1)), positions, lis_pos, quats, indptr, indices
    )
    ours = out.buffers[out.listener_buffer].transpose(0, 2, 1)  # (S, frame, 2)
    theirs = rendered[:, frame : 2 * frame, :]
    np.testing.assert_allclose(ours, theirs, atol=0.25 * 0.01)
    assert np.abs(theirs).max() > 0.1
