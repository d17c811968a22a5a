"""Pan laws at 0°, ±30°, ±90°, 180° against REFERENCE.md / hand-computed values, and orientation."""

import math

import numpy as np
import pytest

from spatial import centre_gains, pan_gains, quaternion_about_y, rotation_matrices, to_listener_local
from spatial.geometry import unit_directions

AZ = [0.0, 30.0, -30.0, 90.0, -90.0, 180.0]


def direction(az_deg: float, el_deg: float = 0.0) -> np.ndarray:
    a, e = math.radians(az_deg), math.radians(el_deg)
    return np.array([math.sin(a) * math.cos(e), math.sin(e), -math.cos(a) * math.cos(e)])


S = math.sqrt(0.5)
# Godot SPCAP at 30°: 1 + d·s = 1 + (∓0.5 + 0.866)/√2.
_gl, _gr = 1 + (-0.5 + math.sqrt(3) / 2) * S, 1 + (0.5 + math.sqrt(3) / 2) * S
_gn = math.hypot(_gl, _gr)
# OpenAL Soft 1.19: θ' = 1.5·30° = 45°.
_al45 = (0.5 - 0.5 * S + 0.09566 * S, 0.5 + 0.5 * S + 0.09566 * S)
EXPECTED = {
    "equal_power": [(S, S), (0.5, math.sqrt(3) / 2), (math.sqrt(3) / 2, 0.5), (0, 1), (1, 0), (S, S)],
    "godot": [(S, S), (_gl / _gn, _gr / _gn), (_gr / _gn, _gl / _gn), (0.169, 0.986), (0.986, 0.169), (S, S)],
    "openal": [(0.596, 0.596), _al45, _al45[::-1], (0, 1), (1, 0), (0.404, 0.404)],
}


@pytest.mark.parametrize("law", sorted(EXPECTED))
def test_pan_law_reference_values(law: str) -> None:
    got = pan_gains(law, np.stack([direction(a) for a in AZ]))
    np.testing.assert_allclose(got, EXPECTED[law], atol=1.5e-3)


@pytest.mark.parametrize("law", sorted(EXPECTED))
def test_pan_law_is_left_right_symmetric_and_centre(law: str) -> None:
    az = np.linspace(-180, 180, 73)
    right = pan_gains(law, np.stack([direction(a) for a in az]))
    left = pan_gains(law, np.stack([direction(-a) for a in az]))
    np.testing.assert_allclose(right, left[:, ::-1], atol=1e-12)
    np.testing.assert_allclose(centre_gains(law), got := pan_gains(law, direction(0)))
    assert got[0] == pytest.approx(got[1])


def test_equal_power_keeps_power_and_folds_back_half() -> None:
    g = pan_gains("equal_power", np.stack([direction(a) for a in np.linspace(-180, 180, 37)]))
    np.testing.assert_allclose((g**2).sum(axis=1), 1.0)
    np.testing.assert_allclose(
        pan_gains("equal_power", direction(150)), pan_gains("equal_power", direction(30))
    )


def test_openal_elevation_matches_measured_render() -> None:
    # Seen on the 1.19.1 loopback: straight up → 0.5/0.5; (1, 1, −1) → 0.1527/0.9071 before distance.
    np.testing.assert_allclose(pan_gains("openal", np.array([0.0, 1.0, 0.0])), [0.5, 0.5], atol=1e-6)
    d = np.array([1.0, 1.0, -1.0]) / math.sqrt(3)
    np.testing.assert_allclose(pan_gains("openal", d), [0.1527, 0.9071], atol=2e-4)


def test_unknown_law() -> None:
    with pytest.raises(ValueError, match="unknown pan law"):
        pan_gains("vbap", direction(0))


def _local(listener_quat: np.ndarray, offset: np.ndarray) -> np.ndarray:
    rot = rotation_matrices(listener_quat.reshape(1, 4))
    return unit_directions(to_listener_local(offset.reshape(1, 3), rot))[0][0]


@pytest.mark.parametrize("law", sorted(EXPECTED))
def test_orientation_turning_around_swaps_ears(law: str) -> None:
    source_on_world_left = np.array([-2.0, 0.0, 0.0])
    facing_minus_z = quaternion_about_y(0.0)
    facing_plus_z = quaternion_about_y(math.pi)
    l0, r0 = pan_gains(law, _local(facing_minus_z, source_on_world_left))
    l1, r1 = pan_gains(law, _local(facing_plus_z, source_on_world_left))
    assert l0 > r0 + 0.5  # on my left: in my left ear
    assert r1 > l1 + 0.5  # turned around: now in my right ear
    assert (l0, r0) == pytest.approx((r1, l1))


def test_orientation_quarter_turn_puts_source_ahead() -> None:
    # Turning left by 90° (yaw +90° about +Y) makes −X the forward direction.
    local = _local(quaternion_about_y(math.pi / 2), np.array([-3.0, 0.0, 0.0]))
    np.testing.assert_allclose(local, [0, 0, -1], atol=1e-12)


def test_quaternions_are_normalised_and_rejected_when_degenerate() -> None:
    a = rotation_matrices(np.array([[0, 2.0, 0, 0]]))  # unnormalised 180° about Y
    np.testing.assert_allclose(a[0], np.diag([-1.0, 1.0, -1.0]), atol=1e-12)
    with pytest.raises(ValueError, match="quaternion"):
        rotation_matrices(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="quaternion"):
        rotation_matrices(np.array([[np.nan, 0, 0, 1]]))


def test_source_at_listener_is_straight_ahead() -> None:
    unit, dist = unit_directions(np.zeros((1, 3)))
    np.testing.assert_array_equal(unit, [[0, 0, -1]])
    assert dist[0] == 0
