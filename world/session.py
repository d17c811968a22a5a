"""One signaling connection: limits, join, message dispatch and a bounded outbox.

Nothing a client sends can crash the server or reach other sessions: every frame is size-checked,
rate-limited, decoded and validated, and any failure becomes an `error` message on this session only.
Outgoing messages go through a bounded outbox drained by one writer task, so a slow client never
blocks the tick loop: stale poses are replaced, and a reliable backlog beyond MAX_OUTBOX closes it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from world import protocol
from world.protocol import CloseCode, ErrorCode, ProtocolError
from world.ratelimit import TokenBucket
from world.tokens import TokenError, verify_token

if TYPE_CHECKING:
    from world.room import World
    from world.server import Hubbub
    from world.state import Participant

log = logging.getLogger("hubbub.session")

MAX_OUTBOX = 1024  # reliable messages waiting for a slow client before it is disconnected
MAX_DROPPABLE = 64  # unreliable (non-pose) messages kept; beyond this they are dropped
FLOOD_REFILL_PER_S = 5.0  # rate at which forgiven rate-limit strikes come back


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class Session:
    def __init__(self, server: Hubbub, ws: ServerConnection) -> None:
        self.server = server
        self.ws = ws
        limits = server.config.server.limits
        self.max_frame = limits.max_frame_bytes
        self.bucket = TokenBucket(limits.messages_per_second, limits.burst)
        # Each dropped message costs a strike; strikes refill slowly. No strikes left = flood.
        self.strikes = TokenBucket(FLOOD_REFILL_PER_S, limits.flood_tolerance)
        self._rate_error_bucket = TokenBucket(1.0, 1.0)  # at most one RATE_LIMITED error per second
        self.binary = True
        self.world: World | None = None
        self.participant: Participant | None = None
        self._reliable: deque[Any] = deque()
        self._droppable: deque[Any] = deque()
        self._poses: dict[str, Any] | bytes | None = None  # the latest pose batch
        self._wake = asyncio.Event()
        self._closing = False
        self.closed_with: int | None = None
        self._joining = False
        self._join_deadline = math.inf
        self.writer: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ connection lifecycle

    async def run(self) -> None:
        self.writer = asyncio.get_running_loop().create_task(self._write_loop())
        try:
            await self._read_loop()
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("session crashed; closing it")
            self.close_soon(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            p, w = self.participant, self.world
            if p is not None and w is not None:
                w.connection_lost(p, self)
            self.participant = None
            if not self._closing:
                self._closing = True
                self._wake.set()
            try:
                await asyncio.wait_for(self.writer, timeout=5)
            except (TimeoutError, asyncio.CancelledError, ConnectionClosed):
                self.writer.cancel()
            except Exception:
                log.exception("session writer failed")

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        self._join_deadline = loop.time() + self.server.config.server.limits.join_timeout_s
        while True:
            if self._join_deadline != math.inf and not self._closing:
                remaining = self._join_deadline - loop.time()
                try:
                    frame = await asyncio.wait_for(
                        self.ws.recv(), max(remaining, 0.05 if self._joining else 0.0)
                    )
                except TimeoutError:
                    if self._join_deadline != math.inf and not self._joining:
                        self._fatal(
                            ErrorCode.JOIN_TIMEOUT, "no join received in time", CloseCode.JOIN_TIMEOUT
                        )
                    continue
            else:
                frame = await self.ws.recv()
            if self._closing:
                continue  # drain until the close handshake completes
            pending = self.handle_frame(frame)
            if pending is not None:
                await pending

    def detach(self) -> None:
        """Forget the participant (it was removed or taken over by another connection)."""
        self.participant = None
        self.world = None

    def close_soon(self, code: int, reason: str) -> None:
        """Flush what is queued, then close with `code`. Idempotent."""
        if self._closing:
            return
        self._closing = True
        self.closed_with = code
        self.server.metrics.closes.labels(str(int(code))).inc()
        self._reliable.append(_Close(code, reason))
        self._wake.set()

    def _fatal(self, code: ErrorCode, message: str, close: CloseCode, ref: str | None = None) -> None:
        self.send_error(code, message, ref)
        self.close_soon(close, message[:120])

    # ------------------------------------------------------------------ outbox

    def send(self, msg: dict[str, Any], *, droppable: bool = False) -> bool:
        if self._closing:
            return False
        if droppable:
            if msg.get("t") == "poses":
                self._poses = msg  # a newer pose batch makes the queued one stale
            elif len(self._droppable) < MAX_DROPPABLE:
                self._droppable.append(msg)
            else:
                return False
        else:
            if len(self._reliable) >= MAX_OUTBOX:
                log.warning("slow consumer: outbox overflow, closing")
                self.close_soon(CloseCode.SLOW_CONSUMER, "client too slow")
                return False
            self._reliable.append(msg)
        self._wake.set()
        return True

    def send_frame(self, data: bytes, *, droppable: bool, latest: bool = False) -> bool:
        """A pre-encoded msgpack frame (e.g. voice from the media backend). ``latest``: a pose batch,
        which makes the queued one stale (as `send` does for a ``poses`` message)."""
        if self.binary:
            if self._closing:
                return False
            if latest:
                self._poses = data
                self._wake.set()
                return True
            queue = self._droppable if droppable else self._reliable
            if droppable and len(queue) >= MAX_DROPPABLE:
                return False
            queue.append(data)
            self._wake.set()
            return True
        return self.send(protocol.decode(data), droppable=droppable)

    def send_error(self, code: ErrorCode, message: str, ref: str | None) -> None:
        self.server.metrics.errors.labels(str(int(code))).inc()
        self.server.metrics.messages_out.labels("error").inc()
        log.info("error %d (%s) to %s: %s", code, code.name, self._who(), message)
        self.send(protocol.error(code, message, ref))

    def _who(self) -> str:
        p = self.participant
        return f"{p.identity}/{p.pid}" if p is not None else str(self.ws.remote_address)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while True:
                if self._reliable:
                    item = self._reliable.popleft()
                elif self._droppable:
                    item = self._droppable.popleft()
                elif self._poses is not None:
                    item, self._poses = self._poses, None
                else:
                    break
                if isinstance(item, _Close):
                    await self.ws.close(item.code, item.reason)
                    return
                if isinstance(item, bytes):
                    await self.ws.send(item)
                else:
                    await self.ws.send(protocol.encode(item, binary=self.binary))
            if self._closing and not self._reliable:
                return

    # ------------------------------------------------------------------ inbound

    def handle_frame(self, frame: bytes | str, via: str = "ws") -> Awaitable[None] | None:
        """Process one frame; returns an awaitable for the few messages that need async work."""
        if len(frame) > self.max_frame:
            self._fatal(
                ErrorCode.FRAME_TOO_LARGE,
                f"frame of {len(frame)} bytes exceeds max_frame_bytes={self.max_frame}",
                CloseCode.MESSAGE_TOO_BIG,
            )
            return None
        if via == "ws":
            self.binary = not isinstance(frame, str)
        if not self.bucket.take():
            if not self.strikes.take():
                self._fatal(ErrorCode.RATE_LIMITED, "message flood", CloseCode.FLOOD)
            elif self._rate_error_bucket.take():
                self.send_error(ErrorCode.RATE_LIMITED, "too many messages; dropped", None)
            return None
        try:
            msg = protocol.parse(frame)
            self.server.metrics.messages_in.labels(msg["t"]).inc()
            return self._dispatch(msg)
        except ProtocolError as exc:
            self.send_error(exc.code, exc.message, exc.ref)
        except Exception:
            log.exception("failed to handle a message from %s", self._who())
            self.send_error(ErrorCode.INTERNAL, "internal error handling this message", None)
        return None

    def _dispatch(self, msg: dict[str, Any]) -> Awaitable[None] | None:
        t = msg["t"]
        if t == "ping":
            self._reply({"t": "pong", "id": msg["id"]})
            return None
        p, w = self.participant, self.world
        if t == "join":
            if p is not None or self._joining:
                raise ProtocolError(ErrorCode.ALREADY_JOINED, "already joined", "join")
            self._joining = True
            return self._guard(self._join(msg))
        if p is None or w is None:
            raise ProtocolError(ErrorCode.NOT_JOINED, f"join first ({t!r} before join)", t)
        if t == "pose":
            w.handle_pose(p, msg)
        elif t == "data":
            if not p.grants.can_publish_data:
                raise ProtocolError(ErrorCode.PERMISSION_DENIED, "token lacks can_publish_data", t)
            w.route_data(p, msg)
        elif t == "voice":
            if p.transport != "websocket":
                raise ProtocolError(ErrorCode.TRANSPORT_MISMATCH, "voice frames need transport=websocket", t)
            if not p.grants.can_publish:
                raise ProtocolError(ErrorCode.PERMISSION_DENIED, "token lacks can_publish", t)
            if not (p.muted or p.admin_muted):
                w.media.voice_in(p.pid, msg["codec"], msg["seq"], msg["pcm"])
        elif t == "mute":
            w.set_muted(p, muted=msg["audio"])
        elif t == "leave":
            self.close_soon(CloseCode.NORMAL, "left")
            return self._guard(w.remove(p.pid))
        elif t in ("answer", "ice"):
            if p.transport != "webrtc":
                raise ProtocolError(ErrorCode.TRANSPORT_MISMATCH, f"{t!r} needs transport=webrtc", t)
            return self._guard(self._media_call(w, p, msg))
        return None

    async def _guard(self, coro: Awaitable[None]) -> None:
        try:
            await coro
        except ProtocolError as exc:
            self.send_error(exc.code, exc.message, exc.ref)
        except ConnectionClosed:
            raise
        except Exception:
            log.exception("failed to handle a message from %s", self._who())
            self.send_error(ErrorCode.INTERNAL, "internal error handling this message", None)

    async def _media_call(self, w: World, p: Participant, msg: dict[str, Any]) -> None:
        try:
            if msg["t"] == "answer":
                await w.media.set_answer(p.pid, msg["sdp"])
            else:
                cand = {k: msg[k] for k in ("candidate", "sdpMid", "sdpMLineIndex")}
                await w.media.add_ice_candidate(p.pid, cand)
        except ValueError as exc:
            raise ProtocolError(ErrorCode.MEDIA_FAILED, str(exc), msg["t"]) from None

    def _reply(self, msg: dict[str, Any]) -> None:
        p, w = self.participant, self.world
        if p is not None and w is not None:
            w.deliver(p, msg)
        else:
            self.server.metrics.messages_out.labels(msg["t"]).inc()
            self.send(msg)

    async def _join(self, msg: dict[str, Any]) -> None:
        try:
            server = self.server
            try:
                claims = verify_token(msg["token"], server.keys)
            except TokenError as exc:
                self._fatal(exc.code, exc.message, CloseCode.AUTH_FAILED, "join")
                return
            world = server.worlds.get(claims.world)
            if world is None:
                message = f"no world {claims.world!r} on this server"
                self._fatal(ErrorCode.UNKNOWN_WORLD, message, CloseCode.AUTH_FAILED, "join")
                return
            try:
                p, resumed = await world.admit(claims, msg["transport"], msg["resume"], self)
            except ProtocolError as exc:
                self._fatal(exc.code, exc.message, CloseCode.WORLD_FULL, "join")
                return
            if self._closing:  # the connection went away while we were admitting
                self.participant, self.world = p, world
                return
            self.participant, self.world = p, world
            self._join_deadline = math.inf
            self.send(world.welcome(p, resumed))
            world.metrics.messages_out.labels("welcome").inc()
            offer = await world.media.add_participant(
                p.pid,
                publish=p.grants.can_publish,
                subscribe=p.grants.can_subscribe,
                transport=p.transport,  # type: ignore[arg-type]
            )
            if offer is not None and self.participant is p:
                self.send({"t": "offer", **offer})
        finally:
            self._joining = False
