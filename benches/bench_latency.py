"""Mouth-to-ear latency through a real server over loopback.

A speaker bot publishes a 20 ms 1 kHz click every 0.5 s; `listeners` listener bots 3 m away (inside the
forward radius, so the click is forwarded, not mixed) decode what they receive and timestamp the first
loud block. Mouth = when the speaker's track handed the click frame to aiortc's encoder; ear = when the
listener's SDK delivered the decoded frame (so it includes Opus encode/decode, SRTP, the SFU's forward
path and aiortc's receive jitter buffer, but no playout buffer). All clients share one process and one
clock. p50/p95 in milliseconds are in extra_info; the benchmark time itself is the whole session.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import hubbub_client as hb
import numpy as np
import pytest
from hubbub_client.testing import LocalServer

PLAZA = Path(__file__).resolve().parents[1] / "examples" / "plaza.toml"
CLICK_PERIOD = 0.5
SESSION_S = 6.0


async def measure(server: LocalServer, listeners: int, jitter_frames: int | None = None) -> list[float]:
    emitted: list[float] = []
    was_loud = False

    def on_frame(_pts: float, samples: np.ndarray) -> None:
        nonlocal was_loud
        loud = bool(np.max(np.abs(samples)) > 8000)  # int16
        if loud and not was_loud:
            emitted.append(time.monotonic())
        was_loud = loud

    track = hb.PcmTrack(hb.audio.clicks(CLICK_PERIOD), on_frame=on_frame)
    speaker = await hb.connect(server.url, server.token("Clicker"), publish=track, decode_audio=False)
    ears = [
        await hb.connect(server.url, server.token(f"Ear{i}"), publish=False, jitter_frames=jitter_frames)
        for i in range(listeners)
    ]
    arrivals: list[list[float]] = [[] for _ in ears]
    for i, ear in enumerate(ears):
        state = {"loud": False}

        def on_audio(src: hb.AudioSource, samples: np.ndarray, i: int = i, state: dict = state) -> None:
            if src.pid != speaker.participant_id:
                return
            loud = bool(np.max(np.abs(samples)) > 0.2)
            if loud and not state["loud"]:
                arrivals[i].append(time.monotonic())
            state["loud"] = loud

        ear.on_audio(on_audio)
    try:
        await speaker.walk_to((20.0, 0.0, 0.0), 6.0)
        await asyncio.gather(*(
            ear.walk_to((20.0 + 3.0 * np.cos(k), 0.0, 3.0 * np.sin(k)), 6.0)
            for k, ear in enumerate(ears)
        ))
        for a in arrivals:
            a.clear()
        start = time.monotonic()
        await asyncio.sleep(SESSION_S)
    finally:
        await asyncio.gather(speaker.close(), *(e.close() for e in ears))
    latencies = []
    sent = np.array([t for t in emitted if t >= start - 1.0])
    for times in arrivals:
        for t in times:
            before = sent[sent <= t]
            if len(before) and t - before[-1] < CLICK_PERIOD:
                latencies.append(t - before[-1])
    return latencies


def run_bench(benchmark, listeners: int, jitter_frames: int | None) -> None:  # type: ignore[no-untyped-def]
    with LocalServer(PLAZA) as server:
        result: dict[str, list[float]] = {}

        def run() -> None:
            result["lat"] = asyncio.run(measure(server, listeners, jitter_frames))

        benchmark.pedantic(run, rounds=1, iterations=1)
    lat = np.array(result["lat"]) * 1000
    expected = listeners * (SESSION_S / CLICK_PERIOD) * 0.7
    assert len(lat) >= expected, f"only {len(lat)} clicks arrived (expected ≥ {expected:.0f})"
    benchmark.extra_info.update(
        clicks=len(lat),
        jitter_frames=jitter_frames or "aiortc default (4)",
        p50_ms=round(float(np.percentile(lat, 50)), 1),
        p95_ms=round(float(np.percentile(lat, 95)), 1),
        max_ms=round(float(lat.max()), 1),
    )
    assert np.percentile(lat, 50) < 400  # sanity: a click takes well under half a second


@pytest.mark.parametrize("listeners", [1, 4])
def bench_mouth_to_ear_latency(benchmark, listeners: int) -> None:  # type: ignore[no-untyped-def]
    run_bench(benchmark, listeners, None)


@pytest.mark.parametrize("listeners", [1])
def bench_mouth_to_ear_latency_short_jitter_buffer(benchmark, listeners: int) -> None:  # type: ignore[no-untyped-def]
    """The same with the listeners' receive jitter buffer holding back 1 frame instead of aiortc's 4."""
    run_bench(benchmark, listeners, 1)
