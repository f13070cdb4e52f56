"""Story world rendering: geometry, determinism, frame subsets, and labels that match the pixels."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from storyworld import FPS, FRAME_SIZE, FRAMES_PER_SHOT, render_shot, render_story, sample_story, shot_frames
from storyworld.places import character_light
from storyworld.world import KINDS, kind_index


def test_geometry_matches_the_tiny_preset():
    assert (FRAME_SIZE, FPS, FRAMES_PER_SHOT) == (64, 16, 81)
    assert [shot_frames(c) for c in range(1, 8)] == [9, 21, 33, 45, 57, 69, 81]
    with pytest.raises(ValueError):
        shot_frames(8)


def test_render_story_shapes_and_dtypes():
    story = sample_story(0, "train", 3)
    frames, boxes = render_story(story)
    assert frames.shape == (len(story.shots), 81, 64, 64, 3) and frames.dtype == np.uint8
    assert boxes.shape == (len(story.shots), 81, len(story.cast), 4) and boxes.dtype == np.int16
    assert frames.std() > 10  # not a blank canvas


def test_same_story_renders_identically_and_subsets_match_the_full_shot():
    story = sample_story(5, "train", 1)
    full, full_boxes = render_shot(story, 0)
    again, _ = render_shot(story, 0)
    assert np.array_equal(full, again)
    part, part_boxes = render_shot(story, 0, [0, 33, 80])
    assert np.array_equal(part, full[[0, 33, 80]])
    assert np.array_equal(part_boxes, full_boxes[[0, 33, 80]])


def _single_actor_day_shots(n: int):
    found = []
    for i in range(200):
        story = sample_story(11, "train", i)
        for k, shot in enumerate(story.shots):
            if len(shot.actors) == 1 and shot.framing != "closeup":
                found.append((story, k))
        if len(found) >= n:
            return found
    raise AssertionError("too few single-actor shots")


def test_a_character_labelled_present_shows_its_colour_inside_its_box():
    for story, k in _single_actor_day_shots(12):
        shot = story.shots[k]
        frames, boxes = render_shot(story, k, [40])
        member = story.cast[shot.actors[0].member]
        main = np.array(KINDS[kind_index(member.kind)].variants[member.variant].main, float)
        expected = main * np.array(character_light(shot.place, shot.time))
        x0, y0, x1, y1 = boxes[0, shot.actors[0].member]
        assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
        patch = frames[0, y0:y1, x0:x1].astype(float)
        close = np.abs(patch - expected).max(axis=-1) <= 12
        assert close.sum() >= 3, (member.name, shot.place, shot.framing)
        absent = [m for m in range(len(story.cast)) if m != shot.actors[0].member]
        assert (boxes[0, absent] == -1).all()


def test_static_camera_with_idle_cast_keeps_the_background_still_and_pans_move_it():
    story = sample_story(2, "train", 0)
    shot = story.shots[0]
    idle = tuple(dataclasses.replace(a, action="idle", speed=0.0) for a in shot.actors)
    still = dataclasses.replace(shot, camera=dataclasses.replace(shot.camera, move="static"), actors=idle)
    panned = dataclasses.replace(still, camera=dataclasses.replace(still.camera, move="pan", direction=1,
                                                                   travel=24.0))
    story = dataclasses.replace(story, shots=(still, panned))
    frames, _ = render_shot(story, 0, [0, 12, 80])
    assert np.array_equal(frames[0], frames[2]) or np.abs(frames[0].astype(int) - frames[2]).mean() < 1.0
    moving, _ = render_shot(story, 1, [0, 80])
    assert np.abs(moving[0].astype(int) - moving[1]).mean() > 5.0
