"""Every protocol message round-trips through msgpack and JSON; bad frames get precise codes."""

from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest

from world import protocol
from world.pose_batch import encode_batches
from world.protocol import CLIENT_SCHEMAS, SERVER_SCHEMAS, ErrorCode, ProtocolError

CLIENT_MESSAGES = [
    {"t": "join", "v": 1, "token": "tok", "transport": "websocket", "resume": "r"},
    {"t": "answer", "sdp": "v=0\r\n"},
    {
        "t": "ice",
        "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    },
    {"t": "pose", "p": [1.5, 0.0, -2.25], "q": [0.0, 0.70710678, 0.0, 0.70710678], "seq": 12},
    {"t": "data", "topic": "chat", "payload": b"\x00\xffhi", "reliable": False, "to": [1, 2]},
    {"t": "voice", "codec": "ulaw16k", "seq": 3, "pcm": bytes(range(256)), "ch": 1},
    {"t": "mute", "audio": True},
    {"t": "ping", "id": 42},
    {"t": "leave"},
]

SERVER_MESSAGES = [
    {
        "t": "welcome",
        "v": 1,
        "participant_id": 3,
        "identity": "ann",
        "name": "Ann",
        "grants": {"can_publish": True},
        "resume": "xyz",
        "resumed": False,
        "world": {"name": "plaza", "bounds": {"min": [-1, -1, -1], "max": [1, 1, 1]}},
        "ice_servers": [{"urls": ["stun:stun.example.org"]}],
        "spawn": {"p": [0, 0, 0], "q": [0, 0, 0, 1]},
    },
    {
        "t": "offer",
        "sdp": "v=0",
        "slots": {"audio": ["0", "1"], "mixed": "2", "video": [], "publish_audio": "3"},
    },
    {"t": "ice", "candidate": "c", "sdpMid": None, "sdpMLineIndex": None},
    {"t": "error", "code": 101, "message": "unknown message type 'x'", "ref": "x"},
    {"t": "slots", "audio": [4, None, 7], "video": [None], "flat": [False, True, False]},
    {
        "t": "enter",
        "participants": [
            {
                "id": 4,
                "identity": "bob",
                "name": "Bob",
                "p": [1.0, 0.0, 0.0],
                "q": [0.0, 0.0, 0.0, 1.0],
                "audio": True,
                "video": False,
            }
        ],
    },
    {"t": "exit", "ids": [4, 9]},
    protocol.pack_poses(
        7, np.array([1, 2]), np.array([[1, 2, 3], [-4, 5.5, 6]]), np.array([[0, 0, 0, 1]] * 2)
    ),
    {"t": "speakers", "ids": [1, 2], "levels": [-20.5, -41.0]},
    {"t": "data", "from": 2, "topic": "chat", "payload": b"\x01\x02"},
    {"t": "corrected", "p": [1.0, 2.0, 3.0], "q": [0.0, 0.0, 0.0, 1.0], "reason": "speed"},
    {"t": "voice", "from": None, "codec": "adpcm16k", "seq": 9, "pcm": b"\x10" * 328, "ch": 2},
    {"t": "pong", "id": 42},
    {"t": "bye", "code": 1001, "reason": "server shutting down"},
]


def test_every_type_is_covered() -> None:
    assert {m["t"] for m in CLIENT_MESSAGES} == set(CLIENT_SCHEMAS)
    assert {m["t"] for m in SERVER_MESSAGES} == set(SERVER_SCHEMAS)


@pytest.mark.parametrize("binary", [True, False], ids=["msgpack", "json"])
@pytest.mark.parametrize("msg", CLIENT_MESSAGES, ids=lambda m: m["t"])
def test_client_round_trip(msg: dict, binary: bool) -> None:
    frame = protocol.encode(msg, binary=binary)
    assert isinstance(frame, bytes if binary else str)
    assert protocol.parse(frame, "c2s") == msg


@pytest.mark.parametrize("binary", [True, False], ids=["msgpack", "json"])
@pytest.mark.parametrize("msg", SERVER_MESSAGES, ids=lambda m: m["t"])
def test_server_round_trip(msg: dict, binary: bool) -> None:
    assert protocol.parse(protocol.encode(msg, binary=binary), "s2c") == msg


def test_defaults_filled_and_extras_dropped() -> None:
    got = protocol.parse(protocol.encode({"t": "join", "v": 1, "token": "x", "future": 1}))
    assert got == {"t": "join", "v": 1, "token": "x", "transport": "webrtc", "resume": None}
    got = protocol.parse(protocol.encode({"t": "data", "topic": "a", "payload": b""}))
    assert got["reliable"] is True and got["to"] is None


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\xc1", ErrorCode.BAD_FRAME),
        (msgpack.packb([1, 2]), ErrorCode.BAD_FRAME),
        (msgpack.packb({1: 2}), ErrorCode.BAD_FRAME),
        ("[1]", ErrorCode.BAD_FRAME),
        ('{"t": ', ErrorCode.BAD_FRAME),
        (msgpack.packb({"x": 1}), ErrorCode.UNKNOWN_TYPE),
        (msgpack.packb({"t": "fly"}), ErrorCode.UNKNOWN_TYPE),
        (msgpack.packb({"t": "welcome"}), ErrorCode.UNKNOWN_TYPE),  # server-only type from a client
        (msgpack.packb({"t": "join", "v": 9, "token": "x"}), ErrorCode.UNSUPPORTED_VERSION),
        (msgpack.packb({"t": "join", "token": "x"}), ErrorCode.INVALID_FIELD),
        (msgpack.packb({"t": "pose", "p": [0, 0], "q": [0, 0, 0, 1]}), ErrorCode.INVALID_FIELD),
        (msgpack.packb({"t": "pose", "p": [0, 0, True], "q": [0, 0, 0, 1]}), ErrorCode.INVALID_FIELD),
        (msgpack.packb({"t": "pose", "p": [0, 0, 0], "q": [0, 0, 0, 1], "seq": -1}), ErrorCode.INVALID_FIELD),
        (msgpack.packb({"t": "data", "topic": "a", "payload": "text"}), ErrorCode.INVALID_FIELD),
        ('{"t": "data", "topic": "a", "payload": "!!notbase64"}', ErrorCode.INVALID_FIELD),
        (msgpack.packb({"t": "voice", "codec": "mp3", "seq": 1, "pcm": b""}), ErrorCode.INVALID_FIELD),
        (msgpack.packb({"t": "mute", "audio": 1}), ErrorCode.INVALID_FIELD),
    ],
)
def test_bad_frames(frame: bytes | str, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as info:
        protocol.parse(frame, "c2s")
    assert info.value.code == code


def test_nan_survives_decoding_for_the_pose_gate() -> None:
    # Non-finite numbers are well-formed msgpack; the pose gate (not the decoder) rejects them with
    # POSE_INVALID, so the client learns exactly what was wrong.
    msg = protocol.parse(protocol.encode({"t": "pose", "p": [math.nan, 0, 0], "q": [0, 0, 0, 1]}))
    assert math.isnan(msg["p"][0])


def test_pose_quantisation() -> None:
    ids = np.array([5, 70000], dtype=np.uint32)
    pos = np.array([[1.2344, -0.0005, 1000.5], [-3.0, 2.0, 1e-4]])
    rot = np.array([[0.0, 0.70710678, 0.0, 0.70710678], [0, 0, 0, 1.0]])
    msg = protocol.pack_poses(3, ids, pos, rot)
    assert len(msg["ids"]) == 8 and len(msg["pos"]) == 24 and len(msg["rot"]) == 16
    got_ids, got_pos, got_rot = protocol.unpack_poses(msg)
    assert got_ids.tolist() == [5, 70000]
    assert np.allclose(got_pos, pos, atol=0.0005 + 1e-6)
    assert np.allclose(got_rot, rot, atol=1 / 32767)
    # Little-endian on the wire regardless of the host.
    assert msg["ids"][:4] == (5).to_bytes(4, "little")
    assert msg["pos"][:4] == (1234).to_bytes(4, "little", signed=True)


@pytest.mark.parametrize("tick", [0, 127, 128, 65536, 2**32])
def test_pose_batches_are_the_encoded_messages(tick: int) -> None:
    """The tick writes every listener's pose frame in one compiled pass; each must be byte for
    byte the msgpack of the message (every bin header size: 8, 16 and 32 bits)."""
    rng = np.random.default_rng(tick)
    n = 6000
    ids = rng.integers(0, 2**32, n).astype("<u4")
    pos = rng.integers(-(2**31), 2**31, (n, 3)).astype("<i4")
    rot = rng.integers(-32767, 32768, (n, 4)).astype("<i2")
    spans = [(2, 0, 1), (3, 1, 22), (4, 22, 54), (5, 54, 5600), (2**31 - 1, 5600, 6000)]
    keys = np.concatenate([(lid << 32) + np.arange(b - a) for lid, a, b in spans]).astype(np.int64)
    frames = encode_batches(tick, keys, ids, pos, rot.view("<i8").ravel())
    assert [k for k, _ in frames] == [lid for lid, _, _ in spans]
    for (_, frame), (_, a, b) in zip(frames, spans, strict=True):
        rows = {"ids": ids[a:b].tobytes(), "pos": pos[a:b].tobytes(), "rot": rot[a:b].tobytes()}
        msg = {"t": "poses", "tick": tick, **rows}
        assert frame == protocol.encode(msg)
    big = encode_batches(tick, np.arange(n, dtype=np.int64) + (9 << 32), ids, pos, rot)  # 72 kB: bin 32
    assert big[0][0] == 9
    assert protocol.unpack_poses(protocol.decode(big[0][1]))[0].tolist() == ids.tolist()
    assert encode_batches(tick, np.zeros(0, np.int64), ids[:0], pos[:0], rot[:0]) == []


@pytest.mark.parametrize("n", [0, 1, 15, 16, 65535, 65536])
def test_list_frames_are_the_encoded_messages(n: int) -> None:
    """An `enter` joined from pre-encoded entries is byte for byte the encoded message (fixarray,
    array 16 and array 32 headers)."""
    entries = [{"id": i, "name": f"n{i}", "p": [0.5 * i, 0.0, -1.25]} for i in range(n)]
    frame = protocol.list_frame("enter", "participants", (protocol.encode_item(e) for e in entries))
    assert frame == protocol.encode({"t": "enter", "participants": entries})
    assert protocol.decode(frame)["participants"] == entries


def test_codes_are_unique_and_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    for code in ErrorCode:
        assert f"| {int(code)} | `{code.name}`" in doc, code
    for close in protocol.CloseCode:
        assert f"| {int(close)} | `{close.name}`" in doc, close
    for t in set(CLIENT_SCHEMAS) | set(SERVER_SCHEMAS):
        assert f"`{t}`" in doc, t
