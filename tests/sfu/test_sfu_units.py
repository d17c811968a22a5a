"""Pure parts of the SFU: slot assignment, RTP rewriting across switches, extension blocks, VP8."""

from __future__ import annotations

import itertools
import struct

from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.rtp import RtpPacket
from hypothesis import given
from hypothesis import strategies as st

from sfu.forward import OutSlot
from sfu.rtp import ExtensionTemplate, vp8_keyframe_start
from sfu.slots import assign_slots, changed_slots


def test_sources_keep_their_slot_and_newcomers_take_free_ones() -> None:
    assert assign_slots([None, None, None], [5, 6]) == [5, 6, None]
    assert assign_slots([5, 6, None], [6, 7, 5]) == [5, 6, 7]
    # 5 leaves: its slot frees, 8 takes the lowest free slot, 6 and 7 do not move.
    assert assign_slots([5, 6, 7], [7, 8, 6]) == [8, 6, 7]
    # Over capacity: the farthest (last) are dropped, even if they held a slot.
    assert assign_slots([5, 6], [1, 2, 5]) == [1, 2]
    assert assign_slots([5, 6], [1, 5, 2]) == [5, 1]
    assert changed_slots([5, 6, None], [5, 7, 8]) == [1, 2]


@given(
    st.lists(
        st.one_of(st.none(), st.integers(0, 30)),
        min_size=0,
        max_size=8,
        unique_by=lambda x: x if x is not None else object(),
    ),
    st.lists(st.integers(0, 30), max_size=20),
)
def test_assignment_invariants(current: list[int | None], wanted: list[int]) -> None:
    new = assign_slots(current, wanted)
    assert len(new) == len(current)
    placed = [s for s in new if s is not None]
    assert len(placed) == len(set(placed)), "a source appears once"
    kept = list(dict.fromkeys(wanted))[: len(current)]
    assert set(placed) == set(kept), "exactly the nearest `capacity` wanted sources, nothing else"
    for i, s in enumerate(current):
        if s is not None and s in kept:
            assert new[i] == s, "a source that stays keeps its slot"


def _packet(seq: int, ts: int, payload: bytes = b"\x01\x02") -> RtpPacket:
    return RtpPacket(payload_type=111, sequence_number=seq, timestamp=ts, ssrc=1234, payload=payload)


def _header(data: bytes) -> tuple[int, int, int, int]:
    _, m_pt, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
    return m_pt & 0x7F, seq, ts, ssrc


def test_switch_continues_sequence_and_advances_timestamp_by_elapsed_time() -> None:
    sent: list[bytes] = []
    slot = OutSlot(1, "audio", 0, clock_rate=48000, min_step=960)
    slot.pt, slot.send = 96, sent.append
    slot.switch(10)
    for i in range(5):
        slot.forward(_packet(65533 + i, 4_294_966_000 + 960 * i), now=100.0 + 0.02 * i)
    slot.switch(11)
    for i in range(3):
        slot.forward(_packet(777 + i, 5_000 + 960 * i), now=100.5 + 0.02 * i)
    headers = [_header(d) for d in sent]
    assert {h[0] for h in headers} == {96}, "listener's payload type"
    assert {h[3] for h in headers} == {slot.ssrc}, "the slot's SSRC"
    seqs = [h[1] for h in headers]
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))
    ts = [h[2] for h in headers]
    steps = [(b - a) % (1 << 32) for a, b in itertools.pairwise(ts)]
    # 0.5 s - 0.08 s elapsed between the last A packet and the first B packet = 0.42 s = 20160 samples.
    assert steps == [960, 960, 960, 960, 20160, 960, 960]


def test_late_packets_of_the_new_source_before_the_switch_point_are_dropped() -> None:
    sent: list[bytes] = []
    slot = OutSlot(1, "audio", 0, clock_rate=48000, min_step=960)
    slot.send = sent.append
    slot.switch(10)
    slot.forward(_packet(100, 0), now=1.0)
    slot.forward(_packet(99, 0), now=1.01)  # older than the first forwarded: would go backwards
    slot.forward(_packet(101, 960), now=1.02)
    assert [_header(d)[1] for d in sent][1] == (_header(sent[0])[1] + 1) % 65536
    assert len(sent) == 2


def test_immediate_switch_still_advances_one_frame() -> None:
    sent: list[bytes] = []
    slot = OutSlot(1, "audio", 0, clock_rate=48000, min_step=960)
    slot.send = sent.append
    slot.switch(1)
    slot.forward(_packet(5, 1000), now=2.0)
    slot.switch(2)
    slot.forward(_packet(9000, 77), now=2.0)
    assert (_header(sent[1])[2] - _header(sent[0])[2]) % (1 << 32) == 960


def test_video_slot_waits_for_keyframe_and_answers_nacks_from_history() -> None:
    sent: list[bytes] = []
    slot = OutSlot(1, "video", 0, clock_rate=90000, min_step=1, history_size=8)
    slot.send = sent.append
    slot.switch(3)
    delta = bytes(VpxPayloadDescriptor(partition_start=1, partition_id=0)) + b"\x01\x00\x00"
    key = bytes(VpxPayloadDescriptor(partition_start=1, partition_id=0, picture_id=300)) + b"\x00\x00\x00"
    slot.forward(_packet(1, 0, delta), now=1.0)
    assert not sent, "no delta frame before a keyframe"
    slot.forward(_packet(2, 3000, key), now=1.0)
    slot.forward(_packet(3, 6000, delta), now=1.03)
    assert len(sent) == 2
    seq = _header(sent[1])[1]
    assert slot.retransmit([seq, (seq + 100) % 65536]) == 1
    assert sent[-1] == sent[1], "without RTX: the same packet again"
    slot.rtx_pt = 97
    assert slot.retransmit([seq]) == 1
    pt, _rtx_seq, ts, ssrc = _header(sent[-1])
    assert (pt, ssrc, ts) == (97, slot.rtx_ssrc, _header(sent[1])[2])
    assert sent[-1][12:14] == seq.to_bytes(2, "big") and sent[-1][14:] == sent[1][12:]


def test_vp8_keyframe_detection() -> None:
    for desc in (
        VpxPayloadDescriptor(partition_start=1, partition_id=0),
        VpxPayloadDescriptor(partition_start=1, partition_id=0, picture_id=5),
        VpxPayloadDescriptor(partition_start=1, partition_id=0, picture_id=20000, tl0picidx=3, tid=(1, 0)),
    ):
        assert vp8_keyframe_start(bytes(desc) + b"\x10\x02\x00")
        assert not vp8_keyframe_start(bytes(desc) + b"\x11\x02\x00")
    assert not vp8_keyframe_start(bytes(VpxPayloadDescriptor(partition_start=0, partition_id=0)) + b"\x00")
    assert not vp8_keyframe_start(b"")


def test_extension_block_carries_mid_and_audio_level() -> None:
    ext = ExtensionTemplate("12", mid_id=1, level_id=2)
    block = ext.build(0x80 | 30)
    assert block[:2] == b"\xbe\xde"
    words = struct.unpack("!H", block[2:4])[0]
    assert len(block) == 4 + 4 * words
    assert block[4:7] == bytes([0x11]) + b"12"
    assert block[7:9] == bytes([0x20, 0x80 | 30])
    assert ExtensionTemplate("3", 1, None).build(5) == b"\xbe\xde\x00\x01\x103\x00\x00"
    assert ExtensionTemplate(None, None, None).build(None) == b""
    # aiortc parses what we build.
    packet = RtpPacket.parse(
        struct.pack("!BBHII", 0x90, 96, 1, 2, 3) + block + b"x",
        _ext_map(),
    )
    assert packet.extensions.mid == "12" and packet.extensions.audio_level == (True, 30)


def _ext_map():  # type: ignore[no-untyped-def]
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
    from aiortc.rtp import HeaderExtensionsMap

    m = HeaderExtensionsMap()
    m.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
                RTCRtpHeaderExtensionParameters(id=2, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
            ]
        )
    )
    return m
