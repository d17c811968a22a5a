"""The OpenAL Soft renderer on its loopback device: position, distance and the mixed bed."""

from __future__ import annotations

import wave

import numpy as np
import pytest
from hubbub_client import Pose, audio
from hubbub_client.openal_renderer import OpenALRenderer

pytestmark = pytest.mark.openal

WORLD_AUDIO = {"distance_model": "inverse_clamped", "reference_distance": 1.0, "rolloff": 1.0,
               "max_distance": 40.0, "pan_law": "openal"}


def render_source(position: tuple[float, float, float], listener: Pose | None = None,
                  seconds: float = 0.5) -> np.ndarray:
    """Stream a 500 Hz tone from one source at `position` and return the rendered stereo (after warm-up)."""
    with OpenALRenderer(WORLD_AUDIO, loopback=True) as r:
        r.set_listener(listener or Pose((0.0, 0.0, 0.0)))
        r.place("s", position)
        tone = audio.tone(500.0, 0.5)
        out = []
        for _ in range(int(seconds * 50)):
            r.push("s", next(tone))
            out.append(r.render(audio.FRAME_SAMPLES))
        return np.concatenate(out)[audio.FRAME_SAMPLES * 5 :]


def rms(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean(np.square(x, dtype=np.float64), axis=0))


def test_left_source_is_louder_in_the_left_channel() -> None:
    left = rms(render_source((-2.0, 0.0, 0.0)))
    right = rms(render_source((2.0, 0.0, 0.0)))
    assert left[0] > 3 * left[1]
    assert right[1] > 3 * right[0]
    # The listener turned to face -X (+90° about Y): the source at -X is now ahead, balanced.
    ahead = rms(render_source((-2.0, 0.0, 0.0), Pose((0, 0, 0), (0.0, 0.7071068, 0.0, 0.7071068))))
    assert ahead[0] == pytest.approx(ahead[1], rel=0.05)


def test_distance_follows_the_world_model() -> None:
    near = rms(render_source((0.0, 0.0, -2.0))).sum()
    far = rms(render_source((0.0, 0.0, -8.0))).sum()
    # inverse_clamped, ref 1, rolloff 1: gain 1/2 at 2 m and 1/8 at 8 m.
    assert far / near == pytest.approx(0.25, rel=0.05)
    # The listener moved next to the far source: loud again.
    moved = rms(render_source((0.0, 0.0, -8.0), Pose((0.0, 0.0, -6.0)))).sum()
    assert moved == pytest.approx(near, rel=0.05)


def test_mixed_bed_plays_as_is_and_flat_slots_are_unattenuated() -> None:
    with OpenALRenderer(WORLD_AUDIO, loopback=True) as r:
        r.set_listener(Pose((100.0, 0.0, 100.0)))  # anywhere: the bed is head-relative
        stereo = np.zeros((audio.FRAME_SAMPLES, 2), np.float32)
        stereo[:, 0] = 0.5 * np.sin(2 * np.pi * 300 * np.arange(audio.FRAME_SAMPLES) / 48000)
        out = []
        for _ in range(25):
            r.push("mixed", stereo)
            out.append(r.render(audio.FRAME_SAMPLES))
        level = rms(np.concatenate(out)[audio.FRAME_SAMPLES * 5 :])
        assert level[0] == pytest.approx(0.5 / np.sqrt(2), rel=0.05)  # left stays left, full level
        assert level[1] < 1e-3
        r.place("stage", None, flat=True)
        tone = audio.tone(500.0, 0.5)
        out = []
        for _ in range(25):
            r.push("stage", next(tone))
            out.append(r.render(audio.FRAME_SAMPLES))
        flat = rms(np.concatenate(out)[audio.FRAME_SAMPLES * 5 :])
        assert flat[0] == pytest.approx(flat[1], rel=0.05) and flat[0] > 0.15


def test_underrun_then_resume_and_bounded_queue() -> None:
    with OpenALRenderer(WORLD_AUDIO, loopback=True) as r:
        r.place("s", (0.0, 0.0, -1.0))
        block = np.full(audio.FRAME_SAMPLES, 0.3, np.float32)
        for _ in range(100):  # nobody renders: the queue must stay bounded
            r.push("s", block)
        assert r._streams["s"].dropped == 100 - 25
        silent = r.render(48000 * 2)  # plays the queued 500 ms, then underruns
        assert np.abs(silent[-1000:]).max() == 0.0
        for _ in range(3):
            r.push("s", block)
        assert np.abs(r.render(960)).max() > 0.05  # restarted after the underrun


def test_wav_written_by_render_to_wav(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # render_to_wav with no network: a renderer whose only stream we feed by hand.
    import asyncio

    from hubbub_client.listening import render_to_wav

    class FakeClientListener:
        def __init__(self, renderer: OpenALRenderer) -> None:
            self.renderer = renderer

        def update_listener(self) -> None:
            tone = audio.tone(500.0, 0.5)
            for _ in range(2):
                self.renderer.push("s", next(tone))

    with OpenALRenderer(WORLD_AUDIO, loopback=True) as r:
        r.place("s", (-1.0, 0.0, 0.0))
        path = tmp_path / "out.wav"
        info = asyncio.run(render_to_wav(FakeClientListener(r), path, 0.5))  # type: ignore[arg-type]
    assert info["frames"] == 24000 and info["peak"] > 0.1
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 2 and w.getnframes() == 24000
        data = np.frombuffer(w.readframes(24000), "<i2").reshape(-1, 2).astype(np.float64)
    assert rms(data)[0] > 2 * rms(data)[1]


def test_hrtf_when_the_world_asks_for_it() -> None:
    """pan_law = "hrtf" turns on OpenAL Soft's HRTF (Debian's libopenal-data ships the data set): a
    source in front and one behind then sound different, which plain stereo panning cannot do."""

    def render(position: tuple[float, float, float], pan_law: str) -> tuple[np.ndarray, bool]:
        with OpenALRenderer({**WORLD_AUDIO, "pan_law": pan_law}, loopback=True) as r:
            r.place("s", position)
            src = audio.noise(0.3, seed=1)
            out = []
            for _ in range(40):
                r.push("s", next(src))
                out.append(r.render(audio.FRAME_SAMPLES))
            return np.concatenate(out)[audio.FRAME_SAMPLES * 5 :], r.hrtf

    def high_share(x: np.ndarray) -> float:  # fraction of energy above 4 kHz
        spec = np.abs(np.fft.rfft(x.mean(axis=1))) ** 2
        freqs = np.fft.rfftfreq(len(x), 1 / 48000)
        return float(spec[freqs > 4000].sum() / spec.sum())

    front, on = render((0.0, 0.0, -2.0), "hrtf")
    back, _ = render((0.0, 0.0, 2.0), "hrtf")
    assert on
    assert abs(high_share(front) - high_share(back)) > 0.03
    left, _ = render((-2.0, 0.0, 0.0), "hrtf")
    assert rms(left)[0] > 2 * rms(left)[1]
    plain_front, plain_on = render((0.0, 0.0, -2.0), "equal_power")
    plain_back, _ = render((0.0, 0.0, 2.0), "equal_power")
    assert not plain_on
    assert abs(high_share(plain_front) - high_share(plain_back)) < 0.01
