"""Zones end to end: `hubbub serve examples/town_hall.toml` with real WebRTC clients.

The stage is heard across its whole audience area, far beyond the hearing radius (15 m), as a flat
(unattenuated) forwarded voice; the private press booth lets nothing in and nothing out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import hubbub_client as hb
import pytest
from hubbub_client.testing import LocalServer

HALL = Path(__file__).resolve().parents[2] / "examples" / "town_hall.toml"
STAGE = (0.0, 0.0, -55.0)
DOORS = (0.0, 0.0, 30.0)  # 85 m from the stage: far outside hearing_radius, inside the audience
BOOTH = (30.0, 0.0, 30.0)  # the private booth's centre
BY_THE_BOOTH = (30.0, 0.0, 24.5)  # 5.5 m from the centre: outside the booth, well inside hearing range

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    # Faster walking so the test does not spend 20 s crossing the hall.
    srv = await asyncio.to_thread(LocalServer(HALL, overrides={"max_speed": "40.0"}).start)
    try:
        yield srv
    finally:
        await asyncio.to_thread(srv.stop)


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        await asyncio.sleep(0.1)


async def test_stage_heard_across_the_hall_and_the_booth_leaks_nothing(server: LocalServer) -> None:
    mayor = await hb.connect(server.url, server.token("Mayor"), publish=hb.audio.tone(440.0, 0.3),
                             decode_audio=False)
    reporter = await hb.connect(server.url, server.token("Reporter"), publish=hb.audio.tone(660.0, 0.3))
    citizen = await hb.connect(server.url, server.token("Citizen"), publish=False)
    neighbour = await hb.connect(server.url, server.token("Neighbour"), publish=False)
    clients = (mayor, reporter, citizen, neighbour)
    try:
        m, r = mayor.participant_id, reporter.participant_id
        assert m is not None and r is not None
        arrived = await asyncio.gather(
            mayor.walk_to(STAGE, 30.0), reporter.walk_to(BOOTH, 30.0),
            citizen.walk_to(DOORS, 30.0), neighbour.walk_to(BY_THE_BOOTH, 30.0),
        )
        assert all(arrived), arrived

        # The citizen at the doors hears the mayor on stage as a flat forwarded voice.
        await until(lambda: citizen.slots.slot_of(m) is not None and citizen.level_of(m) > -30, 15,
                    "the stage reaches the back of the hall")
        slot = citizen.slots.slot_of(m)
        assert slot is not None and citizen.slots.is_flat(slot), "stage voices are unattenuated"
        assert m in citizen.participants, "whoever you hear is announced"
        await until(lambda: m in citizen.speakers, 10, "the mayor shows as an active speaker")

        # The booth: the reporter inside never hears the stage, and nobody outside hears the reporter,
        # not even the neighbour standing 5.5 m away (within forward range of the booth's centre).
        await asyncio.sleep(2.0)
        assert reporter.slots.slot_of(m) is None
        assert reporter.mixed_level.dbfs < -70, reporter.mixed_level.dbfs
        for outsider in (citizen, neighbour):
            assert outsider.slots.slot_of(r) is None
            assert outsider.level_of(r) < -90
        assert neighbour.mixed_level.dbfs < -70, neighbour.mixed_level.dbfs
        assert r not in citizen.speakers and r not in neighbour.speakers
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
