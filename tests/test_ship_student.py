"""build/ship_student.py: a trained stage's weights become the embedded DiT only when the story eval, read beside the
runtime row, can tell them better; a refusal writes nothing."""
from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import numpy as np

import cli_runner
from distill.story_eval import story_intervals
from runtime.model import default_weights_dir
from runtime.weights import sha256_file
from storyworld.probe.metrics import ADHERENCE_ATTRIBUTES

REPO = Path(__file__).resolve().parents[1]
STORIES = 20


def _stage(folder: Path) -> Path:
    """A finished stage's folder: real DiT weights (the shipped ones) and the manifest a stage writes."""
    folder.mkdir()
    shutil.copy(default_weights_dir("tiny") / "dit.safetensors", folder / "student.safetensors")
    manifest = {"file": "student.safetensors", "sha256": sha256_file(folder / "student.safetensors"), "stage": "ode",
                "teacher": "teacher.safetensors", "init": None, "seed": 1, "steps": 10, "samples": 320,
                "recipe": {"pairs": 32}, "wall_seconds": 12.0, "trajectory_seconds": 3.0, "device": "cpu",
                "torch": "2", "complete": True}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _row(hits_per_story: np.ndarray) -> dict:
    """A scored row of the story eval: each story read 4 times per attribute, `hits_per_story` of them right."""
    totals = [{a: [float(h), 4] for a in ADHERENCE_ATTRIBUTES} for h in hits_per_story]
    shares = {a: float(hits_per_story.sum() / (4 * len(hits_per_story))) for a in ADHERENCE_ATTRIBUTES}
    return {"adherence": {**shares, "mean": float(np.mean(list(shares.values())))}, "story_totals": totals}


def _eval(path: Path, student_hits: Callable[[np.ndarray], np.ndarray]) -> Path:
    runtime = np.random.default_rng(0).integers(0, 3, STORIES)
    rows = {"runtime": _row(runtime), "student:x": _row(student_hits(runtime))}
    story_intervals(rows, seed=5)
    path.write_text(json.dumps({"suite": "story", "stories": STORIES, "seed": 5, "rows": rows}))
    return path


def _ship(tmp_path: Path, *args: str) -> tuple[CompletedProcess, Path]:
    out = tmp_path / "assets"
    if not out.exists():
        out.mkdir()
        shutil.copy(default_weights_dir("tiny") / "manifest.json", out / "manifest.json")
    done = cli_runner.run([sys.executable, str(REPO / "build" / "ship_student.py"), *args, "--out", str(out)],
                          timeout=120)
    return done, out


def test_a_student_the_eval_cannot_tell_better_is_refused_and_nothing_is_written(tmp_path):
    run = _stage(tmp_path / "ode")
    same = _eval(tmp_path / "same.json", lambda runtime: runtime)
    assets_manifest = tmp_path / "assets" / "manifest.json"  # what _ship lays out for the refused calls
    done, out = _ship(tmp_path, str(run), "--eval", str(same), "--row", "student:x")
    assert done.returncode != 0 and "not a gain these stories can tell from none" in done.stderr, done.stderr
    assert "+0.000" in done.stderr and not (out / "dit.safetensors").exists()
    assert assets_manifest.read_text() == (default_weights_dir("tiny") / "manifest.json").read_text()
    done, out = _ship(tmp_path, str(run), "--eval", str(same), "--row", "student:nope")
    assert done.returncode != 0 and "no row 'student:nope'" in done.stderr and not (out / "dit.safetensors").exists()

    done, out = _ship(tmp_path, str(run), "--eval", str(same), "--row", "student:x", "--even-if-not-better")
    assert done.returncode == 0, done.stderr
    assert (out / "dit.safetensors").read_bytes() == (run / "student.safetensors").read_bytes()


def test_a_better_student_ships_with_its_stages_and_eval_row(tmp_path):
    run = _stage(tmp_path / "ode")
    better = _eval(tmp_path / "better.json", lambda runtime: runtime + 1)
    done, out = _ship(tmp_path, str(run), "--eval", str(better), "--row", "student:x")
    assert done.returncode == 0, done.stderr
    assert "student:x: mean adherence +0.250 against the runtime row" in done.stderr
    entry = json.loads((out / "manifest.json").read_text())["files"]["dit.safetensors"]
    assert entry["sha256"] == sha256_file(out / "dit.safetensors") == sha256_file(run / "student.safetensors")
    assert [s["stage"] for s in entry["stages"]] == ["ode"] and entry["wall_seconds"] == 15.0
    assert entry["eval"]["stories"] == STORIES and entry["eval"]["vs_runtime"]["mean"]["ci95"][0] > 0
    assert "story_totals" not in entry["eval"]


def test_an_eval_without_the_runtime_row_ships_and_says_it_was_not_compared(tmp_path):
    run = _stage(tmp_path / "ode")
    rows = {"student:x": _row(np.full(STORIES, 2))}
    story_intervals(rows, seed=5)
    alone = tmp_path / "alone.json"
    alone.write_text(json.dumps({"suite": "story", "stories": STORIES, "seed": 5, "rows": rows}))
    done, out = _ship(tmp_path, str(run), "--eval", str(alone), "--row", "student:x")
    assert done.returncode == 0 and "does not compare it with the runtime row" in done.stderr, done.stderr
    assert json.loads((out / "manifest.json").read_text())["files"]["dit.safetensors"]["eval"]["stories"] == STORIES


def test_a_student_of_another_geometry_is_refused_and_nothing_is_written(tmp_path):
    """The committed patch-2 student (preset tiny-p2) cannot be the patch-1 `tiny` preset's DiT: the runtime's strict
    load would refuse it after the copy, so the ship refuses it first, whatever the eval says."""
    run = tmp_path / "p2"
    run.mkdir()
    weights = REPO / "distill" / "weights" / "student-tiny-p2-ode.safetensors"
    shutil.copy(weights, run / weights.name)
    (run / "manifest.json").write_text(weights.with_suffix(".json").read_text())
    better = _eval(tmp_path / "better.json", lambda runtime: runtime + 1)
    done, out = _ship(tmp_path, str(run), "--eval", str(better), "--row", "student:x", "--even-if-not-better")
    assert done.returncode != 0 and "trained in preset 'tiny-p2'" in done.stderr, done.stderr
    assert "nothing was written" in done.stderr and not (out / "dit.safetensors").exists()
    assert (out / "manifest.json").read_text() == (default_weights_dir("tiny") / "manifest.json").read_text()
