"""Two browser participants and Python bots share one world served by a real `hubbub serve` subprocess
(examples/plaza.toml: forward 8 m, hearing 30 m, inverse_clamped ref 1.5 m). Everything is asserted from
inside the pages: a near speaker is heard, quieter as the avatar walks away, silent beyond the hearing
radius, and the map shows the other avatars."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import hubbub_client as hb
import pytest
from hubbub_client.testing import LocalServer

from .browser import OUTPUT, chromium, open_client, until, walk

pytestmark = pytest.mark.chromium
PLAZA = Path(__file__).resolve().parents[2] / "examples" / "plaza.toml"


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    srv = await asyncio.to_thread(LocalServer(PLAZA).start)
    try:
        yield srv
    finally:
        await asyncio.to_thread(srv.stop)


async def test_two_browsers_and_bots_share_a_world(server: LocalServer) -> None:
    # A Python bot speaks a steady tone at (20, 0, 0), away from the spawn points; a silent bot wanders
    # nearby, so the map has a moving avatar too.
    speaker = await hb.connect(server.url, server.token("Speaker"), publish=hb.audio.tone(440.0, 0.3),
                               decode_audio=False)
    walker = await hb.connect(server.url, server.token("Walker"), publish=False, decode_audio=False)
    for bot in (speaker, walker):  # shown by pytest when the test fails
        bot.on(hb.PoseCorrected, lambda e, bot=bot: print(f"{bot.name}: pose corrected {e}"))
        bot.on(hb.Disconnected, lambda e, bot=bot: print(f"{bot.name}: disconnected {e}"))
        bot.on(hb.Joined, lambda e, bot=bot: print(f"{bot.name}: joined again, resumed={e.resumed}"))
    async with chromium() as browser:
        try:
            ann = await open_client(browser, server.http_url, "Ann")
            bob = await open_client(browser, server.http_url, "Bob")
            ann_id = await ann.evaluate("hubbub.state.pid")
            bob_id = await bob.evaluate("hubbub.state.pid")
            s = speaker.participant_id

            # Browser to browser: Ann and Bob spawn within a few metres; Bob hears Ann's (fake) microphone.
            await until(bob, f"hubbub.heardLevelOf({ann_id}) > -60", timeout=20)
            # Bob mutes and stays at the spawn; from now on only the speaker bot makes sound near Ann.
            await bob.evaluate("hubbub.setMuted(true)")
            assert all(await asyncio.gather(
                speaker.walk_to((20.0, 0.0, 0.0), 5.0), walker.walk_to((18.0, 0.0, 4.0), 5.0)
            ))
            await walk(ann, 22, 0)

            # Near (2 m): Ann hears the speaker through its own slot and panner.
            await until(ann, f"hubbub.heardLevelOf({s}) > -40", timeout=15)
            # The map shows the other avatars, with their names.
            await until(ann, f"[{bob_id}, {s}, {walker.participant_id}].every(id => "
                             "hubbub.avatars().some(a => a.id === id))", timeout=10)
            names = {a["name"] for a in await ann.evaluate("hubbub.avatars()")}
            assert {"Bob", "Speaker", "Walker"} <= names
            OUTPUT.mkdir(exist_ok=True)
            await ann.screenshot(path=str(OUTPUT / "e2e_world_ann.png"))
            # The level of a page is the loudest 50 ms block of the last 1.5 s; each phase waits (bounded)
            # for the level to settle, because on a loaded machine slots re-point a few ticks late.
            heard = f"(hubbub.heardLevelOf({s}) > -120 ? hubbub.heardLevelOf({s}) : hubbub.mixedLevel())"
            samples = []
            for _ in range(8):
                await asyncio.sleep(0.5)
                samples.append(await ann.evaluate(heard))
            near = max(samples)
            assert near > -40, (samples, await ann.evaluate("JSON.stringify({l: hubbub.levels(), "
                                                            "s: hubbub.state.slots, p: hubbub.state.pose})"))

            # 6 m: still forwarded, the panner attenuates (inverse, ref 1.5: 0.75 -> 0.25 = -9.5 dB).
            await walk(ann, 26, 0)
            mid = await until(ann, f"hubbub.heardLevelOf({s}) < {near - 4} && hubbub.heardLevelOf({s}) > -75 "
                                   f"&& hubbub.heardLevelOf({s})", timeout=10)
            assert near - mid < 16, (near, mid)

            # 16 m: in the server's mixed bed (no longer in a slot), quieter still but heard.
            await walk(ann, 36, 0)
            far = await until(ann, f"hubbub.heardLevelOf({s}) === -120 && hubbub.mixedLevel() < {mid - 2} "
                                   "&& hubbub.mixedLevel() > -75 && hubbub.mixedLevel()", timeout=10)

            # 40 m, beyond the hearing radius: silence, neither forwarded nor mixed.
            await walk(ann, 60, 0)
            await until(ann, f"hubbub.heardLevelOf({s}) === -120 && hubbub.mixedLevel() < -75", timeout=10)
            await asyncio.sleep(1.0)
            assert await ann.evaluate(f"hubbub.heardLevelOf({s})") == -120
            assert await ann.evaluate("hubbub.mixedLevel()") < -75
            print(f"heard levels (dBFS): near {near:.1f}, 6 m {mid:.1f}, 16 m (mixed) {far:.1f}, 40 m silent")
            stats = await ann.evaluate("hubbub.stats()")
            assert stats["packets_in"] > 0 and stats["rtt_ms"] is not None
            await ann.screenshot(path=str(OUTPUT / "e2e_world_ann_far.png"))
            assert ann.errors == [] and bob.errors == []  # type: ignore[attr-defined]
        finally:
            await asyncio.gather(speaker.close(), walker.close())
