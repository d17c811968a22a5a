"""The Hubbub server: worlds + signaling WebSocket + HTTP on one port, hot reload, graceful shutdown."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

from world import __version__, protocol
from world.allocator import keep_freed_memory
from world.config import Config, ConfigError, WorldConfig, load_config
from world.http import RTC_PATH, process_request
from world.media import MediaBackend, NullMedia
from world.metrics import Metrics
from world.protocol import CloseCode, ErrorCode
from world.room import World
from world.session import Session
from world.warmup import warm_kernels

log = logging.getLogger("hubbub.server")

MediaFactory = Callable[[WorldConfig], MediaBackend]
# Frames up to this multiple of max_frame_bytes are read and answered with FRAME_TOO_LARGE + 1009;
# larger ones are cut off by websockets itself (close 1009 without an error message).
HARD_FRAME_FACTOR = 4
SHUTDOWN_FLUSH_S = 3.0


class Hubbub:
    def __init__(
        self,
        config: Config,
        *,
        config_path: str | os.PathLike[str] | None = None,
        media_factory: MediaFactory | None = None,
        reload_poll_s: float = 1.0,
    ) -> None:
        self.config = config
        self.config_path = Path(config_path) if config_path is not None else None
        self.reload_poll_s = reload_poll_s
        self.metrics = Metrics()
        self.metrics.watch_media(lambda: [(name, w.media.stats()) for name, w in self.worlds.items()])
        self.media_factory: MediaFactory = media_factory or (lambda _cfg: NullMedia())
        self._dev_key = ("dev", secrets.token_urlsafe(32))
        self.keys = self._effective_keys(config)
        self.worlds: dict[str, World] = {}
        self.sessions: set[Session] = set()
        self._server: Server | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._mtime: float | None = None
        self.host = config.server.host
        self.port = config.server.port
        self.started_at = time.time()

    def _effective_keys(self, config: Config) -> dict[str, str]:
        keys = dict(config.keys)
        if config.server.allow_anonymous and not keys:
            # Development without keys: an ephemeral key signs /dev/token tokens for this process only.
            keys[self._dev_key[0]] = self._dev_key[1]
        return keys

    def signing_key(self) -> tuple[str, str]:
        name = next(iter(self.keys))
        return name, self.keys[name]

    @property
    def http_url(self) -> str:
        if self.config.server.public_url:
            return self.config.server.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        base = self.http_url
        scheme = "wss" if base.startswith("https") else "ws"
        return scheme + base[base.index(":") :] + RTC_PATH

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str | None = None, port: int | None = None) -> int:
        """Start worlds and listen. Returns the bound port (useful with port 0)."""
        keep_freed_memory()  # no page faults on each tick's big arrays (see world/allocator.py)
        # Compile the interest/mixer kernels now rather than inside the first tick (cached on disk).
        seconds = await asyncio.to_thread(warm_kernels)
        log.info("kernels ready in %.1f s", seconds)
        for wcfg in self.config.worlds:
            world = World(wcfg, self.config.server, self.media_factory(wcfg), self.metrics)
            self.worlds[wcfg.name] = world
            world.start()
        limit = self.config.server.limits.max_frame_bytes
        self._server = await serve(
            self._handle,
            host if host is not None else self.host,
            port if port is not None else self.port,
            process_request=functools.partial(process_request, self),
            max_size=limit * HARD_FRAME_FACTOR,
            max_queue=16,
            compression=None,  # poses are binary and small; deflate costs CPU per message
            server_header=f"hubbub/{__version__}",
        )
        sock = next(iter(self._server.sockets))
        self.host, self.port = sock.getsockname()[:2]
        if self.config_path is not None:
            self._mtime = self._stat()
            self._watcher = asyncio.get_running_loop().create_task(self._watch())
        log.info("listening on %s (%s)", self.http_url, self.ws_url)
        return int(self.port)

    async def stop(self, reason: str = "server shutting down") -> None:
        """Tell every client `bye`, close them with 1001, stop worlds and the listener."""
        if self._watcher is not None:
            self._watcher.cancel()
        for s in list(self.sessions):
            s.send(protocol.bye(CloseCode.GOING_AWAY, reason))
            s.close_soon(CloseCode.GOING_AWAY, reason)
        writers = [s.writer for s in self.sessions if s.writer is not None]
        if writers:
            await asyncio.wait(writers, timeout=SHUTDOWN_FLUSH_S)
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
        for world in self.worlds.values():
            await world.stop()

    async def serve_forever(self, stop: asyncio.Event) -> None:
        await stop.wait()
        await self.stop()

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "worlds": {name: len(w.participants) for name, w in self.worlds.items()},
            "participants": sum(len(w.participants) for w in self.worlds.values()),
            "connections": len(self.sessions),
            "uptime_s": round(time.time() - self.started_at, 1),
        }

    # ------------------------------------------------------------------ connections

    async def _handle(self, ws: ServerConnection) -> None:
        session = Session(self, ws)
        if len(self.sessions) >= self.config.server.limits.max_connections:
            session.send_error(ErrorCode.SERVER_FULL, "too many connections", None)
            session.close_soon(CloseCode.SERVER_FULL, "server full")
            await session.run()
            return
        self.sessions.add(session)
        self.metrics.connections.set(len(self.sessions))
        try:
            await session.run()
        finally:
            self.sessions.discard(session)
            self.metrics.connections.set(len(self.sessions))

    # ------------------------------------------------------------------ hot reload

    def _stat(self) -> float | None:
        try:
            return self.config_path.stat().st_mtime if self.config_path else None
        except OSError:
            return None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.reload_poll_s)
            mtime = self._stat()
            if mtime is not None and mtime != self._mtime:
                self._mtime = mtime
                self.reload()

    def reload(self) -> bool:
        """Re-read the config file (SIGHUP or file change). A bad file is logged and ignored."""
        if self.config_path is None:
            return False
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            log.error("config reload rejected, keeping the running config:\n%s", exc)
            self.metrics.reloads.labels("rejected").inc()
            return False
        try:
            self.apply_config(new)
        except Exception:  # e.g. the interest engine refuses the params: keep serving what we have
            log.exception("config reload failed while applying it; the previous config stays in effect")
            self.metrics.reloads.labels("rejected").inc()
            return False
        self.metrics.reloads.labels("applied").inc()
        return True

    def apply_config(self, new: Config) -> None:
        old = self.config
        for key in ("host", "port", "public_url"):
            if getattr(old.server, key) != getattr(new.server, key):
                log.warning("server.%s changed: takes effect after a restart", key)
        if {w.name for w in old.worlds} != {w.name for w in new.worlds}:
            log.warning("worlds added or removed: takes effect after a restart")
        self.config = new
        self.keys = self._effective_keys(new)
        for wcfg in new.worlds:
            world = self.worlds.get(wcfg.name)
            if world is None:
                continue
            if wcfg.bounds != world.cfg.bounds:
                log.warning("%s: bounds changed; new poses are clamped to the new bounds", wcfg.name)
            world.reconfigure(wcfg, new.server)
        log.info("config reloaded from %s", new.source)
