"""The Hubbub client: join a world over the signaling WebSocket, answer the server's WebRTC offer, publish a
voice, send poses and data, receive forwarded voices (tagged with their avatar) and the mixed bed.

Lifecycle: `connect()` joins and returns once the welcome and the offer have been handled. A supervisor
task keeps the session alive: when the WebSocket or the peer connection drops, it reconnects with
exponential backoff and the resume token from the last welcome, so the server can give back the same id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

import av
import websockets
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .audio import FrameSource, LevelMeter, PcmTrack, frame_to_float, tone
from .backoff import Backoff
from .events import (
    ActiveSpeakers,
    AudioSource,
    DataReceived,
    Disconnected,
    Event,
    Joined,
    Participant,
    ParticipantEntered,
    ParticipantLeft,
    PoseCorrected,
    PosesUpdated,
    ServerError,
    SlotsChanged,
)
from .slots import SlotMap
from .throttle import PoseThrottle
from .wire import PROTOCOL_VERSION, Message, Pose, WireError, decode, encode, pose_message, unpack_poses

log = logging.getLogger("hubbub_client")

E = TypeVar("E")
AudioCallback = Callable[[AudioSource, Any], None]

POSE_RATE_HZ = 30.0
EVENT_QUEUE_MAX = 1024  # the async iterator drops the oldest event beyond this
STATE_BUFFER_MAX = 16 * 1024  # poses are dropped (not queued) while the state channel is this backed up
CONTROL_BUFFER_MAX = 1024 * 1024


class JoinError(Exception):
    """The server refused the join (bad token, full world, …) or the handshake failed."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def rtc_url(url: str) -> str:
    """Accept ws://host:port, ws://host:port/rtc or http(s)://host:port and return the signaling URL."""
    if url.startswith("http://"):
        url = "ws://" + url[len("http://") :]
    elif url.startswith("https://"):
        url = "wss://" + url[len("https://") :]
    if not url.rstrip("/").endswith("/rtc"):
        url = url.rstrip("/") + "/rtc"
    return url


class Client:
    """One participant. Create with :func:`connect`."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        publish: bool | FrameSource | PcmTrack = True,
        subscribe: bool = True,
        decode_audio: bool = True,
        reconnect: bool = True,
        pose_rate_hz: float = POSE_RATE_HZ,
        backoff: Backoff | None = None,
        jitter_frames: int | None = None,
    ) -> None:
        self.url = rtc_url(url)
        self.token = token
        self.subscribe = subscribe
        self.decode_audio = decode_audio and subscribe
        self.reconnect = reconnect
        if jitter_frames is not None and not 1 <= jitter_frames <= 16:
            raise ValueError("jitter_frames must be in 1..16")
        self.jitter_frames = jitter_frames
        self._backoff = backoff or Backoff()
        # Our voice: one track for the whole life of the client, re-attached after reconnects.
        self.voice: PcmTrack | None = None
        if publish is True:
            self.voice = PcmTrack(tone())
        elif isinstance(publish, PcmTrack):
            self.voice = publish
        elif publish is not False:
            self.voice = PcmTrack(publish)

        # Session state (replaced on every join).
        self.participant_id: int | None = None
        self.identity = ""
        self.name = ""
        self.world: dict[str, Any] = {}
        self.grants: dict[str, Any] = {}
        self.resume_token: str | None = None
        self.participants: dict[int, Participant] = {}
        self.slots = SlotMap()
        self.speakers: dict[int, float] = {}
        self.pose = Pose((0.0, 0.0, 0.0))
        self.slot_levels: list[LevelMeter] = []
        self.mixed_level = LevelMeter()
        self.errors: deque[ServerError] = deque(maxlen=64)
        self.counters = {"data_in": 0, "data_out": 0, "poses_out": 0, "reconnects": 0, "errors": 0}

        self._ws: Any = None
        self._pc: RTCPeerConnection | None = None
        self._control: RTCDataChannel | None = None
        self._state: RTCDataChannel | None = None
        self._throttle = PoseThrottle(pose_rate_hz)
        self._pose_timer: asyncio.TimerHandle | None = None
        self._pose_seq = 0
        self._ping_id = 0
        self._pings: dict[int, asyncio.Future[float]] = {}
        self._callbacks: dict[type, list[Callable[[Any], None]]] = {}
        self._audio_callbacks: list[AudioCallback] = []
        self._queues: list[asyncio.Queue[Event]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._session_done: asyncio.Event = asyncio.Event()
        self._ready: asyncio.Future[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closed = False

    # ------------------------------------------------------------------ public API

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._pc is not None and self._pc.connectionState == "connected"

    def on(self, event_type: type[E], callback: Callable[[E], None]) -> None:
        """Call `callback(event)` for every event of `event_type` (e.g. ParticipantEntered)."""
        self._callbacks.setdefault(event_type, []).append(callback)

    def on_audio(self, callback: AudioCallback) -> None:
        """Call `callback(source, samples)` for every decoded 20 ms block: float32 (n, channels)."""
        self._audio_callbacks.append(callback)

    async def events(self) -> AsyncIterator[Event]:
        """Iterate over events as they arrive (bounded: the oldest are dropped if you fall behind)."""
        q: asyncio.Queue[Event] = asyncio.Queue(EVENT_QUEUE_MAX)
        self._queues.append(q)
        try:
            while not self._closed:
                yield await q.get()
        finally:
            self._queues.remove(q)

    def set_pose(self, p: Sequence[float], q: Sequence[float] | None = None) -> None:
        """Move the local avatar. Sent on the `state` channel at most `pose_rate_hz` times a second; only
        the newest pose is kept when calls come faster."""
        self.pose = Pose(
            (float(p[0]), float(p[1]), float(p[2])),
            self.pose.q if q is None else (float(q[0]), float(q[1]), float(q[2]), float(q[3])),
        )
        ready = self._throttle.offer(self.pose, time.monotonic())
        if ready is not None:
            self._send_pose(ready)
        else:
            self._arm_pose_timer()

    async def walk_to(self, p: Sequence[float], speed: float = 3.0, rate_hz: float = 20.0) -> bool:
        """Walk in a straight line to `p` at `speed` m/s, facing the way we go; True on arrival.

        Servers correct poses that move faster than the world's max_speed, so moving far means walking,
        not jumping. Each step starts from `self.pose`, so after a `corrected` message the walk carries on
        from where the server put us. Gives up (False) after twice the expected time plus 5 s.
        """
        import math

        from .wire import yaw_quaternion

        target = (float(p[0]), float(p[1]), float(p[2]))
        step = speed / rate_hz
        deadline = time.monotonic() + 2 * math.dist(self.pose.p, target) / speed + 5.0
        while time.monotonic() < deadline:
            here = self.pose.p
            d = math.dist(here, target)
            if d <= step:
                self.set_pose(target)
                return True
            dx, dy, dz = ((t - h) / d for t, h in zip(target, here, strict=True))
            self.set_pose(
                (here[0] + dx * step, here[1] + dy * step, here[2] + dz * step),
                yaw_quaternion(math.atan2(-dx, -dz)),
            )
            await asyncio.sleep(1.0 / rate_hz)
        return False

    async def send_data(
        self, topic: str, payload: bytes, reliable: bool = True, to: Sequence[int] | None = None
    ) -> None:
        """Send app data to everybody in the world, or to the participants `to`."""
        msg: Message = {"t": "data", "topic": topic, "payload": bytes(payload), "reliable": reliable}
        if to is not None:
            msg["to"] = [int(x) for x in to]
        channel = self._control if reliable else self._state
        if channel is None or channel.readyState != "open":
            channel = self._control
        if channel is not None and channel.readyState == "open":
            if channel.bufferedAmount > CONTROL_BUFFER_MAX:
                raise BufferError("control channel backed up; data not sent")
            channel.send(encode(msg))
        elif self._ws is not None:
            await self._ws.send(encode(msg))
        else:
            raise ConnectionError("not connected")
        self.counters["data_out"] += 1

    async def set_muted(self, muted: bool) -> None:
        """Mute our voice (silence is sent and the server is told, so it stops forwarding us)."""
        if self.voice is not None:
            self.voice.muted = muted
        await self._send({"t": "mute", "audio": muted})

    async def ping(self, timeout: float = 5.0) -> float:
        """Round trip over the signaling WebSocket, in seconds."""
        self._ping_id += 1
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._pings[self._ping_id] = fut
        start = time.monotonic()
        await self._send({"t": "ping", "id": self._ping_id})
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            self._pings.pop(self._ping_id, None)
        return time.monotonic() - start

    def level_of(self, pid: int) -> float:
        """Smoothed level (dBFS) of the forwarded voice of participant `pid`; -120 if not forwarded."""
        i = self.slots.slot_of(pid)
        if i is None or i >= len(self.slot_levels):
            return -120.0
        return self.slot_levels[i].dbfs

    async def stats(self) -> dict[str, int]:
        """RTP packet counters of the current peer connection plus data/pose counters."""
        out = dict(self.counters)
        out.update(packets_in=0, packets_out=0, bytes_out=0, packets_lost=0)
        pc = self._pc
        if pc is None:
            return out
        for t in pc.getTransceivers():
            if t.receiver.track is not None and t.currentDirection in ("recvonly", "sendrecv"):
                for s in (await t.receiver.getStats()).values():
                    if s.type == "inbound-rtp":
                        out["packets_in"] += s.packetsReceived
                        out["packets_lost"] += s.packetsLost
            if t.sender.track is not None and t.currentDirection in ("sendonly", "sendrecv"):
                for s in (await t.sender.getStats()).values():
                    if s.type == "outbound-rtp":
                        out["packets_out"] += s.packetsSent
                        out["bytes_out"] += s.bytesSent
        return out

    async def close(self) -> None:
        """Leave the world and stop reconnecting."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self._send({"t": "leave"})
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._supervisor
        await self._teardown()
        for task in list(self._tasks):
            task.cancel()
        if self.voice is not None:
            self.voice.stop()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ session

    async def start(self, timeout: float = 20.0) -> None:
        """Join once (raising JoinError on refusal), then keep the session alive in the background."""
        try:
            await asyncio.wait_for(self._join(), timeout)
        except TimeoutError:
            progress = self._join_progress()
            await self._teardown()
            raise JoinError(f"join timed out after {timeout:g} s: {progress}") from None
        self._supervisor = asyncio.create_task(self._supervise())

    def _join_progress(self) -> str:
        if self.participant_id is None:
            return "no welcome from the server"
        if self._pc is None:
            return "welcome received, but no WebRTC offer from the server"
        return f"offer answered, peer connection {self._pc.connectionState}"

    async def _supervise(self) -> None:
        while not self._closed:
            await self._session_done.wait()
            if self._closed:
                return
            await self._teardown()
            if not self.reconnect:
                return
            while not self._closed:
                delay = self._backoff.next_delay()
                log.info("reconnecting in %.1f s", delay)
                await asyncio.sleep(delay)
                try:
                    await asyncio.wait_for(self._join(), 20.0)
                    self.counters["reconnects"] += 1
                    break
                except JoinError as exc:
                    if exc.code is not None and 4000 <= exc.code < 4100 and exc.code != 4005:
                        # Refused for good (auth, kicked, full): retrying would not help.
                        self._emit(Disconnected(str(exc), False, exc.code))
                        return
                    log.warning("reconnect failed: %s", exc)
                except (TimeoutError, OSError, websockets.WebSocketException) as exc:
                    log.warning("reconnect failed: %s", exc)
                await self._teardown()

    async def _join(self) -> None:
        self._session_done = asyncio.Event()
        self._ready = asyncio.get_running_loop().create_future()
        self._ws = await websockets.connect(self.url, max_size=4 * 1024 * 1024, open_timeout=10)
        join: Message = {"t": "join", "v": PROTOCOL_VERSION, "token": self.token, "transport": "webrtc"}
        if self.resume_token:
            join["resume"] = self.resume_token
        await self._ws.send(encode(join))
        self._spawn(self._read_ws(self._ws))
        try:
            await self._ready
        except BaseException:
            await self._teardown()
            raise
        self._backoff.reset()

    async def _read_ws(self, ws: Any) -> None:
        reason, code = "connection closed", None
        try:
            async for frame in ws:
                await self._handle_frame(frame)
        except websockets.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            reason = exc.rcvd.reason if exc.rcvd is not None and exc.rcvd.reason else reason
        except Exception as exc:  # a bug in a handler must not hang the session silently
            log.exception("signaling reader failed")
            reason = f"client error: {exc}"
        finally:
            if ws.close_code is not None and code is None:
                code = ws.close_code
            self._end_session(reason, code)

    def _end_session(self, reason: str, code: int | None) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(JoinError(f"join failed: {reason}", code))
            return
        if not self._session_done.is_set():
            self._session_done.set()
            if not self._closed:
                will = self.reconnect and not (code is not None and 4000 <= code < 4100 and code != 4005)
                self._emit(Disconnected(reason, will, code))

    async def _teardown(self) -> None:
        ws, pc = self._ws, self._pc
        self._ws = self._pc = self._control = self._state = None
        if self._pose_timer is not None:
            self._pose_timer.cancel()
            self._pose_timer = None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        if pc is not None:
            with contextlib.suppress(Exception):
                await pc.close()

    # ------------------------------------------------------------------ incoming messages

    async def _handle_frame(self, frame: bytes | str) -> None:
        try:
            msg = decode(frame)
        except WireError as exc:
            log.warning("dropping bad frame from server: %s", exc)
            return
        try:
            await self._handle(msg)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("dropping malformed %s message: %s", msg.get("t"), exc)

    async def _handle(self, msg: Message) -> None:
        t = msg["t"]
        if t == "welcome":
            self._on_welcome(msg)
        elif t == "offer":
            await self._on_offer(msg)
        elif t == "ice":
            await self._on_ice(msg)
        elif t == "poses":
            poses = unpack_poses(msg)
            for pid, pose in poses.items():
                old = self.participants.get(pid)
                if old is not None:
                    self.participants[pid] = Participant(
                        old.id, old.identity, old.name, pose, old.audio, old.video
                    )
            self._emit(PosesUpdated(int(msg.get("tick", 0)), poses))
        elif t == "enter":
            for info in msg["participants"]:
                p = _participant(info)
                self.participants[p.id] = p
                self._emit(ParticipantEntered(p))
        elif t == "exit":
            for pid in msg["ids"]:
                self.participants.pop(int(pid), None)
                self.speakers.pop(int(pid), None)
                self._emit(ParticipantLeft(int(pid)))
        elif t == "slots":
            before = list(self.slots.audio)
            self.slots.update(msg["audio"], msg.get("video") or [], msg.get("flat") or [])
            while len(self.slot_levels) < len(self.slots.audio):
                self.slot_levels.append(LevelMeter())
            for i, carried in enumerate(self.slots.audio):
                if i >= len(before) or before[i] != carried:
                    self.slot_levels[i] = LevelMeter()  # a re-pointed slot starts a new avatar's level
            self._emit(SlotsChanged(tuple(self.slots.audio), tuple(self.slots.video), tuple(self.slots.flat)))
        elif t == "speakers":
            ids, levels = [int(i) for i in msg["ids"]], [float(x) for x in msg["levels"]]
            self.speakers = dict(zip(ids, levels, strict=False))
            self._emit(ActiveSpeakers(tuple(ids), tuple(levels)))
        elif t == "data":
            self.counters["data_in"] += 1
            self._emit(DataReceived(int(msg["from"]), str(msg["topic"]), bytes(msg["payload"])))
        elif t == "corrected":
            self.pose = Pose(tuple(msg["p"]), tuple(msg["q"]))
            self._emit(PoseCorrected(self.pose, str(msg["reason"])))
        elif t == "error":
            err = ServerError(int(msg["code"]), str(msg["message"]), msg.get("ref"))
            self.errors.append(err)
            self.counters["errors"] += 1
            log.warning("server error %s: %s", err.code, err.message)
            if self._ready is not None and not self._ready.done() and err.ref in (None, "join", "answer"):
                self._ready.set_exception(JoinError(err.message, err.code))
            self._emit(err)
        elif t == "pong":
            fut = self._pings.get(int(msg["id"]))
            if fut is not None and not fut.done():
                fut.set_result(time.monotonic())
        elif t == "bye":
            log.info("server says bye: %s %s", msg.get("code"), msg.get("reason"))
            code = int(msg.get("code", 1000))
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(JoinError(str(msg.get("reason")), code))
            if code in (4001, 4004, 4006, 4007):
                self.reconnect = False  # refused for good
        else:
            log.debug("ignoring message type %s", t)

    def _on_welcome(self, msg: Message) -> None:
        self.participant_id = int(msg["participant_id"])
        self.identity = str(msg.get("identity", ""))
        self.name = str(msg.get("name", ""))
        self.world = dict(msg.get("world") or {})
        self.grants = dict(msg.get("grants") or {})
        self.resume_token = msg.get("resume") or self.resume_token
        self._ice_servers = list(msg.get("ice_servers") or [])
        spawn = msg.get("spawn") or {}
        self.pose = Pose(
            tuple(spawn.get("p", (0.0, 0.0, 0.0))),
            tuple(spawn.get("q", (0.0, 0.0, 0.0, 1.0))),
        )
        self.participants.clear()
        self.speakers.clear()
        self._emit(
            Joined(
                self.participant_id,
                self.identity,
                self.name,
                self.world,
                self.grants,
                self.pose,
                bool(msg.get("resumed", False)),
            )
        )

    async def _on_offer(self, msg: Message) -> None:
        pc: RTCPeerConnection | None = self._pc
        if pc is None:
            servers = [
                RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
                for s in getattr(self, "_ice_servers", [])
                if s.get("urls")
            ]
            pc = RTCPeerConnection(RTCConfiguration(iceServers=servers or None))
            self._pc = pc
            pc.on("datachannel", self._on_datachannel)
            pc.on("track", self._on_track)
            pc.on("connectionstatechange", self._on_pc_state)
        self.slots.set_offer(msg["slots"])
        self.slot_levels = [LevelMeter() for _ in self.slots.audio_mids]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="offer"))
        for t in pc.getTransceivers():
            if t.mid is not None and t.mid == self.slots.publish_audio_mid and self.voice is not None:
                t.sender.replaceTrack(self.voice)
                t.direction = "sendonly"
            elif t.mid in (self.slots.publish_audio_mid, self.slots.publish_video_mid) or not self.subscribe:
                t.direction = "inactive"
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        await self._send({"t": "answer", "sdp": pc.localDescription.sdp})

    async def _on_ice(self, msg: Message) -> None:
        # aiortc gathers all candidates before answering; late server candidates are still accepted.
        from aiortc.sdp import candidate_from_sdp

        if self._pc is None or not msg.get("candidate"):
            return
        cand = candidate_from_sdp(str(msg["candidate"]).removeprefix("candidate:"))
        cand.sdpMid = msg.get("sdpMid")
        cand.sdpMLineIndex = msg.get("sdpMLineIndex")
        await self._pc.addIceCandidate(cand)

    def _on_pc_state(self) -> None:
        pc = self._pc
        if pc is None:
            return
        if pc.connectionState == "connected":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
            if not self.decode_audio:
                _stop_decoders(pc)
        elif pc.connectionState in ("failed", "closed"):
            self._end_session(f"peer connection {pc.connectionState}", None)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label == "control":
            self._control = channel
        elif channel.label == "state":
            self._state = channel
        else:
            log.debug("ignoring data channel %s", channel.label)

        @channel.on("message")
        async def on_message(frame: bytes | str) -> None:
            await self._handle_frame(frame)

    def _on_track(self, track: MediaStreamTrack) -> None:
        pc = self._pc
        if pc is None or track.kind != "audio":
            return
        receiver = next((t.receiver for t in pc.getTransceivers() if t.receiver.track is track), None)
        if receiver is not None and self.jitter_frames is not None:
            # aiortc releases an audio frame only once 4 later frames are complete (80 ms); on a clean
            # network fewer are enough. There is no public knob, hence the private attribute.
            jb = getattr(receiver, "_RTCRtpReceiver__jitter_buffer", None)
            if jb is not None and hasattr(jb, "_prefetch"):
                jb._prefetch = self.jitter_frames
        if not self.decode_audio:
            return
        mid = next((t.mid for t in pc.getTransceivers() if t.receiver.track is track), None)
        if mid == self.slots.mixed_mid:
            self._spawn(self._read_audio(track, None))
        else:
            index = self.slots.audio_index(mid)
            if index is not None:
                self._spawn(self._read_audio(track, index))

    async def _read_audio(self, track: MediaStreamTrack, index: int | None) -> None:
        """Drain one received track (aiortc queues decoded frames without bound unless read)."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.AudioFrame)
            samples = frame_to_float(frame)
            if index is None:
                meter = self.mixed_level
                source = AudioSource(None, None)
            else:
                meter = self.slot_levels[index]
                pid = self.slots.audio[index] if index < len(self.slots.audio) else None
                source = AudioSource(index, pid, self.slots.is_flat(index))
            meter.add(samples)
            for cb in self._audio_callbacks:
                try:
                    cb(source, samples)
                except Exception:
                    log.exception("audio callback failed")

    # ------------------------------------------------------------------ outgoing

    async def _send(self, msg: Message) -> None:
        """Reliable messages: on the control channel when open, else the WebSocket."""
        ch = self._control
        if ch is not None and ch.readyState == "open":
            ch.send(encode(msg))
        elif self._ws is not None:
            await self._ws.send(encode(msg))
        else:
            raise ConnectionError("not connected")

    def _send_pose(self, pose: Pose) -> None:
        self._pose_seq = (self._pose_seq + 1) % 2**32
        frame = encode(pose_message(pose, self._pose_seq))
        ch = self._state
        if ch is not None and ch.readyState == "open":
            if ch.bufferedAmount <= STATE_BUFFER_MAX:  # stale poses are dropped, never queued
                ch.send(frame)
                self.counters["poses_out"] += 1
        elif self._ws is not None:
            self._spawn(self._ws.send(frame))
            self.counters["poses_out"] += 1

    def _arm_pose_timer(self) -> None:
        deadline = self._throttle.deadline()
        if deadline is None or self._pose_timer is not None:
            return
        loop = asyncio.get_running_loop()
        self._pose_timer = loop.call_later(max(0.0, deadline - time.monotonic()), self._pose_timer_fired)

    def _pose_timer_fired(self) -> None:
        self._pose_timer = None
        pose = self._throttle.due(time.monotonic())
        if pose is not None:
            self._send_pose(pose)
        self._arm_pose_timer()

    # ------------------------------------------------------------------ plumbing

    def _emit(self, event: Event) -> None:
        for cb in self._callbacks.get(type(event), []):
            try:
                cb(event)
            except Exception:
                log.exception("event callback failed")
        for q in self._queues:
            if q.full():
                q.get_nowait()
            q.put_nowait(event)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _participant(info: dict[str, Any]) -> Participant:
    return Participant(
        id=int(info["id"]),
        identity=str(info.get("identity", "")),
        name=str(info.get("name", "")),
        pose=Pose(
            tuple(info.get("p") or (0.0, 0.0, 0.0)),
            tuple(info.get("q") or (0.0, 0.0, 0.0, 1.0)),
        ),
        audio=bool(info.get("audio", False)),
        video=bool(info.get("video", False)),
    )


def _stop_decoders(pc: RTCPeerConnection) -> None:
    """Stop aiortc's per-receiver decoder threads: a bot that never listens should not pay for Opus
    decoding. RTP still arrives and is counted (receiver stats); complete frames are just not decoded."""
    for t in pc.getTransceivers():
        stop = getattr(t.receiver, "_RTCRtpReceiver__stop_decoder", None)
        if stop is not None:
            stop()


async def connect(
    url: str,
    token: str,
    *,
    publish: bool | FrameSource | PcmTrack = True,
    subscribe: bool = True,
    decode_audio: bool = True,
    reconnect: bool = True,
    pose_rate_hz: float = POSE_RATE_HZ,
    timeout: float = 20.0,
    jitter_frames: int | None = None,
) -> Client:
    """Join a world and return the connected :class:`Client`.

    - `url`: the server (``ws://host:port``; ``/rtc`` is added when missing).
    - `token`: an access token minted with the world's API key (``hubbub token``) or from /dev/token.
    - `publish`: True publishes a test tone, False nothing, a frame source (an iterable or async
      iterator of mono 960-sample numpy arrays, e.g. ``audio.wav_frames("voice.wav")``) or a PcmTrack.
    - `subscribe`: False answers the slot transceivers as inactive (no audio is received).
    - `decode_audio`: False receives RTP but never decodes it (cheap bots).
    - `jitter_frames`: how many later 20 ms frames aiortc's receive jitter buffer waits for before it
      releases one (aiortc's default is 4, 80 ms of latency; 1 suits a clean LAN).
    """
    client = Client(
        url,
        token,
        publish=publish,
        subscribe=subscribe,
        decode_audio=decode_audio,
        reconnect=reconnect,
        pose_rate_hz=pose_rate_hz,
        jitter_frames=jitter_frames,
    )
    try:
        await client.start(timeout)
    except BaseException:
        await client.close()
        raise
    return client
