"""Stable slot assignment: which source each of a listener's fixed slots carries.

A listener's peer connection has a fixed number of audio (and video) slots, created at join. When the
interest engine hands over a new list of wanted sources (never more than the slots: the engine caps
it), sources that already have a slot keep it (so the client's per-slot panner does not jump),
newcomers take the lowest free slots, and sources beyond the capacity (if a caller passes more, in
priority order) are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence


def assign_slots(current: Sequence[int | None], wanted: Sequence[int]) -> list[int | None]:
    """Return the new slot contents (same length as `current`).

    Invariants (tested): every source appears at most once; only sources from `wanted` appear; a
    source in both `current` and the kept part of `wanted` stays in its slot; the kept part of
    `wanted` is its first ``len(current)`` distinct entries.
    """
    capacity = len(current)
    kept = list(dict.fromkeys(wanted))[:capacity]
    kept_set = set(kept)
    result: list[int | None] = [s if s in kept_set else None for s in current]
    placed = {s for s in result if s is not None}
    free = iter([i for i, s in enumerate(result) if s is None])
    for source in kept:
        if source not in placed:
            result[next(free)] = source
    return result


def changed_slots(old: Sequence[int | None], new: Sequence[int | None]) -> list[int]:
    """Indices whose source differs."""
    return [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
