"""Access tokens: JWT HS256 signed with an API key secret from the config.

The key is found by the header ``kid`` or, failing that, the claim ``iss`` (LiveKit style). Claims: ``world``,
``sub`` (identity), ``name``, ``grants``, ``exp``, ``nbf``. A token for world ``"*"`` is accepted only with
the ``admin`` grant and only for admin endpoints (joining needs a concrete world).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import jwt

from world.protocol import ErrorCode

ALGORITHM = "HS256"
LEEWAY_S = 5.0  # clock skew tolerated on exp/nbf


@dataclass(frozen=True)
class Grants:
    can_publish: bool = True
    can_subscribe: bool = True
    can_publish_data: bool = True
    admin: bool = False
    hidden: bool = False

    @classmethod
    def from_claim(cls, raw: Any) -> Grants:
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise TokenError(ErrorCode.INVALID_TOKEN, "claim 'grants' must be a map")
        values: dict[str, bool] = {}
        for key, value in raw.items():
            if key not in cls.__dataclass_fields__:
                continue  # grants added by newer servers are ignored, never assumed
            if not isinstance(value, bool):
                raise TokenError(ErrorCode.INVALID_TOKEN, f"grant {key!r} must be a boolean")
            values[key] = value
        return cls(**values)

    def to_dict(self) -> dict[str, bool]:
        return asdict(self)


@dataclass(frozen=True)
class TokenClaims:
    world: str
    identity: str
    name: str
    grants: Grants = field(default_factory=Grants)
    exp: float | None = None
    key: str = ""


class TokenError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_TTL_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_ttl(text: str) -> float:
    """'90', '30s', '10m', '6h', '2d' -> seconds."""
    m = _TTL_RE.match(text)
    if not m:
        raise ValueError(f"invalid duration {text!r} (use e.g. 30s, 10m, 6h, 2d)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def mint_token(
    key_name: str,
    secret: str,
    *,
    world: str,
    identity: str,
    name: str | None = None,
    grants: Grants | None = None,
    ttl_s: float = 6 * 3600,
    not_before: float | None = None,
    now: float | None = None,
) -> str:
    now = time.time() if now is None else now
    claims: dict[str, Any] = {
        "iss": key_name,
        "world": world,
        "sub": identity,
        "name": name if name is not None else identity,
        "grants": (grants or Grants()).to_dict(),
        "iat": int(now),
        "nbf": int(now if not_before is None else not_before),
        "exp": int(now + ttl_s),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": key_name})


def verify_token(token: str, keys: Mapping[str, str], *, world: str | None = None) -> TokenClaims:
    """Check signature, times and shape; if `world` is given the token must be for it (or "*" + admin)."""
    if not isinstance(token, str) or not token:
        raise TokenError(ErrorCode.INVALID_TOKEN, "empty token")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise TokenError(ErrorCode.INVALID_TOKEN, f"malformed token: {exc}") from None
    key_name = header.get("kid") or unverified.get("iss")
    if not isinstance(key_name, str) or key_name not in keys:
        raise TokenError(ErrorCode.INVALID_TOKEN, f"unknown API key {key_name!r}")
    try:
        claims = jwt.decode(
            token,
            keys[key_name],
            algorithms=[ALGORITHM],
            leeway=LEEWAY_S,
            options={"require": ["exp", "sub", "world"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError(ErrorCode.TOKEN_EXPIRED, "token expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenError(ErrorCode.TOKEN_NOT_YET_VALID, "token not valid yet (nbf in the future)") from None
    except jwt.InvalidSignatureError:
        raise TokenError(ErrorCode.INVALID_TOKEN, "bad token signature") from None
    except jwt.PyJWTError as exc:
        raise TokenError(ErrorCode.INVALID_TOKEN, f"invalid token: {exc}") from None
    identity, token_world = claims.get("sub"), claims.get("world")
    if not isinstance(identity, str) or not identity or len(identity) > 256:
        raise TokenError(ErrorCode.INVALID_TOKEN, "claim 'sub' must be a non-empty string (<= 256 chars)")
    if not isinstance(token_world, str) or not token_world:
        raise TokenError(ErrorCode.INVALID_TOKEN, "claim 'world' must be a non-empty string")
    name = claims.get("name", identity)
    if not isinstance(name, str) or len(name) > 256:
        raise TokenError(ErrorCode.INVALID_TOKEN, "claim 'name' must be a string (<= 256 chars)")
    grants = Grants.from_claim(claims.get("grants"))
    if token_world == "*" and not grants.admin:
        raise TokenError(ErrorCode.INVALID_TOKEN, "world '*' is only valid for admin tokens")
    if world is not None and token_world not in (world, "*"):
        raise TokenError(ErrorCode.UNKNOWN_WORLD, f"token is for world {token_world!r}, not {world!r}")
    exp = claims.get("exp")
    return TokenClaims(
        world=token_world,
        identity=identity,
        name=name or identity,
        grants=grants,
        exp=float(exp) if isinstance(exp, int | float) else None,
        key=key_name,
    )
