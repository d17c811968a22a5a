"""The SFU behind the world's MediaBackend seam (world/sfu_backend.py), driven by a tick frame.

Only the parts of `world.media.TickFrame` the backend reads are built here, with real aiortc peers.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace

import msgpack
import numpy as np
import pytest
from sfu_client import TestClient, tone_level

from world.config import load_config
from world.media import MediaBackend
from world.sfu_backend import SfuMedia

MEDIA_BACKEND_METHODS = (
    "bind",
    "add_participant",
    "set_answer",
    "add_ice_candidate",
    "remove_participant",
    "apply_tick",
    "send",
    "voice_in",
    "audio_levels",
    "stats",
)  # world.media.MediaBackend


def view(audio_forward: tuple[int, ...] = ()) -> SimpleNamespace:
    """A world.media.ListenerView."""
    return SimpleNamespace(audio_forward=audio_forward, audio_mixed=(), flat=frozenset(), video=())


pytestmark = pytest.mark.timeout(60)


class Events:
    def __init__(self) -> None:
        self.frames: list[tuple[int, str, bytes]] = []
        self.closed: list[int] = []
        self.tracks: dict[int, tuple[bool, bool]] = {}

    def on_client_frame(self, pid: int, channel: str, data: bytes) -> None:
        self.frames.append((pid, channel, data))

    def send_to_websocket(self, pid: int, data: bytes, *, droppable: bool) -> bool:
        return False

    def on_media_closed(self, pid: int) -> None:
        self.closed.append(pid)

    def on_tracks(self, pid: int, *, audio: bool, video: bool) -> None:
        self.tracks[pid] = (audio, video)


async def test_world_drives_the_sfu_through_the_media_backend_protocol() -> None:
    cfg = load_config(Path(__file__).parents[2] / "examples" / "plaza.toml")
    backend = SfuMedia(cfg.worlds[0], cfg.server)
    assert isinstance(backend, MediaBackend)
    assert all(callable(getattr(backend, m, None)) for m in MEDIA_BACKEND_METHODS)
    events = Events()
    backend.bind(events)
    speaker, listener = TestClient(tone_hz=600), TestClient()
    try:
        for pid, client, pub, sub in ((1, speaker, True, False), (2, listener, False, True)):
            offer = await backend.add_participant(pid, publish=pub, subscribe=sub)
            assert offer is not None
            await backend.set_answer(pid, await client.answer(offer))
            await client.wait_open()
        assert await backend.add_participant(3, publish=True, subscribe=True, transport="websocket") is None
        with pytest.raises(ValueError):
            await backend.set_answer(99, "v=0")

        # The parts of world.media.TickFrame the backend reads (the rest is the world's business).
        views = {2: view(audio_forward=(1,))}
        frame = SimpleNamespace(
            ids=np.array([1, 2], dtype=np.uint32),
            positions=np.array([[1, 0, 0], [0, 0, 0]], dtype=np.float32),
            quats=np.array([[0, 0, 0, 1], [0, 0, 0, 1]], dtype=np.float32),
            changed=frozenset({2}),
            view=lambda pid: views.get(pid, view()),
            row_of={1: 0, 2: 1},
            tick=1,
        )
        backend.apply_tick(frame)
        await asyncio.sleep(1.2)
        t1 = time.monotonic()
        pcm = listener.decoded(listener.slots["audio"][0], t1 - 0.8, t1)[:, 0]
        assert tone_level(pcm, 600) > 0.2
        levels = backend.audio_levels(np.array([1, 2]))
        assert levels is not None and levels[0] > 0.05 and levels[1] == 0.0
        backend.apply_tick(frame)
        assert events.tracks == {1: (True, False), 2: (False, False)}, "who really publishes audio"

        # Active speakers: the listener who hears speaker 1 is told so on `control`.
        for _ in range(12):
            backend.apply_tick(frame)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        speakers = [msgpack.unpackb(d) for ch, d in listener.messages if ch == "control"]
        speakers = [m for m in speakers if m.get("t") == "speakers"]
        assert speakers and speakers[-1]["ids"] == [1], speakers
        # Out of hearing: the list no longer names speaker 1 (privacy applies to metadata too).
        views[2] = view()
        backend.apply_tick(frame)
        await asyncio.sleep(0.3)
        speakers = [msgpack.unpackb(d) for ch, d in listener.messages if ch == "control"]
        assert [m for m in speakers if m.get("t") == "speakers"][-1]["ids"] == []

        listener.channels["state"].send(b"pose-bytes")
        await asyncio.sleep(0.5)
        assert (2, "state", b"pose-bytes") in events.frames
        assert backend.send(2, "control", b"hi")
        stats = backend.stats()
        assert stats["participants"] == 2 and stats["rtp_packets_out"] > 0 and stats["rtp_packets_in"] > 0

        await listener.pc.close()
        deadline = time.monotonic() + 5
        while events.closed != [2] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert events.closed == [2], "a closed peer is reported to the world"
    finally:
        await listener.close()
        await speaker.close()
        await backend.sfu.close()
