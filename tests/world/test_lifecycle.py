"""Hot reload with live sessions, graceful shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from tests.world.conftest import KEY, SECRET, Harness, start_harness, token
from world.config import load_config
from world.protocol import CloseCode

CONFIG = """
[server]
host = "127.0.0.1"
port = 0
keys = {{ {key} = "{secret}" }}

[[worlds]]
name = "plaza"
bounds = {{ min = [-50, -10, -50], max = [50, 20, 50] }}
tick_rate = 50

[worlds.interest]
audio = {{ forward_radius = {forward}, hearing_radius = 20 }}
position = {{ radius = 30, tiers = [{{ distance = 30, rate_hz = 50 }}] }}
"""


def write(path: Path, forward: float, extra: str = "") -> None:
    path.write_text(CONFIG.format(key=KEY, secret=SECRET, forward=forward) + extra)
    # mtime resolution can be coarse: make every write visible to the poller
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000 * int(forward * 10)))


async def wait_for(predicate: object, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_hot_reload_changes_radii_keeps_sessions(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    write(path, 5.0)
    h = await start_harness(load_config(path), config_path=path, reload_poll_s=0.05)
    try:
        a, wa = await h.joined("ann")
        b, wb = await h.joined("bob")
        world = h.server.worlds["plaza"]
        # Put bob 8 m from ann: outside forward radius 5 (mixed), inside 10 after the reload.
        world.table.set_pose(wb["participant_id"], [8, 0, 0], [0, 0, 0, 1])
        ann = wa["participant_id"]

        def forwarded() -> tuple[int, ...]:
            frame = world.media.last_frame  # type: ignore[attr-defined]
            view = frame.listeners.get(ann) if frame else None
            return view.audio_forward if view else ()

        await wait_for(lambda: world.media.last_frame is not None and ann in world.media.last_frame.listeners)  # type: ignore[attr-defined]
        assert forwarded() == ()
        write(path, 10.0)
        await wait_for(lambda: world.cfg.interest.audio.forward_radius == 10.0)
        await wait_for(lambda: forwarded() == (wb["participant_id"],))
        # Both sessions survived the reload.
        for c in (a, b):
            await c.send({"t": "ping", "id": 1})
            assert (await c.expect("pong"))["id"] == 1

        # A broken file is rejected: the old config stays, sessions stay.
        path.write_text(CONFIG.format(key=KEY, secret=SECRET, forward=-1))
        os.utime(path, ns=(0, 10**18))
        await wait_for(
            lambda: (
                h.server.metrics.registry.get_sample_value(
                    "hubbub_config_reloads_total", {"result": "rejected"}
                )
                == 1
            )
        )
        assert world.cfg.interest.audio.forward_radius == 10.0
        await a.send({"t": "ping", "id": 2})
        assert (await a.expect("pong"))["id"] == 2
    finally:
        await h.server.stop()


async def test_sighup_reloads(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    write(path, 5.0)
    h = await start_harness(load_config(path), config_path=path, reload_poll_s=3600)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, h.server.reload)
    try:
        write(path, 7.0)
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(lambda: h.server.worlds["plaza"].cfg.interest.audio.forward_radius == 7.0)
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        await h.server.stop()


async def test_graceful_shutdown_sends_bye_and_1001(harness: Harness) -> None:
    a, _ = await harness.joined("ann")
    b = await harness.client(binary=False)
    await b.join(token("bob"))
    await harness.server.stop()
    for c in (a, b):
        bye = await c.expect("bye")
        assert bye == {"t": "bye", "code": 1001, "reason": "server shutting down"}
        assert await c.closed() == CloseCode.GOING_AWAY
    with pytest.raises(OSError):
        await harness.client()
