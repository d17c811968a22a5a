"""Hear a world: a Client's received audio rendered spatially through OpenAL (`hubbub listen`).

Forwarded slots go to OpenAL sources that follow the avatars they carry; the mixed bed plays as is; the
OpenAL listener follows the local avatar. Output is the sound card, or a WAV file via the loopback device.
"""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from .client import Client
from .events import AudioSource
from .openal_renderer import OpenALRenderer

BLOCK = 960  # render 20 ms at a time


class SpatialListener:
    """Feeds a Client's audio into an OpenALRenderer and keeps the scene in step with the world."""

    def __init__(self, client: Client, renderer: OpenALRenderer) -> None:
        self.client = client
        self.renderer = renderer
        client.on_audio(self._on_audio)

    def _on_audio(self, source: AudioSource, samples: np.ndarray) -> None:
        if source.mixed:
            self.renderer.push("mixed", samples if samples.shape[1] == 2 else samples[:, [0, 0]])
            return
        key = ("slot", source.slot)
        participant = self.client.participants.get(source.pid) if source.pid is not None else None
        if participant is None and not source.flat:
            # An idle slot (or an avatar whose position we do not know yet) is not rendered.
            return
        self.renderer.place(key, participant.pose.p if participant else None, flat=source.flat)
        self.renderer.push(key, samples.mean(axis=1))

    def update_listener(self) -> None:
        self.renderer.set_listener(self.client.pose)


async def render_to_wav(listener: SpatialListener, path: str | Path, duration: float) -> dict[str, Any]:
    """Render the loopback renderer in real time (following the network) into a stereo 16-bit WAV."""
    renderer = listener.renderer
    rate = renderer.rate
    start = time.monotonic()
    rendered = 0
    peak = 0.0
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        while rendered < duration * rate:
            await asyncio.sleep(BLOCK / rate)
            listener.update_listener()
            due = min(int((time.monotonic() - start) * rate), int(duration * rate)) - rendered
            if due <= 0:
                continue
            block = renderer.render(due)
            peak = max(peak, float(np.max(np.abs(block))) if block.size else 0.0)
            w.writeframes((np.clip(block, -1, 1) * 32767).astype("<i2").tobytes())
            rendered += due
    return {"frames": rendered, "seconds": rendered / rate, "peak": peak, "hrtf": renderer.hrtf}


async def play(listener: SpatialListener, duration: float | None) -> None:
    """Device output: OpenAL plays by itself; we only keep the listener pose current."""
    start = time.monotonic()
    while duration is None or time.monotonic() - start < duration:
        listener.update_listener()
        await asyncio.sleep(0.02)
