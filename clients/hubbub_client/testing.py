"""Run a real `hubbub serve` in a subprocess for tests, benchmarks and examples.

The server is the real thing (the same command a user runs); only its config is adapted: any port
(port 0, read back from its banner), 127.0.0.1, no STUN servers (tests only talk to 127.0.0.1), and
anonymous dev tokens so that callers need no API key.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BANNER = re.compile(r"serving .* on port (\d+)")


def local_config(source: str | Path, overrides: dict[str, Any] | None = None) -> str:
    """The TOML of `source` made safe for local tests: STUN servers removed, anonymous tokens on.

    `overrides` maps a TOML key (as it appears at the start of a line, e.g. "max_speed") to the new
    literal value text, e.g. ``{"max_speed": "20.0"}``.
    """
    lines = []
    for line in Path(source).read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        if key == "ice_servers":
            continue
        if key == "allow_anonymous":
            line = "allow_anonymous = true"
        if overrides and key in overrides:
            line = f"{key} = {overrides[key]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


class LocalServer:
    """`hubbub serve CONFIG --port 0` as a context manager; `url`, `http_url`, `token(name)`."""

    def __init__(
        self, config: str | Path, *, overrides: dict[str, Any] | None = None, startup_timeout: float = 90.0,
        log_level: str = "WARNING", command: Sequence[str] | None = None,
    ) -> None:
        self.source = Path(config)
        self.overrides = overrides
        self.startup_timeout = startup_timeout
        self.log_level = log_level
        # The server command; $HUBBUB_SERVER_CMD (space-separated) runs every test against another build.
        env_cmd = os.environ.get("HUBBUB_SERVER_CMD")
        self.command = list(command or (env_cmd.split() if env_cmd else [sys.executable, "-m", "world.cli"]))
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        self.output: deque[str] = deque(maxlen=400)  # the server's recent output, for failure messages
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/rtc"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalServer:
        self._tmp = tempfile.TemporaryDirectory(prefix="hubbub-test-")
        cfg = Path(self._tmp.name) / self.source.name
        cfg.write_text(local_config(self.source, self.overrides))
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [*self.command, "--log-level", self.log_level, "serve", str(cfg),
             "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        port_found = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line.rstrip())
                m = BANNER.search(line)
                if m and not port_found.is_set():
                    self.port = int(m.group(1))
                    port_found.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        while not port_found.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("hubbub serve did not start:\n" + "\n".join(self.output))
        return self

    def token(self, name: str, world: str | None = None) -> str:
        """An anonymous development token from the server's /dev/token."""
        q = {"name": name}
        if world:
            q["world"] = world
        url = f"{self.http_url}/dev/token?{urllib.parse.urlencode(q)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            return str(json.load(r)["token"])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
