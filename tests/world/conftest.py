"""Shared fixtures: a real Hubbub server on 127.0.0.1 (port 0) and a small protocol client."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from world import protocol
from world.config import Config, parse_config
from world.server import Hubbub
from world.tokens import Grants, mint_token

SECRET = "test-secret-0123456789abcdef-0123456789"
KEY = "test"

BASE: dict[str, Any] = {
    "server": {"host": "127.0.0.1", "port": 0, "keys": {KEY: SECRET}, "reconnect_grace_s": 5.0},
    "worlds": [
        {
            "name": "plaza",
            "bounds": {"min": [-50, -10, -50], "max": [50, 20, 50]},
            "spawn_points": [[0, 0, 0]],
            "tick_rate": 50,
            "max_speed": 5.0,
            "interest": {
                "audio": {"forward_radius": 5, "hearing_radius": 20},
                "position": {"radius": 30, "tiers": [{"distance": 30, "rate_hz": 50}]},
            },
        }
    ],
}


def config_dict(**server: Any) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    for k, v in server.items():
        if isinstance(v, dict) and isinstance(d["server"].get(k), dict):
            d["server"][k].update(v)
        else:
            d["server"][k] = v
    return d


def make_config(d: dict[str, Any] | None = None) -> Config:
    return parse_config(d or config_dict())


def token(identity: str = "ann", world: str = "plaza", **grants: bool) -> str:
    return mint_token(KEY, SECRET, world=world, identity=identity, grants=Grants(**grants))


class Client:
    """A protocol client over a real WebSocket; messages are collected by a reader task."""

    def __init__(self, ws: ClientConnection, binary: bool = True) -> None:
        self.ws = ws
        self.binary = binary
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.close_code: int | None = None
        self.kinds: list[tuple[str, bool]] = []  # (type, arrived as a text frame)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                msg = protocol.validate(protocol.decode(frame), "s2c")
                self.kinds.append((msg["t"], isinstance(frame, str)))
                await self.inbox.put(msg)
        except Exception as exc:  # surfaced to the test through the inbox
            await self.inbox.put({"t": "__reader_error__", "error": repr(exc)})
        finally:
            self.close_code = self.ws.close_code

    async def send(self, msg: dict[str, Any]) -> None:
        await self.ws.send(protocol.encode(msg, binary=self.binary))

    async def send_raw(self, frame: bytes | str) -> None:
        await self.ws.send(frame)

    async def expect(
        self, t: str, timeout: float = 3.0, where: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any]:
        """Next message of type t (others are skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no {t!r} within {timeout}s")
            try:
                msg = await asyncio.wait_for(self.inbox.get(), remaining)
            except TimeoutError:
                raise AssertionError(f"no {t!r} within {timeout}s") from None
            if msg["t"] == t and (where is None or where(msg)):
                return msg

    async def closed(self, timeout: float = 5.0) -> int | None:
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        await asyncio.wait_for(self._reader, timeout)
        return self.ws.close_code

    async def join(self, tok: str, **extra: Any) -> dict[str, Any]:
        await self.send({"t": "join", "v": 1, "token": tok, "transport": "websocket", **extra})
        return await self.expect("welcome")

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


class Harness:
    def __init__(self, server: Hubbub, port: int) -> None:
        self.server = server
        self.port = port
        self.url = f"ws://127.0.0.1:{port}/rtc"
        self.http = f"http://127.0.0.1:{port}"
        self.clients: list[Client] = []

    async def client(self, binary: bool = True, **kwargs: Any) -> Client:
        ws = await connect(self.url, max_size=None, **kwargs)
        c = Client(ws, binary)
        self.clients.append(c)
        return c

    async def joined(self, identity: str = "ann", **grants: bool) -> tuple[Client, dict[str, Any]]:
        c = await self.client()
        welcome = await c.join(token(identity, **grants))
        return c, welcome


async def start_harness(cfg: Config, config_path: Path | None = None, reload_poll_s: float = 1.0) -> Harness:
    server = Hubbub(cfg, config_path=config_path, reload_poll_s=reload_poll_s)
    port = await server.start("127.0.0.1", 0)
    return Harness(server, port)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = await start_harness(make_config())
    yield h
    for c in h.clients:
        await c.close()
    await h.server.stop()
