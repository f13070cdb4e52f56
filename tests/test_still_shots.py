"""build/still_shots.py: the seams of the chunk loop are where it looks, a jump there is what it finds, and the truth
reads as still."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "build"))

import still_shots  # noqa: E402
from storyworld.probe import Probe  # noqa: E402


def test_the_seams_are_the_boundaries_after_every_third_latent_frame():
    seam, group = still_shots.seams(81, 4, 3)
    assert seam == [8, 20, 32, 44, 56, 68]  # frame 8 ends chunk 1 (latents 0-2), frame 20 chunk 2, ...
    assert group == [0, 4, 12, 16, 24, 28, 36, 40, 48, 52, 60, 64, 72, 76]
    assert sorted(seam + group) == list(range(0, 80, 4))  # every latent boundary, once


def test_a_shot_that_jumps_at_the_seams_reads_above_one_and_an_even_one_near_one():
    rng = np.random.default_rng(0)
    base = rng.integers(40, 200, (64, 64, 3)).astype(np.float32)
    seam, group = still_shots.seams(81, 4, 3)
    even, jumpy = [base.copy()], [base.copy()]
    for t in range(80):  # an even shot changes by the same small amount at every latent boundary
        even.append(even[-1] + (3.0 if t in seam + group else 0.0))
        jumpy.append(jumpy[-1] + (12.0 if t in seam else 3.0 if t in group else 0.0))
    probe = Probe.load()
    shots = lambda frames: [np.clip(np.stack(frames), 0, 255).astype(np.uint8)]
    flat = still_shots.read_row(shots(even), probe, 4, 3)
    jumps = still_shots.read_row(shots(jumpy), probe, 4, 3)
    assert flat["seam_ratio"] == pytest.approx(1.0, abs=0.05)
    assert jumps["seam_ratio"] == pytest.approx(4.0, rel=0.1)
    assert jumps["change"]["80"] > flat["change"]["80"]
    assert len(flat["diff_by_frame"]) == 80 and set(flat["static_by_clip"]) == {"0", "10", "20", "30", "40"}


def test_the_script_reads_the_truths_still_shots_as_still(tmp_path):
    out = tmp_path / "still.json"
    assert still_shots.main(["--stories", "2", "--json", str(out)]) == 0
    truth = json.loads(out.read_text())["rows"]["truth"]
    assert truth["shots"] >= 1
    assert all(v == 1.0 for v in truth["static_by_clip"].values())  # the probe reads the rendered still shots right
    assert truth["seam_ratio"] < 1.5  # rendered frames have no chunk seams
    with pytest.raises(SystemExit, match="unknown --model"):
        still_shots.main(["--stories", "1", "--model", "nonsense"])
