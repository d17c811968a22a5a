"""Sans-I/O pieces of the SDK: pose throttle, backoff, slot map, wire codec, distance gains, voices."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hubbub_client import Backoff, Pose, PoseThrottle, SlotMap, audio, distance_gain, wire


def test_throttle_sends_at_most_rate_and_keeps_newest() -> None:
    th = PoseThrottle(30.0)
    sent: list[tuple[float, Pose]] = []
    # 200 Hz of pose updates for one second.
    for i in range(200):
        now = i / 200
        pose = Pose((float(i), 0.0, 0.0))
        out = th.offer(pose, now)
        if out is not None:
            sent.append((now, out))
        due = th.due(now)
        if due is not None:
            sent.append((now, due))
    times = [t for t, _ in sent]
    assert 25 <= len(sent) <= 31
    assert min(np.diff(times)) >= 1 / 30 - 1e-9
    # The pending pose released at the deadline is the newest one submitted, not the first queued.
    th2 = PoseThrottle(10.0)
    assert th2.offer(Pose((0.0, 0, 0)), 0.0) is not None
    assert th2.offer(Pose((1.0, 0, 0)), 0.01) is None
    assert th2.offer(Pose((2.0, 0, 0)), 0.02) is None
    assert th2.deadline() == pytest.approx(0.1)
    assert th2.due(0.05) is None
    assert th2.due(0.1) == Pose((2.0, 0, 0))
    assert th2.due(0.3) is None  # nothing pending any more


def test_backoff_grows_caps_jitters_and_resets() -> None:
    b = Backoff(initial=0.5, factor=2.0, maximum=4.0, jitter=0.2, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(8)]
    bases = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    for d, base in zip(delays, bases, strict=True):
        assert base * 0.8 <= d <= base * 1.2
    assert len({round(d, 6) for d in delays[3:]}) > 1  # jittered, not lockstep
    b.reset()
    assert 0.4 <= b.next_delay() <= 0.6
    with pytest.raises(ValueError):
        Backoff(initial=0)


def test_slot_map_tags_mids_with_participants() -> None:
    sm = SlotMap()
    sm.set_offer({"audio": ["0", "1", "2"], "mixed": "3", "video": ["4"], "publish_audio": "5"})
    assert sm.pid_for_mid("1") is None  # idle until the first slots message
    sm.update([12, None, 40], [None], [False, False, True])
    assert sm.pid_for_mid("0") == 12
    assert sm.pid_for_mid("2") == 40
    assert sm.pid_for_mid("3") is None  # the mixed bed is not a slot
    assert sm.audio_index("3") is None
    assert sm.slot_of(40) == 2 and sm.is_flat(2)
    sm.update([None, 12, 40], [7])  # re-pointed: 12 moved to slot 1
    assert sm.slot_of(12) == 1 and sm.pid_for_mid("0") is None
    assert sm.flat == [False, False, False]


def test_poses_codec_roundtrip_and_quantisation() -> None:
    poses = {3: Pose((1.2345, -0.5, 99.9999), (0.0, 0.7071068, 0.0, 0.7071068)), 2**32 - 1: Pose((0, 0, 0))}
    msg = wire.decode(wire.encode(wire.pack_poses(5, poses)))
    out = wire.unpack_poses(msg)
    assert set(out) == set(poses)
    np.testing.assert_allclose(out[3].p, poses[3].p, atol=5e-4)
    np.testing.assert_allclose(out[3].q, poses[3].q, atol=1 / 32767)
    with pytest.raises(wire.WireError):
        wire.unpack_poses({"ids": b"\0" * 4, "pos": b"\0" * 8, "rot": b"\0" * 8})


def test_json_frames_decode_base64_bytes() -> None:
    msg = wire.decode('{"t":"data","from":3,"topic":"x","payload":"aGk="}')
    assert msg["payload"] == b"hi"
    with pytest.raises(wire.WireError):
        wire.decode(b"\xc1")
    with pytest.raises(wire.WireError):
        wire.decode("[1,2]")


def test_forward_vector_of_yaw() -> None:
    np.testing.assert_allclose(wire.forward_vector((0, 0, 0, 1)), (0, 0, -1), atol=1e-9)
    # Turning left (+90° about +Y) faces -X.
    np.testing.assert_allclose(wire.forward_vector(wire.yaw_quaternion(np.pi / 2)), (-1, 0, 0), atol=1e-9)


def test_distance_gain_matches_openal_formulas() -> None:
    assert distance_gain("inverse_clamped", 4.0, 1.0, 1.0) == pytest.approx(0.25)
    assert distance_gain("inverse_clamped", 0.2, 1.0, 1.0) == 1.0
    assert distance_gain("linear_clamped", 6.0, 1.0, 1.0, 11.0) == pytest.approx(0.5)
    assert distance_gain("linear_clamped", 50.0, 1.0, 1.0, 11.0) == 0.0
    assert distance_gain("exponential", 4.0, 1.0, 2.0) == pytest.approx(1 / 16)
    with pytest.raises(ValueError):
        distance_gain("cubic", 1.0)


def test_voices_have_the_right_shape_and_level() -> None:
    for spec in ("tone", "noise", "speechlike", "clicks"):
        it = audio.voice(spec, seed=3)
        frames = [next(it) for _ in range(150)]
        assert all(f.shape == (audio.FRAME_SAMPLES,) for f in frames)
        level = audio.dbfs(np.concatenate(frames))
        assert -40 < level < -3, spec
    clicks = [audio.dbfs(next(audio.clicks(period=1.0))) for _ in range(1)]
    assert clicks[0] > -10  # the first frame is a burst


def test_wav_frames_resample(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import wave

    path = tmp_path / "v.wav"
    t = np.arange(16000) / 16000
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((0.5 * np.sin(2 * np.pi * 500 * t) * 32767).astype("<i2").tobytes())
    frames = list(audio.wav_frames(path, loop=False))
    assert len(frames) == 50  # one second at 48 kHz
    spectrum = np.abs(np.fft.rfft(np.concatenate(frames)))
    assert abs(np.argmax(spectrum) * audio.SAMPLE_RATE / (50 * audio.FRAME_SAMPLES) - 500) < 2


def test_level_meter() -> None:
    m = audio.LevelMeter(smoothing=1.0)
    m.add(np.full(960, 0.5, np.float32))
    assert m.dbfs == pytest.approx(20 * np.log10(0.5), abs=0.01)
    m.add(np.zeros(960, np.float32))
    assert m.dbfs == audio.SILENCE_DBFS


def test_client_rejects_bad_jitter_frames() -> None:
    from hubbub_client import Client

    with pytest.raises(ValueError, match="jitter_frames"):
        Client("ws://127.0.0.1:1", "t", publish=False, jitter_frames=0)
