"""build/train_gpu.sh, the one prepared GPU run (data, teacher, ODE initialisation, both DMD stages inside a
wall-time budget), end to end at a test's size on the CPU: every stage leaves weights and a manifest with its
throughput."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_gpu_script_runs_every_stage_and_records_throughput(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(["bash", str(ROOT / "build" / "train_gpu.sh"), str(out),
                           str(ROOT / "tests" / "data" / "teacher_smoke.toml"), "900"],
                          capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    teacher = json.loads((out / "teacher" / "manifest.json").read_text())
    assert teacher["complete"] and teacher["steps"] == 5 and teacher["device"].startswith("cpu")
    for phase in ("image", "sequence"):
        rates = teacher["throughput"][phase]
        assert rates["samples_per_s"] > 0 and rates["tokens_per_s"] > 0 and 0 < rates["of_bf16_peak"] < 1
    for stage in ("ode", "dmd", "dmd-long"):
        manifest = json.loads((out / stage / "manifest.json").read_text())
        assert manifest["complete"] and manifest["stage"] == stage and manifest["throughput"]["samples_per_s"] > 0
        assert (out / stage / "student.safetensors").stat().st_size > 1_000_000
    assert "done" in (out / "run.log").read_text()
