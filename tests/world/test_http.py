"""HTTP on the signaling port: health, metrics, dev tokens, the client page, the admin API."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import urllib.error
import urllib.request
from typing import Any

from tests.world.conftest import KEY, SECRET, Harness, config_dict, make_config, start_harness
from world.protocol import CloseCode
from world.tokens import Grants, mint_token, verify_token


async def fetch(
    url: str, method: str = "GET", token: str | None = None, body: bytes | None = None
) -> tuple[int, bytes, dict[str, str]]:
    def go() -> tuple[int, bytes, dict[str, str]]:
        req = urllib.request.Request(url, method=method, data=body)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    return await asyncio.to_thread(go)


async def fetch_json(url: str, method: str = "GET", token: str | None = None) -> tuple[int, Any]:
    status, body, _ = await fetch(url, method, token, b"" if method == "POST" else None)
    return status, json.loads(body)


def admin_token(world: str = "plaza", admin: bool = True) -> str:
    return mint_token(KEY, SECRET, world=world, identity="op", grants=Grants(admin=admin))


async def test_healthz_and_metrics(harness: Harness) -> None:
    await harness.joined("ann")
    status, health = await fetch_json(f"{harness.http}/healthz")
    assert status == 200
    assert health["status"] == "ok" and health["worlds"] == {"plaza": 1} and health["participants"] == 1
    assert health["version"]
    status, body, headers = await fetch(f"{harness.http}/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'hubbub_participants{world="plaza"} 1.0' in text
    assert 'hubbub_messages_in_total{type="join"} 1.0' in text
    assert "hubbub_tick_seconds_bucket" in text
    # the interest engine's work: ann's first tick is a full recompute of her row
    want = 'hubbub_interest_total{kind="full",world="plaza"}'
    for _ in range(100):
        if want in text:
            break
        await asyncio.sleep(0.02)
        text = (await fetch(f"{harness.http}/metrics"))[1].decode()
    assert want in text


async def test_placeholder_page_and_404(harness: Harness) -> None:
    status, body, headers = await fetch(f"{harness.http}/")
    assert status == 200 and b"Hubbub" in body and headers["Content-Type"].startswith("text/html")
    status, _, _ = await fetch(f"{harness.http}/nope/../../etc/passwd")
    assert status == 404


async def test_dev_token_only_when_anonymous_allowed(harness: Harness) -> None:
    status, body = await fetch_json(f"{harness.http}/dev/token?world=plaza&name=Zed")
    assert status == 404 and "allow_anonymous" in body["error"]
    h = await start_harness(make_config(config_dict(allow_anonymous=True, keys={})))
    try:
        status, body = await fetch_json(f"{h.http}/dev/token?world=plaza&name=Zed")
        assert status == 200 and body["url"] == h.url
        claims = verify_token(body["token"], h.server.keys, world="plaza")
        assert claims.name == "Zed" and claims.identity.startswith("guest-") and not claims.grants.admin
        c = await h.client()
        welcome = await c.join(body["token"])
        assert welcome["name"] == "Zed"
        await c.close()
        status, _ = await fetch_json(f"{h.http}/dev/token?world=mars")
        assert status == 404
    finally:
        await h.server.stop()


async def test_admin_requires_admin_token(harness: Harness) -> None:
    url = f"{harness.http}/admin/worlds"
    assert (await fetch_json(url))[0] == 401
    assert (await fetch_json(url, token="garbage"))[0] == 401
    assert (await fetch_json(url, token=admin_token(admin=False)))[0] == 403
    assert (await fetch_json(f"{harness.http}/admin/worlds/plaza/participants", token=admin_token("other")))[
        0
    ] == 403
    status, body = await fetch_json(url, token=admin_token())
    assert status == 200 and body["worlds"][0]["name"] == "plaza"
    status, body = await fetch_json(url, token=admin_token("*"))
    assert status == 200


async def test_admin_list_mute_move_kick(harness: Harness) -> None:
    c, welcome = await harness.joined("ann")
    pid = welcome["participant_id"]
    base = f"{harness.http}/admin/worlds/plaza/participants"
    tok = admin_token()
    status, body = await fetch_json(base, token=tok)
    assert status == 200 and body["participants"][0]["identity"] == "ann"

    status, body = await fetch_json(f"{base}/{pid}/mute", "POST", tok)
    assert status == 200 and body["admin_muted"] is True
    world = harness.server.worlds["plaza"]
    assert world.participants[pid].admin_muted
    # The participant cannot unmute itself past an admin mute.
    await c.send({"t": "mute", "audio": False})
    await c.send({"t": "ping", "id": 1})
    await c.expect("pong")
    assert not world.table.flags[world.table.row_of[pid]] & 1

    status, body = await fetch_json(f"{base}/{pid}/move?p=3,0,4&q=0,1,0,0", "POST", tok)
    assert status == 200 and body["p"] == [3.0, 0.0, 4.0]
    fix = await c.expect("corrected")
    assert fix["reason"] == "admin" and fix["p"] == [3.0, 0.0, 4.0] and fix["q"] == [0.0, 1.0, 0.0, 0.0]
    assert (await fetch_json(f"{base}/{pid}/move?p=nan,0,0", "POST", tok))[0] == 400
    assert (await fetch_json(f"{base}/{pid}/move", "POST", tok))[0] == 400
    assert (await fetch_json(f"{base}/{pid}/move?p=1,2,3", "GET", tok))[0] == 405
    assert (await fetch_json(f"{base}/999/kick", "POST", tok))[0] == 404

    status, body = await fetch_json(f"{base}/{pid}/kick?reason=spam", "POST", tok)
    assert status == 200
    bye = await c.expect("bye")
    assert bye == {"t": "bye", "code": CloseCode.KICKED, "reason": "spam"}
    assert await c.closed() == CloseCode.KICKED
    assert pid not in world.participants


async def test_post_with_body_is_refused_without_crashing(harness: Harness) -> None:
    url = f"{harness.http}/admin/worlds/plaza/participants/0/kick"
    status = None
    # websockets drops requests with a body: the connection closes without a response.
    with contextlib.suppress(OSError, http.client.HTTPException):
        status, _, _ = await fetch(url, "POST", admin_token(), b'{"x":1}')
    assert status is None or status >= 400
    assert (await fetch_json(f"{harness.http}/healthz"))[0] == 200
