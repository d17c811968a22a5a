"""Server configuration: a TOML file validated by pydantic, converted into `interest.params`.

Every model forbids unknown keys, so a typo fails loudly instead of silently using a default. Errors
are collected into one `ConfigError` whose lines name the file, the key path
(``worlds[0].interest.audio.forward_radius``) and what is wrong. docs/configuration.md documents every
field; a test keeps the two in sync.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from interest.params import (
    Box,
    Cylinder,
    InterestParams,
    PolygonPrism,
    PositionTier,
    Shape,
    Zone,
)


def _as_tuple(v: Any) -> Any:
    # TOML arrays are lists; strict mode wants tuples for fixed-size vectors.
    return tuple(v) if isinstance(v, list) else v


Vec3 = Annotated[tuple[float, float, float], BeforeValidator(_as_tuple)]
Vec2 = Annotated[tuple[float, float], BeforeValidator(_as_tuple)]
Quat = Annotated[tuple[float, float, float, float], BeforeValidator(_as_tuple)]

DistanceModel = Literal[
    "inverse", "inverse_clamped", "linear", "linear_clamped", "exponential", "exponential_clamped"
]
PanLaw = Literal["equal_power", "godot", "openal", "hrtf"]


class ConfigError(Exception):
    """One or more configuration mistakes; `errors` holds ``(key path, message)`` pairs."""

    def __init__(self, source: str, errors: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.errors = list(errors)
        lines = [f"{source}: {path}: {msg}" if path else f"{source}: {msg}" for path, msg in self.errors]
        super().__init__("\n".join(lines))


class _Strict(BaseModel):
    # strict: "yes" is not a boolean and "80" is not a port; a config typo should fail, not coerce.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# --------------------------------------------------------------------------- server section


class SecretRef(_Strict):
    """Where to read an API secret from: an environment variable or a file (exactly one)."""

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError('give exactly one of env="VAR" or file="path"')
        return self


def _parse_secret(v: Any) -> str | SecretRef:
    if isinstance(v, str):
        if not v:
            raise ValueError("an inline secret must not be empty")
        return v
    if isinstance(v, dict):
        return SecretRef.model_validate(v)
    raise ValueError('a key secret is a string, {env="VAR"} or {file="path"}')


KeySecret = Annotated[str | SecretRef, PlainValidator(_parse_secret)]


class IceServer(_Strict):
    urls: list[str] = Field(min_length=1)
    username: str | None = None
    credential: str | None = None

    @field_validator("urls", mode="before")
    @classmethod
    def _one_url(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("urls")
    @classmethod
    def _scheme(cls, v: list[str]) -> list[str]:
        for url in v:
            if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
                raise ValueError(f"{url!r} must start with stun:, stuns:, turn: or turns:")
        return v


class Limits(_Strict):
    max_frame_bytes: int = Field(default=65536, gt=0)
    messages_per_second: float = Field(default=200.0, gt=0)
    burst: int = Field(default=400, gt=0)
    flood_tolerance: int = Field(default=200, gt=0)
    join_timeout_s: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=5000, gt=0)


class ServerSection(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=7880, ge=0, le=65535)
    public_url: str | None = None
    ice_servers: list[IceServer] = Field(default_factory=list)
    keys: dict[str, KeySecret] = Field(default_factory=dict)
    allow_anonymous: bool = False
    reconnect_grace_s: float = Field(default=20.0, ge=0)
    # Host addresses the SFU offers as ICE candidates; None = every interface aioice finds.
    ice_host_addresses: list[str] | None = None
    limits: Limits = Limits()


# --------------------------------------------------------------------------- world section


def _finite(v: Sequence[float]) -> Sequence[float]:
    if not all(math.isfinite(x) for x in v):
        raise ValueError("must be finite numbers")
    return v


class Bounds(_Strict):
    min: Vec3
    max: Vec3

    @field_validator("min", "max")
    @classmethod
    def _finite(cls, v: Vec3) -> Vec3:
        _finite(v)
        return v

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if not all(a < b for a, b in zip(self.min, self.max, strict=True)):
            raise ValueError("bounds.min must be smaller than bounds.max on every axis")
        return self

    def contains(self, p: Sequence[float], eps: float = 1e-9) -> bool:
        return all(lo - eps <= x <= hi + eps for x, lo, hi in zip(p, self.min, self.max, strict=True))


class SpawnPoint(_Strict):
    p: Vec3
    q: Quat = (0.0, 0.0, 0.0, 1.0)

    @model_validator(mode="before")
    @classmethod
    def _bare_vector(cls, v: Any) -> Any:
        # `spawn_points = [[0, 0, 0]]` is the common case; `{p=[..], q=[..]}` sets a facing too.
        return {"p": v} if isinstance(v, list | tuple) else v

    @field_validator("q")
    @classmethod
    def _unit(cls, v: Quat) -> Quat:
        n = math.sqrt(sum(x * x for x in v))
        if not math.isfinite(n) or n < 1e-6:
            raise ValueError("must be a non-zero quaternion (x, y, z, w)")
        return (v[0] / n, v[1] / n, v[2] / n, v[3] / n)


class AudioInterest(_Strict):
    forward_radius: float = Field(default=10.0, gt=0)
    hearing_radius: float = Field(default=40.0, gt=0)
    max_forwarded: int = Field(default=8, ge=0, le=64)
    max_mixed: int = Field(default=64, ge=0)
    speaking_threshold: float = Field(default=0.05, ge=0, le=1)


class VideoInterest(_Strict):
    radius: float = Field(default=15.0, gt=0)
    max: int = Field(default=4, ge=0, le=32)


class Tier(_Strict):
    distance: float = Field(gt=0)
    rate_hz: float = Field(gt=0)


class PositionInterest(_Strict):
    radius: float = Field(default=60.0, gt=0)
    max: int = Field(default=128, ge=0)
    tiers: list[Tier] = Field(
        default_factory=lambda: [
            Tier(distance=10.0, rate_hz=20.0),
            Tier(distance=30.0, rate_hz=10.0),
            Tier(distance=60.0, rate_hz=2.0),
        ],
        min_length=1,
    )


class InterestSection(_Strict):
    audio: AudioInterest = AudioInterest()
    video: VideoInterest = VideoInterest()
    position: PositionInterest = PositionInterest()
    hysteresis: float = Field(default=0.1, ge=0, le=1)


class AudioSection(_Strict):
    distance_model: DistanceModel = "inverse_clamped"
    reference_distance: float = Field(default=1.0, gt=0)
    rolloff: float = Field(default=1.0, ge=0)
    max_distance: float = Field(default=40.0, gt=0)
    pan_law: PanLaw = "equal_power"
    mixing: bool = True
    opus_bitrate: int = Field(default=32000, ge=6000, le=510000)
    opus_complexity: int = Field(default=5, ge=0, le=10)


class BoxShape(_Strict):
    type: Literal["box"]
    min: Vec3
    max: Vec3

    @model_validator(mode="after")
    def _ordered(self) -> BoxShape:
        _finite(self.min + self.max)
        if not all(a < b for a, b in zip(self.min, self.max, strict=True)):
            raise ValueError("min must be smaller than max on every axis")
        return self


class CylinderShape(_Strict):
    type: Literal["cylinder"]
    center: Vec2 = Field(description="(x, z) of the axis")
    radius: float = Field(gt=0)
    y_min: float = -1e9
    y_max: float = 1e9


class PolygonShape(_Strict):
    type: Literal["polygon"]
    points: list[Vec2] = Field(min_length=3, description="(x, z) vertices in order")
    y_min: float = -1e9
    y_max: float = 1e9


ShapeConfig = Annotated[BoxShape | CylinderShape | PolygonShape, Field(discriminator="type")]


def shape_extent(shape: BoxShape | CylinderShape | PolygonShape) -> tuple[Vec3, Vec3]:
    """Axis-aligned extent of a shape (unbounded y stays unbounded)."""
    if isinstance(shape, BoxShape):
        return shape.min, shape.max
    if isinstance(shape, CylinderShape):
        (cx, cz), r = shape.center, shape.radius
        return (cx - r, shape.y_min, cz - r), (cx + r, shape.y_max, cz + r)
    xs = [p[0] for p in shape.points]
    zs = [p[1] for p in shape.points]
    return (min(xs), shape.y_min, min(zs)), (max(xs), shape.y_max, max(zs))


def shape_params(shape: BoxShape | CylinderShape | PolygonShape) -> Shape:
    if isinstance(shape, BoxShape):
        return Box(min=tuple(shape.min), max=tuple(shape.max))  # type: ignore[arg-type]
    if isinstance(shape, CylinderShape):
        return Cylinder(center=tuple(shape.center), radius=shape.radius, y_min=shape.y_min, y_max=shape.y_max)  # type: ignore[arg-type]
    return PolygonPrism(
        points=tuple((float(x), float(z)) for x, z in shape.points), y_min=shape.y_min, y_max=shape.y_max
    )


class ZoneConfig(_Strict):
    name: str = Field(min_length=1)
    kind: Literal["stage", "private", "meeting"]
    shape: ShapeConfig
    audience: ShapeConfig | None = None
    delivery: Literal["forward", "mix"] = "forward"
    open: bool = False


class WorldConfig(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    bounds: Bounds = Field(
        default_factory=lambda: Bounds(min=(-500.0, -50.0, -500.0), max=(500.0, 200.0, 500.0))
    )
    spawn_points: list[SpawnPoint] = Field(
        default_factory=lambda: [SpawnPoint(p=(0.0, 0.0, 0.0))], min_length=1
    )
    max_participants: int = Field(default=1000, gt=0)
    tick_rate: float = Field(default=20.0, gt=0, le=120)
    max_speed: float = Field(default=10.0, gt=0)
    interest: InterestSection = InterestSection()
    audio: AudioSection = AudioSection()
    zones: list[ZoneConfig] = Field(default_factory=list)

    def interest_params(self) -> InterestParams:
        """The interest engine's view of this world."""
        i = self.interest
        return InterestParams(
            forward_radius=i.audio.forward_radius,
            hearing_radius=i.audio.hearing_radius,
            max_forwarded=i.audio.max_forwarded,
            max_mixed=i.audio.max_mixed if self.audio.mixing else 0,
            video_radius=i.video.radius,
            video_max=i.video.max,
            position_radius=i.position.radius,
            position_max=i.position.max,
            position_tiers=tuple(PositionTier(t.distance, t.rate_hz) for t in i.position.tiers),
            hysteresis=i.hysteresis,
            speaking_threshold=i.audio.speaking_threshold,
            zones=tuple(
                Zone(
                    name=z.name,
                    kind=z.kind,
                    shape=shape_params(z.shape),
                    audience=shape_params(z.audience) if z.audience is not None else None,
                    delivery=z.delivery,
                    open=z.open,
                )
                for z in self.zones
            ),
        )

    def public_info(self) -> dict[str, Any]:
        """What a client learns about the world in `welcome`."""
        i = self.interest
        return {
            "name": self.name,
            "bounds": {"min": list(self.bounds.min), "max": list(self.bounds.max)},
            "tick_rate": self.tick_rate,
            "max_speed": self.max_speed,
            "zones": [z.model_dump() for z in self.zones],
            "spawn_points": [{"p": list(s.p), "q": list(s.q)} for s in self.spawn_points],
            "audio": {
                "distance_model": self.audio.distance_model,
                "reference_distance": self.audio.reference_distance,
                "rolloff": self.audio.rolloff,
                "max_distance": self.audio.max_distance,
                "pan_law": self.audio.pan_law,
                "mixing": self.audio.mixing,
            },
            "interest": {
                "forward_radius": i.audio.forward_radius,
                "hearing_radius": i.audio.hearing_radius,
                "max_forwarded": i.audio.max_forwarded,
                "max_mixed": i.audio.max_mixed,
                "video_radius": i.video.radius,
                "video_max": i.video.max,
                "position_radius": i.position.radius,
                "position_max": i.position.max,
                "hysteresis": i.hysteresis,
            },
        }


class Config(_Strict):
    server: ServerSection = ServerSection()
    worlds: list[WorldConfig] = Field(min_length=1)

    _keys: dict[str, str] = PrivateAttr(default_factory=dict)
    _source: str = PrivateAttr(default="<config>")

    @property
    def keys(self) -> dict[str, str]:
        """API key name -> resolved secret (env/file references already read)."""
        return self._keys

    @property
    def source(self) -> str:
        return self._source

    def world(self, name: str) -> WorldConfig | None:
        for w in self.worlds:
            if w.name == name:
                return w
        return None


# --------------------------------------------------------------------------- loading

_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "missing required key",
}


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    skip_tag = False
    for part in loc:
        if skip_tag:
            skip_tag = False
            if part in ("box", "cylinder", "polygon"):
                continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
        skip_tag = part in ("shape", "audience")
    return out


def _pydantic_errors(exc: ValidationError) -> list[tuple[str, str]]:
    errors = []
    for e in exc.errors():
        msg = _MESSAGES.get(e["type"], e["msg"])
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if e["type"] not in ("missing", "extra_forbidden") and "input" in e:
            value = e["input"]
            if not isinstance(value, dict):
                msg += f" (got {value!r})"
        errors.append((_path(e["loc"]), msg))
    return errors


def _semantic_errors(cfg: Config) -> list[tuple[str, str]]:
    """Cross-field rules pydantic cannot express per field; each names its exact key path."""
    errors: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for wi, w in enumerate(cfg.worlds):
        base = f"worlds[{wi}]"
        if w.name in seen:
            errors.append((f"{base}.name", f"duplicate world name {w.name!r} (also worlds[{seen[w.name]}])"))
        seen.setdefault(w.name, wi)
        a = w.interest.audio
        if a.hearing_radius < a.forward_radius:
            errors.append(
                (
                    f"{base}.interest.audio.hearing_radius",
                    f"must be >= forward_radius ({a.hearing_radius} < {a.forward_radius})",
                )
            )
        tiers = w.interest.position.tiers
        for ti in range(1, len(tiers)):
            if tiers[ti].distance <= tiers[ti - 1].distance:
                errors.append(
                    (
                        f"{base}.interest.position.tiers[{ti}].distance",
                        f"tier distances must increase ({tiers[ti].distance} <= {tiers[ti - 1].distance})",
                    )
                )
        if tiers[-1].distance < w.interest.position.radius:
            errors.append(
                (
                    f"{base}.interest.position.tiers[{len(tiers) - 1}].distance",
                    f"the last tier must reach position.radius ({tiers[-1].distance} < "
                    f"{w.interest.position.radius})",
                )
            )
        if w.audio.max_distance < w.audio.reference_distance:
            errors.append((f"{base}.audio.max_distance", "must be >= reference_distance"))
        for si, s in enumerate(w.spawn_points):
            if not w.bounds.contains(s.p):
                errors.append((f"{base}.spawn_points[{si}]", f"spawn point {list(s.p)} is outside bounds"))
        names: set[str] = set()
        for zi, z in enumerate(w.zones):
            zbase = f"{base}.zones[{zi}]"
            if z.name in names:
                errors.append((f"{zbase}.name", f"duplicate zone name {z.name!r}"))
            names.add(z.name)
            for key, shape in (("shape", z.shape), ("audience", z.audience)):
                if shape is None:
                    continue
                lo, hi = shape_extent(shape)
                inside = all(
                    lo[ax] >= w.bounds.min[ax] - 1e-9 and hi[ax] <= w.bounds.max[ax] + 1e-9 for ax in (0, 2)
                )
                if not inside:
                    errors.append((f"{zbase}.{key}", "zone extends outside the world bounds (x/z)"))
            if z.kind == "stage" and z.audience is None:
                errors.append((f"{zbase}.audience", "a stage zone needs an audience shape"))
            if z.kind != "stage" and z.audience is not None:
                errors.append((f"{zbase}.audience", f"only stage zones have an audience (kind={z.kind!r})"))
    return errors


def _resolve_keys(cfg: Config, base_dir: Path) -> tuple[dict[str, str], list[tuple[str, str]]]:
    keys: dict[str, str] = {}
    errors: list[tuple[str, str]] = []
    for name, secret in cfg.server.keys.items():
        path = f"server.keys.{name}"
        if isinstance(secret, str):
            keys[name] = secret
        elif secret.env is not None:
            value = os.environ.get(secret.env)
            if not value:
                errors.append((path, f"environment variable {secret.env} is not set or empty"))
            else:
                keys[name] = value
        else:
            assert secret.file is not None
            fpath = Path(secret.file)
            if not fpath.is_absolute():
                fpath = base_dir / fpath
            try:
                value = fpath.read_text().strip()
            except OSError as exc:
                errors.append((path, f"cannot read secret file {str(fpath)!r}: {exc.strerror}"))
                continue
            if not value:
                errors.append((path, f"secret file {str(fpath)!r} is empty"))
            else:
                keys[name] = value
    if not keys and not cfg.server.allow_anonymous and not errors:
        errors.append(("server.keys", "no API keys: add one (or set allow_anonymous = true for development)"))
    return keys, errors


def parse_config(data: dict[str, Any], source: str = "<config>", base_dir: Path | None = None) -> Config:
    """Validate an already-parsed TOML document."""
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _pydantic_errors(exc)) from None
    errors = _semantic_errors(cfg)
    keys, key_errors = _resolve_keys(cfg, base_dir or Path.cwd())
    errors += key_errors
    if errors:
        raise ConfigError(source, errors)
    cfg._keys = keys
    cfg._source = source
    return cfg


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML config file; raises ConfigError."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(str(p), [("", f"cannot read file: {exc.strerror}")]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(p), [("", "not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), [("", f"invalid TOML: {exc}")]) from None
    return parse_config(data, str(p), p.parent)
