"""The SDK and bots against a real `hubbub serve examples/plaza.toml` subprocess.

plaza: forward_radius 8 m, hearing_radius 30 m, inverse_clamped with reference 1.5 m, max_speed 8 m/s.
A listener renders what it receives through OpenAL Soft (loopback device) and walks away from a speaker.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import time
import urllib.request
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import hubbub_client as hb
import numpy as np
import pytest
from hubbub_client.listening import SpatialListener
from hubbub_client.openal_renderer import OpenALRenderer
from hubbub_client.testing import LocalServer

ROOT = Path(__file__).resolve().parents[2]
PLAZA = ROOT / "examples" / "plaza.toml"
SPEAKER_AT = (20.0, 0.0, 0.0)  # away from the spawn points, so nobody else is near


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    srv = await asyncio.to_thread(LocalServer(PLAZA).start)
    try:
        yield srv
    finally:
        await asyncio.to_thread(srv.stop)


class RenderedLevel:
    """Renders the listener's OpenAL loopback scene in real time and keeps the level of each 20 ms block."""

    def __init__(self, listener: SpatialListener) -> None:
        self.listener = listener
        self.blocks: deque[tuple[float, float]] = deque(maxlen=500)  # (time, mean square)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        rate = self.listener.renderer.rate
        start, done = time.monotonic(), 0
        while True:
            await asyncio.sleep(0.02)
            self.listener.update_listener()
            due = int((time.monotonic() - start) * rate) - done
            if due > 0:
                block = self.listener.renderer.render(due)
                self.blocks.append((time.monotonic(), float(np.mean(np.square(block, dtype=np.float64)))))
                done += due

    def db(self, seconds: float = 1.0) -> float:
        now = time.monotonic()
        ms = [p for t, p in self.blocks if t >= now - seconds]
        mean = float(np.mean(ms)) if ms else 0.0
        return 10 * math.log10(mean) if mean > 1e-14 else -140.0

    def stop(self) -> None:
        self._task.cancel()


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        await asyncio.sleep(0.1)


async def test_near_speaker_heard_quieter_away_silent_beyond_hearing(server: LocalServer) -> None:
    speaker = await hb.connect(server.url, server.token("Speaker"), publish=hb.audio.tone(440.0, 0.3),
                               decode_audio=False)
    listener = await hb.connect(server.url, server.token("Listener"), publish=False)
    renderer = OpenALRenderer(listener.world["audio"], loopback=True)
    rendered = RenderedLevel(SpatialListener(listener, renderer))
    try:
        s = speaker.participant_id
        assert s is not None and s != listener.participant_id
        arrived = await asyncio.gather(speaker.walk_to(SPEAKER_AT, 5.0), listener.walk_to((22.0, 0, 0), 5.0))
        assert all(arrived)

        # Near (2 m): forwarded to us as an individual track, tagged with the speaker's id.
        await until(lambda: listener.slots.slot_of(s) is not None and listener.level_of(s) > -25, 10,
                    "speaker forwarded")
        assert s in listener.participants
        await asyncio.sleep(1.5)
        near = rendered.db()
        assert near > -35, near
        # Per-track telemetry reaches /metrics: the listener's forwarded slot is carrying packets.
        with urllib.request.urlopen(server.http_url + "/metrics", timeout=10) as r:
            metrics = r.read().decode()
        sent = [line for line in metrics.splitlines() if line.startswith("hubbub_track_packets{")
                and f'participant="{listener.participant_id}"' in line and 'direction="out"' in line
                and 'kind="audio"' in line]
        assert sent and max(float(line.rsplit(" ", 1)[1]) for line in sent) > 0, sent

        # 6 m: still forwarded; OpenAL applies inverse_clamped (ref 1.5): 0.75 -> 0.25, about -9.5 dB.
        assert await listener.walk_to((26.0, 0.0, 0.0), 4.0)
        await asyncio.sleep(1.5)
        assert listener.slots.slot_of(s) is not None
        mid = rendered.db()
        assert 5 < near - mid < 15, (near, mid)

        # 16 m: beyond forward_radius, inside hearing_radius: in the server's mixed bed, quieter again.
        assert await listener.walk_to((36.0, 0.0, 0.0), 6.0)
        await until(lambda: listener.slots.slot_of(s) is None, 5, "speaker moved out of the slots")
        await asyncio.sleep(1.5)
        far = rendered.db()
        assert listener.mixed_level.dbfs > -60, listener.mixed_level.dbfs
        assert far < mid - 2 and far > -70, (mid, far)

        # 40 m: beyond hearing_radius (30 m + hysteresis): nothing of the speaker reaches us.
        assert await listener.walk_to((60.0, 0.0, 0.0), 6.0)
        await asyncio.sleep(2.0)
        assert listener.slots.slot_of(s) is None
        assert listener.mixed_level.dbfs < -70, listener.mixed_level.dbfs
        assert rendered.db() < -70
    finally:
        rendered.stop()
        renderer.close()
        await asyncio.gather(speaker.close(), listener.close())


async def test_bot_swarm_joins_talks_and_moves(server: LocalServer) -> None:
    tokens = [server.token(f"bot{i}") for i in range(4)]
    swarm = hb.bots.BotSwarm(server.url, tokens, speakers=0.5, pattern="orbit", radius=4.0)
    await swarm.start()
    try:
        stats = await swarm.run(4.0)
    finally:
        await swarm.close()
    assert stats.joined == 4 and stats.failed == 0 and stats.speaking == 2
    assert stats.packets_out > 2 * 50 * 2  # two speakers, 50 packets/s, a few seconds
    assert stats.packets_in > 0  # everybody is within 8 m: speakers are forwarded to the others
    assert stats.poses_out > 4 * 10 * 3
    assert stats.errors == 0


def test_hubbub_bots_command_prints_progress_and_summary() -> None:
    with LocalServer(PLAZA) as server:
        out = subprocess.run(
            [sys.executable, "-m", "world.cli", "bots", "--url", server.url, "--config", str(PLAZA),
             "--world", "plaza", "--count", "3", "--speakers", "0.34", "--duration", "3",
             "--pattern", "crowd"],
            capture_output=True, text=True, timeout=60,
        )
    assert out.returncode == 0, out.stderr + out.stdout
    progress = [line for line in out.stderr.splitlines() if line.startswith("[")]
    assert len(progress) >= 2 and "joined 3/3" in progress[-1]
    summary = out.stdout.strip().splitlines()[-1]
    assert summary.startswith("summary: joined 3") and "speaking 1" in summary and "errors 0" in summary


def test_hubbub_listen_renders_a_near_speaker_to_wav(tmp_path: Path) -> None:
    import wave

    out = tmp_path / "listen.wav"

    async def speak_while_listening(server: LocalServer) -> subprocess.CompletedProcess[str]:
        speaker = await hb.connect(server.url, server.token("Speaker"), publish=hb.audio.tone(440.0, 0.3),
                                   decode_audio=False)
        try:
            assert await speaker.walk_to((10.0, 0.0, 0.0), 5.0)
            cmd = [sys.executable, "-m", "world.cli", "listen", "--url", server.url,
                   "--token", server.token("Ear"), "--pos", "12,0,0", "--out", str(out), "--duration", "4"]
            return await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=60)
        finally:
            await speaker.close()

    with LocalServer(PLAZA) as server:
        result = asyncio.run(speak_while_listening(server))
    assert result.returncode == 0, result.stderr + result.stdout
    assert "wrote" in result.stdout
    with wave.open(str(out)) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 48000)
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2).astype(np.float64) / 32768
    assert len(data) == 4 * 48000
    tail = data[-2 * 48000 :].mean(axis=1)  # after the walk: standing 2 m from the speaker
    spectrum = np.abs(np.fft.rfft(tail))
    assert abs(np.argmax(spectrum) * 48000 / len(tail) - 440) < 3
    assert 20 * np.log10(np.sqrt(np.mean(tail**2))) > -40
