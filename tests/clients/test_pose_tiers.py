"""Poses over the WebRTC `state` channel: only avatars in interest, each at its tier's rate.

plaza: position radius 50 m, tiers 10 m → 20 Hz, 25 m → 10 Hz, 50 m → 2 Hz; tick 20 Hz.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import hubbub_client as hb
import pytest
from hubbub_client.testing import LocalServer

PLAZA = Path(__file__).resolve().parents[2] / "examples" / "plaza.toml"
LISTENER = (50.0, 0.0, 50.0)
NEAR = (55.0, 0.0, 50.0)  # 5 m: first tier, 20 Hz
MIDDLE = (50.0, 0.0, 68.0)  # 18 m: second tier, 10 Hz
FAR = (-30.0, 0.0, -30.0)  # 113 m: outside the position radius, never sent

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    srv = await asyncio.to_thread(LocalServer(PLAZA, overrides={"max_speed": "40.0"}).start)
    try:
        yield srv
    finally:
        await asyncio.to_thread(srv.stop)


async def test_poses_only_in_interest_and_at_tier_rates(server: LocalServer) -> None:
    names = ("Listener", "Near", "Middle", "Far")
    clients = [await hb.connect(server.url, server.token(name), publish=False, decode_audio=False)
               for name in names]
    listener, near, middle, far = clients
    try:
        arrived = await asyncio.gather(*(c.walk_to(p, 30.0) for c, p in zip(
            clients, (LISTENER, NEAR, MIDDLE, FAR), strict=True)))
        assert all(arrived), arrived
        await asyncio.sleep(1.0)  # let the tiers settle after the walk

        counts: Counter[int] = Counter()
        listener.on(hb.PosesUpdated, lambda ev: counts.update(ev.poses.keys()))
        t0 = time.monotonic()
        await asyncio.sleep(3.0)
        seconds = time.monotonic() - t0

        n, m, f = near.participant_id, middle.participant_id, far.participant_id
        assert n is not None and m is not None and f is not None
        assert counts[f] == 0 and f not in listener.participants, "out of interest"
        near_hz, middle_hz = counts[n] / seconds, counts[m] / seconds
        # The state channel is lossy by design and the machine is shared: check rates with margins.
        assert 10.0 <= near_hz <= 22.0, near_hz
        assert 5.0 <= middle_hz <= 11.0, middle_hz
        assert near_hz > 1.5 * middle_hz, (near_hz, middle_hz)
        # The near avatar's pose is where it stands (quantized to millimetres).
        pose = listener.participants[n].pose
        assert abs(pose.p[0] - NEAR[0]) < 0.05 and abs(pose.p[2] - NEAR[2]) < 0.05, pose
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
