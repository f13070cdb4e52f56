"""Which earlier frames condition the next shot, with which shot flags and captions (spec section 4).

- Context frames: a budget of `context_frames` split over the n previous shots, base = budget // n, the
  remainder added one each to the *last* shots; within a shot, pixel indices round(linspace(first, last,
  count)) (count 1 -> its first frame). Shot 0 has no history: all-zero latents with flag 0.
- Flags: a context frame carries the id of the shot it came from; the new shot's frames carry
  last context flag + 1 (k for shot k >= 1, and 1 for shot 0).
- Captions: at shot k the text encoder gets captions 0..k; frame f reads caption min(flag_f, n_captions - 1).
"""
from __future__ import annotations

import numpy as np


def context_counts(n_shots: int, budget: int) -> list[int]:
    """Frames taken from each of `n_shots` previous shots."""
    if n_shots <= 0:
        return []
    base, extra = divmod(budget, n_shots)
    return [base + (1 if i >= n_shots - extra else 0) for i in range(n_shots)]


def shot_frame_indices(first: int, last: int, count: int) -> list[int]:
    """round(linspace(first, last, count)); count 1 gives the first frame, count 0 nothing."""
    if count <= 0:
        return []
    if count == 1:
        return [first]
    return [int(i) for i in np.round(np.linspace(first, last, count))]


def context_plan(shot_lengths: list[int], budget: int) -> list[tuple[int, int]]:
    """(shot id, frame index within that shot) of every context frame, in order, for the next shot."""
    plan = []
    for shot, count in enumerate(context_counts(len(shot_lengths), budget)):
        plan += [(shot, i) for i in shot_frame_indices(0, shot_lengths[shot] - 1, count)]
    return plan


def global_indices(shot_lengths: list[int], budget: int) -> list[int]:
    """The plan as pixel indices into the concatenated story (the form of the spec's table)."""
    starts = np.concatenate([[0], np.cumsum(shot_lengths)])
    return [int(starts[s]) + i for s, i in context_plan(shot_lengths, budget)]


def frames_ever_needed(length: int, budget: int) -> list[int]:
    """Every index of a shot of `length` frames that any future plan may pick (counts 1..budget)."""
    needed: set[int] = set()
    for count in range(1, budget + 1):
        needed.update(shot_frame_indices(0, length - 1, count))
    return sorted(needed)


def flags_for_shot(plan: list[tuple[int, int]], budget: int) -> tuple[list[int], int]:
    """(context flags, new-frame flag). No history: `budget` zero flags and new flag 1."""
    if not plan:
        return [0] * budget, 1
    flags = [shot for shot, _ in plan]
    return flags, flags[-1] + 1


def caption_index(flag: int, n_captions: int) -> int:
    return min(flag, n_captions - 1)
