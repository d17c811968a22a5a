"""One world: its participants, their authoritative poses, reconnect grace, and delivery to clients.

Sessions (one per WebSocket) call into the World; the tick loop reads the pose table; the media backend
is reached only through `world.media.MediaBackend`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from world import protocol
from world.config import ServerSection, WorldConfig
from world.interest_bridge import make_interest
from world.media import (
    FLAG_ADMIN_MUTED,
    FLAG_AUDIO,
    FLAG_HIDDEN,
    FLAG_VIDEO,
    Channel,
    MediaBackend,
)
from world.metrics import Metrics
from world.protocol import CloseCode, ErrorCode, ProtocolError
from world.state import AvatarTable, IdAllocator, Participant, judge_pose, normalise_quat
from world.tokens import TokenClaims

if TYPE_CHECKING:
    from world.session import Session

log = logging.getLogger("hubbub.world")


class World:
    def __init__(
        self, cfg: WorldConfig, server: ServerSection, media: MediaBackend, metrics: Metrics
    ) -> None:
        self.cfg = cfg
        self._frame_tasks: set[asyncio.Future[None]] = set()  # async work started by data-channel frames
        self.server = server
        self.media = media
        self.metrics = metrics
        self.table = AvatarTable()
        self.participants: dict[int, Participant] = {}
        self.by_identity: dict[str, int] = {}
        self.by_resume: dict[str, int] = {}
        self.interest = make_interest(cfg.interest_params())
        self._ids = IdAllocator()
        self._tasks: set[asyncio.Task[None]] = set()
        self._out_counters: dict[str, Any] = {}
        self._spawn = itertools.cycle(range(len(cfg.spawn_points)))
        self.media.bind(self)
        from world.tick import TickLoop  # tick imports room for typing only

        self.ticker = TickLoop(self)

    @property
    def name(self) -> str:
        return self.cfg.name

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.ticker.start()

    async def stop(self) -> None:
        await self.ticker.stop()
        for p in list(self.participants.values()):
            await self.remove(p.pid)
        close = getattr(self.media, "close", None)
        if close is not None:
            await close()

    def reconfigure(self, cfg: WorldConfig, server: ServerSection) -> None:
        """Hot reload: new radii, zones, audio, speed and spawn points; sessions stay."""
        self.interest.update_params(cfg.interest_params())  # first: it may refuse the new params
        self.cfg = cfg
        self.server = server
        self._spawn = itertools.cycle(range(len(cfg.spawn_points)))
        self.ticker.set_rate(cfg.tick_rate)
        reconfigure = getattr(self.media, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(cfg)

    # ------------------------------------------------------------------ membership

    async def admit(
        self, claims: TokenClaims, transport: str, resume: str | None, session: Session
    ) -> tuple[Participant, bool]:
        """Add (or resume) a participant for this session. Returns (participant, resumed)."""
        if resume is not None:
            pid = self.by_resume.get(resume)
            old = self.participants.get(pid) if pid is not None else None
            if old is not None and old.identity == claims.identity:
                await self._resume(old, claims, transport, session)
                return old, True
            session.send_error(ErrorCode.RESUME_FAILED, "unknown or expired resume token", "join")
        existing = self.by_identity.get(claims.identity)
        if existing is not None:
            await self.remove(existing, close=(CloseCode.REPLACED, "the same identity joined again"))
        if len(self.participants) >= self.cfg.max_participants:
            raise ProtocolError(ErrorCode.WORLD_FULL, f"world {self.name!r} is full", "join")
        pid = self._ids.take()
        p = Participant(
            pid=pid,
            identity=claims.identity,
            name=claims.name,
            grants=claims.grants,
            transport=transport,
            resume_token=secrets.token_urlsafe(24),
            session=session,
        )
        spawn = self.cfg.spawn_points[next(self._spawn)]
        self.table.add(pid, spawn.p, spawn.q, self._flags(p))
        self.participants[pid] = p
        self.by_identity[p.identity] = pid
        self.by_resume[p.resume_token] = pid
        self.metrics.participants.labels(self.name).set(len(self.participants))
        log.info("%s: %s joined as %d (%s)", self.name, p.identity, pid, transport)
        return p, False

    async def _resume(self, p: Participant, claims: TokenClaims, transport: str, session: Session) -> None:
        if p.grace_handle is not None:
            p.grace_handle.cancel()
            p.grace_handle = None
        old_session = p.session
        if old_session is not None and old_session is not session:
            old_session.detach()
            old_session.close_soon(CloseCode.REPLACED, "resumed on another connection")
        await self.media.remove_participant(p.pid)
        p.session = session
        p.transport = transport
        p.grants = claims.grants
        p.name = claims.name
        self.ticker.reset_listener(p.pid)  # the client lost its view: announce everyone again
        p.last_pose_time = time.monotonic()
        self.table.flags[self.table.row_of[p.pid]] = self._flags(p)
        log.info("%s: %s resumed as %d", self.name, p.identity, p.pid)

    def _flags(self, p: Participant) -> int:
        f = 0
        if p.grants.can_publish and p.publishes_audio is not False and not p.muted and not p.admin_muted:
            f |= FLAG_AUDIO
        if p.grants.hidden:
            f |= FLAG_HIDDEN
        if p.admin_muted:
            f |= FLAG_ADMIN_MUTED
        if p.pid in self.table:
            f |= int(self.table.flags[self.table.row_of[p.pid]]) & FLAG_VIDEO
        return f

    def refresh_flags(self, p: Participant) -> None:
        self.table.flags[self.table.row_of[p.pid]] = self._flags(p)

    def connection_lost(self, p: Participant, session: Session) -> None:
        """The WebSocket dropped without `leave`: keep the avatar for reconnect_grace_s."""
        if p.session is not session or p.pid not in self.participants:
            return
        p.session = None
        grace = self.server.reconnect_grace_s
        loop = asyncio.get_running_loop()
        p.grace_handle = loop.call_later(max(grace, 0.0), lambda: self._spawn_task(self._grace_expired(p)))
        log.info("%s: %d disconnected, kept for %.1fs", self.name, p.pid, grace)

    def _spawn_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)  # keep a reference until done (the loop only holds weak ones)
        task.add_done_callback(self._tasks.discard)

    async def _grace_expired(self, p: Participant) -> None:
        if self.participants.get(p.pid) is p and p.session is None:
            await self.remove(p.pid)

    async def remove(self, pid: int, close: tuple[int, str] | None = None) -> None:
        p = self.participants.pop(pid, None)
        if p is None:
            return
        if p.grace_handle is not None:
            p.grace_handle.cancel()
        self.table.remove(pid)
        if self.by_identity.get(p.identity) == pid:
            del self.by_identity[p.identity]
        self.by_resume.pop(p.resume_token, None)
        self._ids.give_back(pid)
        self.ticker.departed(pid)  # exits go out next tick, before any enter of a reused id
        self.metrics.participants.labels(self.name).set(len(self.participants))
        session = p.session
        p.session = None
        if session is not None:
            session.detach()
            if close is not None:
                session.send(protocol.bye(close[0], close[1]))
                session.close_soon(close[0], close[1])
        try:
            await self.media.remove_participant(pid)
        except Exception:
            log.exception("%s: media backend failed to remove %d", self.name, pid)
        log.info("%s: %s (%d) left", self.name, p.identity, pid)

    # ------------------------------------------------------------------ introspection

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "participants": len(self.participants),
            "connected": sum(1 for p in self.participants.values() if p.session is not None),
            "tick": self.ticker.tick,
            "tick_ms": round(self.ticker.last_duration * 1000, 3),
            "media": self.media.stats(),
        }

    def describe(self, p: Participant) -> dict[str, Any]:
        pos, q = self.table.pose(p.pid)
        return {
            "id": p.pid,
            "identity": p.identity,
            "name": p.name,
            "transport": p.transport,
            "connected": p.session is not None,
            "p": pos,
            "q": q,
            "muted": p.muted,
            "admin_muted": p.admin_muted,
            "grants": p.grants.to_dict(),
            "poses_dropped": p.poses_dropped,
        }

    # ------------------------------------------------------------------ messages

    def welcome(self, p: Participant, resumed: bool) -> dict[str, Any]:
        pos, q = self.table.pose(p.pid)
        return {
            "t": "welcome",
            "v": protocol.PROTOCOL_VERSION,
            "participant_id": p.pid,
            "identity": p.identity,
            "name": p.name,
            "grants": p.grants.to_dict(),
            "resume": p.resume_token,
            "resumed": resumed,
            "world": self.cfg.public_info(),
            "ice_servers": [s.model_dump(exclude_none=True) for s in self.server.ice_servers],
            "spawn": {"p": pos, "q": q},
        }

    def handle_pose(self, p: Participant, msg: dict[str, Any]) -> None:
        now = time.monotonic()
        if not p.pose_bucket.take(1.0, now):
            p.poses_dropped += 1
            self.metrics.poses_rejected.labels("rate").inc()
            return
        current, _ = self.table.pose(p.pid)
        verdict = judge_pose(self.cfg, current, msg["p"], msg["q"], now - p.last_pose_time)
        if verdict is None:
            self.metrics.poses_rejected.labels("invalid").inc()
            raise ProtocolError(
                ErrorCode.POSE_INVALID, "pose must have finite coordinates and a non-zero quaternion", "pose"
            )
        self.table.set_pose(p.pid, verdict.p, verdict.q)
        p.last_pose_time = now
        if verdict.reason is None:
            self.metrics.poses_accepted.inc()
        else:
            self.metrics.poses_rejected.labels(verdict.reason).inc()
            self.deliver(p, protocol.corrected(verdict.p, verdict.q, verdict.reason))

    def admin_move(self, p: Participant, pos: list[float], q: list[float] | None) -> None:
        lo, hi = self.cfg.bounds.min, self.cfg.bounds.max
        clamped = [min(max(x, a), b) for x, a, b in zip(pos, lo, hi, strict=True)]
        _, cur_q = self.table.pose(p.pid)
        quat = list(normalise_quat(q) or cur_q) if q is not None else cur_q
        self.table.set_pose(p.pid, clamped, quat)
        p.last_pose_time = time.monotonic()
        self.deliver(p, protocol.corrected(clamped, quat, "admin"))

    def set_muted(
        self, p: Participant, *, muted: bool | None = None, admin_muted: bool | None = None
    ) -> None:
        if muted is not None:
            p.muted = muted
        if admin_muted is not None:
            p.admin_muted = admin_muted
        self.refresh_flags(p)

    def route_data(self, p: Participant, msg: dict[str, Any]) -> None:
        out = {"t": "data", "from": p.pid, "topic": msg["topic"], "payload": msg["payload"]}
        targets: Iterable[Participant]
        if msg["to"] is not None:
            targets = [self.participants[t] for t in msg["to"] if t in self.participants]
        else:
            targets = self.participants.values()
        channel: Channel = "control" if msg["reliable"] else "state"
        frame = protocol.encode(out)
        assert isinstance(frame, bytes)
        for target in targets:
            if target is not p and target.grants.can_subscribe:
                self.deliver(target, out, channel=channel, droppable=not msg["reliable"], frame=frame)

    def count_out(self, msg_type: str, k: int = 1) -> None:
        """Count k messages of a type as sent (`hubbub_messages_out`)."""
        counter = self._out_counters.get(msg_type)
        if counter is None:
            counter = self._out_counters[msg_type] = self.metrics.messages_out.labels(msg_type)
        counter.inc(k)

    def deliver(
        self,
        p: Participant,
        msg: dict[str, Any],
        *,
        channel: Channel = "control",
        droppable: bool = False,
        frame: bytes | None = None,
        counted: bool = True,
    ) -> None:
        """Send a message to a participant: its data channel if it has one open, else its WebSocket.
        ``counted=False``: the caller counts it (`count_out`), once per batch: the tick sends
        thousands a tick, and a Prometheus increment takes a lock."""
        if counted:
            self.count_out(msg["t"])
        if p.transport == "webrtc":
            data = frame if frame is not None else protocol.encode(msg)
            assert isinstance(data, bytes)
            if self.media.send(p.pid, channel, data):
                return
        if p.session is not None:
            p.session.send(msg, droppable=droppable)

    def deliver_frame(self, p: Participant, frame: bytes) -> None:
        """Send an encoded control message (e.g. `protocol.list_frame`) as `deliver` sends a dict:
        the control data channel if open, else the WebSocket (a JSON session gets it re-encoded).
        Counted by the caller."""
        if p.transport == "webrtc" and self.media.send(p.pid, "control", frame):
            return
        if p.session is not None:
            p.session.send_frame(frame, droppable=False)

    def deliver_poses(self, p: Participant, frame: bytes) -> None:
        """Send an encoded ``poses`` frame (`world.pose_batch`): the data channel if open, else
        the WebSocket, where a newer batch replaces one still queued. Counted by the caller."""
        if p.transport == "webrtc" and self.media.send(p.pid, "state", frame):
            return
        if p.session is not None:
            p.session.send_frame(frame, droppable=True, latest=True)

    # ------------------------------------------------------------------ MediaEvents

    def on_client_frame(self, pid: int, channel: Channel, data: bytes) -> None:
        p = self.participants.get(pid)
        if p is not None and p.session is not None:
            pending = p.session.handle_frame(data, via=channel)
            if pending is not None:  # e.g. `leave` or media calls sent on the control channel
                task = asyncio.ensure_future(pending)
                self._frame_tasks.add(task)
                task.add_done_callback(self._frame_tasks.discard)

    def send_to_websocket(self, pid: int, data: bytes, *, droppable: bool) -> bool:
        p = self.participants.get(pid)
        if p is None or p.session is None:
            return False
        return bool(p.session.send_frame(data, droppable=droppable))

    def on_media_closed(self, pid: int) -> None:
        p = self.participants.get(pid)
        if p is not None and p.session is not None:
            p.session.send_error(ErrorCode.MEDIA_FAILED, "media connection closed", None)

    def on_tracks(self, pid: int, *, audio: bool, video: bool) -> None:
        """The backend reports which tracks a participant actually publishes."""
        p = self.participants.get(pid)
        if p is None or pid not in self.table:
            return
        self.table.set_flag(pid, FLAG_VIDEO, video and p.grants.can_publish)
        p.publishes_audio = audio
        self.refresh_flags(p)
