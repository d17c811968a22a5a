"""Hubbub wire protocol v1: encoding, validation, error and close codes (sans-I/O).

One message is one map with a type key ``t``. Binary frames carry msgpack, text frames carry JSON with the
same schema (bytes fields as base64 strings). The same encoding is used on the WebSocket and on the WebRTC
data channels ``control`` and ``state``. See docs/protocol.md for the prose version of this module.

Validation is hand-written (a small table of field checkers) because poses arrive at 30 Hz per avatar and
a generic model library costs several times more per message.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
from collections.abc import Callable, Iterable, Mapping
from enum import IntEnum
from typing import Any, Literal

import msgpack
import numpy as np
import orjson

PROTOCOL_VERSION = 1

Direction = Literal["c2s", "s2c"]
Message = dict[str, Any]


class ErrorCode(IntEnum):
    """Codes carried by ``error`` messages. The session stays open unless a close follows."""

    BAD_FRAME = 100  # not msgpack / JSON, or not a map
    UNKNOWN_TYPE = 101  # `t` missing or not a known client message type
    INVALID_FIELD = 102  # a field is missing, of the wrong type or out of range
    UNSUPPORTED_VERSION = 103  # join.v is not a version this server speaks
    FRAME_TOO_LARGE = 104  # frame larger than limits.max_frame_bytes (the connection is closed, 1009)
    RATE_LIMITED = 105  # more messages than limits.messages_per_second (+ burst); the message was dropped
    NOT_JOINED = 110  # a message other than join/ping before join
    ALREADY_JOINED = 111  # a second join on the same connection
    JOIN_TIMEOUT = 112  # no join within limits.join_timeout_s (the connection is closed)
    INVALID_TOKEN = 120  # bad signature, unknown key, malformed token or claims
    TOKEN_EXPIRED = 121  # exp in the past
    TOKEN_NOT_YET_VALID = 122  # nbf in the future
    UNKNOWN_WORLD = 123  # the token names a world this server does not host
    PERMISSION_DENIED = 124  # the token lacks the grant this action needs
    WORLD_FULL = 130  # world.max_participants reached
    SERVER_FULL = 131  # server.limits.max_connections reached
    RESUME_FAILED = 132  # resume token unknown or expired: joined as a new participant instead
    POSE_INVALID = 140  # non-finite coordinates or a zero quaternion: the pose was ignored
    TRANSPORT_MISMATCH = 150  # e.g. `voice` on a webrtc session, `answer` on a websocket session
    MEDIA_FAILED = 151  # the media backend rejected an answer or candidate
    NOT_FOUND = 160  # admin or data target does not exist
    INTERNAL = 199  # a bug on the server; the session stays


class CloseCode(IntEnum):
    """WebSocket close codes. 1xxx are RFC 6455; 4xxx are Hubbub's own."""

    NORMAL = 1000  # the client left
    GOING_AWAY = 1001  # server shutting down
    MESSAGE_TOO_BIG = 1009  # frame larger than limits.max_frame_bytes
    INTERNAL_ERROR = 1011
    AUTH_FAILED = 4001  # join rejected: token invalid/expired/wrong world/insufficient grants
    JOIN_TIMEOUT = 4002  # no valid join within limits.join_timeout_s
    FLOOD = 4003  # kept sending after being rate limited
    KICKED = 4004  # removed by an admin
    REPLACED = 4005  # the same identity joined again (or resumed) on another connection
    WORLD_FULL = 4006
    SERVER_FULL = 4007
    SLOW_CONSUMER = 4008  # the client does not read fast enough; its reliable outbox overflowed


class ProtocolError(Exception):
    """A message the server cannot accept; turned into an ``error`` message, the session stays."""

    def __init__(self, code: ErrorCode, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


# --------------------------------------------------------------------------- field checkers
# A checker returns the (possibly normalised) value or raises ValueError with a short reason.

Checker = Callable[[Any], Any]


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("must be a string")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("must be a boolean")
    return v


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError("must be an integer")
    return v


def _uint(v: Any) -> int:
    v = _int(v)
    if not 0 <= v < 2**32:
        raise ValueError("must be an integer in [0, 2^32)")
    return v


def _opt_uint(v: Any) -> int | None:
    return None if v is None else _uint(v)


def _number(v: Any) -> float:
    # Finite-ness is checked by the pose gate (so that NaN gets its own error code); here only the type.
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError("must be a number")
    return float(v)


def _bytes(v: Any) -> bytes:
    if not isinstance(v, bytes | bytearray):
        raise ValueError("must be bytes")
    return bytes(v)


def _vec(n: int) -> Checker:
    def check(v: Any) -> list[float]:
        if not isinstance(v, list | tuple) or len(v) != n:
            raise ValueError(f"must be a list of {n} numbers")
        return [_number(x) for x in v]

    return check


def _list_of(item: Checker, max_len: int = 100_000) -> Checker:
    def check(v: Any) -> list[Any]:
        if not isinstance(v, list | tuple):
            raise ValueError("must be a list")
        if len(v) > max_len:
            raise ValueError(f"must have at most {max_len} items")
        return [item(x) for x in v]

    return check


def _opt(item: Checker) -> Checker:
    def check(v: Any) -> Any:
        return None if v is None else item(v)

    return check


def _map(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ValueError("must be a map")
    return v


def _any(v: Any) -> Any:
    return v


def _one_of(*choices: str) -> Checker:
    def check(v: Any) -> str:
        if v not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return str(v)

    return check


def _one_of_int(*choices: int) -> Checker:
    def check(v: Any) -> int:
        if isinstance(v, bool) or v not in choices:
            raise ValueError(f"must be one of {', '.join(map(str, choices))}")
        return int(v)

    return check


_REQUIRED = object()

# field name -> (checker, default or _REQUIRED)
Schema = dict[str, tuple[Checker, Any]]

CLIENT_SCHEMAS: dict[str, Schema] = {
    "join": {
        "v": (_int, _REQUIRED),
        "token": (_str, _REQUIRED),
        "transport": (_one_of("webrtc", "websocket"), "webrtc"),
        "resume": (_opt(_str), None),
    },
    "answer": {"sdp": (_str, _REQUIRED)},
    "ice": {
        "candidate": (_str, _REQUIRED),
        "sdpMid": (_opt(_str), None),
        "sdpMLineIndex": (_opt(_uint), None),
    },
    "pose": {"p": (_vec(3), _REQUIRED), "q": (_vec(4), _REQUIRED), "seq": (_uint, 0)},
    "data": {
        "topic": (_str, _REQUIRED),
        "payload": (_bytes, _REQUIRED),
        "reliable": (_bool, True),
        "to": (_opt(_list_of(_uint, 1024)), None),
    },
    "voice": {
        "codec": (_one_of("ulaw16k", "adpcm16k"), _REQUIRED),
        "seq": (_uint, _REQUIRED),
        "pcm": (_bytes, _REQUIRED),
        "ch": (_one_of_int(1, 2), 1),
    },
    "mute": {"audio": (_bool, _REQUIRED)},
    "ping": {"id": (_int, _REQUIRED)},
    "leave": {},
}

SERVER_SCHEMAS: dict[str, Schema] = {
    "welcome": {
        "v": (_int, _REQUIRED),
        "participant_id": (_uint, _REQUIRED),
        "identity": (_str, _REQUIRED),
        "name": (_str, _REQUIRED),
        "grants": (_map, _REQUIRED),
        "resume": (_str, _REQUIRED),
        "resumed": (_bool, False),
        "world": (_map, _REQUIRED),
        "ice_servers": (_list_of(_map), _REQUIRED),
        "spawn": (_map, _REQUIRED),
    },
    "offer": {"sdp": (_str, _REQUIRED), "slots": (_map, _REQUIRED)},
    "ice": CLIENT_SCHEMAS["ice"],
    "error": {"code": (_int, _REQUIRED), "message": (_str, _REQUIRED), "ref": (_opt(_str), None)},
    "slots": {
        "audio": (_list_of(_opt_uint), _REQUIRED),
        "video": (_list_of(_opt_uint), _REQUIRED),
        "flat": (_list_of(_bool), []),
    },
    "enter": {"participants": (_list_of(_map), _REQUIRED)},
    "exit": {"ids": (_list_of(_uint), _REQUIRED)},
    "poses": {
        "tick": (_uint, _REQUIRED),
        "ids": (_bytes, _REQUIRED),
        "pos": (_bytes, _REQUIRED),
        "rot": (_bytes, _REQUIRED),
    },
    "speakers": {"ids": (_list_of(_uint), _REQUIRED), "levels": (_list_of(_number), _REQUIRED)},
    "data": {"from": (_uint, _REQUIRED), "topic": (_str, _REQUIRED), "payload": (_bytes, _REQUIRED)},
    "corrected": {
        "p": (_vec(3), _REQUIRED),
        "q": (_vec(4), _REQUIRED),
        "reason": (_one_of("bounds", "speed", "teleport", "admin"), _REQUIRED),
    },
    "voice": {
        "from": (_opt_uint, None),
        "codec": (_one_of("ulaw16k", "adpcm16k"), _REQUIRED),
        "seq": (_uint, _REQUIRED),
        "pcm": (_bytes, _REQUIRED),
        "ch": (_one_of_int(1, 2), 1),
    },
    "pong": {"id": (_int, _REQUIRED)},
    "bye": {"code": (_int, _REQUIRED), "reason": (_str, _REQUIRED)},
}

# Fields that are bytes in msgpack and base64 strings in JSON, by message type (both directions).
BYTES_FIELDS: dict[str, tuple[str, ...]] = {
    "data": ("payload",),
    "voice": ("pcm",),
    "poses": ("ids", "pos", "rot"),
}


# --------------------------------------------------------------------------- framing


def _json_default(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(obj)).decode("ascii")
    raise TypeError(f"cannot encode {type(obj).__name__}")


def encode(msg: Mapping[str, Any], *, binary: bool = True) -> bytes | str:
    """Encode one message: msgpack bytes for binary frames, a JSON string for text frames."""
    if binary:
        return msgpack.packb(msg, use_bin_type=True)
    return orjson.dumps(msg, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def encode_item(obj: Any) -> bytes:
    """One value as msgpack, to be joined into a frame by `list_frame`."""
    data: bytes = msgpack.packb(obj, use_bin_type=True)
    return data


def list_frame(t: str, field: str, items: Iterable[bytes]) -> bytes:
    """``encode({"t": t, field: [...]})`` with each list item given already encoded (`encode_item`):
    msgpack is compositional, a list is its header and its items' bytes. The tick describes a peer
    once and joins the same bytes into every listener's ``enter`` that needs it."""
    parts = list(items)
    n = len(parts)
    if n < 16:
        header = bytes((0x90 | n,))
    elif n < 1 << 16:
        header = b"\xdc" + n.to_bytes(2, "big")
    else:
        header = b"\xdd" + n.to_bytes(4, "big")
    return b"".join((_list_head(t, field), header, *parts))


@functools.cache
def _list_head(t: str, field: str) -> bytes:
    return b"\x82" + msgpack.packb("t") + msgpack.packb(t) + msgpack.packb(field)


def decode(frame: bytes | str) -> Message:
    """Decode one frame into a map with a string ``t``; raises ProtocolError(BAD_FRAME / UNKNOWN_TYPE)."""
    try:
        if isinstance(frame, str):
            obj = orjson.loads(frame)
        else:
            obj = msgpack.unpackb(frame, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        kind = "JSON" if isinstance(frame, str) else "msgpack"
        raise ProtocolError(ErrorCode.BAD_FRAME, f"malformed {kind}: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_FRAME, "a frame must hold one map")
    t = obj.get("t")
    if not isinstance(t, str):
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, "missing message type 't'")
    if isinstance(frame, str):
        for name in BYTES_FIELDS.get(t, ()):
            value = obj.get(name)
            if isinstance(value, str):
                try:
                    obj[name] = base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    raise ProtocolError(
                        ErrorCode.INVALID_FIELD, f"{t}.{name}: must be base64", ref=t
                    ) from None
    return obj


def validate(msg: Message, direction: Direction = "c2s") -> Message:
    """Check a decoded message against its schema; returns a new map with defaults filled in.

    Unknown extra fields are dropped (forward compatibility: newer peers may add fields).
    """
    t = msg.get("t")
    schemas = CLIENT_SCHEMAS if direction == "c2s" else SERVER_SCHEMAS
    schema = schemas.get(t) if isinstance(t, str) else None
    if schema is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {t!r}", ref=str(t))
    out: Message = {"t": t}
    for name, (check, default) in schema.items():
        if name in msg and not (msg[name] is None and default is not _REQUIRED):
            try:
                out[name] = check(msg[name])
            except ValueError as exc:
                raise ProtocolError(ErrorCode.INVALID_FIELD, f"{t}.{name}: {exc}", ref=t) from None
        elif default is _REQUIRED:
            raise ProtocolError(ErrorCode.INVALID_FIELD, f"{t}.{name}: missing", ref=t)
        else:
            out[name] = list(default) if isinstance(default, list) else default
    if t == "join" and out["v"] != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"protocol version {out['v']} is not supported (this server speaks {PROTOCOL_VERSION})",
            ref=t,
        )
    return out


def parse(frame: bytes | str, direction: Direction = "c2s") -> Message:
    """decode() then validate()."""
    return validate(decode(frame), direction)


# --------------------------------------------------------------------------- builders


def error(code: ErrorCode, message: str, ref: str | None = None) -> Message:
    msg: Message = {"t": "error", "code": int(code), "message": message}
    if ref is not None:
        msg["ref"] = ref
    return msg


def bye(code: int, reason: str) -> Message:
    return {"t": "bye", "code": int(code), "reason": reason}


def pose_message(p: Iterable[float], q: Iterable[float], seq: int = 0) -> Message:
    return {"t": "pose", "p": [float(x) for x in p], "q": [float(x) for x in q], "seq": seq}


def corrected(p: Iterable[float], q: Iterable[float], reason: str) -> Message:
    return {"t": "corrected", "p": [float(x) for x in p], "q": [float(x) for x in q], "reason": reason}


# --------------------------------------------------------------------------- pose quantisation

POS_SCALE = 1000.0  # millimetres
ROT_SCALE = 32767.0


def pack_poses(tick: int, ids: np.ndarray, positions: np.ndarray, quats: np.ndarray) -> Message:
    """Build a ``poses`` message: ids uint32 LE, positions int32 LE millimetres, quats int16 LE ×32767."""
    pos = np.clip(np.rint(np.asarray(positions, dtype=np.float64) * POS_SCALE), -(2**31), 2**31 - 1)
    rot = np.clip(np.rint(np.asarray(quats, dtype=np.float64) * ROT_SCALE), -32767, 32767)
    return {
        "t": "poses",
        "tick": int(tick),
        "ids": np.asarray(ids, dtype="<u4").tobytes(),
        "pos": pos.astype("<i4").tobytes(),
        "rot": rot.astype("<i2").tobytes(),
    }


def unpack_poses(msg: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of pack_poses: (ids uint32 (n,), positions float32 (n,3) metres, quats float32 (n,4))."""
    ids = np.frombuffer(msg["ids"], dtype="<u4")
    n = len(ids)
    pos_raw = np.frombuffer(msg["pos"], dtype="<i4")
    rot_raw = np.frombuffer(msg["rot"], dtype="<i2")
    if len(pos_raw) != 3 * n or len(rot_raw) != 4 * n:
        raise ProtocolError(ErrorCode.INVALID_FIELD, "poses: ids/pos/rot lengths disagree", ref="poses")
    pos = pos_raw.reshape(n, 3).astype(np.float32) / np.float32(POS_SCALE)
    rot = rot_raw.reshape(n, 4).astype(np.float32) / np.float32(ROT_SCALE)
    return ids.astype(np.uint32), pos, rot


def is_finite(values: Iterable[float]) -> bool:
    return all(math.isfinite(x) for x in values)
