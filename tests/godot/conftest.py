"""Fixtures that run real Godot 4 headless (inside the sid chroot made by scripts/install_godot.sh).

`godot_project` (session): installs Godot if needed (idempotent, ~1 s when cached), builds a throwaway
project = the addon + the GDScript tests + the shared vectors, and imports it once (class_name types
need the import). `GodotProject.run(script, *args)` runs one `extends SceneTree` test script; the script
prints FAIL/INFO lines and "SUMMARY passed=N failed=M" and exits non-zero on failure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

REPO = Path(__file__).resolve().parents[2]
ADDON = REPO / "clients" / "godot_plugin" / "addons" / "hubbub"
DEMO = REPO / "clients" / "godot_plugin" / "demo"
GD_TESTS = Path(__file__).resolve().parent
VECTORS = REPO / "tests" / "vectors"
SCRIPT_ERROR = re.compile(r"SCRIPT ERROR|Parse Error|Compile Error")

PROJECT_GODOT = """; throwaway test project made by tests/godot/conftest.py
config_version=5

[application]
config/name="hubbub-tests"

[audio]
driver/enable_input=false

[editor_plugins]
enabled=PackedStringArray("res://addons/hubbub/plugin.cfg")
"""


@dataclass
class GodotResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    passed: int = 0
    failed: int = 0
    info: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def explain(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout[-6000:]}\n--- stderr\n{self.stderr[-6000:]}"

    def assert_clean(self, min_passed: int = 1) -> None:
        """Exit 0, a summary with checks that ran, no failures and no GDScript errors."""
        assert self.returncode == 0, self.explain()
        assert self.failed == 0 and self.passed >= min_passed, self.explain()
        errors = [line for line in self.stderr.splitlines() if SCRIPT_ERROR.search(line)]
        assert not errors, self.explain()


class GodotProject:
    def __init__(self, wrapper: str, path: Path) -> None:
        self.wrapper = wrapper
        self.path = path

    def godot(
        self, *args: str, timeout: float = 120.0, on_line: Callable[[str], None] | None = None
    ) -> GodotResult:
        """Run Godot; a GDScript error does not make Godot exit, so the first one ends the run.
        `on_line` sees each stdout line as it arrives (for tests that drive a server alongside)."""
        t0 = time.monotonic()
        # Own process group: on timeout the whole chain (wrapper -> godot) is killed, nothing lingers.
        proc = subprocess.Popen(
            [self.wrapper, str(self.path), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        out: list[str] = []
        err: list[str] = []
        script_error = threading.Event()

        def pump(stream: IO[str], sink: list[str], watch: bool) -> None:
            for line in stream:
                sink.append(line)
                if watch and SCRIPT_ERROR.search(line):
                    script_error.set()
                if not watch and on_line is not None:
                    on_line(line.rstrip("\n"))

        readers = [
            threading.Thread(target=pump, args=(proc.stdout, out, False), daemon=True),
            threading.Thread(target=pump, args=(proc.stderr, err, True), daemon=True),
        ]
        for r in readers:
            r.start()
        note = ""
        deadline = t0 + timeout
        while proc.poll() is None:
            if script_error.is_set():
                time.sleep(1.0)  # let the backtrace arrive
                note = "\n[killed after a GDScript error]"
            elif time.monotonic() > deadline:
                note = f"\n[timed out after {timeout} s]"
            else:
                time.sleep(0.05)
                continue
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            break
        code = proc.wait()
        for r in readers:
            r.join(timeout=5)
        return GodotResult(-9 if note else code, "".join(out), "".join(err) + note, time.monotonic() - t0)

    def run(
        self,
        script: str,
        *user_args: str,
        timeout: float = 120.0,
        on_line: Callable[[str], None] | None = None,
    ) -> GodotResult:
        args = ["-s", f"res://tests/{script}"]
        if user_args:
            args += ["--", *user_args]
        res = self.godot(*args, timeout=timeout, on_line=on_line)
        for line in res.stdout.splitlines():
            if m := re.match(r"SUMMARY passed=(\d+) failed=(\d+)", line):
                res.passed, res.failed = int(m[1]), int(m[2])
            elif line.startswith("INFO "):
                res.info.append(line[5:])
            elif line.startswith("FAIL "):
                res.failures.append(line[5:])
        return res


def build_project(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "project.godot").write_text(PROJECT_GODOT)
    shutil.copytree(ADDON, dest / "addons" / "hubbub", dirs_exist_ok=True)
    (dest / "tests").mkdir(exist_ok=True)
    for gd in GD_TESTS.glob("*.gd"):
        shutil.copy2(gd, dest / "tests" / gd.name)
    (dest / "vectors").mkdir(exist_ok=True)
    for js in VECTORS.glob("*.json"):
        shutil.copy2(js, dest / "vectors" / js.name)


def build_demo(dest: Path) -> None:
    """The demo project with its addons/hubbub symlink replaced by a copy (a symlink to outside the
    project would dangle inside the chroot's bind mount)."""
    shutil.copytree(DEMO, dest, symlinks=False, dirs_exist_ok=True)


@pytest.fixture(scope="session")
def godot_wrapper() -> str:
    t0 = time.monotonic()
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "install_godot.sh")],
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    wrapper = out.stdout.strip().splitlines()[-1]
    print(f"install_godot.sh: {time.monotonic() - t0:.1f} s -> {wrapper}")
    return wrapper


@pytest.fixture(scope="session")
def godot_project(godot_wrapper: str, tmp_path_factory: pytest.TempPathFactory) -> GodotProject:
    path = tmp_path_factory.mktemp("godot_project")
    build_project(path)
    project = GodotProject(godot_wrapper, path)
    res = project.godot("--import", timeout=300)
    assert res.returncode == 0, res.explain()
    assert (path / ".godot" / "global_script_class_cache.cfg").exists(), res.explain()
    return project


# --------------------------------------------------------------------------- a live Hubbub server

PLAZA = REPO / "examples" / "plaza.toml"


def hubbub_cmd() -> list[str]:
    exe = shutil.which("hubbub")
    if exe:
        return [exe]
    return [sys.executable, "-c", "import sys; from world.cli import main; sys.exit(main())"]


def mint(identity: str, config: Path = PLAZA, world: str = "plaza") -> str:
    """A token from the real CLI (`hubbub token`)."""
    out = subprocess.run(
        [*hubbub_cmd(), "token", "--config", str(config), "--world", world, "--identity", identity],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HubbubServer:
    """`hubbub serve CONFIG` as a subprocess on 127.0.0.1."""

    def __init__(self, config: Path = PLAZA, port: int = 0) -> None:
        self.config = config
        self.proc = subprocess.Popen(
            [*hubbub_cmd(), "serve", str(config), "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.port = port
        ready = threading.Event()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line)
                if m := re.search(r"serving .* on port (\d+)", line):
                    self.port = int(m[1])
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(30):
            self.stop()
            raise RuntimeError("hubbub serve did not start:\n" + "".join(self.lines))

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/rtc"

    def log(self) -> str:
        return "".join(self.lines[-200:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def plaza_server() -> Iterator[HubbubServer]:
    server = HubbubServer()
    try:
        yield server
    finally:
        server.stop()
