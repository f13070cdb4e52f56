"""The eval over training time: every EMA snapshot of a teacher run scored by the story eval, and plotted.

    python -m distill.training_report artifacts/teacher --stories 8 --steps 10 \
        --json docs/training_over_time.json --png docs/training_over_time.png

Each snapshot (`snapshots/teacher-NNNNNN.safetensors`, its manifest beside it naming its step, training seconds
and phase) and the run's final weights become one `teacher:PATH` row of `distill.story_eval` on the same
held-out stories; the PNG draws mean adherence and the attributes the eval reads against training minutes.
Smaller than the full eval (fewer stories and Euler steps) so that it fits beside a run: compare its figures with
each other, not with the full eval's.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ATTRIBUTES = ("mean", "place", "time", "framing", "characters", "action")


def snapshot_points(run: Path) -> list[tuple[Path, dict]]:
    """(weights, manifest) of every snapshot in step order, then the run's final weights if newer."""
    points = []
    for path in sorted((run / "snapshots").glob("teacher-*.safetensors")):
        points.append((path, json.loads(path.with_suffix(".json").read_text())))
    final = run / "teacher.safetensors"
    if final.exists():
        manifest = json.loads((run / "manifest.json").read_text())
        if not points or manifest["steps"] > points[-1][1]["steps"]:
            points.append((final, {"steps": manifest["steps"], "seconds": manifest["wall_seconds"], "phase": "final"}))
    return points


def over_time(run: Path, stories: int, seed: int, steps: int, guidance: float) -> list[dict]:
    from distill.story_eval import story_eval

    out = []
    for path, meta in snapshot_points(run):
        result = story_eval(stories, seed, [f"teacher:{path}"], steps=steps, guidance=guidance)
        row = next(iter(result["rows"].values()))
        out.append({"steps": meta["steps"], "minutes": round(meta["seconds"] / 60, 1), "phase": meta["phase"],
                    "weights": path.name, "adherence": row["adherence"], "consistency": row["consistency"]})
    return out


def plot(points: list[dict], png: str | Path) -> Path:
    from distill.plots import line_chart

    minutes = np.array([p["minutes"] for p in points])
    series = {name: (minutes, np.array([p["adherence"][name] for p in points])) for name in ATTRIBUTES}
    return line_chart(series, png, title="teacher on held-out stories over training (probe adherence)",
                      xlabel="training minutes", ylabel="adherence")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a teacher run folder (snapshots/, teacher.safetensors, manifest.json)")
    ap.add_argument("--stories", type=int, default=8, help="held-out stories per snapshot (default 8)")
    ap.add_argument("--seed", type=int, default=20_261_121, help="data seed of the held-out set (the eval's)")
    ap.add_argument("--steps", type=int, default=10, help="Euler steps per shot (default 10)")
    ap.add_argument("--guidance", type=float, default=2.0, help="guidance scale (default 2.0)")
    ap.add_argument("--json", type=Path, required=True, help="where to write the points")
    ap.add_argument("--png", type=Path, required=True, help="where to draw them")
    args = ap.parse_args(argv)
    points = over_time(args.run, args.stories, args.seed, args.steps, args.guidance)
    if not points:
        raise SystemExit(f"{args.run} has no snapshots and no final weights")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(points, indent=1) + "\n")
    plot(points, args.png)
    print(json.dumps({"points": len(points), "json": str(args.json), "png": str(args.png)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
