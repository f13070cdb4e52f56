"""What the probe looks at and what it is asked: clips of a shot and their label targets (numpy).

A clip is 5 frames of one shot at offsets (0, 3, 6, 20, 40) from a start frame: the close trio
shows limb motion (actions), the far pair shows camera travel and zoom. A shot is read through a
few clips spread over it. Targets are class indices into the `storyworld.world` tuples.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from storyworld.constants import FRAMES_PER_SHOT
from storyworld.render import render_shot
from storyworld.story import Story
from storyworld.world import ACTIONS, CAMERA_MOVES, FRAMINGS, KIND_NAMES, PLACE_NAMES, TIMES

CLIP_OFFSETS = (0, 3, 6, 20, 40)
CLIP_SPAN = CLIP_OFFSETS[-1]
CLASS_HEADS = {"place": PLACE_NAMES, "framing": FRAMINGS, "camera": CAMERA_MOVES, "action": ACTIONS,
               "time": TIMES}
N_KINDS = len(KIND_NAMES)


def clip_offsets(n_frames: int) -> tuple[int, ...]:
    """The offsets, squeezed proportionally into shots shorter than the span (less reliable)."""
    if n_frames - 1 >= CLIP_SPAN:
        return CLIP_OFFSETS
    return tuple(int(round(o * (n_frames - 1) / CLIP_SPAN)) for o in CLIP_OFFSETS)


def clip_starts(n_frames: int, count: int) -> list[int]:
    """`count` clip starts spread evenly over a shot of `n_frames` frames."""
    last = max(0, n_frames - 1 - clip_offsets(n_frames)[-1])
    return [int(round(v)) for v in np.linspace(0, last, count)]


def clips_from_frames(frames: np.ndarray, starts: Sequence[int]) -> np.ndarray:
    """(len(starts), 5, H, W, 3) clips cut from one shot's frames (T, H, W, 3)."""
    offs = np.asarray(clip_offsets(len(frames)))
    return frames[np.asarray(starts)[:, None] + offs[None, :]]


def render_clips(story: Story, shot_index: int, starts: Sequence[int]) -> np.ndarray:
    """Render only the frames the clips need (one background pass for all of them)."""
    idx = np.asarray(starts)[:, None] + np.asarray(CLIP_OFFSETS)[None, :]
    wanted = np.unique(idx)
    frames, _ = render_shot(story, shot_index, wanted)
    return frames[np.searchsorted(wanted, idx)]


def shot_targets(story: Story, shot_index: int) -> dict[str, np.ndarray]:
    """Targets of one shot: class indices, a multi-hot of visible kinds, and each visible kind's
    colour variant and action (-1 where the kind is not in the shot)."""
    shot = story.shots[shot_index]
    present = np.zeros(N_KINDS, np.float32)
    variant = np.full(N_KINDS, -1, np.int64)
    kind_action = np.full(N_KINDS, -1, np.int64)
    for a in shot.actors:
        m = story.cast[a.member]
        k = KIND_NAMES.index(m.kind)
        present[k], variant[k], kind_action[k] = 1.0, m.variant, ACTIONS.index(a.action)
    values = {"place": shot.place, "framing": shot.framing, "camera": shot.camera.move,
              "action": shot.action, "time": shot.time}
    out = {name: np.int64(CLASS_HEADS[name].index(v)) for name, v in values.items()}
    out.update(characters=present, variant=variant, kind_action=kind_action)
    return out


def default_starts(count: int = 3) -> list[int]:
    return clip_starts(FRAMES_PER_SHOT, count)
