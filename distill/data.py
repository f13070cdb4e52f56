"""Story-world clips for training and evaluation, rendered once into memory pools.

A clip is a window of 1 + 4k consecutive frames of one shot (its first frame is encoded alone, as a shot's
first frame is). Pools are deterministic by (seed, split, count), rendered with a progress bar.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np

from runtime.progress import progress
from storyworld.render import render_shot
from storyworld.sampling import sample_story
from storyworld.constants import FRAMES_PER_SHOT


def clip_pool(seed: int, split: str, count: int, frames: int, desc: str = "render clips",
              workers: int = 1) -> np.ndarray:
    """(count, frames, 64, 64, 3) uint8: clip i from story i of the split, a random shot and window (drawn from
    clip i's own random stream, so the pool is the same whatever `workers` renders it)."""
    out = np.empty((count, frames, 64, 64, 3), np.uint8)
    spans = [(a, min(count, a + 256)) for a in range(0, count, 256)]
    with progress(count, desc, unit="clip") as bar:
        if workers <= 1:
            for a, b in spans:
                out[a:b] = _render_clips(seed, split, count, frames, a, b)
                bar.update(b - a)
        else:
            with ProcessPoolExecutor(workers) as pool:
                for (a, b), clips in zip(spans, pool.map(_render_clips, *zip(*[(seed, split, count, frames, a, b)
                                                                                 for a, b in spans]))):
                    out[a:b] = clips
                    bar.update(b - a)
    return out


def _render_clips(seed: int, split: str, count: int, frames: int, first: int, last: int) -> np.ndarray:
    out = np.empty((last - first, frames, 64, 64, 3), np.uint8)
    for i in range(first, last):
        rng = np.random.default_rng([seed, count, frames, 7, i])
        story = sample_story(seed, split, i)
        shot = int(rng.integers(len(story.shots)))
        start = int(rng.integers(0, FRAMES_PER_SHOT - frames + 1))
        out[i - first], _ = render_shot(story, shot, range(start, start + frames))
    return out


def shot_pool(seed: int, split: str, count: int, desc: str = "render shots") -> np.ndarray:
    """(count, 81, 64, 64, 3) uint8: the first shot of stories 0..count-1 of the split, whole."""
    out = np.empty((count, FRAMES_PER_SHOT, 64, 64, 3), np.uint8)
    with progress(count, desc, unit="shot") as bar:
        for i in range(count):
            out[i], _ = render_shot(sample_story(seed, split, i), 0)
            bar.update(1)
    return out


def to_unit(frames: np.ndarray, device=None):
    """uint8 (..., H, W, 3) -> float tensor (..., 3, H, W) in [-1, 1], on `device` (default: the host). The bytes
    travel as uint8 and become floats there: a quarter of the copy, and no float pass on the host."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(frames))
    if device is not None:
        t = t.to(device)
    return t.float().div_(127.5).sub_(1.0).movedim(-1, -3)
