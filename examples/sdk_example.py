"""A tour of the Python SDK: join, talk, walk in a circle, print who is around and how loud they are.

    hubbub serve examples/plaza.toml &
    python examples/sdk_example.py --url ws://127.0.0.1:7880            # anonymous dev token
    python examples/sdk_example.py --url ws://HOST:7880 \
        --token "$(hubbub token --config C --world W --identity me)"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import urllib.parse
import urllib.request

import hubbub_client as hb


def dev_token(url: str, world: str, name: str) -> str:
    http = url.replace("ws://", "http://").replace("wss://", "https://").removesuffix("/rtc").rstrip("/")
    query = urllib.parse.urlencode({"world": world, "name": name})
    with urllib.request.urlopen(f"{http}/dev/token?{query}", timeout=10) as resp:
        return str(json.load(resp)["token"])


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="ws://127.0.0.1:7880")
    ap.add_argument("--token", help="access token (default: ask the server's /dev/token)")
    ap.add_argument("--world", default="plaza")
    ap.add_argument("--name", default="SDK example")
    ap.add_argument("--voice", default="speechlike", help="tone, noise, speechlike or a WAV file")
    ap.add_argument("--duration", type=float, default=20.0)
    args = ap.parse_args()

    token = args.token or dev_token(args.url, args.world, args.name)
    client = await hb.connect(args.url, token, publish=hb.audio.voice(args.voice))
    print(f"joined {client.world['name']!r} as #{client.participant_id} {client.name}")

    # Callbacks for the events we care about; everything else is still available from client.events().
    client.on(hb.ParticipantEntered, lambda e: print(f"  + {e.participant.name} (#{e.participant.id})"))
    client.on(hb.ParticipantLeft, lambda e: print(f"  - #{e.id}"))
    client.on(hb.DataReceived, lambda e: print(f"  data from #{e.sender} on {e.topic!r}: {e.payload!r}"))
    client.on(hb.PoseCorrected, lambda e: print(f"  server corrected our pose ({e.reason})"))
    client.on(hb.Disconnected, lambda e: print(f"  disconnected: {e.reason} (reconnect: {e.will_reconnect})"))

    await client.send_data("chat", f"hello from {client.name}".encode())
    print(f"ping {1000 * await client.ping():.1f} ms")

    # Walk a 4 m circle around the spawn point; set_pose is throttled to 30 Hz by the SDK.
    cx, cy, cz = client.pose.p
    loop = asyncio.get_running_loop()
    start = loop.time()
    next_report = start
    while (t := loop.time() - start) < args.duration:
        a = 0.4 * t  # 1.6 m/s
        client.set_pose((cx + 4 * math.cos(a), cy, cz + 4 * math.sin(a)), hb.wire.yaw_quaternion(-a))
        if loop.time() >= next_report:
            next_report += 2.0
            names = {p.id: p.name for p in client.participants.values()}
            voices = ", ".join(
                f"{names.get(p, p)}: {client.level_of(p):.0f} dBFS"
                for p in client.slots.audio
                if p is not None
            )
            mixed = client.mixed_level.dbfs
            print(f"[{t:4.1f}s] forwarded voices: {voices or 'none'}; mixed bed {mixed:.0f} dBFS")
        await asyncio.sleep(0.05)
    stats = await client.stats()
    print(f"packets in {stats['packets_in']} out {stats['packets_out']}, poses sent {stats['poses_out']}")
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
