"""Phase 2 of the live Godot tests: Godot among Python WebRTC bots on `hubbub serve examples/plaza.toml`.

Two real aiortc bots (hubbub_client) join first: one walks back and forth, one stands still and speaks
(the SDK's test tone). tests/godot/test_voice_bots.gd then checks, in real Godot over the WebSocket
transport, that the bots' avatars appear and move and that the speaker's voice arrives forwarded when
near and in the mixed bed, quieter, when far: WebRTC voice crossing to a WebSocket client through the
server's voice bridge (sfu/voice_bridge.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from hubbub_client import connect

from .conftest import GodotProject, HubbubServer, mint

pytestmark = pytest.mark.godot

SPOT = (10.0, 0.0, 10.0)  # where the speaking bot stands


class Bots:
    """The bots on their own event loop in a thread (the Godot run blocks the test's thread)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.ids: dict[str, int] = {}
        self.error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced by the test
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        speaker = await connect(self.url, mint("bot-speaker"), publish=True, subscribe=False,
                                decode_audio=False, reconnect=False, timeout=60)
        mover = await connect(self.url, mint("bot-walker"), publish=False, subscribe=False,
                              decode_audio=False, reconnect=False, timeout=60)
        try:
            assert await speaker.walk_to(SPOT, speed=7.0)
            assert await mover.walk_to((-6.0, 0.0, -6.0), speed=7.0)
            assert speaker.participant_id is not None and mover.participant_id is not None
            self.ids = {"speaker": speaker.participant_id, "mover": mover.participant_id}
            self.ready.set()
            ends = [(6.0, 0.0, -6.0), (-6.0, 0.0, -6.0)]
            i = 0
            while not self._stop.is_set():
                walk = asyncio.ensure_future(mover.walk_to(ends[i % 2], speed=3.0))
                stop = asyncio.ensure_future(self._stop.wait())
                await asyncio.wait([walk, stop], return_when=asyncio.FIRST_COMPLETED)
                walk.cancel()
                stop.cancel()
                i += 1
        finally:
            await speaker.close()
            await mover.close()

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(20)


@pytest.fixture
def bots(plaza_server: HubbubServer) -> Iterator[Bots]:
    b = Bots(plaza_server.url)
    try:
        assert b.ready.wait(90), "bots did not join"
        if b.error is not None:
            raise b.error
        yield b
    finally:
        b.stop()


def test_godot_sees_bots_move_and_hears_voice_fall_with_distance(
    godot_project: GodotProject, plaza_server: HubbubServer, bots: Bots
) -> None:
    res = godot_project.run(
        "test_voice_bots.gd",
        f"url={plaza_server.url}",
        f"token={mint('godot-player')}",
        f"speaker={bots.ids['speaker']}",
        f"mover={bots.ids['mover']}",
        f"sx={SPOT[0]}",
        f"sz={SPOT[2]}",
        timeout=120,
    )
    assert res.returncode == 0 and res.failed == 0, res.explain() + "\n--- server\n" + plaza_server.log()
    res.assert_clean(min_passed=10)
    print("\n".join(res.info), f"\n{res.passed} checks in {res.seconds:.1f} s")
