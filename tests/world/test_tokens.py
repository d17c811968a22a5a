"""Access tokens: signature, key lookup, times, world, grants."""

from __future__ import annotations

import time

import jwt
import pytest

from world.protocol import ErrorCode
from world.tokens import Grants, TokenError, mint_token, parse_ttl, verify_token

KEYS = {"main": "main-secret-0123456789abcdef012345", "other": "other-secret-0123456789abcdef0123"}


def err(token: str, world: str | None = "plaza", keys: dict[str, str] = KEYS) -> TokenError:
    with pytest.raises(TokenError) as info:
        verify_token(token, keys, world=world)
    return info.value


def test_round_trip_with_grants() -> None:
    tok = mint_token(
        "main",
        KEYS["main"],
        world="plaza",
        identity="ann",
        name="Ann",
        grants=Grants(can_publish=False, admin=True, hidden=True),
    )
    c = verify_token(tok, KEYS, world="plaza")
    assert (c.world, c.identity, c.name, c.key) == ("plaza", "ann", "Ann", "main")
    assert c.grants == Grants(
        can_publish=False, can_subscribe=True, can_publish_data=True, admin=True, hidden=True
    )
    assert c.exp is not None and c.exp > time.time()


def test_expired() -> None:
    tok = mint_token("main", KEYS["main"], world="plaza", identity="a", ttl_s=10, now=time.time() - 100)
    e = err(tok)
    assert e.code == ErrorCode.TOKEN_EXPIRED


def test_not_yet_valid() -> None:
    tok = mint_token("main", KEYS["main"], world="plaza", identity="a", not_before=time.time() + 600)
    assert err(tok).code == ErrorCode.TOKEN_NOT_YET_VALID


def test_wrong_secret_and_unknown_key() -> None:
    tok = mint_token("main", "not-the-secret-0123456789abcdef0123", world="plaza", identity="a")
    e = err(tok)
    assert e.code == ErrorCode.INVALID_TOKEN and "signature" in e.message
    tok = mint_token("ghost", KEYS["main"], world="plaza", identity="a")
    assert "unknown API key 'ghost'" in err(tok).message


def test_iss_names_the_key_without_kid() -> None:
    now = int(time.time())
    tok = jwt.encode(
        {"iss": "other", "sub": "a", "world": "plaza", "exp": now + 60}, KEYS["other"], algorithm="HS256"
    )
    assert verify_token(tok, KEYS, world="plaza").key == "other"


def test_wrong_world() -> None:
    tok = mint_token("main", KEYS["main"], world="mars", identity="a")
    e = err(tok, world="plaza")
    assert e.code == ErrorCode.UNKNOWN_WORLD and "'mars'" in e.message


def test_star_world_only_for_admins() -> None:
    tok = mint_token("main", KEYS["main"], world="*", identity="a")
    assert err(tok, world=None).code == ErrorCode.INVALID_TOKEN
    tok = mint_token("main", KEYS["main"], world="*", identity="a", grants=Grants(admin=True))
    assert verify_token(tok, KEYS, world="plaza").grants.admin


def test_malformed_and_bad_claims() -> None:
    assert err("abc").code == ErrorCode.INVALID_TOKEN
    assert err("").code == ErrorCode.INVALID_TOKEN
    now = int(time.time())
    no_exp = jwt.encode(
        {"sub": "a", "world": "plaza"}, KEYS["main"], algorithm="HS256", headers={"kid": "main"}
    )
    assert "exp" in err(no_exp).message
    bad_grants = jwt.encode(
        {"sub": "a", "world": "plaza", "exp": now + 60, "grants": {"admin": "yes"}},
        KEYS["main"],
        algorithm="HS256",
        headers={"kid": "main"},
    )
    assert "grant 'admin' must be a boolean" in err(bad_grants).message
    none_alg = jwt.encode(
        {"sub": "a", "world": "plaza", "exp": now + 60}, None, algorithm="none", headers={"kid": "main"}
    )
    assert err(none_alg).code == ErrorCode.INVALID_TOKEN


def test_missing_grant_defaults_and_unknown_grants_ignored() -> None:
    now = int(time.time())
    tok = jwt.encode(
        {"sub": "a", "world": "plaza", "exp": now + 60, "grants": {"can_publish": False, "fly": True}},
        KEYS["main"],
        algorithm="HS256",
        headers={"kid": "main"},
    )
    g = verify_token(tok, KEYS).grants
    assert g == Grants(can_publish=False)


def test_parse_ttl() -> None:
    assert parse_ttl("90") == 90 and parse_ttl("30s") == 30 and parse_ttl("10m") == 600
    assert parse_ttl("6h") == 21600 and parse_ttl("2d") == 172800
    with pytest.raises(ValueError):
        parse_ttl("soon")
