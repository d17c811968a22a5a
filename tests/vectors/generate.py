"""Generate the shared test vectors that the Python and GDScript implementations are both checked against.

    python tests/vectors/generate.py          # rewrites msgpack_vectors.json and codec_vectors.json

msgpack_vectors.json: every protocol message type (encoded by world.protocol.encode, the server's encoder)
plus msgpack edge cases (format boundaries). Values are stored *tagged* so that a JSON reader that turns
every number into a float (Godot's) still knows ints from floats and strings from bytes:
    {"nil": null} {"bool": b} {"int": "123"} {"f64": "<8 bytes BE hex>"} {"f32": "<4 bytes BE hex>"}
    {"str": s} {"bin": "<hex>"} {"array": [tagged, ...]} {"map": [[tagged key, tagged value], ...]}
A vector with "encode": false is decode-only (e.g. float32, which an encoder never chooses).

codec_vectors.json: PCM int16 in -> encoded bytes (hex) -> decoded PCM, for ulaw16k and adpcm16k (ADPCM
frames are consecutive frames of one fresh encoder, so they also pin the carried-over state).

tests/vectors/test_vectors.py checks the files are what this script generates.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from world import protocol, voice_codec  # noqa: E402

HERE = Path(__file__).resolve().parent


def tag(value: Any) -> dict[str, Any]:
    """Python value -> tagged JSON (see module doc)."""
    if value is None:
        return {"nil": None}
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, float):
        return {"f64": struct.pack(">d", value).hex()}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, bytes | bytearray):
        return {"bin": bytes(value).hex()}
    if isinstance(value, list | tuple):
        return {"array": [tag(v) for v in value]}
    if isinstance(value, dict):
        return {"map": [[tag(k), tag(v)] for k, v in value.items()]}
    raise TypeError(f"cannot tag {type(value).__name__}")


def protocol_messages() -> list[tuple[str, dict[str, Any]]]:
    """One realistic instance of every message type in docs/protocol.md, both directions."""
    poses = protocol.pack_poses(
        1234,
        np.array([3, 7, 4_000_000_000], dtype=np.uint32),
        np.array([[1.5, 0.0, -2.25], [-100.125, 1.75, 33.0], [0.001, -0.002, 2147483.647]]),
        np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.7071068, 0.0, 0.7071068], [-0.5, 0.5, -0.5, 0.5]]),
    )
    welcome = {
        "t": "welcome",
        "v": 1,
        "participant_id": 42,
        "identity": "alice",
        "name": "Alice",
        "grants": {"publish": True, "subscribe": True, "data": True, "admin": False},
        "resume": "r-7f3a",
        "resumed": False,
        "world": {
            "name": "plaza",
            "bounds": {"min": [-50.0, -1.0, -50.0], "max": [50.0, 20.0, 50.0]},
            "tick_rate": 20,
            "zones": [
                {"name": "stage", "kind": "stage", "min": [-5.0, 0.0, -30.0], "max": [5.0, 3.0, -20.0]}
            ],
            "spawn_points": [[0.0, 0.0, 0.0], [2.5, 0.0, -1.5]],
            "audio": {
                "distance_model": "inverse_clamped",
                "reference_distance": 1.0,
                "rolloff": 1.0,
                "max_distance": 40.0,
                "pan_law": "equal_power",
            },
            "interest": {"forward_radius": 15.0, "hearing_radius": 40.0, "max_forwarded": 8, "video_max": 4},
        },
        "ice_servers": [{"urls": ["stun:127.0.0.1:3478"]}],
        "spawn": {"p": [0.0, 0.0, 0.0], "q": [0.0, 0.0, 0.0, 1.0]},
    }
    ulaw = voice_codec.ulaw_encode(np.array([0, 1000, -1000, 32767], dtype=np.int16))
    adpcm = voice_codec.VoiceEncoder("adpcm16k").encode(np.full(voice_codec.FRAME_SAMPLES, 1000, np.int16))
    return [
        (
            "c2s.join",
            {"t": "join", "v": 1, "token": "eyJhbGciOiJIUzI1NiJ9.e30.sig", "transport": "websocket"},
        ),
        ("c2s.join_resume", {"t": "join", "v": 1, "token": "tok", "transport": "webrtc", "resume": "r-7f3a"}),
        ("c2s.answer", {"t": "answer", "sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"}),
        (
            "c2s.ice",
            {
                "t": "ice",
                "candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host",
                "sdpMid": "0",
                "sdpMLineIndex": 0,
            },
        ),
        (
            "c2s.pose",
            protocol.pose_message(
                [1.5, 0.0, -2.25], [0.0, 0.7071067811865476, 0.0, 0.7071067811865476], seq=17
            ),
        ),
        (
            "c2s.data",
            {"t": "data", "topic": "chat", "payload": b"hi \x00\xff", "reliable": True, "to": [3, 7]},
        ),
        ("c2s.data_lossy", {"t": "data", "topic": "fx", "payload": b"", "reliable": False}),
        ("c2s.voice", {"t": "voice", "codec": "ulaw16k", "seq": 65536, "pcm": ulaw}),
        ("c2s.mute", {"t": "mute", "audio": True}),
        ("c2s.ping", {"t": "ping", "id": 9}),
        ("c2s.leave", {"t": "leave"}),
        ("s2c.welcome", welcome),
        (
            "s2c.offer",
            {
                "t": "offer",
                "sdp": "v=0\r\n",
                "slots": {
                    "audio": ["0", "1"],
                    "mixed": "2",
                    "video": [],
                    "publish_audio": "3",
                    "publish_video": "4",
                },
            },
        ),
        (
            "s2c.ice",
            {
                "t": "ice",
                "candidate": "candidate:2 1 udp 2 127.0.0.1 5001 typ host",
                "sdpMid": None,
                "sdpMLineIndex": None,
            },
        ),
        ("s2c.error", protocol.error(protocol.ErrorCode.POSE_INVALID, "pose.p: not finite", ref="pose")),
        ("s2c.slots", {"t": "slots", "audio": [3, None, 7], "video": [None], "flat": [False, True, False]}),
        (
            "s2c.enter",
            {
                "t": "enter",
                "participants": [
                    {
                        "id": 3,
                        "identity": "bob",
                        "name": "Bob",
                        "p": [1.0, 0.0, 2.0],
                        "q": [0.0, 0.0, 0.0, 1.0],
                        "audio": True,
                        "video": False,
                    },
                    {
                        "id": 4_000_000_000,
                        "identity": "bot-1",
                        "name": "",
                        "p": [-3.5, 0.0, 0.25],
                        "q": [0.0, 1.0, 0.0, 0.0],
                        "audio": False,
                        "video": False,
                    },
                ],
            },
        ),
        ("s2c.exit", {"t": "exit", "ids": [3, 4_000_000_000]}),
        ("s2c.poses", poses),
        ("s2c.speakers", {"t": "speakers", "ids": [3, 7], "levels": [-20.5, -42.0]}),
        ("s2c.data", {"t": "data", "from": 3, "topic": "chat", "payload": b"\x01\x02\x03"}),
        ("s2c.corrected", protocol.corrected([50.0, 0.0, -3.0], [0.0, 0.0, 0.0, 1.0], "bounds")),
        ("s2c.voice", {"t": "voice", "from": 3, "codec": "adpcm16k", "seq": 2, "pcm": adpcm}),
        ("s2c.voice_bed", {"t": "voice", "from": None, "codec": "ulaw16k", "seq": 5, "pcm": ulaw}),
        ("s2c.pong", {"t": "pong", "id": 9}),
        ("s2c.bye", protocol.bye(protocol.CloseCode.GOING_AWAY, "server shutting down")),
    ]


def edge_values() -> list[tuple[str, Any]]:
    ints = [
        0,
        1,
        127,
        128,
        255,
        256,
        65535,
        65536,
        2**32 - 1,
        2**32,
        2**63 - 1,
        -1,
        -32,
        -33,
        -128,
        -129,
        -32768,
        -32769,
        -(2**31),
        -(2**31) - 1,
        -(2**63),
    ]
    out: list[tuple[str, Any]] = [(f"int.{i}", i) for i in ints]
    out += [("nil", None), ("true", True), ("false", False)]
    out += [(f"f64.{x!r}", x) for x in (0.0, -0.0, 0.5, -1.25, 1234.125, 0.1, 1e300, -math.pi, 5e-324)]
    out += [
        ("str.empty", ""),
        ("str.utf8", "héllo wörld ✓"),
        ("str.31", "a" * 31),
        ("str.32", "b" * 32),
        ("str.255", "c" * 255),
        ("str.256", "d" * 256),
    ]
    out += [
        ("bin.empty", b""),
        ("bin.3", b"\x00\x7f\xff"),
        ("bin.256", bytes(range(256))),
    ]
    out += [("array.0", []), ("array.15", list(range(15))), ("array.16", list(range(16)))]
    out += [
        ("map.0", {}),
        ("map.15", {f"k{i}": i for i in range(15)}),
        ("map.16", {f"k{i}": i for i in range(16)}),
        ("map.intkeys", {1: "a", -2: "b"}),
        ("nested", {"a": [1, [2, {"b": None}]], "c": {"d": b"\x01"}}),
    ]
    return out


def msgpack_vectors() -> dict[str, Any]:
    vectors: list[dict[str, Any]] = []
    for name, msg in protocol_messages():
        frame = protocol.encode(msg)
        assert isinstance(frame, bytes)
        vectors.append({"name": name, "hex": frame.hex(), "value": tag(msg), "encode": True})
    for name, value in edge_values():
        packed = msgpack.packb(value, use_bin_type=True)
        vectors.append({"name": name, "hex": packed.hex(), "value": tag(value), "encode": True})
    for x in (0.5, -3.75, 1e-3):  # float32 on the wire: decode only
        packed = msgpack.packb(x, use_single_float=True)
        vectors.append(
            {
                "name": f"f32.{x!r}",
                "hex": packed.hex(),
                "value": {"f32": struct.pack(">f", x).hex()},
                "encode": False,
            }
        )
    # poses: the decoded form a client must produce (ints exactly; floats = ints / 1000, / 32767)
    pose_msg = dict(protocol_messages())["s2c.poses"]
    ids, _, _ = protocol.unpack_poses(pose_msg)
    return {
        "doc": "generated by tests/vectors/generate.py; tagged values, see its docstring",
        "vectors": vectors,
        "poses_decoded": {
            "hex": protocol.encode(pose_msg).hex(),  # type: ignore[union-attr]
            "ids": [int(i) for i in ids],
            "pos_mm": np.frombuffer(pose_msg["pos"], dtype="<i4").reshape(-1, 3).tolist(),
            "rot_i16": np.frombuffer(pose_msg["rot"], dtype="<i2").reshape(-1, 4).tolist(),
        },
    }


def codec_vectors() -> dict[str, Any]:
    rng = np.random.default_rng(20240601)
    n = voice_codec.FRAME_SAMPLES
    t = np.arange(4 * n) / voice_codec.SAMPLE_RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    raw = 9000 * np.sin(2 * np.pi * 220 * t) * envelope + 1500 * rng.standard_normal(4 * n)
    speechlike = voice_codec.float_to_int16(raw / 32767.0)
    sweep = np.linspace(-32768, 32767, n).round().astype(np.int16)
    square = np.where((np.arange(n) // 20) % 2, 32767, -32768).astype(np.int16)
    frames: dict[str, np.ndarray] = {
        "sweep": sweep,
        "square_fullscale": square,
        "speech0": speechlike[:n],
        "speech1": speechlike[n : 2 * n],
        "speech2": speechlike[2 * n : 3 * n],
        "silence": np.zeros(n, dtype=np.int16),
    }
    out: dict[str, Any] = {
        "doc": "generated by tests/vectors/generate.py",
        "sample_rate": voice_codec.SAMPLE_RATE,
        "frame_samples": n,
    }
    for codec in voice_codec.VoiceCodec:
        encoder = voice_codec.VoiceEncoder(codec)  # one encoder for the whole sequence: state carries over
        seq = []
        for name, pcm in frames.items():
            payload = encoder.encode(pcm)
            seq.append(
                {
                    "name": name,
                    "pcm": pcm.tolist(),
                    "encoded": payload.hex(),
                    "decoded": voice_codec.decode_frame(codec, payload).tolist(),
                }
            )
        out[codec.value] = {
            "frame_bytes": voice_codec.frame_bytes(codec),
            "bitrate": voice_codec.bitrate(codec),
            "frames": seq,
        }
    stereo = np.stack([speechlike[:n], speechlike[n : 2 * n]], axis=1)
    payload = voice_codec.VoiceEncoder("adpcm16k", channels=2).encode(stereo)
    out["stereo_adpcm16k"] = {
        "encoded": payload.hex(),
        "decoded": voice_codec.decode_frame("adpcm16k", payload, channels=2).tolist(),
    }
    return out


def render() -> dict[str, str]:
    """File name -> text, exactly as written."""
    return {
        "msgpack_vectors.json": json.dumps(msgpack_vectors(), indent=1) + "\n",
        "codec_vectors.json": json.dumps(codec_vectors()) + "\n",
    }


def main() -> None:
    for name, text in render().items():
        (HERE / name).write_text(text)
        print(f"wrote {HERE / name} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
