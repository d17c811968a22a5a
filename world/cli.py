"""`hubbub` command line: serve, check, token (+ subcommands contributed by other packages).

Other packages add subcommands through the entry-point group ``hubbub.commands``: each entry point is a
function ``add(subparsers)`` that adds a parser and sets ``func`` (a callable taking the parsed
arguments and returning an exit code) with ``parser.set_defaults(func=...)``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

from world import __version__
from world.config import Config, ConfigError, load_config
from world.tokens import Grants, mint_token, parse_ttl

EXIT_CONFIG = 2
ENTRY_POINT_GROUP = "hubbub.commands"
# Modules in this repository that contribute subcommands (function `add(subparsers)`), loaded even
# without an installed entry point.
BUILTIN_PLUGINS = ("world.cli_clients",)

# Subcommands registered in-process (e.g. by tests or embedding code), same shape as entry points.
_EXTRA: list[Callable[[Any], None]] = []


def register_command(add: Callable[[Any], None]) -> Callable[[Any], None]:
    _EXTRA.append(add)
    return add


def _load_config_or_exit(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"error: invalid configuration\n{exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


# --------------------------------------------------------------------------- serve


def cmd_serve(args: argparse.Namespace) -> int:
    cfg = _load_config_or_exit(args.config)
    return asyncio.run(_serve(cfg, args))


async def _serve(cfg: Config, args: argparse.Namespace) -> int:
    from world.server import Hubbub  # imported here so `hubbub check/token` stay light
    from world.sfu_backend import SfuMedia

    server = Hubbub(cfg, config_path=args.config, media_factory=lambda wcfg: SfuMedia(wcfg, cfg.server))
    try:
        port = await server.start(args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen: {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGHUP, server.reload)
    print(f"Hubbub {__version__} serving {', '.join(server.worlds)} on port {port}", flush=True)
    print(f"  HTTP:      {server.http_url}/", flush=True)
    print(f"  WebSocket: {server.ws_url}", flush=True)
    if cfg.server.allow_anonymous:
        key_name, secret = server.signing_key()
        world = cfg.worlds[0].name
        token = mint_token(key_name, secret, world=world, identity="dev-user", name="Dev User")
        print(f"  dev token ({world}, identity dev-user): {token}", flush=True)
        print(f"  anonymous tokens: {server.http_url}/dev/token?world={world}&name=YOU", flush=True)
    await stop.wait()
    print("shutting down", flush=True)
    await server.stop()
    return 0


# --------------------------------------------------------------------------- check


def cmd_check(args: argparse.Namespace) -> int:
    cfg = _load_config_or_exit(args.config)
    s = cfg.server
    print(f"{args.config}: OK")
    keys = ", ".join(s.keys) or "(none)"
    print(f"  server {s.host}:{s.port}, keys: {keys}, anonymous: {s.allow_anonymous}")
    for w in cfg.worlds:
        a = w.interest.audio
        print(
            f"  world {w.name!r}: bounds {list(w.bounds.min)}..{list(w.bounds.max)}, "
            f"{len(w.spawn_points)} spawn point(s), tick {w.tick_rate:g} Hz, "
            f"forward {a.forward_radius:g} m (max {a.max_forwarded}), hearing {a.hearing_radius:g} m, "
            f"{len(w.zones)} zone(s)"
            + (": " + ", ".join(f"{z.name} ({z.kind})" for z in w.zones) if w.zones else "")
        )
    return 0


# --------------------------------------------------------------------------- token


def cmd_token(args: argparse.Namespace) -> int:
    cfg = _load_config_or_exit(args.config)
    keys = cfg.keys
    if not keys:
        print("error: the config has no API keys (server.keys) to sign with", file=sys.stderr)
        return EXIT_CONFIG
    key_name = args.key or next(iter(keys))
    if key_name not in keys:
        print(f"error: no key {key_name!r} in server.keys", file=sys.stderr)
        return EXIT_CONFIG
    if cfg.world(args.world) is None and not (args.world == "*" and args.admin):
        print(f"error: no world {args.world!r} in the config", file=sys.stderr)
        return EXIT_CONFIG
    try:
        ttl = parse_ttl(args.ttl)
    except ValueError as exc:
        print(f"error: --ttl: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    grants = Grants(
        can_publish=not args.no_publish,
        can_subscribe=not args.no_subscribe,
        can_publish_data=not args.no_data,
        admin=args.admin,
        hidden=args.hidden,
    )
    secret = keys[key_name]
    token = mint_token(
        key_name, secret, world=args.world, identity=args.identity, name=args.name, grants=grants, ttl_s=ttl
    )
    print(token)
    return 0


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hubbub", description="Hubbub spatial-audio world server")
    parser.add_argument("--version", action="version", version=f"hubbub {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the server")
    p.add_argument("config", help="TOML config file")
    p.add_argument("--host", help="override server.host")
    p.add_argument("--port", type=int, help="override server.port (0 = any free port)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("check", help="validate a config file without serving (exit 0 or 2)")
    p.add_argument("config")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("token", help="print an access token signed with a key from the config")
    p.add_argument("--config", required=True)
    p.add_argument("--world", required=True, help="world name ('*' with --admin: every world)")
    p.add_argument("--identity", required=True)
    p.add_argument("--name", help="display name (default: the identity)")
    p.add_argument("--key", help="API key name from server.keys (default: the first)")
    p.add_argument("--ttl", default="6h", help="lifetime: 90, 30s, 10m, 6h, 2d (default 6h)")
    p.add_argument("--admin", action="store_true", help="grant admin (admin REST API)")
    p.add_argument("--hidden", action="store_true", help="invisible to others (observers, recorders)")
    p.add_argument("--no-publish", action="store_true", help="may not publish audio/video")
    p.add_argument("--no-subscribe", action="store_true", help="may not receive audio/video or data")
    p.add_argument("--no-data", action="store_true", help="may not send data messages")
    p.set_defaults(func=cmd_token)

    adders: dict[str, Callable[[Any], None]] = {}
    for module in BUILTIN_PLUGINS:
        try:
            adders[module] = importlib.import_module(module).add
        except ImportError:
            pass  # optional part of the repository not present
        except Exception as exc:  # a broken plugin must not take the server CLI down
            print(f"warning: subcommand module {module!r} failed to load: {exc}", file=sys.stderr)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.value.split(":")[0] in adders:
            continue
        try:
            adders[ep.value] = ep.load()
        except Exception as exc:
            print(f"warning: subcommand plugin {ep.name!r} failed to load: {exc}", file=sys.stderr)
    for add in (*adders.values(), *_EXTRA):
        try:
            add(sub)
        except Exception as exc:
            print(f"warning: a subcommand plugin failed to register: {exc}", file=sys.stderr)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
