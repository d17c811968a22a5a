"""Render mono sources through OpenAL Soft's loopback device (ALC_SOFT_loopback).

A test-only helper: `spatial/` must stay pure numpy/scipy, so the ctypes glue to the real
OpenAL Soft library lives here. pyopenal finds and loads libopenal; we open our *own* CDLL
handle on the same library so that our argtypes never clobber pyopenal's.

Loopback devices render on demand (`alcRenderSamplesSOFT`), so a scene renders
deterministically and faster than real time, with HRTF off by default.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import openal.al_lib  # pyopenal: locates libopenal.so.1

ALC_FREQUENCY = 0x1007
ALC_FORMAT_CHANNELS_SOFT = 0x1990
ALC_FORMAT_TYPE_SOFT = 0x1991
ALC_STEREO_SOFT = 0x1501
ALC_FLOAT_SOFT = 0x1406
ALC_HRTF_SOFT = 0x1992
ALC_VERSION_MAJOR = 0x1000
ALC_MINOR_VERSION = 0x1001

AL_FORMAT_MONO_FLOAT32 = 0x10010
AL_POSITION = 0x1004
AL_ORIENTATION = 0x100F
AL_BUFFER = 0x1009
AL_PLAYING = 0x1012
AL_SOURCE_STATE = 0x1010
AL_LOOPING = 0x1007
AL_REFERENCE_DISTANCE = 0x1020
AL_ROLLOFF_FACTOR = 0x1021
AL_MAX_DISTANCE = 0x1023
AL_MIN_GAIN = 0x100D
AL_MAX_GAIN = 0x100E
AL_VERSION = 0xB002
AL_RENDERER = 0xB003

DISTANCE_MODELS = {
    "inverse": 0xD001,
    "inverse_clamped": 0xD002,
    "linear": 0xD003,
    "linear_clamped": 0xD004,
    "exponential": 0xD005,
    "exponential_clamped": 0xD006,
}


@dataclass(frozen=True)
class SourceSpec:
    position: tuple[float, float, float]
    reference_distance: float = 1.0
    rolloff: float = 1.0
    max_distance: float = 3.4028234663852886e38  # FLT_MAX, OpenAL's default
    min_gain: float = 0.0
    max_gain: float = 1.0


class OpenALLoopback:
    """One loopback device + context rendering float stereo at `rate` Hz."""

    def __init__(self, rate: int = 48000) -> None:
        lib = ctypes.CDLL(openal.al_lib.lib._name)
        self.lib = lib
        self.rate = rate
        vp, ip, fp = ctypes.c_void_p, ctypes.c_int, ctypes.c_float

        get_proc = lib.alcGetProcAddress
        get_proc.argtypes = [vp, ctypes.c_char_p]
        get_proc.restype = vp
        open_ptr = get_proc(None, b"alcLoopbackOpenDeviceSOFT")
        render_ptr = get_proc(None, b"alcRenderSamplesSOFT")
        if not open_ptr or not render_ptr:
            raise RuntimeError("OpenAL Soft lacks ALC_SOFT_loopback")
        self._open = ctypes.CFUNCTYPE(vp, ctypes.c_char_p)(open_ptr)
        self._render = ctypes.CFUNCTYPE(None, vp, vp, ip)(render_ptr)

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
        lib.alGenSources.argtypes = [ip, ctypes.POINTER(ctypes.c_uint)]
        lib.alGenBuffers.argtypes = [ip, ctypes.POINTER(ctypes.c_uint)]
        lib.alDeleteSources.argtypes = [ip, ctypes.POINTER(ctypes.c_uint)]
        lib.alDeleteBuffers.argtypes = [ip, ctypes.POINTER(ctypes.c_uint)]
        lib.alBufferData.argtypes = [ctypes.c_uint, ip, vp, ip, ip]
        lib.alSourcei.argtypes = [ctypes.c_uint, ip, ip]
        lib.alSourcef.argtypes = [ctypes.c_uint, ip, fp]
        lib.alSource3f.argtypes = [ctypes.c_uint, ip, fp, fp, fp]
        lib.alSourcePlay.argtypes = [ctypes.c_uint]
        lib.alSourceStop.argtypes = [ctypes.c_uint]
        lib.alListener3f.argtypes = [ip, fp, fp, fp]
        lib.alListenerfv.argtypes = [ip, ctypes.POINTER(fp)]

        self.device = self._open(None)
        if not self.device:
            raise RuntimeError("alcLoopbackOpenDeviceSOFT failed")
        attrs = (ip * 9)(
            ALC_FORMAT_CHANNELS_SOFT,
            ALC_STEREO_SOFT,
            ALC_FORMAT_TYPE_SOFT,
            ALC_FLOAT_SOFT,
            ALC_FREQUENCY,
            rate,
            ALC_HRTF_SOFT,
            0,  # explicit: plain stereo panning, not HRTF
            0,
        )
        self.context = lib.alcCreateContext(self.device, attrs)
        if not self.context:
            lib.alcCloseDevice(self.device)
            raise RuntimeError("alcCreateContext on loopback device failed")
        lib.alcMakeContextCurrent(self.context)

    @property
    def version(self) -> str:
        """AL_VERSION, e.g. '1.1 ALSOFT 1.19.1'."""
        return (self.lib.alGetString(AL_VERSION) or b"").decode()

    def _check(self, what: str) -> None:
        err = self.lib.alGetError()
        if err:
            raise RuntimeError(f"OpenAL error 0x{err:x} after {what}")

    def set_listener(
        self,
        position: Sequence[float] = (0.0, 0.0, 0.0),
        forward: Sequence[float] = (0.0, 0.0, -1.0),
        up: Sequence[float] = (0.0, 1.0, 0.0),
    ) -> None:
        self.lib.alListener3f(AL_POSITION, *map(float, position))
        ori = (ctypes.c_float * 6)(*map(float, forward), *map(float, up))
        self.lib.alListenerfv(AL_ORIENTATION, ori)
        self._check("listener setup")

    def render(self, model: str, sources: Sequence[SourceSpec], signal: np.ndarray) -> np.ndarray:
        """Play `signal` (mono float32, looped) from every source *one at a time*.

        Returns an array (len(sources), len(signal), 2): the stereo output of each source alone.
        """
        lib = self.lib
        lib.alDistanceModel(DISTANCE_MODELS[model])
        sig = np.ascontiguousarray(signal, dtype=np.float32)
        buf = ctypes.c_uint()
        lib.alGenBuffers(1, ctypes.byref(buf))
        lib.alBufferData(buf.value, AL_FORMAT_MONO_FLOAT32, sig.ctypes.data, sig.nbytes, self.rate)
        self._check("alBufferData")
        out = np.zeros((len(sources), len(sig), 2), dtype=np.float32)
        try:
            for i, spec in enumerate(sources):
                src = ctypes.c_uint()
                lib.alGenSources(1, ctypes.byref(src))
                s = src.value
                lib.alSourcei(s, AL_BUFFER, buf.value)
                lib.alSourcei(s, AL_LOOPING, 1)
                lib.alSource3f(s, AL_POSITION, *map(float, spec.position))
                lib.alSourcef(s, AL_REFERENCE_DISTANCE, spec.reference_distance)
                lib.alSourcef(s, AL_ROLLOFF_FACTOR, spec.rolloff)
                lib.alSourcef(s, AL_MAX_DISTANCE, spec.max_distance)
                lib.alSourcef(s, AL_MIN_GAIN, spec.min_gain)
                lib.alSourcef(s, AL_MAX_GAIN, spec.max_gain)
                self._check("source setup")
                lib.alSourcePlay(s)
                self._check("alSourcePlay")
                frame = np.zeros((len(sig), 2), dtype=np.float32)
                self._render(self.device, frame.ctypes.data, len(sig))
                out[i] = frame
                lib.alSourceStop(s)
                lib.alDeleteSources(1, ctypes.byref(src))
                self._check("source teardown")
        finally:
            lib.alDeleteBuffers(1, ctypes.byref(buf))
        return out

    def close(self) -> None:
        self.lib.alcMakeContextCurrent(None)
        self.lib.alcDestroyContext(self.context)
        self.lib.alcCloseDevice(self.device)

    def __enter__(self) -> OpenALLoopback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def channel_gains(rendered: np.ndarray, signal: np.ndarray, skip: int = 0) -> np.ndarray:
    """Least-squares gain of each output channel relative to the dry `signal`.

    `rendered` is (..., N, 2); returns (..., 2). `skip` ignores the first samples (gain ramps).
    """
    s = np.asarray(signal, dtype=np.float64)[skip:]
    r = np.asarray(rendered, dtype=np.float64)[..., skip:, :]
    return np.einsum("...nc,n->...c", r, s) / float(s @ s)
