"""The browser client in real headless Chromium against real aiortc peers (the SDK tests' server
double): the WebRTC answer to a server offer, slot-to-avatar tagging, Web Audio panners that attenuate
with distance, poses decoded from the binary batch, and poses sent on the state channel at ≤ 20 Hz."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from clients.server_double import ServerDouble, wait_for
from hubbub_client import Pose, wire

from .browser import OUTPUT, chromium, open_client, until

pytestmark = pytest.mark.chromium
STATIC = Path(__file__).resolve().parents[2] / "world" / "static"


async def test_browser_answers_offer_tags_slots_and_spatializes() -> None:
    double = ServerDouble(freqs=(440.0, 1000.0), slot_pids=(7, 9), static_dir=STATIC)
    async with double as server, chromium() as b:
        page = await open_client(b, f"http://127.0.0.1:{server.port}", "Ann", world="w")
        # Both slots carry audio, tagged with the avatars of the slots message.
        await until(page, "hubbub.levels().length === 2 && hubbub.levels().every(l => l.raw_db > -30)")
        levels = await page.evaluate("hubbub.levels()")
        assert [lv["pid"] for lv in levels] == [7, 9]
        avatars = await page.evaluate("hubbub.avatars()")
        assert {a["id"] for a in avatars} == {7, 9}

        # The server moves avatar 7 to 12 m away with a binary poses batch; 9 stays at 1 m.
        session = server.sessions[0]
        session.control.send(wire.encode(wire.pack_poses(1, {7: Pose((0.0, 0.0, -12.0))})))
        await until(page, "hubbub.avatars().find(a => a.id === 7).z === -12")
        await asyncio.sleep(2.0)  # let the 1.5 s level window forget the old position
        levels = {lv["pid"]: lv for lv in await page.evaluate("hubbub.levels()")}
        # Same received level, but the panner attenuates the far one: inverse, ref 1 -> 1/12 ≈ -21.6 dB.
        assert abs(levels[7]["raw_db"] - levels[9]["raw_db"]) < 3
        drop = levels[9]["heard_db"] - levels[7]["heard_db"]
        assert 15 < drop < 28, levels

        # The page walks; its poses reach the server on the state channel, at most 20 per second.
        before = len(session.poses)
        t0 = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(page.evaluate("hubbub.moveTo(0, 6)"), 20)  # true on arrival (1.5 s)
        elapsed = asyncio.get_running_loop().time() - t0
        # The final pose goes out within one throttle interval of arrival.
        await wait_for(lambda: abs(session.poses[-1][1]["p"][2] - 6) < 1e-9, timeout=2)
        times = np.array([t for t, _ in session.poses[before:]])
        rate = (len(times) - 1) / max(1e-3, times[-1] - times[0])
        assert rate <= 21.0 and len(times) >= 0.5 * 20 * elapsed
        OUTPUT.mkdir(exist_ok=True)
        await page.screenshot(path=str(OUTPUT / "browser_client_double.png"))
        assert page.errors == []  # type: ignore[attr-defined]
