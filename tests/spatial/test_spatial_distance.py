"""Distance models against hand-computed values (OpenAL 1.1 formulas) and engine presets."""

import math

import numpy as np
import pytest

from spatial import MODELS, PRESETS, DistanceModel

# ref 2, rolloff 1.5, max 10, max_gain 10 (so values above 1 stay visible).
HAND = {
    # d:               0.5     1       2    6     10      20
    "inverse": [1.0, 4.0, 1.0, 0.25, 2 / 14, 2 / 29],  # d=0.5: 2/(2-2.25) < 0 -> no attenuation
    "inverse_clamped": [1.0, 1.0, 1.0, 0.25, 2 / 14, 2 / 14],
    "linear": [1.28125, 1.1875, 1.0, 0.25, 0.0, 0.0],
    "linear_clamped": [1.0, 1.0, 1.0, 0.25, 0.0, 0.0],
    "exponential": [0.25**-1.5, 0.5**-1.5, 1.0, 3**-1.5, 5**-1.5, 10**-1.5],
    "exponential_clamped": [1.0, 1.0, 1.0, 3**-1.5, 5**-1.5, 5**-1.5],
}
DISTANCES = np.array([0.5, 1.0, 2.0, 6.0, 10.0, 20.0])


@pytest.mark.parametrize("model", MODELS)
def test_models_match_hand_computed_values(model: str) -> None:
    dm = DistanceModel(model, reference_distance=2.0, rolloff=1.5, max_distance=10.0, max_gain=10.0)
    np.testing.assert_allclose(dm.gains(DISTANCES), HAND[model], rtol=1e-12)


@pytest.mark.parametrize("model", MODELS)
def test_gain_clamps_and_shapes(model: str) -> None:
    dm = DistanceModel(
        model, reference_distance=2.0, rolloff=1.5, max_distance=10.0, min_gain=0.1, max_gain=0.9
    )
    g = dm.gains(DISTANCES.reshape(2, 3))
    assert g.shape == (2, 3)
    expected = np.clip(np.array(HAND[model]), 0.1, 0.9).reshape(2, 3)
    np.testing.assert_allclose(g, expected, rtol=1e-12)


def test_openal_defaults_are_inverse_clamped_unit() -> None:
    g = DistanceModel().gains([0.0, 0.5, 1.0, 2.0, 4.0, 8.0])
    np.testing.assert_allclose(g, [1, 1, 1, 0.5, 0.25, 0.125])


@pytest.mark.parametrize("model", ["inverse_clamped", "linear_clamped", "exponential_clamped"])
def test_clamped_with_max_below_ref_disables_attenuation(model: str) -> None:
    # OpenAL Soft: "if(MaxDistance < RefDistance) break;" -> gain stays 1.
    dm = DistanceModel(model, reference_distance=5.0, max_distance=2.0)
    np.testing.assert_allclose(dm.gains([1.0, 3.0, 100.0]), 1.0)


def test_degenerate_cases_follow_openal_soft() -> None:
    assert DistanceModel("exponential").gains(0.0) == 1.0  # d == 0: no attenuation
    assert DistanceModel("linear", reference_distance=3, max_distance=3).gains(10.0) == 1.0
    assert DistanceModel("inverse", reference_distance=0).gains(10.0) == 1.0


def test_bad_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown distance model"):
        DistanceModel("cubic")
    with pytest.raises(ValueError, match="rolloff"):
        DistanceModel(rolloff=-1)
    with pytest.raises(ValueError, match="min_gain"):
        DistanceModel(min_gain=0.5, max_gain=0.2)
    with pytest.raises(ValueError, match="reference_distance"):
        DistanceModel(reference_distance=math.nan)
    with pytest.raises(ValueError, match="unknown distance preset"):
        DistanceModel.preset("fmod")
    with pytest.raises(TypeError, match="unexpected"):
        DistanceModel.preset("godot_inverse", unit=3)


def _godot(model: str, d: np.ndarray, unit_size: float, max_db: float, max_distance: float) -> np.ndarray:
    """Godot 4 AudioStreamPlayer3D::_get_attenuation_db + max_distance fade, transcribed."""
    r = d / unit_size
    eps = 1e-5
    lin = {
        "inverse": 1 / (r + eps),
        "inverse_square": 1 / (r * r + eps),
        "logarithmic": (r + eps) ** -math.log(10),
    }
    g = np.minimum(lin[model], 10 ** (max_db / 20))
    if max_distance > 0:
        g = g * np.maximum(0.0, 1 - d / max_distance)
    return g


@pytest.mark.parametrize("model", ["inverse", "inverse_square", "logarithmic"])
@pytest.mark.parametrize(("unit_size", "max_db", "max_distance"), [(10.0, 3.0, 0.0), (2.0, 0.0, 40.0)])
def test_godot_presets_match_godot_formulas(
    model: str, unit_size: float, max_db: float, max_distance: float
) -> None:
    d = np.array([0.5, 1.0, 3.0, 10.0, 20.0, 35.0, 60.0])
    dm = DistanceModel.preset(f"godot_{model}", unit_size=unit_size, max_db=max_db, max_distance=max_distance)
    np.testing.assert_allclose(dm.gains(d), _godot(model, d, unit_size, max_db, max_distance), rtol=1e-4)


def test_godot_equivalences_from_reference() -> None:
    # Godot INVERSE with max_db 0 == OpenAL INVERSE_CLAMPED, REF = unit_size, rolloff 1.
    d = np.linspace(0.1, 100, 50)
    godot = DistanceModel.preset("godot_inverse", unit_size=4.0, max_db=0.0)
    openal = DistanceModel("inverse_clamped", reference_distance=4.0)
    np.testing.assert_allclose(godot.gains(d), openal.gains(d), rtol=1e-12)
    assert DistanceModel.preset("godot_inverse_square").rolloff == 2.0
    assert DistanceModel.preset("godot_logarithmic").rolloff == pytest.approx(math.log(10))


def test_webaudio_presets() -> None:
    d = np.array([0.5, 3.0, 5000.0, 20000.0])
    inv = DistanceModel.preset("webaudio_inverse").gains(d)
    np.testing.assert_allclose(inv, [1.0, 1 / 3, 1 / 5000, 1 / 20000])  # no max clamp
    lin = DistanceModel.preset("webaudio_linear").gains(d)
    np.testing.assert_allclose(lin, [1.0, 1 - 2 / 9999, 1 - 4999 / 9999, 0.0])
    assert DistanceModel.preset("webaudio_linear", rolloff_factor=3).rolloff == 1.0  # spec clamps to [0, 1]
    exp = DistanceModel.preset("webaudio_exponential", ref_distance=2, rolloff_factor=2).gains(d)
    np.testing.assert_allclose(exp, [1.0, (3 / 2) ** -2, 2500.0**-2, 10000.0**-2])


def test_vivox_aliases() -> None:
    dm = DistanceModel.preset(
        "vivox_inverse", conversational_distance=2, audible_distance=30, fade_intensity=1
    )
    np.testing.assert_allclose(dm.gains([1, 2, 8, 30, 31]), [1, 1, 0.25, 2 / 30, 0])
    lin = DistanceModel.preset(
        "vivox_linear", conversational_distance=1, audible_distance=11, fade_intensity=0.5
    )
    np.testing.assert_allclose(lin.gains([6, 11, 12]), [0.75, 0.5, 0.0])


def test_every_preset_builds() -> None:
    for name in PRESETS:
        g = DistanceModel.preset(name).gains(np.linspace(0, 50, 11))
        assert np.all(np.isfinite(g)) and np.all(g >= 0)
