"""Godot against a live server: `hubbub serve examples/plaza.toml` on a free port, tokens from
`hubbub token`, and tests/godot/test_live.gd driving two HubbubWorld nodes over the WebSocket transport."""

from __future__ import annotations

import pytest

from .conftest import GodotProject, HubbubServer, mint

pytestmark = pytest.mark.godot


def test_join_pose_corrections_data_voice_leave(
    godot_project: GodotProject, plaza_server: HubbubServer
) -> None:
    res = godot_project.run(
        "test_live.gd",
        f"url={plaza_server.url}",
        f"a={mint('godot-a')}",
        f"b={mint('godot-b')}",
        timeout=120,
    )
    assert res.returncode == 0 and res.failed == 0, res.explain() + "\n--- server\n" + plaza_server.log()
    res.assert_clean(min_passed=30)
    print("\n".join(res.info), f"\n{res.passed} checks in {res.seconds:.1f} s")
