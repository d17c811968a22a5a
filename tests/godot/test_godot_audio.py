"""The addon's audio path inside real Godot (tests/godot/test_audio.gd): every script compiles, the
16 kHz resampler, the distance-model mapping, capture through a bus, and received voice measured on
the Master bus after Godot's spatialisation at 1/2/4/8 m against the server's distance gains."""

from __future__ import annotations

import re

import pytest

from .conftest import GodotProject

pytestmark = pytest.mark.godot


def test_audio_path_in_godot(godot_project: GodotProject) -> None:
    res = godot_project.run("test_audio.gd", timeout=180)
    res.assert_clean(min_passed=60)
    ratios = [line for line in res.info if re.search(r"m -> [0-9.]+ \(x", line)]
    assert len(ratios) == 6, res.explain()  # two models x three distances, each checked inside Godot
    print("\n".join(res.info), f"\n{res.passed} checks in {res.seconds:.1f} s")
