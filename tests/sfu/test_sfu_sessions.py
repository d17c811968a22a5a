"""Data channels, dead-peer cleanup, no renegotiation while avatars walk, video PLI/NACK."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import msgpack
import numpy as np
import pytest
from sfu_client import TestClient, encode_tone_packets, join

from sfu import SFU, ListenerInterest, SFUConfig

pytestmark = pytest.mark.timeout(90)


async def until(predicate, timeout: float, step: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())


def errors(client: TestClient) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for ch, raw in client.messages:
        msg = msgpack.unpackb(raw)
        if ch == "control" and isinstance(msg, dict) and msg.get("t") == "error":
            out.append(msg)
    return out


async def test_data_channels_bound_input_and_survive_bad_clients() -> None:
    cfg = SFUConfig(
        audio_slots=1,
        video_slots=0,
        ice_addresses=("127.0.0.1",),
        max_message_bytes=1024,
        messages_per_second=50,
        state_high_water=8192,
    )
    sfu = SFU(cfg)
    got: list[tuple[int, str, bytes]] = []
    client = TestClient()
    try:
        await join(sfu, 7, client, publish=False, subscribe=True, on_message=lambda *m: got.append(m))
        state, control = client.channels["state"], client.channels["control"]

        # Garbage is passed through verbatim: decoding and validation are the world's job.
        state.send(b"\xff\x00garbage")
        control.send("not msgpack either")
        assert await until(lambda: len(got) == 2, 5)
        assert got[0] == (7, "state", b"\xff\x00garbage")
        assert got[1] == (7, "control", b"not msgpack either")

        # Oversized: dropped, with an error on control naming the channel.
        state.send(b"x" * 5000)
        assert await until(lambda: any(e["code"] == 104 for e in errors(client)), 5)
        err = next(e for e in errors(client) if e["code"] == 104)
        assert err["ref"] == "state" and "5000" in err["message"]
        assert all(len(m[2]) <= 1024 for m in got)

        # A flood is cut to the configured rate, answered by (few) errors, and the session survives.
        before = len(got)
        for i in range(3000):
            state.send(msgpack.packb({"t": "pose", "seq": i}))
        await until(lambda: sum(1 for e in errors(client) if e["code"] == 105) >= 1, 10)
        await asyncio.sleep(1.0)
        flood_delivered = len(got) - before
        assert 10 <= flood_delivered <= 50 + 50 * 4, flood_delivered
        assert 1 <= sum(1 for e in errors(client) if e["code"] == 105) <= 8
        assert sfu.stats()[7].messages_dropped >= 1000
        await asyncio.sleep(1.0)
        control.send(b"still here")
        assert await until(lambda: (7, "control", b"still here") in got, 20)

        # Server -> client, and bufferedAmount back-pressure on the lossy channel: refuse, never queue.
        assert sfu.send(7, "control", b"hello")
        results = [sfu.send(7, "state", b"p" * 1000) for _ in range(200)]
        assert results[0] and not all(results), "stale pose batches are dropped above the high-water mark"
        server_state = sfu._sessions[7].peer.state
        assert server_state.bufferedAmount <= 8192 + 1000
        assert await until(lambda: any(m == (b"hello") for ch, m in client.messages if ch == "control"), 5)
        assert not sfu.send(999, "control", b"nobody")

        # Trickled remote candidates are accepted; malformed ones are a ValueError, not a crash.
        await sfu.add_ice_candidate(
            7, {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host", "sdpMid": "0"}
        )
        with pytest.raises(ValueError):
            await sfu.add_ice_candidate(7, {"candidate": "candidate:garbage", "sdpMLineIndex": 0})
        with pytest.raises(ValueError):
            await sfu.set_answer(7, "v=0 not an answer")
        assert client.pc.connectionState == "connected"
    finally:
        await client.close()
        await sfu.close()


async def test_vanished_peer_is_cleaned_up() -> None:
    gone: list[int] = []
    sfu = SFU(
        SFUConfig(audio_slots=2, video_slots=1, ice_addresses=("127.0.0.1",), dead_after=2.0),
        on_gone=gone.append,
    )
    packets = encode_tone_packets(440, 10)
    speaker = TestClient(packets=packets, decode=False)
    polite = TestClient(decode=False)
    try:
        await join(sfu, 1, speaker, publish=True, subscribe=True)
        await asyncio.sleep(0.5)
        tasks_before = len(asyncio.all_tasks())
        threads_before = threading.active_count()

        victim = TestClient(packets=packets, decode=False)
        await join(sfu, 2, victim, publish=True, subscribe=True)
        sfu.update_interest(
            {2: ListenerInterest(forwarded=(1,)), 1: ListenerInterest(forwarded=(2,), mixed=())}
        )
        sfu.update_interest({2: ListenerInterest(forwarded=(1,), mixed=(1,))})
        assert await until(lambda: len(victim.rtp[victim.slots["audio"][0]]) > 20, 5)
        victim_peer = sfu._sessions[2].peer
        victim_slot = victim_peer.audio_slots[0]
        assert victim_slot in sfu._sessions[1].publisher.audio_out  # type: ignore[union-attr]

        # Vanish without goodbye: the client's sockets go away, no DTLS close_notify, no BYE.
        conn = victim.pc.getTransceivers()[0].receiver.transport.transport._connection
        for protocol in conn._protocols:
            protocol.transport.abort()
        t_gone = time.monotonic()
        assert await until(lambda: gone == [2], 8), gone
        detected_after = time.monotonic() - t_gone
        await victim.close()

        assert 1.5 < detected_after < 5.0, detected_after
        assert 2 not in sfu.stats()
        assert victim_slot not in sfu._sessions[1].publisher.audio_out  # type: ignore[union-attr]
        assert sfu._sessions[1].audio == [None, None], "the speaker's slot that carried the victim is free"
        assert 2 not in sfu._mixer.listeners and 2 not in sfu._mixer.decoders
        assert victim_peer.pc.connectionState == "closed"
        assert all(t.stopped for t in victim_peer.pc.getTransceivers())
        await asyncio.sleep(0.5)
        assert await until(lambda: len(asyncio.all_tasks()) <= tasks_before, 5), (
            len(asyncio.all_tasks()),
            tasks_before,
            asyncio.all_tasks(),
        )
        assert threading.active_count() <= threads_before

        # A peer that closes politely (DTLS close) is reported too.
        await join(sfu, 3, polite, publish=False, subscribe=True)
        await polite.pc.close()
        assert await until(lambda: gone == [2, 3], 5), gone
    finally:
        await speaker.close()
        await polite.close()
        await sfu.close()


async def test_no_renegotiation_while_twenty_avatars_walk() -> None:
    n, slots = 20, 3
    sfu = SFU(SFUConfig(audio_slots=slots, video_slots=1, ice_addresses=("127.0.0.1",)))
    rng = np.random.default_rng(5)
    clients = {
        pid: TestClient(packets=encode_tone_packets(200 + 40 * pid, 5), decode=False) for pid in range(n)
    }
    server_signaling: list[str] = []
    try:
        for pid, c in clients.items():
            await join(sfu, pid, c, publish=True, subscribe=True)
            sfu._sessions[pid].peer.pc.on("signalingstatechange", lambda: server_signaling.append("x"))
        client_changes = {pid: len(c.signaling_changes) for pid, c in clients.items()}
        pos = rng.uniform(-10, 10, size=(n, 3))
        pos[:, 1] = 0
        vel = rng.normal(0, 3, size=(n, 3))
        vel[:, 1] = 0
        ids = np.arange(n, dtype=np.uint32)
        quats = np.tile([0.0, 0.0, 0.0, 1.0], (n, 1))
        current: dict[int, ListenerInterest] = {}
        switches = 0
        for _ in range(30):  # 3 s at 10 Hz: they walk through each other
            pos += vel * 0.1
            vel[np.abs(pos) > 10] *= -1
            sfu.update_poses(ids, pos, quats)
            changes = {}
            for i in range(n):
                d = np.linalg.norm(pos - pos[i], axis=1)
                order = [int(j) for j in np.argsort(d) if j != i]
                near = tuple(j for j in order if d[j] < 6)[:slots]
                mixed = tuple(j for j in order if j not in near and d[j] < 15)
                interest = ListenerInterest(forwarded=near, mixed=mixed, video=near[:1])
                if current.get(i) != interest:
                    changes[i] = current[i] = interest
            before = {i: sfu.slot_sources(i)["audio"] for i in range(n)}
            sfu.update_interest(changes)
            for i in range(n):
                after = sfu.slot_sources(i)["audio"]
                switches += sum(x != y for x, y in zip(before[i], after, strict=True))
            await asyncio.sleep(0.1)
        assert switches > 40, switches

        def latest_map(c: TestClient) -> list[int | None] | None:
            maps = [msgpack.unpackb(m) for ch, m in c.messages if ch == "control"]
            maps = [m for m in maps if m.get("t") == "slots"]
            return maps[-1]["audio"] if maps else None

        # The reliable control channel delivers every listener's latest slot map.
        assert await until(
            lambda: all(latest_map(c) == sfu.slot_sources(pid)["audio"] for pid, c in clients.items()), 10
        )
        assert server_signaling == [], "no renegotiation on the server"
        for pid, c in clients.items():
            assert len(c.signaling_changes) == client_changes[pid], "no renegotiation on the client"
            assert c.pc.signalingState == "stable"
            assert sfu._sessions[pid].peer.pc.signalingState == "stable"
            for mid in c.slots["audio"]:
                log = list(c.rtp[mid])
                if len(log) < 2:
                    continue
                assert len({entry[3] for entry in log}) == 1, "one SSRC per slot for the whole walk"
                seqs = np.array([entry[1] for entry in log], dtype=np.int64)
                steps = np.diff(seqs) % 65536
                # Loopback may reorder/drop a little under load, but never jump backwards far.
                assert np.mean(steps == 1) > 0.95
    finally:
        for c in clients.values():
            await c.close()
        await sfu.close()


async def test_video_switch_sends_pli_to_new_source_and_nacks_are_answered() -> None:
    sfu = SFU(SFUConfig(audio_slots=1, video_slots=1, ice_addresses=("127.0.0.1",)))
    a, b = TestClient(video=True), TestClient(video=True)
    viewer = TestClient()
    viewer.drop_index = 40
    try:
        await join(sfu, 1, a, publish=True, subscribe=False)
        await join(sfu, 2, b, publish=True, subscribe=False)
        await join(sfu, 3, viewer, publish=False, subscribe=True)
        mid = viewer.slots["video"][0]
        await asyncio.sleep(1.0)
        plis_b = b.plis
        sfu.update_interest({3: ListenerInterest(video=(1,))})
        assert await until(lambda: len(viewer.frames[mid]) >= 10, 8), "A's video decodes at the viewer"
        assert a.plis >= 1, "switching a slot to A asked A for a keyframe"
        # The dropped packet was NACKed by the viewer and resent from the slot's history.
        assert await until(lambda: mid in viewer.dropped, 5)
        dropped = viewer.dropped[mid]
        main_pt = viewer.rtp[mid][0][4]
        assert await until(lambda: any(e[4] != main_pt and e[5] == dropped for e in viewer.rtp[mid]), 5), (
            "retransmitted as RTX"
        )

        frames_before = len(viewer.frames[mid])
        t_switch = time.monotonic()
        sfu.update_interest({3: ListenerInterest(video=(2,))})
        assert await until(lambda: b.plis > plis_b, 3), "PLI to the new source on a switch"
        assert await until(lambda: len(viewer.frames[mid]) >= frames_before + 10, 8), "B's video decodes"
        log = [e for e in viewer.rtp[mid] if e[4] == main_pt]
        assert len({e[3] for e in log}) == 1
        after = [e for e in log if e[0] > t_switch]
        seqs = [e[1] for e in after]
        assert all((y - x) % 65536 == 1 for x, y in itertools.pairwise(seqs) if y != dropped)
        st = sfu.stats()
        out = next(t for t in st[3].tracks if t.kind == "video" and t.direction == "out")
        assert out.source == 2 and out.packets > 20 and out.bytes > 0
        inb = next(t for t in st[1].tracks if t.kind == "video" and t.direction == "in")
        assert inb.packets > 20 and inb.bytes > 0 and inb.bitrate_bps > 0
        assert out.bitrate_bps > 0 and out.jitter_ms >= 0
    finally:
        for c in (viewer, a, b):
            await c.close()
        await sfu.close()
