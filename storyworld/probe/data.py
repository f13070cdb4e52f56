"""Labelled clip sets for training and scoring the probe, rendered straight from sampled stories.

Nothing touches disk: `clip_set(seed, split, stories, clips_per_shot)` samples the stories,
renders only the frames its clips need (in worker processes if asked) and stacks them with their
targets. Clip starts are drawn from each story's own generator, so a set depends only on its
arguments, never on the number of workers.
"""
from __future__ import annotations

import multiprocessing
from dataclasses import dataclass

import numpy as np

from storyworld.probe.clips import CLIP_SPAN, render_clips, shot_targets
from storyworld.constants import FRAMES_PER_SHOT
from storyworld.sampling import sample_story, story_rng

_START_STREAM = 2


@dataclass(frozen=True)
class ClipSet:
    clips: np.ndarray  # (N, 5, 64, 64, 3) uint8
    targets: dict[str, np.ndarray]  # name -> (N, ...) stacked shot targets

    def __len__(self) -> int:
        return len(self.clips)


def _story_clips(job: tuple[int, str, int, int]) -> tuple[np.ndarray, list[dict]]:
    seed, split, index, per_shot = job
    story = sample_story(seed, split, index)
    rng = story_rng(seed, split, index, _START_STREAM)
    clips, targets = [], []
    for k in range(len(story.shots)):
        starts = rng.integers(0, FRAMES_PER_SHOT - CLIP_SPAN, per_shot)
        clips.append(render_clips(story, k, starts))
        targets += [shot_targets(story, k)] * per_shot
    return np.concatenate(clips), targets


def clip_set(seed: int, split: str, stories: int, clips_per_shot: int = 1, workers: int = 1,
             progress: bool = False) -> ClipSet:
    jobs = [(seed, split, i, clips_per_shot) for i in range(stories)]
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            parts = list(_progress(pool.imap(_story_clips, jobs, chunksize=8), len(jobs), progress))
    else:
        parts = list(_progress(map(_story_clips, jobs), len(jobs), progress))
    clips = np.concatenate([c for c, _ in parts])
    flat = [t for _, ts in parts for t in ts]
    targets = {name: np.stack([t[name] for t in flat]) for name in flat[0]}
    return ClipSet(clips, targets)


def _progress(it, total: int, show: bool):
    if not show:
        return it
    from tqdm import tqdm

    return tqdm(it, total=total, unit="story", desc="rendering clips")
