"""A minimal Hubbub server double for SDK tests: real websockets + real aiortc, the server's side of the
wire protocol (welcome, offer with slot transceivers, control/state channels, slots, poses), and nothing
else. It lets the SDK's tagging, throttling and reconnect be tested without the full world server, and
lets a test drop connections on demand. Integration tests against `hubbub serve` live in test_integration.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription
from hubbub_client import audio, wire


@dataclass
class Session:
    ws: Any
    pid: int
    pc: RTCPeerConnection
    control: Any = None
    state: Any = None
    poses: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)


class ServerDouble:
    """Slot i carries a tone at `freqs[i]` and claims participant `slot_pids[i]`; the mix is silence."""

    def __init__(
        self,
        freqs: tuple[float, ...] = (440.0, 1000.0),
        slot_pids: tuple[int, ...] = (7, 9),
        static_dir: Path | None = None,
    ) -> None:
        self.static_dir = static_dir
        self.freqs = freqs
        self.slot_pids = slot_pids
        self.sessions: list[Session] = []
        self.joins: list[dict[str, Any]] = []
        self.port = 0
        self._server: Any = None
        self._next_pid = 1

    async def __aenter__(self) -> ServerDouble:
        self._server = await websockets.serve(
            self._handle, "127.0.0.1", 0, process_request=self._http if self.static_dir else None
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for s in self.sessions:
            await s.pc.close()
        with contextlib.suppress(Exception):
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/rtc"

    async def drop_all(self) -> None:
        """Close every connection abruptly (as a crashed/restarted server would)."""
        for s in self.sessions:
            await s.ws.close(1011, "test drop")
            await s.pc.close()

    def _http(self, connection: Any, request: Any) -> Any:
        """Serve the browser client (and a fake /dev/token) on the same port, like the real server."""
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        path = request.path.split("?")[0]
        if path == "/rtc":
            return None
        if path == "/dev/token":
            body, ctype = b'{"token": "tok"}', "application/json"
        else:
            assert self.static_dir is not None
            target = self.static_dir / (path.lstrip("/") or "index.html")
            if not target.is_file():
                return Response(404, "Not Found", Headers([("Content-Length", "0")]), b"")
            body = target.read_bytes()
            ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        headers = Headers([("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return Response(200, "OK", headers, body)

    async def _handle(self, ws: Any) -> None:
        join = wire.decode(await ws.recv())
        self.joins.append(join)
        resumed = join.get("resume") == "resume-token"
        pid = 1 if resumed else self._next_pid
        self._next_pid += 1
        await ws.send(
            wire.encode(
                {
                    "t": "welcome", "v": 1, "participant_id": pid, "identity": f"user{pid}", "name": "u",
                    "grants": {}, "resume": "resume-token", "resumed": resumed,
                    "world": {"name": "w", "audio": {"distance_model": "inverse_clamped"}},
                    "ice_servers": [], "spawn": {"p": [0, 0, 0], "q": [0, 0, 0, 1]},
                }
            )
        )
        pc = RTCPeerConnection()
        session = Session(ws, pid, pc)
        self.sessions.append(session)
        mids: list[Any] = []
        for f in self.freqs:
            mids.append(pc.addTransceiver(audio.PcmTrack(audio.tone(f, 0.5)), direction="sendonly"))
        mixed = pc.addTransceiver(audio.PcmTrack(iter(())), direction="sendonly")
        publish = pc.addTransceiver("audio", direction="recvonly")
        session.control = pc.createDataChannel("control")
        session.state = pc.createDataChannel("state", ordered=False, maxRetransmits=0)

        @session.state.on("message")
        def on_state(frame: bytes) -> None:
            session.poses.append((time.monotonic(), wire.decode(frame)))

        @session.control.on("message")
        def on_control(frame: bytes) -> None:
            session.received.append(wire.decode(frame))

        @session.control.on("open")
        def on_open() -> None:
            session.control.send(wire.encode({"t": "slots", "audio": list(self.slot_pids), "video": []}))
            session.control.send(
                wire.encode(
                    {"t": "enter", "participants": [
                        {"id": p, "identity": f"user{p}", "name": f"n{p}", "p": [1, 0, 0], "q": [0, 0, 0, 1]}
                        for p in self.slot_pids
                    ]}
                )
            )

        await pc.setLocalDescription(await pc.createOffer())
        await ws.send(
            wire.encode(
                {
                    "t": "offer", "sdp": pc.localDescription.sdp,
                    "slots": {
                        "audio": [t.mid for t in mids], "mixed": mixed.mid, "video": [],
                        "publish_audio": publish.mid, "publish_video": None,
                    },
                }
            )
        )
        try:
            async for frame in ws:
                msg = wire.decode(frame)
                session.received.append(msg)
                if msg["t"] == "answer":
                    await pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "answer"))
                elif msg["t"] == "ping":
                    await ws.send(wire.encode({"t": "pong", "id": msg["id"]}))
                elif msg["t"] == "pose":
                    session.poses.append((time.monotonic(), msg))
        except websockets.ConnectionClosed:
            pass
        finally:
            await pc.close()


async def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)
