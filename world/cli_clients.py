"""`hubbub listen` and `hubbub bots`: the Python client SDK (hubbub_client) as command-line tools.

Registered with world/cli.py through the ``hubbub.commands`` entry-point group (``add`` below); also
runnable without registration as ``python -m world.cli_clients listen|bots ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import urllib.parse
import urllib.request
from typing import Any


def add(sub: Any) -> None:
    """Add the `listen` and `bots` subcommands to the `hubbub` parser's subparsers."""
    p = sub.add_parser("listen", help="join a world and hear it spatially (sound card or WAV file)")
    p.add_argument("--url", required=True, help="server, e.g. ws://127.0.0.1:7880")
    p.add_argument("--token", required=True, help="access token (hubbub token ... or /dev/token)")
    p.add_argument("--out", help="render to this WAV file (OpenAL Soft loopback) instead of the sound card")
    p.add_argument("--duration", type=float, help="seconds (default: until Ctrl-C; 10 with --out)")
    p.add_argument("--pos", default=None, help="where to stand: x,y,z (default: the spawn point)")
    p.add_argument("--hrtf", choices=["auto", "on", "off"], default="auto",
                   help="OpenAL Soft HRTF (auto: when the world's pan_law is hrtf)")
    p.set_defaults(func=cmd_listen)

    p = sub.add_parser("bots", help="run N bot participants that talk and move")
    p.add_argument("--url", required=True, help="server, e.g. ws://127.0.0.1:7880")
    p.add_argument("--config", help="config with an API key to mint bot tokens (else /dev/token is used)")
    p.add_argument("--world", required=True)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--speakers", type=float, default=0.5, help="fraction of bots that talk (0..1)")
    p.add_argument("--pattern", choices=["wander", "crowd", "stage", "orbit", "still"], default="wander")
    p.add_argument("--voice", default="speechlike", help="tone, noise, speechlike, clicks or FILE.wav")
    p.add_argument("--duration", type=float, help="seconds (default: until Ctrl-C)")
    p.add_argument("--radius", type=float, default=10.0, help="metres around the spawn point to move in")
    p.add_argument("--speed", type=float, default=1.4, help="walking speed, m/s")
    p.add_argument("--decode", action="store_true", help="decode received audio (costs CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_bots)


# --------------------------------------------------------------------------- tokens


def bot_tokens(args: argparse.Namespace) -> list[str]:
    """Mint one token per bot from the config's API key, or ask the server's /dev/token when the config
    has no key (development servers with allow_anonymous)."""
    identities = [f"bot-{args.seed}-{i}" for i in range(args.count)]
    if args.config:
        from world.config import ConfigError, load_config
        from world.tokens import mint_token

        try:
            cfg = load_config(args.config)
        except ConfigError as exc:
            raise SystemExit(f"error: invalid configuration\n{exc}") from None
        if cfg.keys:
            key_name, secret = next(iter(cfg.keys.items()))
            return [
                mint_token(key_name, secret, world=args.world, identity=ident, name=f"Bot {i}")
                for i, ident in enumerate(identities)
            ]
    http = args.url.replace("ws://", "http://").replace("wss://", "https://").removesuffix("/rtc").rstrip("/")
    tokens = []
    for i in range(args.count):
        q = urllib.parse.urlencode({"world": args.world, "name": f"Bot {i}"})
        with urllib.request.urlopen(f"{http}/dev/token?{q}", timeout=10) as resp:
            tokens.append(json.load(resp)["token"])
    return tokens


# --------------------------------------------------------------------------- bots


def _quiet_media_logs() -> None:
    # aioice/aiortc log every ICE check at INFO; with many peers that buries the progress lines.
    for name in ("aioice", "aiortc"):
        if logging.getLogger(name).getEffectiveLevel() < logging.WARNING:
            logging.getLogger(name).setLevel(logging.WARNING)


def cmd_bots(args: argparse.Namespace) -> int:
    _quiet_media_logs()
    if args.count < 1:
        print("error: --count must be at least 1", file=sys.stderr)
        return 2
    tokens = bot_tokens(args)
    try:
        return asyncio.run(_bots(args, tokens))
    except KeyboardInterrupt:
        return 0


async def _bots(args: argparse.Namespace, tokens: list[str]) -> int:
    from hubbub_client.bots import BotSwarm

    swarm = BotSwarm(
        args.url, tokens, speakers=args.speakers, pattern=args.pattern, voice=args.voice,
        speed=args.speed, radius=args.radius, decode_audio=args.decode, seed=args.seed,
    )
    t0 = time.monotonic()
    await swarm.start()
    print(f"joined {swarm.stats.joined}/{args.count} in {time.monotonic() - t0:.1f} s"
          + (f" (last error: {swarm.last_error})" if swarm.last_error else ""), file=sys.stderr, flush=True)
    try:
        stats = await swarm.run(args.duration, lambda line: print(line, file=sys.stderr, flush=True))
    except asyncio.CancelledError:
        stats = swarm.stats
    finally:
        await swarm.close()
    joins = sorted(stats.join_seconds)
    summary = {
        "joined": stats.joined if stats.joined else len(swarm.clients),
        "requested": args.count,
        "failed": stats.failed,
        "speaking": stats.speaking,
        "packets_in": stats.packets_in,
        "packets_out": stats.packets_out,
        "poses_out": stats.poses_out,
        "errors": stats.errors,
        "reconnects": stats.reconnects,
        "join_p50_s": round(joins[len(joins) // 2], 3) if joins else None,
    }
    print("summary: " + "  ".join(f"{k} {v}" for k, v in summary.items()), flush=True)
    return 0 if stats.failed == 0 else 1


# --------------------------------------------------------------------------- listen


def cmd_listen(args: argparse.Namespace) -> int:
    _quiet_media_logs()
    try:
        return asyncio.run(_listen(args))
    except KeyboardInterrupt:
        return 0


async def _listen(args: argparse.Namespace) -> int:
    from hubbub_client import JoinError, connect
    from hubbub_client.listening import SpatialListener, play, render_to_wav
    from hubbub_client.openal_renderer import OpenALError, OpenALRenderer

    try:
        client = await connect(args.url, args.token, publish=False)
    except JoinError as exc:
        print(f"error: join refused: {exc} (code {exc.code})", file=sys.stderr)
        return 1
    try:
        if args.pos:
            x, y, z = (float(v) for v in args.pos.split(","))
            # Walk there: the server corrects jumps faster than the world's max_speed.
            speed = 0.8 * float(client.world.get("max_speed", 5.0))
            await client.walk_to((x, y, z), speed)
        hrtf = None if args.hrtf == "auto" else args.hrtf == "on"
        try:
            renderer = OpenALRenderer(client.world.get("audio"), loopback=bool(args.out), hrtf=hrtf)
        except OpenALError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        listener = SpatialListener(client, renderer)
        print(f"listening to {client.world.get('name')} as participant {client.participant_id} "
              f"({renderer.version}, HRTF {'on' if renderer.hrtf else 'off'})", file=sys.stderr, flush=True)
        try:
            if args.out:
                info = await render_to_wav(listener, args.out, args.duration or 10.0)
                print(f"wrote {args.out}: {info['seconds']:.1f} s, peak {info['peak']:.3f}", flush=True)
            else:
                await play(listener, args.duration)
        finally:
            renderer.close()
    finally:
        await client.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hubbub")
    add(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
