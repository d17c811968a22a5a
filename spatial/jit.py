"""How spatial's compiled kernels are built (why numba at all: see the `spatial` package docstring).

Every kernel is compiled on first use and cached on disk (``cache=True``), so only the first
process after an install or an edit pays the compile (a few seconds for the mixer); later
processes load the machine code in milliseconds. ``nogil`` lets an SFU run a mix in a worker
thread while its event loop keeps serving packets.
"""

from __future__ import annotations

from collections.abc import Callable
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
