"""build/train_gpu.sh, the one prepared GPU run (data, teacher, ODE initialisation, both DMD stages inside a
wall-time budget, build/gpu_check.sh beside the data), end to end at a test's size on the CPU on the chosen grid
(the small recipe with PRESET=tiny-p1, its image phase on a seeded stream as the GPU recipe's, the data stage
bounded in time, the teacher started from the committed image phase): every stage leaves weights and a manifest
with its throughput, build/pack_run.sh sends the run back in a few files, and the story eval reads the patch-1
teacher and student."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import streamed_smoke_recipe
from storyworld.probe import WEIGHTS_PATH

ROOT = Path(__file__).parents[1]
IMAGE_PHASE = ROOT / "distill" / "weights" / "teacher-tiny-p1-image.safetensors"  # the committed warm start


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """The run in two calls, as a GPU run split over calls of one machine: the data (the check beside it) and the
    teacher first, then the students from the teacher the first call left in the same folder."""
    folder = tmp_path_factory.mktemp("gpu-script")
    out, recipe = folder / "run", streamed_smoke_recipe(folder)
    env = {**os.environ, "OMP_NUM_THREADS": "2", "GPU_CHECK_SECONDS": "300", "DATA_SECONDS": "1",
           "GPU_CHECK_ARGS": "--no-install", "PRESET": "tiny-p1", "PYTHON": sys.executable,
           "TEACHER_INIT": str(IMAGE_PHASE)}
    for stages, budget in (("data teacher", "600"), ("students", "300")):
        proc = subprocess.run(["bash", str(ROOT / "build" / "train_gpu.sh"), str(out), str(recipe), budget],
                              capture_output=True, text=True, timeout=900, env={**env, "STAGES": stages})
        assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_the_gpu_script_runs_every_stage_on_the_patch_1_grid_and_records_throughput(run):
    teacher = json.loads((run / "teacher" / "manifest.json").read_text())
    assert teacher["complete"] and teacher["steps"] == 5 and teacher["device"].startswith("cpu")
    assert teacher["preset"] == "tiny-p1" and teacher["init"] == str(IMAGE_PHASE)  # TEACHER_INIT's weights loaded
    assert teacher["init_sha256"] == json.loads(IMAGE_PHASE.with_suffix(".json").read_text())["sha256"]
    streamed = teacher["stream"]  # the image phase on a ring seeded from the frames shards, never waiting
    assert streamed["seeded_frames"] == teacher["data"]["frames"]["samples"] > 0 and streamed["waited_seconds"] == 0
    shots = json.loads((run / "data" / "shots" / "index.json").read_text())
    assert shots["stories"] >= 1 and shots["stories_planned"] == 2  # DATA_SECONDS bounds the data stage
    assert teacher["data"]["shots"]["complete"] == shots["complete"]  # the manifest says whether it was cut
    for phase in ("image", "sequence"):
        rates = teacher["throughput"][phase]
        assert rates["samples_per_s"] > 0 and rates["tokens_per_s"] > 0 and 0 < rates["of_peak"] < 1
    for stage in ("ode", "dmd", "dmd-long"):
        manifest = json.loads((run / stage / "manifest.json").read_text())
        assert manifest["complete"] and manifest["stage"] == stage and manifest["throughput"]["samples_per_s"] > 0
        assert manifest["preset"] == "tiny-p1"
        assert (run / stage / "student.safetensors").stat().st_size > 1_000_000
    assert json.loads((run / "ode" / "manifest.json").read_text())["recipe"]["clean_prefix"] == 0.5  # as the GPU's
    log = (run / "run.log").read_text()
    assert "gpu_check exit 0" in log
    samples = (run / "resources.log").read_text().splitlines()  # memory and load, every 10 s of both calls
    assert samples and all("ram_available_mb=" in line and "load=" in line for line in samples)
    first, second = log.split(" done\n")[:2]  # each call ends its part of the log with a done line
    assert "data (encode" in first and " teacher\n" in first and "ODE initialisation" not in first
    assert "data (encode" not in second and " teacher\n" not in second and "ODE initialisation" in second


def test_gpu_check_runs_beside_the_data_on_the_cpu_at_reduced_size(run):
    summary = json.loads((run / "gpu_check" / "gpu_check.json").read_text())
    assert summary["parity"]["ok"] and summary["parity"]["chunk_step"]["bfloat16"]["ok"]
    bench = summary["bench"]["rows"][0]
    for key in ("fps", "dit_fps", "first_frame_ms_p50", "chunk_ms_p50", "chunk_ms_p99", "peak_device_memory_mb",
                "memory_estimate_mb"):
        assert key in bench
    assert bench["device"] == "cpu" and bench["layers"] == 1 and "random weights" in bench["model"] and bench["fps"] > 0
    assert (run / "gpu_check" / "gpu_check.log").stat().st_size > 0
    assert "gpu_check: cpu:" in (run / "gpu_check.console").read_text()


def test_the_run_is_packed_into_a_few_files_with_every_manifest_and_the_weights(run, tmp_path):
    dest = tmp_path / "back"
    subprocess.run(["bash", str(ROOT / "build" / "pack_run.sh"), str(run), str(dest)], check=True,
                   capture_output=True, timeout=60)
    assert sorted(p.name for p in dest.iterdir()) == ["run.tgz", "student-dmd-long.safetensors",
                                                      "student-dmd.safetensors", "student-ode.safetensors",
                                                      "teacher.safetensors"]
    with tarfile.open(dest / "run.tgz") as tar:
        names = set(tar.getnames())
    assert {"./run.log", "./teacher/manifest.json", "./teacher/loss.jsonl", "./ode/manifest.json",
            "./gpu_check/gpu_check.json"} <= names
    assert not any(n.endswith((".pt", ".safetensors")) or n.startswith("./data") for n in names)


@pytest.mark.skipif(not WEIGHTS_PATH.exists(), reason="no trained probe weights in storyworld/assets")
def test_the_story_eval_reads_the_patch_1_teacher_and_student(run):
    rows = [f"teacher:{run / 'teacher' / 'teacher.safetensors'}", f"student:{run / 'ode' / 'student.safetensors'}"]
    cmd = [sys.executable, "-m", "shotstream.cli", "eval", "--suite", "story", "--stories", "1", "--seed", "84",
           "--steps", "2", "--json"] + [a for r in rows for a in ("--model", r)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert list(result["rows"]) == rows
    for name, row in result["rows"].items():
        assert row["frames"] == 2 * 81 and 0 <= row["adherence"]["mean"] <= 1, name


def test_a_failed_teacher_hands_the_student_stages_to_the_named_fallbacks_and_the_run_says_so(tmp_path):
    out = tmp_path / "run"
    missing = tmp_path / "no-such-image-phase.safetensors"  # the teacher fails at once on a warm start not there
    proc = subprocess.run(["bash", str(ROOT / "build" / "train_gpu.sh"), str(out),
                           str(streamed_smoke_recipe(tmp_path)), "1"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "2", "DATA_SECONDS": "1", "PRESET": "tiny-p1",
                               "TEACHER_INIT": str(missing),
                               "TEACHER_FALLBACK": str(ROOT / "distill/weights/teacher-tiny-p1b.safetensors"),
                               "STUDENT_FALLBACK": str(ROOT / "runtime/assets/tiny/dit.safetensors")})
    log = (out / "run.log").read_text()
    assert proc.returncode != 0 and "teacher failed" in log
    assert "the student's stages distil from" in log and "runtime/assets/tiny/dit.safetensors" in log
    assert "ODE initialisation" not in log and not (out / "ode").exists()
    assert "student: dmd skipped" in log  # a budget of 1 s leaves DMD no time: it is skipped, not run from nothing
    assert log.rstrip().endswith("done, with a failed stage")
