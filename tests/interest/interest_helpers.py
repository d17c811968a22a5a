"""Shared test helpers: turn a TickResult into the reference's plain-dict form."""

from __future__ import annotations

import numpy as np
from interest_reference import State

from interest import TickResult


def result_state(result: TickResult) -> State:
    out: State = {}
    for cat in ("forwarded", "mixed", "video", "positions"):
        sets = result.category(cat)
        rows: dict[int, dict[int, object]] = {}
        for i, lid in enumerate(result.listener_ids):
            ids = sets.row(i)
            attrs = sets.row_attr(i)
            if cat == "positions":
                rows[int(lid)] = {int(s): int(a) for s, a in zip(ids, attrs, strict=True)}
            else:
                rows[int(lid)] = {int(s): bool(a) for s, a in zip(ids, attrs, strict=True)}
        out[cat] = rows
    return out


def ordered(state: State) -> dict[str, dict[int, list[tuple[int, object]]]]:
    """Same content with each row as a list sorted by id: rows are sets (the engine keeps kept
    entries in place and appends new ones, so its order is not the priority order)."""
    return {c: {lid: sorted(row.items()) for lid, row in rows.items()} for c, rows in state.items()}


def quats(n: int) -> np.ndarray:
    q = np.zeros((n, 4), dtype=np.float32)
    q[:, 3] = 1.0
    return q
