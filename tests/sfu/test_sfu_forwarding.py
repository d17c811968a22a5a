"""Forwarding, slot switching and the mixed bed with real aiortc peers over 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import numpy as np
import pytest
from aiortc.rtp import RtcpSrPacket
from sfu_client import TestClient, join, tone_level

from sfu import SFU, ListenerInterest, SFUConfig

pytestmark = pytest.mark.timeout(60)

LOOPBACK = SFUConfig(audio_slots=2, video_slots=1, ice_addresses=("127.0.0.1",))
IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


def poses(sfu: SFU, where: dict[int, tuple[float, float, float]]) -> None:
    ids = np.array(sorted(where), dtype=np.uint32)
    sfu.update_poses(ids, np.array([where[i] for i in sorted(where)]), np.tile(IDENTITY, (len(ids), 1)))


def record_sender_reports(client: TestClient, mid: str) -> list[RtcpSrPacket]:
    receiver = client.transceiver(mid).receiver
    original = receiver._handle_rtcp_packet
    reports: list[RtcpSrPacket] = []

    async def recording(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            reports.append(packet)
        await original(packet)

    receiver._handle_rtcp_packet = recording
    return reports


async def window(seconds: float) -> tuple[float, float]:
    """Let media flow for `seconds`; return the (start, end) of the measurement window (after settling)."""
    await asyncio.sleep(0.4)
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    return t0, time.monotonic()


async def test_speaker_goes_forwarded_then_mixed_then_silent() -> None:
    sfu = SFU(LOOPBACK)
    speaker = TestClient(tone_hz=440)
    listener = TestClient()
    try:
        await join(sfu, 1, speaker, publish=True, subscribe=False)
        await join(sfu, 2, listener, publish=False, subscribe=True)
        slot0, mixed = listener.slots["audio"][0], listener.slots["mixed"]
        poses(sfu, {1: (3.0, 0.0, 0.0), 2: (0.0, 0.0, 0.0)})

        sfu.update_interest({2: ListenerInterest(forwarded=(1,))})
        t0, t1 = await window(1.0)
        forwarded = (listener.energy(slot0, t0, t1), listener.energy(mixed, t0, t1))

        sfu.update_interest({2: ListenerInterest(mixed=(1,))})
        t0, t1 = await window(1.0)
        mixed_phase = (listener.energy(slot0, t0, t1), listener.energy(mixed, t0, t1))

        sfu.update_interest({2: ListenerInterest()})
        t0, t1 = await window(1.0)
        silent = (listener.energy(slot0, t0, t1), listener.energy(mixed, t0, t1))

        assert forwarded[0] > 0.2 and forwarded[1] == 0.0, forwarded
        assert mixed_phase[0] == 0.0 and mixed_phase[1] > 0.02, mixed_phase
        # Distance 3 m with the inverse model: the bed is quieter than the forwarded tone.
        assert mixed_phase[1] < forwarded[0]
        assert silent == (0.0, 0.0), silent
        slots_msgs = [m for ch, m in listener.messages if ch == "control"]
        assert slots_msgs, "the slot map is sent on the control channel"
    finally:
        await listener.close()
        await speaker.close()
        await sfu.close()


async def test_slot_switch_keeps_one_continuous_stream() -> None:
    sfu = SFU(LOOPBACK)
    a, b = TestClient(tone_hz=300), TestClient(tone_hz=700)
    listener = TestClient()
    try:
        await join(sfu, 1, a, publish=True, subscribe=False)
        await join(sfu, 2, b, publish=True, subscribe=False)
        await join(sfu, 3, listener, publish=False, subscribe=True)
        mid = listener.slots["audio"][0]
        reports = record_sender_reports(listener, mid)
        sfu.update_interest({3: ListenerInterest(forwarded=(1,))})
        t0, t1 = await window(0.8)
        switched_at = time.monotonic()
        # Same slot, new source: B takes A's place (A leaves the set, B is nearest).
        sfu.update_interest({3: ListenerInterest(forwarded=(2,))})
        await asyncio.sleep(0.3)
        s0, s1 = await window(0.8)

        before = listener.decoded(mid, t0, t1)[:, 0]
        after = listener.decoded(mid, s0, s1)[:, 0]
        assert tone_level(before, 300) > 0.2 and tone_level(before, 700) < 0.02
        assert tone_level(after, 700) > 0.2 and tone_level(after, 300) < 0.02

        log = list(listener.rtp[mid])
        assert len({ssrc for (_, _, _, ssrc, _, _) in log}) == 1, "one SSRC per slot"
        seqs = [seq for (_, seq, _, _, _, _) in log]
        diffs = np.diff(np.array(seqs, dtype=np.int64)) % 65536
        assert np.all(diffs == 1), f"sequence numbers continuous across the switch: {sorted(set(diffs))}"
        # Timestamps advance by 960 per packet, and across the switch by about the elapsed time.
        for (ta, _, tsa, _, _, _), (tb, _, tsb, _, _, _) in itertools.pairwise(log):
            step = (tsb - tsa) % (1 << 32)
            assert 960 <= step <= (tb - ta + 0.1) * 48000 + 960, (step, tb - ta)
        jumps = [
            (tb, (tsb - tsa) % (1 << 32))
            for (ta, _, tsa, _, _, _), (tb, _, tsb, _, _, _) in itertools.pairwise(log)
            if (tsb - tsa) % (1 << 32) != 960
        ]
        assert all(abs(t - switched_at) < 0.2 for t, _ in jumps), jumps

        # aiortc's sender reports for the slot describe what the slot really sent (SR coherence): the
        # SR's RTP timestamp is one the client received, and its packet count is how many came before.
        assert reports, "the client got sender reports for the slot"
        log = list(listener.rtp[mid])
        for sr in reports[-3:]:
            info = sr.sender_info
            upto = [i for i, e in enumerate(log) if e[2] == info.rtp_timestamp]
            assert upto, "SR timestamp is one of the stream's"
            assert abs(info.packet_count - (upto[-1] + 1)) <= 2, (info.packet_count, upto[-1] + 1)
    finally:
        for c in (listener, a, b):
            await c.close()
        await sfu.close()


async def test_mixed_bed_follows_the_speaker_side() -> None:
    sfu = SFU(LOOPBACK)
    speaker = TestClient(tone_hz=500)
    listener = TestClient()
    try:
        await join(sfu, 1, speaker, publish=True, subscribe=False)
        await join(sfu, 2, listener, publish=False, subscribe=True)
        mixed = listener.slots["mixed"]
        sfu.update_interest({2: ListenerInterest(mixed=(1,))})
        # Listener faces -Z; +X is its right.
        poses(sfu, {1: (4.0, 0.0, -0.5), 2: (0.0, 0.0, 0.0)})
        t0, t1 = await window(1.0)
        right = listener.stereo_energy(mixed, t0, t1)
        poses(sfu, {1: (-4.0, 0.0, -0.5), 2: (0.0, 0.0, 0.0)})
        t0, t1 = await window(1.0)
        left = listener.stereo_energy(mixed, t0, t1)
        # Turn the listener around (yaw 180 degrees): the same source at -X is now on its right.
        yaw = np.array([0.0, 1.0, 0.0, 0.0])
        sfu.update_poses(
            np.array([1, 2]), np.array([(-4.0, 0.0, -0.5), (0.0, 0.0, 0.0)]), np.stack([IDENTITY, yaw])
        )
        t0, t1 = await window(1.0)
        turned = listener.stereo_energy(mixed, t0, t1)
        assert right[1] > 3 * right[0] > 0, right
        assert left[0] > 3 * left[1] > 0, left
        assert turned[1] > 3 * turned[0] > 0, turned
    finally:
        await listener.close()
        await speaker.close()
        await sfu.close()


async def test_privacy_only_given_sources_arrive() -> None:
    """Three speakers; the listener is given one forwarded and one mixed. The third never arrives."""
    sfu = SFU(LOOPBACK)
    speakers = {1: TestClient(tone_hz=400), 2: TestClient(tone_hz=900), 3: TestClient(tone_hz=1500)}
    listener = TestClient()
    try:
        for pid, c in speakers.items():
            await join(sfu, pid, c, publish=True, subscribe=False)
        await join(sfu, 9, listener, publish=False, subscribe=True)
        poses(sfu, {1: (1.0, 0, 0), 2: (0, 0, -2.0), 3: (0.5, 0, 0), 9: (0, 0, 0)})
        sfu.update_interest({9: ListenerInterest(forwarded=(1,), mixed=(2,))})
        # Another listener's interest must not leak into this one.
        t0, t1 = await window(1.2)
        audio = [listener.decoded(m, t0, t1)[:, 0] for m in listener.slots["audio"]]
        bed = listener.decoded(listener.slots["mixed"], t0, t1)
        everything = np.concatenate([*audio, bed[:, 0], bed[:, 1]])
        assert tone_level(audio[0], 400) > 0.2
        assert tone_level(bed[:, 0] + bed[:, 1], 900) > 0.02
        assert tone_level(everything, 1500) < 0.005, "speaker 3 was never given to this listener"
        assert len(audio[1]) == 0, "an unassigned slot carries nothing"
        assert sfu.slot_sources(9)["audio"] == [1, None]
    finally:
        await listener.close()
        for c in speakers.values():
            await c.close()
        await sfu.close()


async def test_interest_may_name_a_source_before_it_joins() -> None:
    sfu = SFU(LOOPBACK)
    listener, late = TestClient(), TestClient(tone_hz=800)
    try:
        await join(sfu, 2, listener, publish=False, subscribe=True)
        poses(sfu, {2: (0.0, 0.0, 0.0), 5: (0.0, 0.0, -2.0), 6: (0.0, 0.0, -3.0)})
        sfu.update_interest({2: ListenerInterest(forwarded=(5,), mixed=(6,))})
        await join(sfu, 5, late, publish=True, subscribe=False)
        t0, t1 = await window(1.0)
        assert tone_level(listener.decoded(listener.slots["audio"][0], t0, t1)[:, 0], 800) > 0.2
    finally:
        await listener.close()
        await late.close()
        await sfu.close()
