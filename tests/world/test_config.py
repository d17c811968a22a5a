"""Config validation: every kind of mistake names the file, the key path and the problem."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from interest.params import Box, Cylinder, InterestParams, PolygonPrism, PositionTier
from world import config as cfgmod
from world.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]
BOX = 'shape = {type = "box", min = [0, 0, 0], max = [1, 1, 1]}\n'
ZONE = '[[worlds.zones]]\nname = "{name}"\nkind = "{kind}"\n'

GOOD = """
[server]
keys = { main = "0123456789abcdef0123456789abcdef" }

[[worlds]]
name = "w"
bounds = { min = [-10, -1, -10], max = [10, 5, 10] }
spawn_points = [[0, 0, 0]]
"""


def check(tmp_path: Path, text: str) -> ConfigError:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    return info.value


def one(err: ConfigError) -> tuple[str, str]:
    assert len(err.errors) >= 1, err
    return err.errors[0]


def test_good_minimal(tmp_path: Path) -> None:
    p = tmp_path / "ok.toml"
    p.write_text(GOOD)
    cfg = load_config(p)
    assert cfg.keys == {"main": "0123456789abcdef0123456789abcdef"}
    w = cfg.worlds[0]
    assert w.tick_rate == 20 and w.interest.audio.forward_radius == 10


@pytest.mark.parametrize(
    ("extra", "path", "fragment"),
    [
        (
            "[worlds.interest.audio]\nforward_radius = -1\n",
            "worlds[0].interest.audio.forward_radius",
            "greater than 0",
        ),
        (
            "[worlds.interest.audio]\nforward_radius = 0\n",
            "worlds[0].interest.audio.forward_radius",
            "greater than 0",
        ),
        (
            "[worlds.interest.audio]\nforward_radius = 20\nhearing_radius = 10\n",
            "worlds[0].interest.audio.hearing_radius",
            "must be >= forward_radius",
        ),
        (
            "[worlds.interest.audio]\nforwad_radius = 3\n",
            "worlds[0].interest.audio.forwad_radius",
            "unknown key",
        ),
        (
            '[worlds.interest.audio]\nforward_radius = "far"\n',
            "worlds[0].interest.audio.forward_radius",
            "number",
        ),
        (
            "[worlds.interest.position]\nradius = 30\n"
            "tiers = [{distance = 20, rate_hz = 10}, {distance = 10, rate_hz = 5}]\n",
            "worlds[0].interest.position.tiers[1].distance",
            "must increase",
        ),
        (
            "[worlds.interest.position]\nradius = 60\ntiers = [{distance = 20, rate_hz = 10}]\n",
            "worlds[0].interest.position.tiers[0].distance",
            "reach position.radius",
        ),
        (
            "[worlds.interest.position]\ntiers = [{distance = 20}]\n",
            "worlds[0].interest.position.tiers[0].rate_hz",
            "missing",
        ),
        ('[worlds.audio]\ndistance_model = "cubic"\n', "worlds[0].audio.distance_model", "inverse"),
        ('[worlds.audio]\npan_law = "mono"\n', "worlds[0].audio.pan_law", "equal_power"),
        (
            "[worlds.audio]\nopus_complexity = 11\n",
            "worlds[0].audio.opus_complexity",
            "less than or equal to 10",
        ),
        ('[worlds.audio]\nmixing = "yes"\n', "worlds[0].audio.mixing", "boolean"),
        (
            ZONE.format(name="s", kind="stage") + BOX,
            "worlds[0].zones[0].audience",
            "needs an audience",
        ),
        (
            ZONE.format(name="far", kind="private")
            + 'shape = {type = "cylinder", center = [9, 0], radius = 5}\n',
            "worlds[0].zones[0].shape",
            "outside the world bounds",
        ),
        (
            ZONE.format(name="p", kind="private") + 'shape = {type = "polygon", points = [[0, 0], [1, 0]]}\n',
            "worlds[0].zones[0].shape.points",
            "at least 3",
        ),
        (
            '[[worlds.zones]]\nname = "p"\nkind = "private"\nshape = {type = "sphere", radius = 1}\n',
            "worlds[0].zones[0].shape",
            "box",
        ),
        (
            ZONE.format(name="p", kind="party") + BOX,
            "worlds[0].zones[0].kind",
            "stage",
        ),
        (
            ZONE.format(name="p", kind="private") + BOX + BOX.replace("shape", "audience"),
            "worlds[0].zones[0].audience",
            "only stage zones",
        ),
        ("tick_rate = 0\n", "worlds[0].tick_rate", "greater than 0"),
        ("max_speed = -3\n", "worlds[0].max_speed", "greater than 0"),
        ('colour = "red"\n', "worlds[0].colour", "unknown key"),
    ],
)
def test_world_mistakes(tmp_path: Path, extra: str, path: str, fragment: str) -> None:
    # Settings that belong to the [[worlds]] table go right after its keys.
    text = GOOD + "\n" + extra  # plain keys land in the [[worlds]] table, tables after it
    err = check(tmp_path, text)
    paths = [p for p, _ in err.errors]
    assert path in paths, err
    msgs = [m for p, m in err.errors if p == path]
    assert any(fragment in m for m in msgs), f"{msgs!r} lack {fragment!r}"
    assert f"{path}: " in str(err)


def test_spawn_outside_bounds(tmp_path: Path) -> None:
    err = check(
        tmp_path, GOOD.replace("spawn_points = [[0, 0, 0]]", "spawn_points = [[0, 0, 0], [50, 0, 0]]")
    )
    assert err.errors == [("worlds[0].spawn_points[1]", "spawn point [50.0, 0.0, 0.0] is outside bounds")]


def test_bounds_inverted(tmp_path: Path) -> None:
    err = check(tmp_path, GOOD.replace("max = [10, 5, 10]", "max = [10, -5, 10]"))
    assert one(err)[0] == "worlds[0].bounds"
    assert "smaller than bounds.max" in one(err)[1]


def test_duplicate_world_names(tmp_path: Path) -> None:
    err = check(tmp_path, GOOD + '\n[[worlds]]\nname = "w"\n')
    assert err.errors == [("worlds[1].name", "duplicate world name 'w' (also worlds[0])")]


def test_wrong_types_and_unknown_server_keys(tmp_path: Path) -> None:
    err = check(tmp_path, GOOD.replace("[server]", '[server]\nport = "eighty"\nhots = "x"'))
    got = dict(err.errors)
    assert "integer" in got["server.port"] and "'eighty'" in got["server.port"]
    assert got["server.hots"] == "unknown key"


def test_limits_and_ice(tmp_path: Path) -> None:
    text = GOOD.replace(
        "[server]",
        '[server]\nice_servers = [{urls = "http://x"}]\nlimits = { max_frame_bytes = 0, burst = -1 }',
    )
    got = dict(check(tmp_path, text).errors)
    assert "stun:" in got["server.ice_servers[0].urls"]
    assert "greater than 0" in got["server.limits.max_frame_bytes"]
    assert "greater than 0" in got["server.limits.burst"]


def test_secret_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secret.txt").write_text("from-a-file-0123456789abcdef0123\n")
    monkeypatch.setenv("HUBBUB_TEST_SECRET", "from-env-0123456789abcdef0123456789")
    text = GOOD.replace(
        'keys = { main = "0123456789abcdef0123456789abcdef" }',
        'keys = { a = { env = "HUBBUB_TEST_SECRET" }, b = { file = "secret.txt" }, c = "inline" }',
    )
    p = tmp_path / "keys.toml"
    p.write_text(text)
    keys = load_config(p).keys
    assert keys == {
        "a": "from-env-0123456789abcdef0123456789",
        "b": "from-a-file-0123456789abcdef0123",
        "c": "inline",
    }
    monkeypatch.delenv("HUBBUB_TEST_SECRET")
    got = dict(check(tmp_path, text).errors)
    assert got["server.keys.a"] == "environment variable HUBBUB_TEST_SECRET is not set or empty"
    bad = GOOD.replace('{ main = "0123456789abcdef0123456789abcdef" }', '{ m = { file = "nope.txt" } }')
    got = dict(check(tmp_path, bad).errors)
    assert "cannot read secret file" in got["server.keys.m"]
    bad = GOOD.replace(
        '{ main = "0123456789abcdef0123456789abcdef" }', '{ n = { env = "A", file = "b" }, o = 3 }'
    )
    got = dict(check(tmp_path, bad).errors)
    assert "exactly one" in got["server.keys.n"]
    assert "a key secret is a string" in got["server.keys.o"]


def test_no_keys_without_anonymous(tmp_path: Path) -> None:
    err = check(tmp_path, GOOD.replace('keys = { main = "0123456789abcdef0123456789abcdef" }', ""))
    assert err.errors[0][0] == "server.keys"


def test_no_worlds_and_bad_toml(tmp_path: Path) -> None:
    err = check(tmp_path, '[server]\nkeys = { a = "b" }\n')
    assert err.errors == [("worlds", "missing required key")]
    err = check(tmp_path, "[server\n")
    assert "invalid TOML" in err.errors[0][1] and "line 1" in err.errors[0][1]
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(tmp_path / "missing.toml")


def test_interest_params_conversion(tmp_path: Path) -> None:
    text = (
        GOOD
        + """
tick_rate = 30
[worlds.interest]
hysteresis = 0.2
audio = { forward_radius = 4, hearing_radius = 9, max_forwarded = 3, max_mixed = 7 }
video = { radius = 6, max = 2 }
position = { radius = 8, max = 50, tiers = [{ distance = 4, rate_hz = 30 }, { distance = 8, rate_hz = 5 }] }

[[worlds.zones]]
name = "stage"
kind = "stage"
delivery = "mix"
shape = { type = "box", min = [-1, 0, -1], max = [1, 2, 1] }
audience = { type = "cylinder", center = [0, 0], radius = 5 }

[[worlds.zones]]
name = "room"
kind = "private"
open = true
shape = { type = "polygon", points = [[2, 2], [4, 2], [4, 4]], y_min = 0, y_max = 3 }
"""
    )
    p = tmp_path / "i.toml"
    p.write_text(text)
    params = load_config(p).worlds[0].interest_params()
    assert isinstance(params, InterestParams)
    assert (params.forward_radius, params.hearing_radius, params.max_forwarded, params.max_mixed) == (
        4,
        9,
        3,
        7,
    )
    assert (params.video_radius, params.video_max, params.position_radius, params.position_max) == (
        6,
        2,
        8,
        50,
    )
    assert params.position_tiers == (PositionTier(4, 30), PositionTier(8, 5))
    assert params.hysteresis == 0.2
    stage, room = params.zones
    assert stage.kind == "stage" and stage.delivery == "mix"
    assert stage.shape == Box((-1, 0, -1), (1, 2, 1)) and stage.audience == Cylinder((0, 0), 5)
    assert room.open and room.shape == PolygonPrism(((2, 2), (4, 2), (4, 4)), 0, 3)


def test_mixing_off_means_no_mixed_bed(tmp_path: Path) -> None:
    p = tmp_path / "m.toml"
    p.write_text(GOOD + "[worlds.audio]\nmixing = false\n")
    assert load_config(p).worlds[0].interest_params().max_mixed == 0


def _all_fields(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    names: set[str] = set()
    if model in seen:
        return names
    seen.add(model)
    for name, field in model.model_fields.items():
        names.add(name)
        for sub in _models_in(field.annotation):
            names |= _all_fields(sub, seen)
    return names


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        out += _models_in(arg)
    return out


def test_every_field_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"`([a-z_]+)`", doc))
    fields = _all_fields(cfgmod.Config, set())
    missing = sorted(fields - documented)
    assert not missing, f"fields missing from docs/configuration.md: {missing}"


@pytest.mark.parametrize("name", ["plaza.toml", "town_hall.toml", "sample_config.toml"])
def test_examples_validate(name: str) -> None:
    cfg = load_config(ROOT / "examples" / name)
    assert cfg.worlds


def test_sample_config_mentions_every_field() -> None:
    sample = (ROOT / "examples" / "sample_config.toml").read_text()
    fields = _all_fields(cfgmod.Config, set())
    missing = sorted(f for f in fields if not re.search(rf"\b{f}\b", sample))
    assert not missing, f"fields missing from examples/sample_config.toml: {missing}"


def test_cli_check_exit_codes(tmp_path: Path) -> None:
    good = subprocess.run(
        [sys.executable, "-m", "world.cli", "check", str(ROOT / "examples" / "town_hall.toml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert good.returncode == 0, good.stderr
    assert "town_hall" in good.stdout and "stage (stage)" in good.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace("[[worlds]]", "[[worlds]]\nmax_speed = 0"))
    res = subprocess.run(
        [sys.executable, "-m", "world.cli", "check", str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert res.returncode == 2
    assert f"{bad}: worlds[0].max_speed: Input should be greater than 0" in res.stderr
