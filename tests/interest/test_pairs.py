"""`interest.pairs` against the plain numpy it replaced: global stable argsort, dedupe, isin."""

from __future__ import annotations

import numpy as np
import pytest

from interest.csr import CsrSets
from interest.pairs import pair_keys, sorted_member


def _reference(
    ids: np.ndarray, listening: np.ndarray, pos: CsrSets, fwd: CsrSets, mix: CsrSets, last_tier: int
) -> tuple[np.ndarray, np.ndarray]:
    rows = np.concatenate([pos.row_of_entries(), fwd.row_of_entries(), mix.row_of_entries()])
    peers = np.concatenate([pos.ids, fwd.ids, mix.ids])
    heard = len(fwd.ids) + len(mix.ids)
    tiers = np.concatenate([pos.attr.astype(np.int16), np.full(heard, last_tier, dtype=np.int16)])
    keep = listening[rows]
    rows, peers, tiers = rows[keep], peers[keep], tiers[keep]
    keys = (ids[rows] << 32) | peers
    order = np.argsort(keys, kind="stable")  # position peers are listed first: they keep their tier
    keys, tiers = keys[order], tiers[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return keys[first], tiers[first]


def _random_sets(rng: np.random.Generator, ids: np.ndarray, width: int, attr: np.ndarray) -> CsrSets:
    n = len(ids)
    rows, peers = [], []
    for r in range(n):
        k = int(rng.integers(0, min(width, n) + 1))
        rows.append(np.full(k, r))
        peers.append(rng.choice(ids, size=k, replace=False))
    flat_rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    flat_peers = np.concatenate(peers) if peers else np.zeros(0, np.int64)
    return CsrSets.from_rows(flat_rows.astype(np.int64), flat_peers, attr[: len(flat_peers)], n)


@pytest.mark.parametrize("seed", range(8))
def test_pair_keys_match_the_numpy_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 60))
    # small ids take the bitmap path, large ones the per-row sort: both, in any order
    top = 4 * n + 1 if seed % 2 else 1 << 31
    ids = rng.choice(top, size=n, replace=False).astype(np.int64)
    listening = rng.random(n) < 0.8
    tiers = rng.integers(0, 3, size=n * n + 1).astype(np.int8)
    pos = _random_sets(rng, ids, 12, tiers)
    fwd = _random_sets(rng, ids, 4, np.zeros(n * n + 1, dtype=bool))
    mix = _random_sets(rng, ids, 8, rng.random(n * n + 1) < 0.2)
    keys, got_tiers = pair_keys(ids, listening, pos, fwd, mix, 2)
    want_keys, want_tiers = _reference(ids, listening, pos, fwd, mix, 2)
    assert keys.tolist() == want_keys.tolist()
    assert got_tiers.tolist() == want_tiers.tolist()
    assert keys.dtype == np.int64 and got_tiers.dtype == np.int16


def test_a_heard_position_peer_keeps_its_tier() -> None:
    ids = np.array([7, 3], dtype=np.int64)
    pos = CsrSets(np.array([0, 1, 1]), np.array([3]), np.array([0], dtype=np.int8))
    heard = CsrSets(np.array([0, 1, 1]), np.array([3]), np.array([False]))
    none = CsrSets.empty(2)
    keys, tiers = pair_keys(ids, np.array([True, True]), pos, heard, none, 2)
    assert keys.tolist() == [(7 << 32) | 3] and tiers.tolist() == [0]
    keys, tiers = pair_keys(ids, np.array([True, True]), CsrSets.empty(2, np.int8), heard, none, 2)
    assert keys.tolist() == [(7 << 32) | 3] and tiers.tolist() == [2]
    keys, _ = pair_keys(ids, np.array([False, True]), pos, heard, none, 2)
    assert keys.tolist() == []


def test_sorted_member_is_isin_for_sorted_arrays() -> None:
    rng = np.random.default_rng(5)
    for n, m in ((0, 0), (0, 5), (5, 0), (50, 80), (3000, 2000)):
        hay = np.unique(rng.integers(0, 4000, n)).astype(np.int64) << 20
        needles = np.unique(rng.integers(0, 4000, m)).astype(np.int64) << 20
        assert sorted_member(needles, hay).tolist() == np.isin(needles, hay).tolist()
