"""Shared protocol and codec vectors, checked inside real Godot 4 (tests/godot/test_vectors.gd)."""

from __future__ import annotations

import pytest

from .conftest import GodotProject

pytestmark = pytest.mark.godot


def test_vectors_round_trip_in_godot(godot_project: GodotProject) -> None:
    res = godot_project.run("test_vectors.gd")
    res.assert_clean(min_passed=200)
    assert any(line.startswith("msgpack vectors checked:") for line in res.info)
    print("\n".join(res.info), f"\n{res.passed} checks in {res.seconds:.1f} s")
