"""Local spatial rendering of a Hubbub client's audio through OpenAL Soft.

Each forwarded slot is a streaming OpenAL source placed at the position of the avatar it carries, so
OpenAL applies the world's distance model and its panner (HRTF when OpenAL Soft offers it and it is
asked for); the mixed bed, already spatialized by the server, is a stereo stream that OpenAL plays as is;
the listener follows the local avatar.

Two outputs: a real device (the sound card; OpenAL renders by itself) or OpenAL Soft's loopback device
(ALC_SOFT_loopback), where we pull samples with `render()` — deterministic, faster than real time, and
what `hubbub listen --out FILE.wav` and the tests use.

We open our own ctypes handle on the library pyopenal found, so our argtypes never clobber pyopenal's.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .wire import Pose

ALC_FREQUENCY = 0x1007
ALC_FORMAT_CHANNELS_SOFT = 0x1990
ALC_FORMAT_TYPE_SOFT = 0x1991
ALC_STEREO_SOFT = 0x1501
ALC_FLOAT_SOFT = 0x1406
ALC_HRTF_SOFT = 0x1992
ALC_HRTF_STATUS_SOFT = 0x1993
ALC_HRTF_ENABLED_SOFT = 0x0001

AL_FORMAT_MONO_FLOAT32 = 0x10010
AL_FORMAT_STEREO_FLOAT32 = 0x10011
AL_SOURCE_RELATIVE = 0x202
AL_POSITION = 0x1004
AL_ORIENTATION = 0x100F
AL_GAIN = 0x100A
AL_SOURCE_STATE = 0x1010
AL_PLAYING = 0x1012
AL_STOPPED = 0x1014
AL_BUFFERS_QUEUED = 0x1015
AL_BUFFERS_PROCESSED = 0x1016
AL_REFERENCE_DISTANCE = 0x1020
AL_ROLLOFF_FACTOR = 0x1021
AL_MAX_DISTANCE = 0x1023
AL_VERSION = 0xB002

AL_DISTANCE_MODELS = {
    "inverse": 0xD001,
    "inverse_clamped": 0xD002,
    "linear": 0xD003,
    "linear_clamped": 0xD004,
    "exponential": 0xD005,
    "exponential_clamped": 0xD006,
}

START_BUFFERS = 3  # a stream starts (and restarts after an underrun) with 60 ms queued: jitter margin
MAX_BUFFERS = 25  # beyond 500 ms queued, new blocks are dropped rather than letting latency grow


class OpenALError(RuntimeError):
    pass


@dataclass
class _Stream:
    source: int
    channels: int
    free: list[int] = field(default_factory=list)
    dropped: int = 0


def _load() -> ctypes.CDLL:
    import openal.al_lib  # pyopenal locates libopenal.so.1

    lib = ctypes.CDLL(openal.al_lib.lib._name)
    vp, ip, up, fp = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_float
    lib.alcGetProcAddress.argtypes = [vp, ctypes.c_char_p]
    lib.alcGetProcAddress.restype = vp
    lib.alcOpenDevice.argtypes = [ctypes.c_char_p]
    lib.alcOpenDevice.restype = vp
    lib.alcCreateContext.argtypes = [vp, ctypes.POINTER(ip)]
    lib.alcCreateContext.restype = vp
    lib.alcMakeContextCurrent.argtypes = [vp]
    lib.alcDestroyContext.argtypes = [vp]
    lib.alcCloseDevice.argtypes = [vp]
    lib.alcGetIntegerv.argtypes = [vp, ip, ip, ctypes.POINTER(ip)]
    lib.alGetString.argtypes = [ip]
    lib.alGetString.restype = ctypes.c_char_p
    lib.alGetError.restype = ip
    lib.alDistanceModel.argtypes = [ip]
    lib.alGenSources.argtypes = [ip, ctypes.POINTER(up)]
    lib.alGenBuffers.argtypes = [ip, ctypes.POINTER(up)]
    lib.alDeleteSources.argtypes = [ip, ctypes.POINTER(up)]
    lib.alDeleteBuffers.argtypes = [ip, ctypes.POINTER(up)]
    lib.alBufferData.argtypes = [up, ip, vp, ip, ip]
    lib.alSourcei.argtypes = [up, ip, ip]
    lib.alSourcef.argtypes = [up, ip, fp]
    lib.alSource3f.argtypes = [up, ip, fp, fp, fp]
    lib.alGetSourcei.argtypes = [up, ip, ctypes.POINTER(ip)]
    lib.alSourcePlay.argtypes = [up]
    lib.alSourceStop.argtypes = [up]
    lib.alSourceRewind.argtypes = [up]
    lib.alSourceQueueBuffers.argtypes = [up, ip, ctypes.POINTER(up)]
    lib.alSourceUnqueueBuffers.argtypes = [up, ip, ctypes.POINTER(up)]
    lib.alListener3f.argtypes = [ip, fp, fp, fp]
    lib.alListenerfv.argtypes = [ip, ctypes.POINTER(fp)]
    return lib


class OpenALRenderer:
    """Spatial renderer for one listener.

    `audio` is ``welcome.world.audio`` (distance_model, reference_distance, rolloff, max_distance,
    pan_law). `loopback=True` renders on demand with `render()`; False plays on the default device.
    `hrtf` None follows the world's pan law ("hrtf" asks for it), True/False forces it.
    """

    def __init__(
        self,
        audio: Mapping[str, Any] | None = None,
        *,
        loopback: bool = True,
        rate: int = 48_000,
        hrtf: bool | None = None,
    ) -> None:
        self.lib = lib = _load()
        self.rate = rate
        self.loopback = loopback
        audio = dict(audio or {})
        self.model = str(audio.get("distance_model", "inverse_clamped"))
        if self.model not in AL_DISTANCE_MODELS:
            raise OpenALError(f"unknown distance model {self.model!r}")
        self.reference = float(audio.get("reference_distance", 1.0))
        self.rolloff = float(audio.get("rolloff", 1.0))
        self.max_distance = float(audio.get("max_distance", 3.4e38))
        want_hrtf = (audio.get("pan_law") == "hrtf") if hrtf is None else hrtf

        vp, ip = ctypes.c_void_p, ctypes.c_int
        self._render_fn: Any = None
        if loopback:
            open_ptr = lib.alcGetProcAddress(None, b"alcLoopbackOpenDeviceSOFT")
            render_ptr = lib.alcGetProcAddress(None, b"alcRenderSamplesSOFT")
            if not open_ptr or not render_ptr:
                raise OpenALError("OpenAL Soft lacks ALC_SOFT_loopback")
            self.device = ctypes.CFUNCTYPE(vp, ctypes.c_char_p)(open_ptr)(None)
            self._render_fn = ctypes.CFUNCTYPE(None, vp, vp, ip)(render_ptr)
            attrs = [ALC_FORMAT_CHANNELS_SOFT, ALC_STEREO_SOFT, ALC_FORMAT_TYPE_SOFT, ALC_FLOAT_SOFT,
                     ALC_FREQUENCY, rate, ALC_HRTF_SOFT, int(want_hrtf), 0]
        else:
            self.device = lib.alcOpenDevice(None)
            attrs = [ALC_FREQUENCY, rate, ALC_HRTF_SOFT, int(want_hrtf), 0]
        if not self.device:
            raise OpenALError("no OpenAL output device (use loopback / --out FILE.wav)")
        self.context = lib.alcCreateContext(self.device, (ip * len(attrs))(*attrs))
        if not self.context:
            lib.alcCloseDevice(self.device)
            raise OpenALError("alcCreateContext failed")
        lib.alcMakeContextCurrent(self.context)
        status = ctypes.c_int(0)
        lib.alcGetIntegerv(self.device, ALC_HRTF_STATUS_SOFT, 1, ctypes.byref(status))
        self.hrtf = status.value == ALC_HRTF_ENABLED_SOFT
        lib.alGetError()  # the HRTF query is an extension; clear its error if absent
        lib.alDistanceModel(AL_DISTANCE_MODELS[self.model])
        self._streams: dict[object, _Stream] = {}
        self._closed = False
        self.set_listener(Pose((0.0, 0.0, 0.0)))

    @property
    def version(self) -> str:
        return (self.lib.alGetString(AL_VERSION) or b"").decode()

    def _check(self, what: str) -> None:
        err = self.lib.alGetError()
        if err:
            raise OpenALError(f"OpenAL error 0x{err:x} after {what}")

    # ------------------------------------------------------------------ scene

    def set_listener(self, pose: Pose) -> None:
        """Place the listener at the local avatar: forward is -Z and up is +Y rotated by its quaternion."""
        x, y, z, w = pose.q
        n = math.sqrt(x * x + y * y + z * z + w * w) or 1.0
        x, y, z, w = x / n, y / n, z / n, w / n
        fwd = (-(2 * (x * z + w * y)), -(2 * (y * z - w * x)), -(1 - 2 * (x * x + y * y)))
        up = (2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x))
        self.lib.alListener3f(AL_POSITION, *map(float, pose.p))
        self.lib.alListenerfv(AL_ORIENTATION, (ctypes.c_float * 6)(*fwd, *up))
        self._check("listener")

    def _stream(self, key: object, channels: int) -> _Stream:
        st = self._streams.get(key)
        if st is None or st.channels != channels:
            if st is not None:
                self.remove(key)
            src = ctypes.c_uint()
            self.lib.alGenSources(1, ctypes.byref(src))
            s = src.value
            if channels == 1:
                self.lib.alSourcef(s, AL_REFERENCE_DISTANCE, self.reference)
                self.lib.alSourcef(s, AL_ROLLOFF_FACTOR, self.rolloff)
                self.lib.alSourcef(s, AL_MAX_DISTANCE, self.max_distance)
            else:
                # The server already spatialized the bed: play it head-relative, centred, unattenuated.
                self.lib.alSourcei(s, AL_SOURCE_RELATIVE, 1)
                self.lib.alSource3f(s, AL_POSITION, 0.0, 0.0, 0.0)
                self.lib.alSourcef(s, AL_ROLLOFF_FACTOR, 0.0)
            self._check("source setup")
            st = _Stream(s, channels)
            self._streams[key] = st
        return st

    def place(self, key: object, position: Sequence[float] | None, flat: bool = False) -> None:
        """Put a mono stream at a world position, or (flat / position None) head-relative at the centre,
        unattenuated — how stage and meeting voices are heard."""
        if self._closed:
            return
        st = self._stream(key, 1)
        if flat or position is None:
            self.lib.alSourcei(st.source, AL_SOURCE_RELATIVE, 1)
            self.lib.alSource3f(st.source, AL_POSITION, 0.0, 0.0, 0.0)
            self.lib.alSourcef(st.source, AL_ROLLOFF_FACTOR, 0.0)
        else:
            self.lib.alSourcei(st.source, AL_SOURCE_RELATIVE, 0)
            self.lib.alSource3f(st.source, AL_POSITION, *map(float, position[:3]))
            self.lib.alSourcef(st.source, AL_ROLLOFF_FACTOR, self.rolloff)
        self._check("place")

    def push(self, key: object, samples: np.ndarray) -> None:
        """Queue a block of audio on stream `key`: mono (n,) / (n, 1) is spatialized, stereo (n, 2) is not."""
        if self._closed:
            return  # late audio after close() is ignored
        data = np.asarray(samples, dtype=np.float32)
        channels = 1 if data.ndim == 1 or data.shape[1] == 1 else 2
        data = np.ascontiguousarray(data.reshape(-1) if channels == 1 else data[:, :2])
        st = self._stream(key, channels)
        lib, s = self.lib, st.source
        count = ctypes.c_int(0)
        state = ctypes.c_int(0)
        lib.alGetSourcei(s, AL_SOURCE_STATE, ctypes.byref(state))
        lib.alGetSourcei(s, AL_BUFFERS_PROCESSED, ctypes.byref(count))
        if count.value:
            done = (ctypes.c_uint * count.value)()
            lib.alSourceUnqueueBuffers(s, count.value, done)
            st.free.extend(done)
        if state.value == AL_STOPPED:
            # Underrun: a stopped source counts every queued buffer as processed, so it must go back to
            # the initial state before refilling, or new buffers would be unqueued as soon as queued.
            lib.alSourceRewind(s)
        lib.alGetSourcei(s, AL_BUFFERS_QUEUED, ctypes.byref(count))
        queued = count.value
        if queued >= MAX_BUFFERS:
            st.dropped += 1
            return
        if st.free:
            buf = st.free.pop()
        else:
            b = ctypes.c_uint()
            lib.alGenBuffers(1, ctypes.byref(b))
            buf = b.value
        fmt = AL_FORMAT_MONO_FLOAT32 if channels == 1 else AL_FORMAT_STEREO_FLOAT32
        lib.alBufferData(buf, fmt, data.ctypes.data, data.nbytes, self.rate)
        lib.alSourceQueueBuffers(s, 1, (ctypes.c_uint * 1)(buf))
        lib.alGetSourcei(s, AL_SOURCE_STATE, ctypes.byref(state))
        if state.value != AL_PLAYING and queued + 1 >= START_BUFFERS:
            lib.alSourcePlay(s)
        self._check("push")

    def remove(self, key: object) -> None:
        st = self._streams.pop(key, None)
        if st is None:
            return
        lib = self.lib
        lib.alSourceStop(st.source)
        count = ctypes.c_int(0)
        lib.alGetSourcei(st.source, AL_BUFFERS_PROCESSED, ctypes.byref(count))
        if count.value:
            done = (ctypes.c_uint * count.value)()
            lib.alSourceUnqueueBuffers(st.source, count.value, done)
            st.free.extend(done)
        lib.alDeleteSources(1, ctypes.byref(ctypes.c_uint(st.source)))
        if st.free:
            lib.alDeleteBuffers(len(st.free), (ctypes.c_uint * len(st.free))(*st.free))
        lib.alGetError()

    # ------------------------------------------------------------------ output

    def render(self, frames: int) -> np.ndarray:
        """Loopback only: mix the next `frames` samples of the scene, float32 (frames, 2)."""
        if self._render_fn is None:
            raise OpenALError("render() needs a loopback renderer")
        out = np.zeros((frames, 2), dtype=np.float32)
        self._render_fn(self.device, out.ctypes.data, frames)
        return out

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for key in list(self._streams):
            self.remove(key)
        self.lib.alcMakeContextCurrent(None)
        self.lib.alcDestroyContext(self.context)
        self.lib.alcCloseDevice(self.device)

    def __enter__(self) -> OpenALRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
