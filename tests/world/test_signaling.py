"""The signaling WebSocket against a real server: join, limits, bad input, poses, data, resume."""

from __future__ import annotations

import asyncio
import contextlib
import math

import msgpack
import numpy as np
import orjson
import pytest
from websockets.exceptions import ConnectionClosed

from tests.world.conftest import Harness, config_dict, make_config, start_harness, token
from world import protocol
from world.protocol import CloseCode, ErrorCode


async def test_join_welcome_and_ping(harness: Harness) -> None:
    c, welcome = await harness.joined("ann")
    assert welcome["participant_id"] == 0
    assert welcome["identity"] == "ann"
    assert welcome["world"]["name"] == "plaza"
    assert welcome["world"]["interest"]["forward_radius"] == 5
    assert welcome["spawn"]["p"] == [0.0, 0.0, 0.0]
    assert welcome["resume"] and welcome["resumed"] is False
    await c.send({"t": "ping", "id": 7})
    assert (await c.expect("pong"))["id"] == 7
    assert harness.server.health()["participants"] == 1


async def test_json_text_frames_are_answered_in_kind(harness: Harness) -> None:
    c = await harness.client(binary=False)
    await c.send({"t": "ping", "id": 1})
    assert (await c.expect("pong"))["id"] == 1
    welcome = await c.join(token("jay"))
    assert welcome["identity"] == "jay"
    # bytes fields travel as base64 in JSON
    await c.send({"t": "data", "topic": "x", "payload": b"\x00\x01"})
    other, _ = await harness.joined("kim")
    await c.send({"t": "data", "topic": "chat", "payload": b"hi\xff"})
    got = await other.expect("data")
    assert got["payload"] == b"hi\xff" and got["from"] == welcome["participant_id"]
    # Everything the JSON client received came as text frames, everything the msgpack one as binary.
    assert c.kinds and all(text for _, text in c.kinds)
    assert other.kinds and not any(text for _, text in other.kinds)


async def test_bad_input_keeps_session_alive(harness: Harness) -> None:
    c = await harness.client()
    await c.send_raw(b"\xc1\xc1 not msgpack")
    assert (await c.expect("error"))["code"] == ErrorCode.BAD_FRAME
    await c.send_raw(msgpack.packb([1, 2, 3]))
    assert (await c.expect("error"))["code"] == ErrorCode.BAD_FRAME
    await c.send_raw("{not json")
    assert (await c.expect("error"))["code"] == ErrorCode.BAD_FRAME
    await c.send({"t": "teleport", "p": [0, 0, 0]})
    err = await c.expect("error")
    assert err["code"] == ErrorCode.UNKNOWN_TYPE and err["ref"] == "teleport"
    await c.send({"t": "pose", "p": [0, 0, 0], "q": [0, 0, 0, 1]})
    assert (await c.expect("error"))["code"] == ErrorCode.NOT_JOINED
    await c.send({"t": "join", "v": 2, "token": token()})
    assert (await c.expect("error"))["code"] == ErrorCode.UNSUPPORTED_VERSION
    await c.send({"t": "join", "v": 1, "token": 5})
    err = await c.expect("error")
    assert err["code"] == ErrorCode.INVALID_FIELD and "join.token" in err["message"]
    # Still alive: a proper join works on the same connection.
    welcome = await c.join(token("ann"))
    assert welcome["identity"] == "ann"
    await c.send({"t": "join", "v": 1, "token": token("ann")})
    assert (await c.expect("error"))["code"] == ErrorCode.ALREADY_JOINED
    await c.send({"t": "pose", "p": ["a", 0, 0], "q": [0, 0, 0, 1]})
    assert (await c.expect("error"))["code"] == ErrorCode.INVALID_FIELD
    await c.send({"t": "ping", "id": 3})
    assert (await c.expect("pong"))["id"] == 3


async def test_bad_token_closes_with_auth_failed(harness: Harness) -> None:
    c = await harness.client()
    await c.send({"t": "join", "v": 1, "token": "not-a-jwt"})
    assert (await c.expect("error"))["code"] == ErrorCode.INVALID_TOKEN
    assert await c.closed() == CloseCode.AUTH_FAILED
    c2 = await harness.client()
    await c2.send({"t": "join", "v": 1, "token": token("ann", world="elsewhere")})
    assert (await c2.expect("error"))["code"] == ErrorCode.UNKNOWN_WORLD
    assert await c2.closed() == CloseCode.AUTH_FAILED


async def test_oversized_frame_closes_1009_others_unaffected(harness: Harness) -> None:
    other, _ = await harness.joined("bob")
    c, _ = await harness.joined("ann")
    limit = harness.server.config.server.limits.max_frame_bytes
    await c.send({"t": "data", "topic": "big", "payload": b"x" * (limit + 10)})
    assert (await c.expect("error"))["code"] == ErrorCode.FRAME_TOO_LARGE
    assert await c.closed() == CloseCode.MESSAGE_TOO_BIG
    await other.send({"t": "ping", "id": 1})
    assert (await other.expect("pong"))["id"] == 1


async def test_flood_is_rate_limited_then_closed_other_session_unaffected() -> None:
    d = config_dict(limits={"messages_per_second": 20, "burst": 20, "flood_tolerance": 30})
    h = await start_harness(make_config(d))
    try:
        other, _ = await h.joined("bob")
        c, _ = await h.joined("ann")
        with contextlib.suppress(ConnectionClosed):  # the server may close us mid-flood
            for i in range(400):
                await c.send({"t": "ping", "id": i})
        err = await c.expect("error", where=lambda m: m["code"] == ErrorCode.RATE_LIMITED)
        assert "too many" in err["message"] or "flood" in err["message"]
        assert await c.closed() == CloseCode.FLOOD
        await other.send({"t": "ping", "id": 99})
        assert (await other.expect("pong"))["id"] == 99
        assert h.server.health()["participants"] >= 1
    finally:
        await h.server.stop()


async def test_join_timeout() -> None:
    d = config_dict(limits={"join_timeout_s": 0.3})
    h = await start_harness(make_config(d))
    try:
        c = await h.client()
        assert (await c.expect("error"))["code"] == ErrorCode.JOIN_TIMEOUT
        assert await c.closed() == CloseCode.JOIN_TIMEOUT
    finally:
        await h.server.stop()


async def pose(c: object, p: list[float], q: list[float] | None = None, seq: int = 0) -> None:
    await c.send(protocol.pose_message(p, q or [0, 0, 0, 1], seq))  # type: ignore[attr-defined]


async def test_pose_rules(harness: Harness) -> None:
    c, welcome = await harness.joined("ann")
    pid = welcome["participant_id"]
    world = harness.server.worlds["plaza"]
    # Non-finite values: msgpack carries NaN/inf; error, pose ignored, session stays.
    for bad in ([math.nan, 0, 0], [0, math.inf, 0]):
        await pose(c, bad)
        assert (await c.expect("error"))["code"] == ErrorCode.POSE_INVALID
    await pose(c, [0, 0, 0], [0, 0, 0, 0])
    assert (await c.expect("error"))["code"] == ErrorCode.POSE_INVALID
    assert world.table.pose(pid)[0] == [0.0, 0.0, 0.0]
    # Speeding: max_speed 5 m/s; a 40 m jump right away is clamped toward the target.
    await asyncio.sleep(0.1)
    await pose(c, [40, 0, 0])
    fix = await c.expect("corrected")
    assert fix["reason"] == "speed"
    assert 0 < fix["p"][0] < 10.0 and fix["p"][1:] == [0.0, 0.0]  # 5 m/s × (elapsed + 50 ms)
    # A pose exactly at a spawn point is a legal teleport from anywhere.
    await asyncio.sleep(0.05)
    await pose(c, [0, 0, 0])
    await asyncio.sleep(0.1)
    assert world.table.pose(pid)[0] == [0.0, 0.0, 0.0]
    # Walk out of bounds slowly (legal speed): clamped to the bounds.
    world.table.set_pose(pid, [49.9, 0, 0], [0, 0, 0, 1])
    await asyncio.sleep(0.2)
    await pose(c, [50.5, 0, 0])
    fix = await c.expect("corrected")
    assert fix["reason"] == "bounds" and fix["p"][0] == pytest.approx(50.0)
    # A legal step is accepted silently.
    await asyncio.sleep(0.2)
    await pose(c, [49.5, 0, 0.5], [0, 0.7071, 0, 0.7071])
    await asyncio.sleep(0.1)
    p, q = world.table.pose(pid)
    assert p == pytest.approx([49.5, 0, 0.5]) and q[1] == pytest.approx(0.7071, abs=1e-3)
    assert (
        harness.server.metrics.registry.get_sample_value("hubbub_poses_rejected_total", {"reason": "speed"})
        == 1
    )


async def test_pose_rate_limited_to_30hz_silently(harness: Harness) -> None:
    c, welcome = await harness.joined("ann")
    p = harness.server.worlds["plaza"].participants[welcome["participant_id"]]
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(100):
        await pose(c, [0, 0, 0], seq=i)
    await c.send({"t": "ping", "id": 1})
    await c.expect("pong")
    elapsed = loop.time() - started
    # At most the burst (4) plus 30 per second got through; the rest were dropped and counted.
    assert p.poses_dropped >= 100 - (4 + 30 * elapsed) - 1
    assert p.poses_dropped > 0
    errors = [t for t, _ in c.kinds if t == "error"]
    assert errors == []  # silently


async def test_enter_poses_exit_between_two_clients(harness: Harness) -> None:
    a, _ = await harness.joined("ann")
    b, wb = await harness.joined("bob")
    enter = await a.expect(
        "enter", where=lambda m: any(e["id"] == wb["participant_id"] for e in m["participants"])
    )
    entry = next(e for e in enter["participants"] if e["id"] == wb["participant_id"])
    assert entry["identity"] == "bob" and entry["audio"] is True
    await asyncio.sleep(0.15)
    await pose(b, [0.5, 0, 0.5])
    got = await a.expect(
        "poses",
        where=lambda m: (
            wb["participant_id"] in protocol.unpack_poses(m)[0].tolist()
            and protocol.unpack_poses(m)[1][0][0] > 0.4
        ),
    )
    ids, pos, rot = protocol.unpack_poses(got)
    i = ids.tolist().index(wb["participant_id"])
    assert pos[i] == pytest.approx([0.5, 0, 0.5], abs=1e-3)
    assert rot[i] == pytest.approx([0, 0, 0, 1], abs=1e-4)
    await b.send({"t": "leave"})
    assert await b.closed() == CloseCode.NORMAL
    ex = await a.expect("exit")
    assert ex["ids"] == [wb["participant_id"]]


async def test_data_routing_and_grants(harness: Harness) -> None:
    a, wa = await harness.joined("ann")
    b, wb = await harness.joined("bob")
    mute, _ = await harness.joined("quiet", can_publish_data=False, can_publish=False)
    await a.send({"t": "data", "topic": "chat", "payload": b"hello", "to": [wb["participant_id"]]})
    got = await b.expect("data")
    assert got == {"t": "data", "from": wa["participant_id"], "topic": "chat", "payload": b"hello"}
    await mute.send({"t": "data", "topic": "chat", "payload": b"x"})
    assert (await mute.expect("error"))["code"] == ErrorCode.PERMISSION_DENIED
    await mute.send({"t": "voice", "codec": "ulaw16k", "seq": 1, "pcm": b"\x00" * 320})
    assert (await mute.expect("error"))["code"] == ErrorCode.PERMISSION_DENIED
    await a.send({"t": "answer", "sdp": "v=0"})
    assert (await a.expect("error"))["code"] == ErrorCode.TRANSPORT_MISMATCH
    await a.send({"t": "voice", "codec": "ulaw16k", "seq": 1, "pcm": b"\x00" * 320})
    await a.send({"t": "ping", "id": 5})
    await a.expect("pong")
    assert harness.server.worlds["plaza"].media.stats()["voice_frames_in"] == 1


async def test_webrtc_join_without_sfu_answer_fails_cleanly(harness: Harness) -> None:
    c = await harness.client()
    await c.send({"t": "join", "v": 1, "token": token("web")})  # transport defaults to webrtc
    await c.expect("welcome")
    await c.send({"t": "answer", "sdp": "v=0"})
    err = await c.expect("error")
    assert err["code"] == ErrorCode.MEDIA_FAILED and err["ref"] == "answer"
    await c.send({"t": "ice", "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"})
    assert (await c.expect("error"))["code"] == ErrorCode.MEDIA_FAILED


async def test_reconnect_within_grace_resumes_same_id_and_pose(harness: Harness) -> None:
    c, welcome = await harness.joined("ann")
    pid = welcome["participant_id"]
    await asyncio.sleep(0.3)
    await pose(c, [1.0, 0, 0])
    await asyncio.sleep(0.1)
    c.ws.transport.abort()  # drop without a close handshake
    await asyncio.sleep(0.2)
    world = harness.server.worlds["plaza"]
    assert pid in world.participants and world.participants[pid].session is None
    c2 = await harness.client()
    w2 = await c2.join(token("ann"), resume=welcome["resume"])
    assert w2["participant_id"] == pid and w2["resumed"] is True
    assert w2["spawn"]["p"] == pytest.approx([1.0, 0, 0])
    # A stale resume token: joins as a new participant with a RESUME_FAILED notice.
    c3 = await harness.client()
    await c3.send({"t": "join", "v": 1, "token": token("cat"), "transport": "websocket", "resume": "nope"})
    assert (await c3.expect("error"))["code"] == ErrorCode.RESUME_FAILED
    assert (await c3.expect("welcome"))["resumed"] is False


async def test_avatar_removed_after_grace() -> None:
    h = await start_harness(make_config(config_dict(reconnect_grace_s=0.2)))
    try:
        watcher, _ = await h.joined("bob")
        c, welcome = await h.joined("ann")
        c.ws.transport.abort()
        ex = await watcher.expect("exit", timeout=3)
        assert ex["ids"] == [welcome["participant_id"]]
        assert welcome["participant_id"] not in h.server.worlds["plaza"].participants
    finally:
        await h.server.stop()


async def test_same_identity_replaces_old_session(harness: Harness) -> None:
    old, _ = await harness.joined("ann")
    new, _ = await harness.joined("ann")
    bye = await old.expect("bye")
    assert bye["code"] == CloseCode.REPLACED
    assert await old.closed() == CloseCode.REPLACED
    await new.send({"t": "ping", "id": 1})
    await new.expect("pong")


async def test_hidden_participant_is_not_announced(harness: Harness) -> None:
    a, _ = await harness.joined("ann")
    ghost, wg = await harness.joined("ghost", hidden=True)
    _, wb = await harness.joined("bob")
    enter = await ghost.expect("enter")  # the hidden one sees others
    assert {e["identity"] for e in enter["participants"]} >= {"ann"}
    await asyncio.sleep(0.3)
    seen: set[int] = set()
    while not a.inbox.empty():
        m = a.inbox.get_nowait()
        if m["t"] == "enter":
            seen |= {e["id"] for e in m["participants"]}
    assert wb["participant_id"] in seen and wg["participant_id"] not in seen


async def test_json_pose_nan_is_a_bad_frame(harness: Harness) -> None:
    c = await harness.client(binary=False)
    await c.join(token("ann"))
    await c.send_raw('{"t":"pose","p":[NaN,0,0],"q":[0,0,0,1]}')
    assert (await c.expect("error"))["code"] == ErrorCode.BAD_FRAME
    await c.send_raw(orjson.dumps({"t": "ping", "id": 2}).decode())
    assert (await c.expect("pong"))["id"] == 2


async def test_world_full_and_server_full() -> None:
    d = config_dict(limits={"max_connections": 2})
    d["worlds"][0]["max_participants"] = 1
    h = await start_harness(make_config(d))
    try:
        await h.joined("ann")
        c = await h.client()
        await c.send({"t": "join", "v": 1, "token": token("bob"), "transport": "websocket"})
        assert (await c.expect("error"))["code"] == ErrorCode.WORLD_FULL
        assert await c.closed() == CloseCode.WORLD_FULL
        await asyncio.sleep(0.1)
        extra = await h.client()  # the second open connection is fine
        third = await h.client()
        assert (await third.expect("error"))["code"] == ErrorCode.SERVER_FULL
        assert await third.closed() == CloseCode.SERVER_FULL
        await extra.send({"t": "ping", "id": 1})
        assert (await extra.expect("pong"))["id"] == 1
    finally:
        await h.server.stop()


async def test_grants_shape_audio_and_media(harness: Harness) -> None:
    listener, wl = await harness.joined("ann", can_subscribe=False)
    speaker, ws_ = await harness.joined("bob", can_publish=False)
    media = harness.server.worlds["plaza"].media
    assert media.participants[wl["participant_id"]] == {  # type: ignore[attr-defined]
        "publish": True,
        "subscribe": False,
        "transport": "websocket",
    }
    await asyncio.sleep(0.2)
    frame = media.last_frame  # type: ignore[attr-defined]
    assert frame.view(wl["participant_id"]).audio_forward == ()  # no media without can_subscribe
    bob_view = frame.view(ws_["participant_id"])
    assert bob_view.audio_forward == (wl["participant_id"],)  # ann publishes, bob hears her
    ann_row = int(np.flatnonzero(frame.ids == ws_["participant_id"])[0])
    assert not frame.flags[ann_row] & 1  # bob cannot publish: never an audio source
    # can_subscribe=False also means no data delivered to that participant.
    await speaker.send({"t": "data", "topic": "x", "payload": b"1"})
    await listener.send({"t": "ping", "id": 9})
    await listener.expect("pong")
    await asyncio.sleep(0.1)
    assert all(t != "data" for t, _ in listener.kinds)
