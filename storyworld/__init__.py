"""ShotStream's procedural story world: the training data and the yardstick of the tiny model.

A cast of 8 character kinds in colour variants, 8 places, 3 framings x 3 camera moves, 8 actions,
day and night; multi-shot stories captioned in the official ShotStream JSON format and rendered
at the `tiny` preset's geometry (64x64 RGB, 16 fps, 81-frame shots) with numpy alone.
The evaluation probe (`storyworld.probe`, needs torch) is not imported here.

    from storyworld import sample_story, render_story, story_captions, vocabulary
    story = sample_story(seed=0, split="train", index=0)
    frames, boxes = render_story(story)          # (shots, 81, 64, 64, 3) uint8
    captions = story_captions(story)             # {"global_caption": ..., "shot1": ..., ...}
"""
from __future__ import annotations

from storyworld.captions import story_captions, tokenize, vocabulary
from storyworld.constants import FPS, FRAME_SIZE, FRAMES_PER_SHOT, shot_frames
from storyworld.dataset import load_story
from storyworld.render import render_shot, render_story
from storyworld.sampling import sample_story
from storyworld.story import Actor, Camera, Member, Shot, Story

__all__ = [
    "FPS", "FRAME_SIZE", "FRAMES_PER_SHOT", "Actor", "Camera", "Member", "Shot", "Story",
    "load_story", "render_shot", "render_story", "sample_story", "shot_frames", "story_captions",
    "tokenize", "vocabulary",
]
