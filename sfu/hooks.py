"""The two places where Hubbub changes aiortc's media path (aiortc 1.16).

aiortc decodes every received stream on a thread and re-encodes every sent one. For forwarding we need
neither, so the publish receivers and the slot senders of a connection get their class swapped, right
after `addTransceiver`, to these subclasses:

- `ForwardingReceiver` keeps aiortc's RTCP (receiver reports, NACKs to the publisher, REMB) and its
  per-SSRC statistics, but hands each RTP packet to a sink instead of the jitter buffer and decoder,
  and never starts the decoder thread.
- `SlotSender` never pulls frames from a track (no 20 ms polling task per slot) and makes aiortc's
  sender reports describe what the slot actually sent (packet/octet counts, last RTP timestamp and its
  wall time), so SRs stay coherent with the rewritten stream. NACKs and keyframe requests from the
  listener go to the slot.

aiortc keeps these fields name-mangled (``self.__x``), hence the ``_RTCRtpReceiver__x`` spellings.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.codecs import is_rtx
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unwrap_rtx,
)

from .forward import OutSlot
from .rtp import ntp_from_unix

_R = "_RTCRtpReceiver__"
_S = "_RTCRtpSender__"


def _noop_sink(packet: RtpPacket) -> None:
    return None


class ForwardingReceiver(RTCRtpReceiver):
    """A publish-side receiver that forwards RTP instead of decoding it."""

    sink: Callable[[RtpPacket], None]
    last_ssrc: int | None
    # aiortc's private state, looked up once (the per-packet path must not build attribute names).
    _fw_codecs: dict[int, RTCRtpCodecParameters]
    _fw_streams: dict[int, StreamStatistics]
    _fw_rtx: dict[int, int]
    _fw_estimator: Any
    _fw_nack: Any

    @classmethod
    def adopt(cls, receiver: RTCRtpReceiver, sink: Callable[[RtpPacket], None]) -> ForwardingReceiver:
        receiver.__class__ = cls
        assert isinstance(receiver, ForwardingReceiver)
        receiver.sink = sink
        receiver.last_ssrc = None
        receiver._fw_codecs = getattr(receiver, _R + "codecs")
        receiver._fw_streams = getattr(receiver, _R + "remote_streams")
        receiver._fw_rtx = getattr(receiver, _R + "rtx_ssrc")
        receiver._fw_estimator = getattr(receiver, _R + "remote_bitrate_estimator")
        receiver._fw_nack = getattr(receiver, _R + "nack_generator")
        return receiver

    async def receive(self, parameters: RTCRtpReceiveParameters) -> None:
        # aiortc's receive() minus the decoder thread.
        if getattr(self, _R + "started"):
            return
        for codec in parameters.codecs:
            if codec.payloadType is not None:
                self._fw_codecs[codec.payloadType] = codec
        for encoding in parameters.encodings:
            if encoding.rtx:
                self._fw_rtx[encoding.rtx.ssrc] = encoding.ssrc
        self.transport._register_rtp_receiver(self, parameters)
        setattr(self, _R + "rtcp_task", asyncio.ensure_future(self._run_rtcp()))
        setattr(self, _R + "started", True)

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        if not self._enabled:
            return
        codec = self._fw_codecs.get(packet.payload_type)
        if codec is None:
            return
        # Statistics feed aiortc's receiver reports to the publisher (loss, jitter, RTT via LSR/DLSR).
        streams = self._fw_streams
        stream = streams.get(packet.ssrc)
        if stream is None:
            stream = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stream.add(packet)

        if is_rtx(codec):
            original_ssrc = getattr(self, _R + "rtx_ssrc").get(packet.ssrc)
            apt = codec.parameters.get("apt")
            codecs = getattr(self, _R + "codecs")
            if (
                original_ssrc is None
                or len(packet.payload) < 2
                or not isinstance(apt, int)
                or apt not in codecs
            ):
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)

        estimator = self._fw_estimator
        if estimator is not None and packet.extensions.abs_send_time is not None:
            remb = estimator.add(
                abs_send_time=packet.extensions.abs_send_time,
                arrival_time_ms=arrival_time_ms,
                payload_size=len(packet.payload) + packet.padding_size,
                ssrc=packet.ssrc,
            )
            rtcp_ssrc = getattr(self, _R + "rtcp_ssrc")
            if rtcp_ssrc is not None and remb is not None:
                await self._send_rtcp(
                    RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(*remb))
                )

        nack = self._fw_nack
        if nack is not None and nack.add(packet):
            await self._send_rtcp_nack(packet.ssrc, sorted(nack.missing))

        self.last_ssrc = packet.ssrc
        self.sink(packet)

    def pli_bytes(self) -> bytes | None:
        """An RTCP PLI for the publisher's current stream (None until its first packet)."""
        rtcp_ssrc = getattr(self, _R + "rtcp_ssrc")
        if rtcp_ssrc is None or self.last_ssrc is None:
            return None
        return bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=rtcp_ssrc, media_ssrc=self.last_ssrc))

    def inbound_stats(self) -> tuple[int, int, int]:
        """(packets received, packets lost, jitter in clock units) over all SSRCs."""
        received = lost = jitter = 0
        for stream in getattr(self, _R + "remote_streams").values():
            received += stream.packets_received
            lost += stream.packets_lost
            jitter = max(jitter, stream.jitter)
        return received, lost, jitter


def _slot_value(name: str) -> property:
    def get(self: SlotSender) -> Any:
        slot = self.slot
        if name == "packet_count":
            return slot.packets
        if name == "octet_count":
            return slot.octets
        if name == "rtp_timestamp":
            return slot._ts if slot.sent_any else 0
        return ntp_from_unix(slot.last_wall) if slot.sent_any else 0

    def ignore(self: SlotSender, value: Any) -> None:
        return None

    return property(get, ignore)


class SlotSender(RTCRtpSender):
    """A sendonly slot: packets come from `OutSlot`, not from a track."""

    slot: OutSlot
    _last_sr_packets: int

    # aiortc's sender reports and getStats read these; answer from the slot (see module docstring).
    _RTCRtpSender__packet_count = _slot_value("packet_count")
    _RTCRtpSender__octet_count = _slot_value("octet_count")
    _RTCRtpSender__rtp_timestamp = _slot_value("rtp_timestamp")
    _RTCRtpSender__ntp_timestamp = _slot_value("ntp_timestamp")

    @classmethod
    def adopt(cls, sender: RTCRtpSender, slot: OutSlot) -> SlotSender:
        sender.__class__ = cls
        assert isinstance(sender, SlotSender)
        sender.slot = slot
        sender._last_sr_packets = 0
        slot.ssrc = sender._ssrc
        slot.rtx_ssrc = sender._rtx_ssrc
        return sender

    async def _send_rtcp(self, packets: list[AnyRtcpPacket]) -> None:
        # A slot that sent nothing since its last report stays quiet: with hundreds of idle slots,
        # aiortc's once-a-second SR per sender would otherwise cost more than the media.
        if packets and isinstance(packets[0], RtcpSrPacket):
            if self.slot.packets == self._last_sr_packets:
                return
            self._last_sr_packets = self.slot.packets
        await super()._send_rtcp(packets)

    async def _run_rtp(self, codec: RTCRtpCodecParameters) -> None:
        # No track to poll: park until stopped. The negotiated payload type is the slot's.
        self.slot.pt = codec.payloadType or self.slot.pt
        getattr(self, _S + "rtp_started").set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        getattr(self, _S + "rtp_exited").set()

    async def _handle_rtcp_packet(self, packet: AnyRtcpPacket) -> None:
        slot = self.slot
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            slot.retransmit(list(packet.lost))
            return
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            if slot.on_keyframe_request is not None:
                slot.on_keyframe_request(slot)
            return
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc == self._ssrc:
                    slot.report.fraction_lost = report.fraction_lost
                    slot.report.packets_lost = report.packets_lost
                    slot.report.jitter = report.jitter
        await super()._handle_rtcp_packet(packet)

    @property
    def rtt(self) -> float | None:
        value: float | None = getattr(self, _S + "rtt")
        return value
