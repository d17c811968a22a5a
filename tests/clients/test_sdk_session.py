"""The SDK against real aiortc peers (the server double): join, slot tagging of received audio,
pose throttling on the state channel, data, ping, and reconnect with the resume token."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import hubbub_client as hb
import numpy as np

from .server_double import ServerDouble, wait_for


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * hb.audio.SAMPLE_RATE / len(samples))


async def test_received_audio_is_tagged_with_the_avatar_of_its_slot() -> None:
    async with ServerDouble(freqs=(440.0, 1000.0), slot_pids=(7, 9)) as server:
        client = await hb.connect(server.url, "tok", publish=hb.audio.tone(300.0))
        try:
            blocks: dict[int | None, list[np.ndarray]] = defaultdict(list)
            client.on_audio(lambda src, s: blocks[src.pid].append(s.mean(axis=1)))
            await wait_for(lambda: len(blocks[7]) > 60 and len(blocks[9]) > 60, timeout=15)
            # Each avatar's audio is the tone its slot carries.
            assert abs(dominant_hz(np.concatenate(blocks[7][-50:])) - 440) < 5
            assert abs(dominant_hz(np.concatenate(blocks[9][-50:])) - 1000) < 5
            assert client.level_of(7) > -15 and client.level_of(9) > -15
            assert client.level_of(12345) == -120.0
            assert client.mixed_level.frames > 0 and client.mixed_level.dbfs < -60
            assert set(client.participants) == {7, 9}
            # Our own voice reached the server's publish transceiver.
            stats = await client.stats()
            assert stats["packets_out"] > 20 and stats["packets_in"] > 100
        finally:
            await client.close()


async def test_poses_go_out_on_the_state_channel_throttled_to_30_hz() -> None:
    async with ServerDouble() as server:
        client = await hb.connect(server.url, "tok", publish=False, decode_audio=False)
        try:
            await wait_for(lambda: client._state is not None and client._state.readyState == "open")
            session = server.sessions[0]
            # 100 Hz of updates for about 1.5 s.
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            for i in range(150):
                client.set_pose((i * 0.01, 0.0, 0.0))
                await asyncio.sleep(0.01)
            elapsed = loop.time() - t0
            await asyncio.sleep(0.2)
            times = np.array([t for t, _ in session.poses])
            assert 0.6 * 30 * elapsed <= len(times) <= 30 * elapsed + 2, (len(times), elapsed)
            assert np.min(np.diff(times)) > 1 / 30 * 0.6  # arrival jitter allowed, no bursts
            # The newest pose wins: the last one received is the last one set.
            last = session.poses[-1][1]
            assert abs(last["p"][0] - 1.49) < 1e-9
            seqs = [m["seq"] for _, m in session.poses]
            assert seqs == sorted(seqs)
        finally:
            await client.close()


async def test_data_and_ping() -> None:
    async with ServerDouble() as server:
        client = await hb.connect(server.url, "tok", publish=False, decode_audio=False)
        try:
            rtt = await client.ping()
            assert 0 < rtt < 1.0
            await wait_for(lambda: client._control is not None and client._control.readyState == "open")
            await client.send_data("chat", b"hello", to=[7])
            await wait_for(lambda: any(m["t"] == "data" for m in server.sessions[0].received))
            msg = next(m for m in server.sessions[0].received if m["t"] == "data")
            assert msg == {"t": "data", "topic": "chat", "payload": b"hello", "reliable": True, "to": [7]}
        finally:
            await client.close()


async def test_reconnects_with_backoff_and_resume_token() -> None:
    async with ServerDouble() as server:
        client = hb.Client(server.url, "tok", publish=False, decode_audio=False,
                           backoff=hb.Backoff(initial=0.2, maximum=1.0))
        events: list[object] = []
        client.on(hb.Disconnected, events.append)
        client.on(hb.Joined, events.append)
        await client.start()
        try:
            first_id = client.participant_id
            await server.drop_all()
            # The counter is bumped once _join() returns, a moment after `connected` turns true.
            await wait_for(lambda: len(server.joins) == 2 and client.connected
                           and client.counters["reconnects"] == 1, timeout=15)
            assert server.joins[1]["resume"] == "resume-token"
            assert server.joins[0].get("resume") is None
            assert isinstance(events[1], hb.Disconnected) and events[1].will_reconnect
            assert isinstance(events[2], hb.Joined) and events[2].resumed
            assert client.counters["reconnects"] == 1
            assert first_id == 1 and client.participant_id == 1
        finally:
            await client.close()


async def test_join_refused_raises_join_error() -> None:
    import websockets

    async def refuse(ws):  # type: ignore[no-untyped-def]
        await ws.recv()
        await ws.send(hb.wire.encode({"t": "error", "code": 120, "message": "bad token", "ref": "join"}))
        await ws.close(4001, "auth failed")

    async with websockets.serve(refuse, "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        try:
            await hb.connect(f"ws://127.0.0.1:{port}", "bad", publish=False, timeout=5)
        except hb.JoinError as exc:
            assert exc.code == 120 and "bad token" in str(exc)
        else:
            raise AssertionError("join should have been refused")


async def test_walk_to_carries_on_from_a_server_correction() -> None:
    async with ServerDouble() as server:
        client = await hb.connect(server.url, "tok", publish=False, decode_audio=False)
        try:
            await wait_for(lambda: client._state is not None and client._state.readyState == "open")
            session = server.sessions[0]
            walk = asyncio.create_task(client.walk_to((10.0, 0.0, 0.0), speed=10.0))
            await wait_for(lambda: client.pose.p[0] > 3.0)
            # The server pulls us back to x = 1 (as a speed clamp would).
            session.control.send(hb.wire.encode(
                {"t": "corrected", "p": [1.0, 0.0, 0.0], "q": [0, 0, 0, 1], "reason": "speed"}
            ))
            assert await asyncio.wait_for(walk, 10)
            # The final pose may wait for the throttle's timer; it is never lost.
            await wait_for(lambda: session.poses[-1][1]["p"][0] == 10.0, timeout=1)
            xs = [m["p"][0] for _, m in session.poses]
            back = next(i for i in range(1, len(xs)) if xs[i] < xs[i - 1])
            assert xs[back] < 2.0  # the next step started from the corrected position, not ahead of it
            steps = np.diff(xs[back:])
            assert np.all(steps <= 0.5 + 1e-9)  # no jumps after it
            assert xs[-1] == 10.0 and client.pose.p == (10.0, 0.0, 0.0)
        finally:
            await client.close()


async def test_events_iterator_delivers_server_messages_in_order() -> None:
    async with ServerDouble() as server:
        client = await hb.connect(server.url, "tok", publish=False, decode_audio=False)
        try:
            await wait_for(lambda: client._control is not None and client._control.readyState == "open")
            received: list[hb.Event] = []

            async def collect() -> None:
                async for event in client.events():
                    received.append(event)
                    if len(received) == 5:
                        return

            task = asyncio.create_task(collect())
            await asyncio.sleep(0.1)
            ctl = server.sessions[0].control
            for msg in (
                {"t": "speakers", "ids": [7], "levels": [-20.5]},
                {"t": "data", "from": 9, "topic": "chat", "payload": b"hi"},
                {"t": "exit", "ids": [9]},
                {"t": "error", "code": 140, "message": "pose ignored", "ref": "pose"},
                {"t": "slots", "audio": [None, 7], "video": [], "flat": [False, True]},
            ):
                ctl.send(hb.wire.encode(msg))
            await asyncio.wait_for(task, 5)
            assert received == [
                hb.ActiveSpeakers((7,), (-20.5,)),
                hb.DataReceived(9, "chat", b"hi"),
                hb.ParticipantLeft(9),
                hb.ServerError(140, "pose ignored", "pose"),
                hb.SlotsChanged((None, 7), (), (False, True)),
            ]
            assert client.speakers == {7: -20.5} and 9 not in client.participants
            assert client.slots.slot_of(7) == 1 and client.slots.is_flat(1)
            assert client.errors[-1].code == 140 and client.counters["data_in"] == 1
        finally:
            await client.close()
