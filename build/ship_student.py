"""Ship a trained student as the embedded default DiT: runtime/assets/tiny/dit.safetensors and its manifest entry.

Run: python build/ship_student.py RUN_DIR [RUN_DIR ...] [--eval EVAL_JSON --row ROW]
Each RUN_DIR is one stage's output (`shotstream train ode|dmd|dmd-long --out RUN_DIR`), in the order they ran;
the last one's student.safetensors ships. The manifest entry names every stage's recipe, teacher, steps, wall time
and device, and, with --eval, the story-eval row measured on those weights. With --eval, a row measured beside
the `runtime` row (the model shipped now) ships only when its mean adherence beats the runtime's, paired story by
story, by an interval that lies above 0 (`vs_runtime`): a difference the held-out stories cannot tell from none
is refused, unless --even-if-not-better. Nothing is written when it refuses.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.config import get_preset  # noqa: E402
from runtime.model import default_weights_dir  # noqa: E402
from runtime.weights import sha256_file  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="stage output folders, in the order they ran")
    ap.add_argument("--eval", type=Path, help="a `shotstream eval --suite story --json` output holding the row")
    ap.add_argument("--row", help="the row of --eval measured on these weights (e.g. student:PATH)")
    ap.add_argument("--out", type=Path, default=default_weights_dir("tiny"))
    ap.add_argument("--even-if-not-better", action="store_true",
                    help="ship even when --eval cannot tell the row's mean adherence above the runtime row's")
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
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    _check_geometry(stages[-1].get("preset", "tiny"), manifest.get("preset", "tiny"), weights)
    row = _eval_row(args.eval, args.row, args.even_if_not_better) if args.eval else None
    target = args.out / "dit.safetensors"
    shutil.copyfile(weights, target)
    entry = {"sha256": stages[-1]["sha256"], "bytes": target.stat().st_size, "trained": True,
             "what": "the causal 4-step student, distilled from the bidirectional next-shot teacher",
             "recipe": " then ".join(f"shotstream train {s['stage']} --recipe R" for s in stages),
             "stages": [{k: s.get(k) for k in ("stage", "teacher", "teacher_sha256", "init", "init_sha256", "seed",
                                               "steps", "samples", "recipe", "wall_seconds", "trajectory_seconds",
                                               "device", "torch", "complete")}
                        for s in stages],
             "wall_seconds": round(sum(s["wall_seconds"] + s.get("trajectory_seconds", 0.0) for s in stages), 1)}
    if row is not None:
        entry["eval"] = row
    manifest["files"]["dit.safetensors"] = entry
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(json.dumps({"shipped": str(target), "sha256": entry["sha256"][:12], "stages": len(stages)}))
    return 0


def _check_geometry(trained: str, shipped: str, weights: Path) -> None:
    """Refuse a student trained in another DiT geometry than the preset it would ship as: the runtime would refuse
    to load it (a strict load), so every command would fail after the copy."""
    ours, theirs = get_preset(trained).dit, get_preset(shipped).dit
    if ours != theirs:
        raise SystemExit(f"{weights} was trained in preset {trained!r}, whose DiT is not {shipped!r}'s (patch "
                         f"{ours.patch} against {theirs.patch}); nothing was written")


def _eval_row(path: Path, name: str | None, even_if_not_better: bool) -> dict:
    """The manifest's `eval` entry from row `name` of a story eval, refused when it is not better than the runtime
    row it was measured beside (module docstring)."""
    result = json.loads(path.read_text())
    if name not in result["rows"]:
        raise SystemExit(f"{path} has no row {name!r} (--row); rows: {', '.join(result['rows'])}")
    row = result["rows"][name]
    against = row.get("vs_runtime", {}).get("mean")
    if against is None:
        print(f"{name}: {path} does not compare it with the runtime row (no `vs_runtime`: the runtime row was not "
              "measured beside it, or --against named another row), so not with the model shipped now",
              file=sys.stderr)
    else:
        lo, hi = against["ci95"]
        said = (f"{name}: mean adherence {against['difference']:+.3f} against the runtime row, 95% interval "
                f"[{lo:+.3f}, {hi:+.3f}] over {result['stories']} held-out stories")
        if lo <= 0 and not even_if_not_better:
            raise SystemExit(f"{said}: not a gain these stories can tell from none. Evaluate on more stories "
                             "(--stories 96) or pass --even-if-not-better; nothing was written")
        print(said, file=sys.stderr)
    entry = {"suite": "story", "stories": result["stories"], "seed": result["seed"], **row}
    entry.pop("story_totals", None)  # per-story counts: in the eval's JSON, not in the shipped manifest
    return entry


if __name__ == "__main__":
    raise SystemExit(main())
