"""Context selection, flags and caption routing for 1..7 previous shots (the spec's table)."""
from __future__ import annotations

import pytest

from runtime.context import context_counts, context_plan, flags_for_shot, frames_ever_needed, global_indices

TABLE = {
    1: [0, 16, 32, 48, 64, 80],
    2: [0, 40, 80, 81, 121, 161],
    3: [0, 80, 81, 161, 162, 242],
}
COUNTS = {4: [1, 1, 2, 2], 5: [1, 1, 1, 1, 2], 6: [1] * 6, 7: [0, 1, 1, 1, 1, 1, 1]}


@pytest.mark.parametrize("n", range(1, 8))
def test_context_indices_and_flags(n):
    lengths = [81] * n
    idx = global_indices(lengths, 6)
    assert len(idx) == 6 and idx == sorted(idx)
    if n in TABLE:
        assert idx == TABLE[n]
    if n in COUNTS:
        assert context_counts(n, 6) == COUNTS[n]
    flags, new_flag = flags_for_shot(context_plan(lengths, 6), 6)
    assert new_flag == n  # shot k's frames carry flag k
    assert flags == sorted(flags) and flags[-1] == n - 1


def test_first_shot_has_zero_context_and_new_flag_one():
    assert context_plan([], 6) == []
    assert flags_for_shot([], 6) == ([0] * 6, 1)


def test_kept_frames_cover_every_future_plan():
    for length in (9, 21, 45, 81):
        kept = set(frames_ever_needed(length, 6))
        for n in range(1, 9):
            for shot, i in context_plan([length] * n, 6):
                assert i in kept
