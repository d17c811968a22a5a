"""Compressed sparse rows: one row per listener, entries are avatar ids (plus one attribute).

A Python set per avatar does not scale to 100,000 listeners; three flat arrays do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IdArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CsrSets:
    """Row ``i`` is ``ids[indptr[i]:indptr[i+1]]`` with attribute ``attr`` for each entry.

    `attr` is the per-entry attribute of the category: ``flat`` (bool) for audio, the position tier
    index (int8) for positions, all zeros for video. A row is a set: its order is deterministic but
    not meaningful (the engine keeps last tick's entries in place and puts new ones in the gaps, so
    that a tick touches only what changed). Which entries win a capped row is the engine's priority
    order (see its docstring).
    """

    indptr: npt.NDArray[np.int64]
    ids: IdArray
    attr: npt.NDArray[np.generic]

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return len(self.ids)

    def row(self, i: int) -> IdArray:
        return self.ids[self.indptr[i] : self.indptr[i + 1]]

    def row_attr(self, i: int) -> npt.NDArray[np.generic]:
        return self.attr[self.indptr[i] : self.indptr[i + 1]]

    def counts(self) -> npt.NDArray[np.int64]:
        return np.diff(self.indptr)

    def row_of_entries(self) -> npt.NDArray[np.int64]:
        """The row index of every entry (length nnz)."""
        return np.repeat(np.arange(self.n_rows, dtype=np.int64), self.counts())

    def as_dicts(self) -> list[dict[int, object]]:
        """Slow, for tests and debugging: per row, ``{id: attr}``."""
        return [
            {int(k): v.item() for k, v in zip(self.row(i), self.row_attr(i), strict=True)}
            for i in range(self.n_rows)
        ]

    @staticmethod
    def empty(n_rows: int, attr_dtype: npt.DTypeLike = np.bool_) -> CsrSets:
        return CsrSets(
            np.zeros(n_rows + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=attr_dtype)
        )

    @staticmethod
    def from_rows(
        rows: npt.NDArray[np.int64], ids: IdArray, attr: npt.NDArray[np.generic], n_rows: int
    ) -> CsrSets:
        """Build from (row, id, attr) triples; entries keep their relative order within a row."""
        order = np.argsort(rows, kind="stable")
        counts = np.bincount(rows, minlength=n_rows)
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return CsrSets(indptr, np.asarray(ids, dtype=np.int64)[order], np.asarray(attr)[order])


@dataclass(frozen=True)
class CsrDiff:
    """What changed in one category since the previous tick, aligned with the current rows.

    - ``added``: entries new in the row (with their attribute),
    - ``removed``: entries that left the row (attribute as it was),
    - ``changed``: entries still in the row whose attribute changed (new attribute): an audio source
      that became flat, a position peer that moved to another tier.

    A listener that is new this tick gets its whole row as ``added``.
    """

    added: CsrSets
    removed: CsrSets
    changed: CsrSets


def apply_diff(
    prev: CsrSets, prev_listener_ids: IdArray, listener_ids: IdArray, diff: CsrDiff
) -> dict[int, dict[int, object]]:
    """Pure helper: apply `diff` to the previous sets, keyed by listener id, and return the new sets as
    ``{listener_id: {source_id: attr}}``. This is what a consumer of the diffs (the SFU) does."""
    by_id = {int(lid): d for lid, d in zip(prev_listener_ids, prev.as_dicts(), strict=True)}
    out: dict[int, dict[int, object]] = {}
    added, removed, changed = diff.added.as_dicts(), diff.removed.as_dicts(), diff.changed.as_dicts()
    for row, lid in enumerate(listener_ids):
        cur = dict(by_id.get(int(lid), {}))
        for sid in removed[row]:
            del cur[sid]
        for sid, value in changed[row].items():
            if sid not in cur:
                raise KeyError(f"changed entry {sid} not present for listener {lid}")
            cur[sid] = value
        for sid, value in added[row].items():
            if sid in cur:
                raise KeyError(f"added entry {sid} already present for listener {lid}")
            cur[sid] = value
        out[int(lid)] = cur
    return out
