"""The allocator tweak takes effect here (glibc) and the process keeps working with it."""

from __future__ import annotations

import numpy as np

from world.allocator import keep_freed_memory


def test_keep_freed_memory_takes_effect_on_glibc() -> None:
    assert keep_freed_memory() is True
    a = np.ones(50_000_000, np.uint8)  # a block far above glibc's default mmap threshold
    assert int(a.sum()) == 50_000_000
