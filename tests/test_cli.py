"""`shotstream render` and `shotstream model-info` as a user runs them (a real subprocess)."""
from __future__ import annotations

import json
import subprocess
import sys

STORY = {"global_caption": "a knight and a dragon, pixel art",
         "shot1": "the knight walks in the forest", "shot2": "the dragon flies above the castle"}


def shotstream(*args, check=True):
    return subprocess.run([sys.executable, "-m", "runtime.cli", *args], capture_output=True, text=True,
                          check=check, timeout=300)


def render(tmp_path, seed, *extra):
    story = tmp_path / "story.json"
    story.write_text(json.dumps(STORY))
    out = shotstream("render", str(story), "--seed", str(seed), "--json", *extra)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_two_shot_story_is_162_frames_and_reproducible_by_seed(tmp_path):
    a = render(tmp_path, 1, "--out", str(tmp_path / "a.mp4"))
    b = render(tmp_path, 1)
    c = render(tmp_path, 2)
    assert a["frames"] == 162 and a["shots"] == 2 and (a["width"], a["height"], a["fps"]) == (64, 64, 16)
    assert a["frames_sha256"] == b["frames_sha256"] != c["frames_sha256"]
    assert (tmp_path / "a.mp4").stat().st_size > 1000
    assert a["generate_seconds"] > 0 and a["first_frame_seconds"] <= a["generate_seconds"]


def test_model_info_lists_the_official_tensors():
    out = shotstream("model-info", "--preset", "shotstream-1.3b", "--state-dict").stdout
    ref = ["\t".join(line.split("\t")[:2]) for line in open("tests/data/shotstream-1.3b-state-dict.tsv").read().splitlines()]
    assert out.splitlines() == ref


def test_bad_story_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"shot1": "x"}')
    r = shotstream("render", str(bad), check=False)
    assert r.returncode == 2 and "global_caption" in r.stderr
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"global_caption": "a knight", "shot1": "the knight rides a zeppelin"}))
    r = shotstream("render", str(unknown), check=False)
    assert r.returncode == 2 and "zeppelin" in r.stderr and "Traceback" not in r.stderr
