"""HubbubWorld (real Godot) against a scripted protocol server in this process.

The live server cannot forward voice to WebSocket clients yet (that needs the media backend), so this
server plays that part with the real encoders (world.protocol, world.voice_codec): a participant enters,
walks and talks (adpcm16k), a stereo bed plays (ulaw16k, ch 2), speakers change, undecodable frames,
an error and a JSON text frame arrive. In the other direction it decodes the voice Godot captured from a
300 Hz tone on its capture bus: the GDScript encoder -> WebSocket -> Python decoder chain, checked for
level and pitch.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve

from world import protocol
from world import voice_codec as vc

from .conftest import GodotProject

pytestmark = pytest.mark.godot

N = vc.FRAME_SAMPLES


def tone(freq: float, amp: float, start: int) -> np.ndarray:
    t = (np.arange(N) + start) / vc.SAMPLE_RATE
    return vc.float_to_int16(amp * np.sin(2 * np.pi * freq * t))


class ScriptedServer:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.voice: list[dict[str, Any]] = []
        self.join: dict[str, Any] | None = None

    async def handler(self, ws: ServerConnection) -> None:
        self.join = protocol.parse(await ws.recv())
        send = lambda m: ws.send(protocol.encode(m))  # noqa: E731
        await send({
            "t": "welcome", "v": 1, "participant_id": 42, "identity": "godot", "name": "Godot",
            "grants": {}, "resume": "r1", "ice_servers": [],
            "world": {"name": "scripted", "tick_rate": 20, "audio": {
                "distance_model": "inverse_clamped", "reference_distance": 1.5, "rolloff": 1.0,
                "max_distance": 30.0, "pan_law": "godot"}},
            "spawn": {"p": [2.5, 0.0, -1.5], "q": [0.0, 0.0, 0.0, 1.0]},
        })  # fmt: skip
        await send({"t": "enter", "participants": [
            {"id": 7, "identity": "bot", "name": "Bot", "p": [0.0, 0.0, -2.0], "q": [0, 0, 0, 1.0],
             "audio": True, "video": False}]})  # fmt: skip
        reader = asyncio.create_task(self.read(ws))
        encoder = vc.VoiceEncoder("adpcm16k")
        bed = vc.VoiceEncoder("ulaw16k", channels=2)
        for i in range(150):  # 3 s at the real 50 frames/s pace
            await send({"t": "voice", "from": 7, "codec": "adpcm16k", "seq": i,
                        "pcm": encoder.encode(tone(440, 0.25, i * N))})  # fmt: skip
            stereo = np.stack([tone(220, 0.1, i * N), tone(220, 0.1, i * N)], axis=1)
            await send({"t": "voice", "from": None, "codec": "ulaw16k", "seq": i, "ch": 2,
                        "pcm": bed.encode(stereo)})  # fmt: skip
            if i % 2 == 0:
                z = -2.0 - 0.04 * i
                pos, rot = np.array([[0.0, 0.0, z]]), np.array([[0, 0, 0, 1.0]])
                await send(protocol.pack_poses(i, np.array([7]), pos, rot))
            if i == 20:
                await send({"t": "speakers", "ids": [7], "levels": [-15.0]})
            if i == 60:
                await send({"t": "speakers", "ids": [], "levels": []})
            if i == 70:
                await ws.send(b"\xc1")  # never valid msgpack
                # a voice frame of the wrong size, and a poses batch whose arrays disagree
                await send({"t": "voice", "from": 7, "codec": "adpcm16k", "seq": 0, "pcm": b"x"})
                await send({"t": "poses", "tick": 1, "ids": b"\x07\x00\x00\x00", "pos": b"", "rot": b""})
                await send(protocol.error(protocol.ErrorCode.INVALID_FIELD, "pose.p: must be a list", "pose"))
            if i == 80:  # a JSON text frame: bytes travel as base64
                data = {"t": "data", "from": 7, "topic": "json", "payload": b"\x00\xffhi"}
                await ws.send(protocol.encode(data, binary=False))
            await asyncio.sleep(0.02)
        await send({"t": "exit", "ids": [7]})
        await reader

    async def read(self, ws: ServerConnection) -> None:
        async for frame in ws:
            msg = protocol.parse(frame)
            self.received.append(msg)
            if msg["t"] == "voice":
                self.voice.append(msg)
            if msg["t"] == "leave":
                await ws.close(1000, "left")
                return


async def test_godot_against_scripted_server(godot_project: GodotProject) -> None:
    script = ScriptedServer()
    async with serve(script.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        res = await asyncio.to_thread(godot_project.run, "test_scripted.gd", f"url=ws://127.0.0.1:{port}/rtc")
    res.assert_clean(min_passed=20)
    assert script.join is not None and script.join["transport"] == "websocket"
    types = {m["t"] for m in script.received}
    assert {"pose", "voice", "leave"} <= types, types
    # Godot's voice, decoded by the server's codec
    assert len(script.voice) >= 60
    assert all(m["codec"] == "adpcm16k" for m in script.voice)
    seqs = [m["seq"] for m in script.voice]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "voice seq must count up by one"
    pcm = np.concatenate([vc.decode_frame(m["codec"], m["pcm"]) for m in script.voice[10:]]).astype(float)
    rms = float(np.sqrt(np.mean((pcm / 32768.0) ** 2)))
    crossings = int(np.count_nonzero(np.diff(np.signbit(pcm))))
    pitch = crossings / 2 / (len(pcm) / vc.SAMPLE_RATE)
    print(f"Godot voice at the server: {len(script.voice)} frames, rms {rms:.3f}, pitch {pitch:.1f} Hz")
    assert rms == pytest.approx(0.3 / np.sqrt(2), rel=0.05)
    assert pitch == pytest.approx(300, abs=5)
    print("\n".join(res.info), f"\n{res.passed} checks in {res.seconds:.1f} s")
