"""How spatial's compiled kernels are built (why numba at all: see the `spatial` package docstring).

Every kernel is compiled on first use and cached on disk (``cache=True``), so only the first
process after an install or an edit pays the compile (a few seconds for the mixer); later
processes load the machine code in milliseconds. ``nogil`` lets an SFU run a mix in a worker
thread while its event loop keeps serving packets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from numba import njit

F = TypeVar("F", bound=Callable[..., Any])

# fastmath minus "nnan"/"ninf": the sample loops may be reordered and fused (that is what lets
# LLVM vectorize them), but a NaN must still compare as a NaN so the limiter can scrub it.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def kernel(fn: F) -> F:
    """Compile `fn` with IEEE-exact arithmetic (gains, geometry: results must match the reference)."""
    return cast(F, njit(cache=True, nogil=True)(fn))


def sample_kernel(fn: F) -> F:
    """Compile a loop over samples with fast (reassociating, fused) arithmetic so it vectorizes."""
    return cast(F, njit(cache=True, nogil=True, fastmath=FASTMATH)(fn))


def _drop_stale_cache() -> None:
    """numba keys a cached kernel on its own file only, so a kernel in kernels.py that calls
    `pan_pair` would keep stale machine code after pan.py changes. Any change to a module that
    holds kernels therefore drops all of spatial's cached kernels (they recompile on next use)."""
    here = Path(__file__).parent
    digest = hashlib.sha1()
    for path in sorted(here.glob("*.py")):
        text = path.read_bytes()
        if path.name == "jit.py" or b"from .jit import" in text:  # the modules that hold kernels
            digest.update(path.name.encode() + text)
    cache = here / "__pycache__"
    stamp = cache / "numba-sources.sha1"
    try:
        if stamp.exists() and stamp.read_text() == digest.hexdigest():
            return
        for old in [*cache.glob("*.nbi"), *cache.glob("*.nbc")]:
            old.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:  # read-only install: sources cannot change under us either
        pass


_drop_stale_cache()
