"""Plain HTTP on the signaling port, served from websockets' `process_request` hook.

websockets' HTTP parser rejects requests that carry a body (any Content-Length other than 0), so every
endpoint, including the admin POSTs, takes its parameters from the query string. That is documented in
docs/protocol.md and keeps one port, one server, no second HTTP stack.
"""

from __future__ import annotations

import http
import logging
import mimetypes
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from world.tokens import Grants, TokenError, mint_token, verify_token

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

    from world.server import Hubbub

log = logging.getLogger("hubbub.http")

STATIC_DIR = Path(__file__).with_name("static")
RTC_PATH = "/rtc"

PLACEHOLDER = b"""<!doctype html><meta charset="utf-8"><title>Hubbub</title>
<h1>Hubbub</h1><p>This server speaks the Hubbub protocol at <code>/rtc</code>.
The browser client is not installed in <code>world/static/</code>.</p>
<p><a href="/healthz">/healthz</a> &middot; <a href="/metrics">/metrics</a></p>
"""


def _response(status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
            ("Cache-Control", "no-store"),
        ]
    )
    for k, v in (extra or {}).items():
        headers[k] = v
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def json_response(data: Any, status: int = 200) -> Response:
    return _response(status, orjson.dumps(data), "application/json", {"Access-Control-Allow-Origin": "*"})


def json_error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


async def process_request(server: Hubbub, connection: ServerConnection, request: Request) -> Response | None:
    """Route a request: None lets websockets continue the WebSocket handshake (only on /rtc)."""
    url = urlsplit(request.path)
    path = url.path
    query = {k: v[-1] for k, v in parse_qs(url.query).items()}
    try:
        if path == RTC_PATH:
            if request.method != "GET":
                return json_error(405, "use GET with an Upgrade: websocket header")
            return None
        if request.method not in ("GET", "POST", "HEAD"):
            return json_error(405, f"method {request.method} not allowed")
        if path.startswith("/admin/"):
            return await _admin(server, request, path, query)
        if request.method != "GET" and request.method != "HEAD":
            return json_error(405, "only GET here")
        if path == "/healthz":
            return json_response(server.health())
        if path == "/metrics":
            return _response(200, server.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
        if path == "/dev/token":
            return _dev_token(server, query)
        return _static(path)
    except Exception:
        log.exception("HTTP %s %s failed", request.method, request.path)
        return json_error(500, "internal error")


def _dev_token(server: Hubbub, query: dict[str, str]) -> Response:
    cfg = server.config
    if not cfg.server.allow_anonymous:
        return json_error(404, "anonymous dev tokens are disabled (server.allow_anonymous = false)")
    world = query.get("world") or cfg.worlds[0].name
    if world not in server.worlds:
        return json_error(404, f"no world {world!r}")
    identity = f"guest-{secrets.token_hex(4)}"
    name = (query.get("name") or identity)[:64]
    key_name, secret = server.signing_key()
    token = mint_token(key_name, secret, world=world, identity=identity, name=name, grants=Grants())
    return json_response(
        {"token": token, "world": world, "identity": identity, "name": name, "url": server.ws_url}
    )


def _static(path: str) -> Response:
    if path in ("", "/"):
        path = "/index.html"
    if STATIC_DIR.is_dir():
        root = STATIC_DIR.resolve()
        target = (root / path.lstrip("/")).resolve()
        if target.is_relative_to(root) and target.is_file():
            ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
                ctype += "; charset=utf-8"
            return _response(200, target.read_bytes(), ctype)
    if path == "/index.html":
        return _response(200, PLACEHOLDER, "text/html; charset=utf-8")
    return json_error(404, "not found")


def _admin_claims(server: Hubbub, request: Request, world: str | None) -> Response | None:
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return json_error(401, "missing Authorization: Bearer <admin token>")
    try:
        claims = verify_token(auth[len("Bearer ") :].strip(), server.keys, world=world)
    except TokenError as exc:
        return json_error(401 if world is None or exc.code.name != "UNKNOWN_WORLD" else 403, exc.message)
    if not claims.grants.admin:
        return json_error(403, "token lacks the admin grant")
    return None


async def _admin(server: Hubbub, request: Request, path: str, query: dict[str, str]) -> Response:
    parts = [p for p in path.split("/") if p][1:]  # drop "admin"
    if not parts or parts[0] != "worlds":
        return json_error(404, "not found")
    if len(parts) == 1:
        denied = _admin_claims(server, request, None)
        if denied is not None:
            return denied
        if request.method != "GET":
            return json_error(405, "use GET")
        return json_response({"worlds": [w.summary() for w in server.worlds.values()]})
    world = server.worlds.get(parts[1])
    denied = _admin_claims(server, request, parts[1])
    if denied is not None:
        return denied
    if world is None:
        return json_error(404, f"no world {parts[1]!r}")
    if len(parts) == 3 and parts[2] == "participants":
        if request.method != "GET":
            return json_error(405, "use GET")
        return json_response({"participants": [world.describe(p) for p in world.participants.values()]})
    if len(parts) != 5 or parts[2] != "participants":
        return json_error(404, "not found")
    if request.method != "POST":
        return json_error(405, "use POST (parameters in the query string)")
    try:
        pid = int(parts[3])
    except ValueError:
        return json_error(400, "participant id must be an integer")
    p = world.participants.get(pid)
    if p is None:
        return json_error(404, f"no participant {pid} in {world.name!r}")
    action = parts[4]
    if action == "mute":
        on = query.get("audio", "true").lower() not in ("false", "0", "no")
        world.set_muted(p, admin_muted=on)
        return json_response({"ok": True, "id": pid, "admin_muted": on})
    if action == "move":
        try:
            pos = [float(x) for x in query["p"].split(",")]
            q = [float(x) for x in query["q"].split(",")] if "q" in query else None
        except (KeyError, ValueError):
            return json_error(400, "move needs p=x,y,z (and optionally q=x,y,z,w) in the query string")
        if len(pos) != 3 or (q is not None and len(q) != 4) or not all(map(_finite, pos + (q or []))):
            return json_error(400, "p needs 3 finite numbers, q 4")
        if q is not None and sum(x * x for x in q) < 1e-12:
            return json_error(400, "q must be a non-zero quaternion")
        world.admin_move(p, pos, q)
        new_p, new_q = world.table.pose(pid)
        return json_response({"ok": True, "id": pid, "p": new_p, "q": new_q})
    if action == "kick":
        from world.protocol import CloseCode

        await world.remove(pid, close=(CloseCode.KICKED, query.get("reason", "kicked by an admin")[:120]))
        return json_response({"ok": True, "id": pid})
    return json_error(404, f"unknown action {action!r}")


def _finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")
