"""The shared vectors are current, and the Python side (msgpack + world.protocol) agrees with them."""

from __future__ import annotations

import json
import struct
from typing import Any

import msgpack
import numpy as np
import pytest

from world import protocol

from .generate import HERE, render

MSGPACK = json.loads((HERE / "msgpack_vectors.json").read_text())


def untag(t: dict[str, Any]) -> Any:
    (kind, v), = t.items()
    if kind == "nil":
        return None
    if kind == "bool":
        return v
    if kind == "int":
        return int(v)
    if kind == "f64":
        return struct.unpack(">d", bytes.fromhex(v))[0]
    if kind == "f32":
        return struct.unpack(">f", bytes.fromhex(v))[0]
    if kind == "str":
        return v
    if kind == "bin":
        return bytes.fromhex(v)
    if kind == "array":
        return [untag(x) for x in v]
    if kind == "map":
        return {untag(k): untag(x) for k, x in v}
    raise ValueError(kind)


def test_vector_files_are_up_to_date() -> None:
    for name, text in render().items():
        assert (HERE / name).read_text() == text, f"{name} is stale: run python tests/vectors/generate.py"


@pytest.mark.parametrize("vec", MSGPACK["vectors"], ids=lambda v: v["name"])
def test_msgpack_vector_round_trips(vec: dict[str, Any]) -> None:
    raw = bytes.fromhex(vec["hex"])
    value = untag(vec["value"])
    assert msgpack.unpackb(raw, raw=False, strict_map_key=False) == value
    if vec["encode"]:
        assert msgpack.packb(value, use_bin_type=True) == raw


@pytest.mark.parametrize(
    "vec", [v for v in MSGPACK["vectors"] if v["name"][:4] in ("c2s.", "s2c.")], ids=lambda v: v["name"]
)
def test_protocol_vectors_pass_server_validation(vec: dict[str, Any]) -> None:
    frame = bytes.fromhex(vec["hex"])
    msg = protocol.parse(frame, "c2s") if vec["name"].startswith("c2s.") else protocol.parse(frame, "s2c")
    assert msg["t"] == untag(vec["value"])["t"]


def test_every_message_type_has_a_vector() -> None:
    names = {v["name"] for v in MSGPACK["vectors"]}
    for direction, schemas in (("c2s", protocol.CLIENT_SCHEMAS), ("s2c", protocol.SERVER_SCHEMAS)):
        for t in schemas:
            assert f"{direction}.{t}" in names


def test_poses_decoded_matches_server_unpack() -> None:
    pd = MSGPACK["poses_decoded"]
    ids, pos, rot = protocol.unpack_poses(protocol.decode(bytes.fromhex(pd["hex"])))
    assert ids.tolist() == pd["ids"]
    np.testing.assert_allclose(pos, np.array(pd["pos_mm"]) / 1000.0, rtol=1e-6)  # float32 on the server
    np.testing.assert_allclose(rot, np.array(pd["rot_i16"]) / 32767.0, atol=1e-7)

