"""HubbubWorld's reconnect-with-backoff against a real server that starts late and then restarts."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import GodotProject, HubbubServer, free_port, mint

pytestmark = pytest.mark.godot


def test_reconnects_with_backoff(godot_project: GodotProject) -> None:
    port = free_port()
    token = mint("godot-reconnect")
    joined = threading.Event()

    def watch(line: str) -> None:
        if line == "INFO phase: joined":
            joined.set()

    servers: list[HubbubServer] = []
    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(
            godot_project.run,
            "test_reconnect.gd",
            f"url=ws://127.0.0.1:{port}/rtc",
            f"token={token}",
            timeout=120,
            on_line=watch,
        )
        try:
            time.sleep(2.5)  # the client is retrying against a closed port meanwhile
            servers.append(HubbubServer(port=port))
            assert joined.wait(60), "Godot never joined"
            servers[-1].stop()  # the server goes away (bye 1001) ...
            time.sleep(1.0)
            servers.append(HubbubServer(port=port))  # ... and comes back on the same port
            res = run.result(timeout=120)
        finally:
            for s in servers:
                s.stop()
    logs = "\n".join(f"--- server {i}\n{s.log()}" for i, s in enumerate(servers))
    assert res.returncode == 0 and res.failed == 0, res.explain() + "\n" + logs
    res.assert_clean(min_passed=8)
    print("\n".join(res.info))
