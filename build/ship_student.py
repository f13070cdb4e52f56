"""Ship a trained student as the embedded default DiT: runtime/assets/tiny/dit.safetensors and its manifest entry.

Run: python build/ship_student.py RUN_DIR [RUN_DIR ...] [--eval EVAL_JSON --row ROW]
Each RUN_DIR is one stage's output (`shotstream train ode|dmd|dmd-long --out RUN_DIR`), in the order they ran;
the last one's student.safetensors ships. The manifest entry names every stage's recipe, teacher, steps, wall time
and device, and, with --eval, the story-eval row measured on those weights.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.model import default_weights_dir  # noqa: E402
from runtime.weights import sha256_file  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="stage output folders, in the order they ran")
    ap.add_argument("--eval", type=Path, help="a `shotstream eval --suite story --json` output holding the row")
    ap.add_argument("--row", help="the row of --eval measured on these weights (e.g. student:PATH)")
    ap.add_argument("--out", type=Path, default=default_weights_dir("tiny"))
    args = ap.parse_args()
    stages = []
    for run in args.runs:
        path = run / "manifest.json"
        if not path.exists():
            raise SystemExit(f"{run} has no manifest.json: not a finished stage")
        stages.append(json.loads(path.read_text()))
    weights = args.runs[-1] / stages[-1]["file"]
    if sha256_file(weights) != stages[-1]["sha256"]:
        raise SystemExit(f"{weights} does not match its manifest")
    target = args.out / "dit.safetensors"
    shutil.copyfile(weights, target)
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entry = {"sha256": stages[-1]["sha256"], "bytes": target.stat().st_size, "trained": True,
             "what": "the causal 4-step student, distilled from the bidirectional next-shot teacher",
             "recipe": " then ".join(f"shotstream train {s['stage']} --recipe R" for s in stages),
             "stages": [{k: s.get(k) for k in ("stage", "teacher", "init", "seed", "steps", "samples", "recipe",
                                               "wall_seconds", "trajectory_seconds", "device", "torch", "complete")}
                        for s in stages],
             "wall_seconds": round(sum(s["wall_seconds"] + s.get("trajectory_seconds", 0.0) for s in stages), 1)}
    if args.eval:
        result = json.loads(args.eval.read_text())
        if args.row not in result["rows"]:
            raise SystemExit(f"{args.eval} has no row {args.row!r}; rows: {', '.join(result['rows'])}")
        entry["eval"] = {"suite": "story", "stories": result["stories"], "seed": result["seed"],
                         **result["rows"][args.row]}
    manifest["files"]["dit.safetensors"] = entry
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(json.dumps({"shipped": str(target), "sha256": entry["sha256"][:12], "stages": len(stages)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
