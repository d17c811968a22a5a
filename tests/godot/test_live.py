"""Godot against a live server: `hubbub serve examples/plaza.toml` on a free port, tokens from
`hubbub token`, and tests/godot/test_live.gd driving two HubbubWorld nodes over the WebSocket transport."""

from __future__ import annotations

import urllib.request

import pytest

from .conftest import GodotProject, HubbubServer, build_demo, mint

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
    # The server's own view of the session (its Prometheus counters)
    m = metrics(plaza_server)
    assert m.get('hubbub_messages_in_total{type="voice"}', 0) >= 40, m
    assert m.get('hubbub_messages_in_total{type="data"}', 0) == 1, m
    assert m.get('hubbub_messages_in_total{type="leave"}', 0) == 2, m
    assert m.get("hubbub_poses_accepted_total", 0) >= 10, m
    assert m.get('hubbub_poses_rejected_total{reason="speed"}', 0) >= 1, m
    assert m.get('hubbub_poses_rejected_total{reason="bounds"}', 0) >= 1, m
    assert not any(k.startswith("hubbub_errors_total") and v > 0 for k, v in m.items()), m
    print("\n".join(res.info), f"\n{res.passed} checks in {res.seconds:.1f} s")


def metrics(server: HubbubServer) -> dict[str, float]:
    """hubbub's /metrics (Prometheus text) as {'name{labels}': value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_demo_project_joins(
    godot_wrapper: str, plaza_server: HubbubServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The demo's main scene, headless, joins plaza via the server's /dev/token and runs its HUD loop."""
    path = tmp_path_factory.mktemp("demo")
    build_demo(path)
    demo = GodotProject(godot_wrapper, path)
    imported = demo.godot("--import", timeout=300)
    assert imported.returncode == 0, imported.explain()
    res = demo.godot(
        "--",
        f"--server=http://127.0.0.1:{plaza_server.port}",
        "--name=Demo",
        "--quit-after=5",
        timeout=60,
    )
    assert res.returncode == 0, res.explain()
    assert "hubbub demo: joined plaza as #" in res.stdout, res.explain() + plaza_server.log()
    assert "SCRIPT ERROR" not in res.stderr, res.explain()
    assert "Demo" in plaza_server.log() or "joined as" in plaza_server.log()
