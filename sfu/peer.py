"""One participant's peer connection: the server's offer with all slots, and the raw send path.

The server makes the offer so the slots exist before the client answers: the client never has to add
transceivers or renegotiate when interest changes. Everything rides one ICE/DTLS transport
(max-bundle), including the data channels: one handshake per participant instead of one per track
kind or per direction.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import pylibsrtp
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.codecs import is_rtx
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtp import RtpPacket
from aiortc.sdp import candidate_from_sdp

from .forward import OutSlot
from .hooks import ForwardingReceiver, SlotSender
from .rtp import URI_AUDIO_LEVEL, URI_MID, ExtensionTemplate

logger = logging.getLogger(__name__)

AUDIO_CLOCK = 48000
VIDEO_CLOCK = 90000
OPUS_FRAME = 960  # 20 ms at 48 kHz


def _no_socket(data: bytes, addr: Any) -> None:
    raise OSError("not connected")


def _codec_preferences(kind: str, mime: str) -> list[Any]:
    caps = RTCRtpSender.getCapabilities(kind)
    chosen = [c for c in caps.codecs if c.mimeType.lower() == mime.lower()]
    rtx = [c for c in caps.codecs if c.mimeType.lower() == f"{kind}/rtx"]
    return chosen + rtx[:1] if kind == "video" else chosen


def _add_opus_stereo(sdp: str, mline_index: int) -> str:
    """Mark the mixed-audio m-section as stereo Opus (RFC 7587 fmtp), so browsers decode both channels."""
    head, *sections = sdp.split("\r\nm=")
    section = sections[mline_index]
    lines = section.split("\r\n")
    pts = [
        ln.split()[0].split(":")[1] for ln in lines if ln.startswith("a=rtpmap:") and "opus/" in ln.lower()
    ]
    for pt in pts:
        fmtp = f"a=fmtp:{pt} "
        existing = [i for i, ln in enumerate(lines) if ln.startswith(fmtp)]
        if existing:
            lines[existing[0]] += ";stereo=1;sprop-stereo=1"
        else:
            at = next(i for i, ln in enumerate(lines) if ln.startswith(f"a=rtpmap:{pt} "))
            lines.insert(at + 1, fmtp + "stereo=1;sprop-stereo=1")
    sections[mline_index] = "\r\n".join(lines)
    return "\r\nm=".join([head, *sections])


class Peer:
    """The server side of one participant's WebRTC session."""

    def __init__(
        self,
        pid: int,
        *,
        publish: bool,
        subscribe: bool,
        audio_slots: int,
        video_slots: int,
        video_history: int,
        ice_servers: Sequence[RTCIceServer],
        ice_addresses: Sequence[str] | None,
        on_audio: Callable[[RtpPacket], None],
        on_video: Callable[[RtpPacket], None],
        on_channel_message: Callable[[str, bytes | str], None],
        on_connection_state: Callable[[str], None],
        on_channel_open: Callable[[str], None],
    ) -> None:
        self.pid = pid
        self.publish = publish
        self.subscribe = subscribe
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=list(ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.created = time.monotonic()
        self.closed = False
        self.audio_receiver: ForwardingReceiver | None = None
        self.video_receiver: ForwardingReceiver | None = None
        self.audio_slots: list[OutSlot] = []
        self.video_slots: list[OutSlot] = []
        self.mixed_slot: OutSlot | None = None
        self._transceivers: dict[OutSlot, RTCRtpTransceiver] = {}
        self._publish_transceivers: list[RTCRtpTransceiver] = []
        self._tx: pylibsrtp.Session | None = None
        self._sendto: Callable[[bytes, Any], Any] = _no_socket
        self.dropped = 0  # RTP packets dropped because the socket's send buffer was full
        self._addr: tuple[str, int] | None = None
        self._dtls: RTCDtlsTransport | None = None
        self.stun_requests = 0

        if publish:
            ta = self.pc.addTransceiver("audio", direction="recvonly")
            ta.setCodecPreferences(_codec_preferences("audio", "audio/opus"))
            self.audio_receiver = ForwardingReceiver.adopt(ta.receiver, on_audio)
            tv = self.pc.addTransceiver("video", direction="recvonly")
            tv.setCodecPreferences(_codec_preferences("video", "video/VP8"))
            self.video_receiver = ForwardingReceiver.adopt(tv.receiver, on_video)
            self._publish_transceivers = [ta, tv]
        if subscribe:
            for i in range(audio_slots):
                self.audio_slots.append(self._add_slot("audio", i, AUDIO_CLOCK, OPUS_FRAME, 0))
            self.mixed_slot = self._add_slot("mixed", 0, AUDIO_CLOCK, OPUS_FRAME, 0)
            for i in range(video_slots):
                self.video_slots.append(self._add_slot("video", i, VIDEO_CLOCK, 1, video_history))

        self.control: RTCDataChannel = self.pc.createDataChannel("control")
        self.state: RTCDataChannel = self.pc.createDataChannel("state", ordered=False, maxRetransmits=0)
        for channel in (self.control, self.state):
            label = channel.label
            channel.on("message", lambda data, label=label: on_channel_message(label, data))
            channel.on("open", lambda label=label: on_channel_open(label))
        self.pc.on("connectionstatechange", lambda: on_connection_state(self.pc.connectionState))
        self._limit_ice(ice_addresses)

    def _add_slot(self, kind: str, index: int, clock: int, min_step: int, history: int) -> OutSlot:
        media = "video" if kind == "video" else "audio"
        t = self.pc.addTransceiver(media, direction="sendonly")
        t.setCodecPreferences(_codec_preferences(media, "video/VP8" if media == "video" else "audio/opus"))
        slot = OutSlot(self.pid, kind, index, clock_rate=clock, min_step=min_step, history_size=history)
        SlotSender.adopt(t.sender, slot)
        slot.send = self.send_rtp
        self._transceivers[slot] = t
        return slot

    def _ice_connection(self) -> Any:
        transceivers = self.pc.getTransceivers()
        if transceivers:
            return transceivers[0].receiver.transport.transport.iceGatherer._connection
        assert self.pc.sctp is not None
        return self.pc.sctp.transport.transport.iceGatherer._connection

    def _limit_ice(self, addresses: Sequence[str] | None) -> None:
        """Gather host candidates only on `addresses` (e.g. the public interface, or 127.0.0.1 in tests),
        and count the peer's STUN checks: a client that still sends consent checks is alive."""
        conn = self._ice_connection()
        if addresses is not None:
            gather = conn.get_component_candidates
            chosen = list(addresses)

            async def limited(component: int, addresses: list[str], timeout: int = 5) -> Any:
                return await gather(component=component, addresses=chosen, timeout=timeout)

            conn.get_component_candidates = limited
        handle_request = conn.request_received

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.stun_requests += 1
            return handle_request(*args, **kwargs)

        conn.request_received = counted

    # -- signaling -----------------------------------------------------------------------------

    async def make_offer(self) -> dict[str, Any]:
        offer = await self.pc.createOffer()
        sdp = offer.sdp
        if self.mixed_slot is not None:
            sdp = _add_opus_stereo(sdp, self._transceivers[self.mixed_slot]._get_mline_index() or 0)
        # Non-trickle: setLocalDescription gathers every candidate into the SDP.
        await self.pc.setLocalDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for slot, t in self._transceivers.items():
            slot.mid = t.mid
        slots: dict[str, Any] = {
            "audio": [s.mid for s in self.audio_slots],
            "mixed": self.mixed_slot.mid if self.mixed_slot else None,
            "video": [s.mid for s in self.video_slots],
            "publish_audio": self._publish_transceivers[0].mid if self._publish_transceivers else None,
            "publish_video": self._publish_transceivers[1].mid if self._publish_transceivers else None,
        }
        return {"sdp": self.pc.localDescription.sdp, "slots": slots}

    async def set_answer(self, sdp: str) -> None:
        if self.pc.signalingState != "have-local-offer":
            raise ValueError(f"no answer expected in signaling state {self.pc.signalingState}")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:  # aiortc raises ValueError, OperationError, InvalidStateError...
            raise ValueError(f"bad answer: {exc}") from exc
        for slot, t in self._transceivers.items():
            ids = {e.uri: e.id for e in t._headerExtensions}
            slot.ext = ExtensionTemplate(
                slot.mid, ids.get(URI_MID), ids.get(URI_AUDIO_LEVEL) if slot.kind == "audio" else None
            )
            if t._codecs:
                slot.pt = t._codecs[0].payloadType or slot.pt
                rtx = [c for c in t._codecs if is_rtx(c) and c.parameters.get("apt") == slot.pt]
                slot.rtx_pt = rtx[0].payloadType if rtx and slot.kind == "video" else None

    async def add_ice_candidate(self, cand: dict[str, Any]) -> None:
        text = cand.get("candidate")
        if not isinstance(text, str):
            raise ValueError("candidate must be a string")
        if text == "":
            await self.pc.addIceCandidate(None)  # end of candidates
            return
        try:
            candidate = candidate_from_sdp(text.removeprefix("candidate:"))
        except (ValueError, IndexError, AssertionError) as exc:  # aiortc asserts on short lines
            raise ValueError(f"bad candidate: {text!r}") from exc
        candidate.sdpMid = cand.get("sdpMid")
        candidate.sdpMLineIndex = cand.get("sdpMLineIndex")
        if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
            candidate.sdpMLineIndex = 0
        await self.pc.addIceCandidate(candidate)

    # -- raw media path ------------------------------------------------------------------------

    def _resolve(self) -> bool:
        """Find the SRTP session and UDP socket once DTLS is up (no per-packet lookups after that)."""
        transceivers = self.pc.getTransceivers()
        if not transceivers:
            return False
        dtls = transceivers[0].receiver.transport
        if dtls.state != "connected" or dtls._tx_srtp is None:
            return False
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None:
            return False
        self._dtls = dtls
        self._tx = dtls._tx_srtp
        udp = pair.protocol.transport
        # The raw non-blocking socket: a full send buffer raises BlockingIOError and the packet is
        # dropped, where asyncio's transport would queue it without bound.
        sock = getattr(udp, "_sock", None)
        self._sendto = sock.sendto if isinstance(sock, socket.socket) else udp.sendto
        self._addr = pair.remote_addr
        return True

    def send_rtp(self, data: bytes) -> None:
        tx = self._tx
        if tx is None:
            if self.closed or not self._resolve():
                return
            tx = self._tx
            assert tx is not None
        try:
            self._sendto(tx.protect(data), self._addr)
        except BlockingIOError:
            self.dropped += 1
        except (pylibsrtp.Error, OSError) as exc:
            logger.debug("pid %d: RTP send failed: %s", self.pid, exc)

    def send_rtcp(self, data: bytes) -> None:
        if self._tx is None and (self.closed or not self._resolve()):
            return
        assert self._tx is not None
        try:
            self._sendto(self._tx.protect_rtcp(data), self._addr)
        except (pylibsrtp.Error, OSError) as exc:
            logger.debug("pid %d: RTCP send failed: %s", self.pid, exc)

    def rx_packets(self) -> int:
        """Datagrams (DTLS, SRTP, SRTCP) received from the peer so far."""
        if self._dtls is None and not self._resolve():
            return 0
        value: int = getattr(self._dtls, "_RTCDtlsTransport__rx_packets", 0)
        return value

    # -- data channels -------------------------------------------------------------------------

    def channel(self, name: str) -> RTCDataChannel | None:
        if name == "control":
            return self.control
        if name == "state":
            return self.state
        return None

    # -- teardown ------------------------------------------------------------------------------

    def sender_of(self, slot: OutSlot) -> RTCRtpSender:
        return self._transceivers[slot].sender

    def receivers(self) -> list[RTCRtpReceiver]:
        return [t.receiver for t in self._publish_transceivers]

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._tx = None
        try:
            # Shielded: cancelling a waiter of aiortc's close must not cancel aiortc's own close future.
            await asyncio.wait_for(asyncio.shield(self.pc.close()), timeout=5)
        except (TimeoutError, ConnectionError) as exc:
            logger.warning("pid %d: peer connection close: %r", self.pid, exc)
        self._transceivers.clear()
