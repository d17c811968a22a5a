"""The `hubbub` command as a user runs it: serve (subprocess), token, check."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from websockets.asyncio.client import connect

from world import protocol

ROOT = Path(__file__).resolve().parents[2]
HUBBUB = [sys.executable, "-m", "world.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(port: int, proc: subprocess.Popen[str], timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                return json.loads(r.read())  # type: ignore[no-any-return]
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not become healthy")


async def test_serve_plaza_subprocess_token_join_and_sigint() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*HUBBUB, "serve", "examples/plaza.toml", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        health = await asyncio.to_thread(wait_healthy, port, proc)
        assert health["status"] == "ok" and health["worlds"] == {"plaza": 0}
        tok = subprocess.run(
            [
                *HUBBUB,
                "token",
                "--config",
                "examples/plaza.toml",
                "--world",
                "plaza",
                "--identity",
                "smoke",
                "--name",
                "Smoke Test",
                "--ttl",
                "10m",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
        async with connect(f"ws://127.0.0.1:{port}/rtc") as ws:
            await ws.send(protocol.encode({"t": "join", "v": 1, "token": tok, "transport": "websocket"}))
            welcome = protocol.parse(await asyncio.wait_for(ws.recv(), 5), "s2c")
            assert (
                welcome["t"] == "welcome"
                and welcome["identity"] == "smoke"
                and welcome["name"] == "Smoke Test"
            )
            assert welcome["world"]["name"] == "plaza"
            health = await asyncio.to_thread(wait_healthy, port, proc)
            assert health["participants"] == 1
            proc.send_signal(signal.SIGINT)
            bye = None
            async for frame in ws:
                msg = protocol.parse(frame, "s2c")
                if msg["t"] == "bye":
                    bye = msg
            assert bye == {"t": "bye", "code": 1001, "reason": "server shutting down"}
            assert ws.close_code == 1001
        assert proc.wait(timeout=15) == 0
        out = proc.stdout.read() if proc.stdout else ""
        assert f"ws://127.0.0.1:{port}/rtc" in out and "dev token" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_token_command_errors(tmp_path: Path) -> None:
    run = lambda *a: subprocess.run([*HUBBUB, *a], cwd=ROOT, capture_output=True, text=True, timeout=60)  # noqa: E731
    res = run("token", "--config", "examples/plaza.toml", "--world", "mars", "--identity", "x")
    assert res.returncode == 2 and "no world 'mars'" in res.stderr
    res = run(
        "token", "--config", "examples/plaza.toml", "--world", "plaza", "--identity", "x", "--ttl", "soon"
    )
    assert res.returncode == 2 and "--ttl" in res.stderr
    res = run(
        "token",
        "--config",
        "examples/plaza.toml",
        "--world",
        "*",
        "--identity",
        "op",
        "--admin",
        "--no-publish",
        "--hidden",
    )
    assert res.returncode == 0
    from world.config import load_config
    from world.tokens import verify_token

    claims = verify_token(res.stdout.strip(), load_config(ROOT / "examples" / "plaza.toml").keys)
    assert (
        claims.world == "*" and claims.grants.admin and claims.grants.hidden and not claims.grants.can_publish
    )
    bad = tmp_path / "bad.toml"
    bad.write_text("[[worlds]]\nname = 'w'\n")
    res = run("serve", str(bad))
    assert res.returncode == 2 and "server.keys" in res.stderr
