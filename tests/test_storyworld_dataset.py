"""Story world data sets: byte-identical regeneration, held-out compositions, round trips, CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from storyworld import load_story, render_story, sample_story
from storyworld.__main__ import main
from storyworld.story import Story
from storyworld.world import held_out_compositions


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _generate(out: Path, seed: int) -> dict[str, bytes]:
    assert main(["generate", "--stories", "2", "--heldout", "1", "--out", str(out), "--seed", str(seed)]) == 0
    return _files(out)


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    first = _generate(tmp_path / "a", 4)
    assert first == _generate(tmp_path / "b", 4)
    other = _generate(tmp_path / "c", 5)
    assert other["train/story_000000.npz"] != first["train/story_000000.npz"]
    assert len([k for k in first if k.endswith(".npz")]) == 3
    manifest = json.loads(first["manifest.json"])
    assert manifest["splits"] == {"train": 2, "heldout": 1} and manifest["frames_per_shot"] == 81


def test_stored_story_round_trips(tmp_path):
    _generate(tmp_path, 7)
    frames, boxes, captions, story = load_story(tmp_path / "heldout" / "story_000000.npz")
    assert story == sample_story(7, "heldout", 0)
    again, again_boxes = render_story(story)
    assert np.array_equal(frames, again) and np.array_equal(boxes, again_boxes)
    assert len(captions) == len(story.shots) + 1
    csv = (tmp_path / "train.csv").read_text().splitlines()
    assert csv[0] == "shot_num_from_caption,json_path,frame_number,video_path" and len(csv) == 3


def test_story_dict_round_trip_is_exact():
    story = sample_story(1, "train", 17)
    assert Story.from_dict(json.loads(json.dumps(story.to_dict()))) == story


def _triples(story: Story) -> set[tuple[str, str, str]]:
    return {(story.cast[a.member].kind, shot.place, a.action) for shot in story.shots for a in shot.actors}


def test_heldout_split_holds_compositions_never_seen_in_training():
    held = set(held_out_compositions())
    assert len(held) == 64
    train = set().union(*(_triples(sample_story(0, "train", i)) for i in range(400)))
    assert not train & held
    for i in range(60):
        story = sample_story(0, "heldout", i)
        unseen = _triples(story) - train
        assert unseen & held, f"held-out story {i} has no held-out composition"
        assert any(shot.held_out for shot in story.shots)
    # every kind, place and action still appears in training, only the combinations are new
    kinds, places, actions = (set(t[k] for t in train) for k in range(3))
    assert len(kinds) == 8 and len(places) == 8 and len(actions) == 8


def test_cast_keeps_its_look_from_shot_to_shot():
    for i in range(30):
        story = sample_story(3, "train", i)
        for shot in story.shots:
            assert {a.member for a in shot.actors} <= set(range(len(story.cast)))
            assert len({a.member for a in shot.actors}) == len(shot.actors)
        assert len({m.kind for m in story.cast}) == len(story.cast)  # one of each kind: names are unique
