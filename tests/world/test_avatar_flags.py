"""Avatar flag bits set and cleared in place (a regression: numpy 2 refuses uint8 & negative int)."""

from __future__ import annotations

import numpy as np

from world.media import FLAG_AUDIO, FLAG_HIDDEN, FLAG_VIDEO
from world.state import AvatarTable
from world.tick import _groups


def test_flags_set_and_clear_every_bit() -> None:
    table = AvatarTable()
    table.add(7, (0, 0, 0), (0, 0, 0, 1), FLAG_AUDIO | FLAG_VIDEO | FLAG_HIDDEN)
    table.set_flag(7, FLAG_VIDEO, False)
    assert table.flags[table.row_of[7]] == FLAG_AUDIO | FLAG_HIDDEN
    table.set_flag(7, FLAG_AUDIO, False)
    table.set_flag(7, FLAG_HIDDEN, False)
    assert table.flags[table.row_of[7]] == 0
    table.set_flag(7, FLAG_VIDEO, True)
    assert table.flags[table.row_of[7]] == FLAG_VIDEO


def test_pair_key_groups_empty_and_full() -> None:
    assert _groups(np.array([], dtype=np.int64)) == []
    keys = np.array([(1 << 32) | 5, (1 << 32) | 9, (3 << 32) | 2], dtype=np.int64)
    groups = _groups(keys)
    assert [g[0] for g in groups] == [1, 3]
    assert groups[0][1].tolist() == [5, 9] and groups[1][1].tolist() == [2]


def test_sorted_membership_matches_isin() -> None:
    from world.tick import _sorted_member

    rng = np.random.default_rng(3)
    for n, m in ((0, 5), (5, 0), (50, 80), (1000, 300)):
        hay = np.unique(rng.integers(0, 2000, n)).astype(np.int64)
        needles = np.unique(rng.integers(0, 2000, m)).astype(np.int64)
        assert _sorted_member(needles, hay).tolist() == np.isin(needles, hay).tolist()
