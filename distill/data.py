"""Story-world clips for training and evaluation, rendered once into memory pools.

A clip is a window of 1 + 4k consecutive frames of one shot (its first frame is encoded alone, as a shot's
first frame is). Pools are deterministic by (seed, split, count), rendered with a progress bar.
"""
from __future__ import annotations

import numpy as np

from runtime.progress import progress
from storyworld.render import render_shot
from storyworld.sampling import sample_story
from storyworld.constants import FRAMES_PER_SHOT


def clip_pool(seed: int, split: str, count: int, frames: int, desc: str = "render clips") -> np.ndarray:
    """(count, frames, 64, 64, 3) uint8: clip i from story i of the split, a random shot and window."""
    rng = np.random.default_rng([seed, count, frames, 7])
    out = None
    with progress(count, desc, unit="clip") as bar:
        for i in range(count):
            story = sample_story(seed, split, i)
            shot = int(rng.integers(len(story.shots)))
            start = int(rng.integers(0, FRAMES_PER_SHOT - frames + 1))
            clip, _ = render_shot(story, shot, range(start, start + frames))
            if out is None:
                out = np.empty((count,) + clip.shape, np.uint8)
            out[i] = clip
            bar.update(1)
    return out


def shot_pool(seed: int, split: str, count: int, desc: str = "render shots") -> np.ndarray:
    """(count, 81, 64, 64, 3) uint8: the first shot of stories 0..count-1 of the split, whole."""
    out = np.empty((count, FRAMES_PER_SHOT, 64, 64, 3), np.uint8)
    with progress(count, desc, unit="shot") as bar:
        for i in range(count):
            out[i], _ = render_shot(sample_story(seed, split, i), 0)
            bar.update(1)
    return out


def to_unit(frames: np.ndarray):
    """uint8 (..., H, W, 3) -> float tensor (..., 3, H, W) in [-1, 1]."""
    import torch

    t = torch.from_numpy(frames).float().div_(127.5).sub_(1.0)
    return t.movedim(-1, -3)
