"""`shotstream train data|teacher --recipe build/recipes/tiny.toml`: the teacher's data and its training.

  shotstream train data --recipe R [--kind frames|shots] [--out DIR] [--workers N] [--minutes M]
      render and encode the recipe's story-world shards (resumable; skips shards already written); with
      --minutes no shard starts after M minutes (every kind in turn, the first shard of each always): the
      index then covers the shards written, and a rerun goes on
  shotstream train teacher --recipe R [--data DIR] [--out DIR] [--device cpu|cuda] [--threads N] [--minutes M]
      flow-matching training of the bidirectional next-shot teacher, every phase of the recipe (its data is
      prepared first where --data lacks it); resumes from DIR/checkpoint.pt; writes DIR/teacher.safetensors
      (EMA, fp16), DIR/manifest.json and DIR/loss.jsonl
  shotstream train ode|dmd|dmd-long --recipe R [--teacher T] [--init W] [--out DIR] [--device D] [--minutes M]
      the causal student's stages (distill/student.py) on the recipe's shots data: ODE initialisation from
      teacher trajectories, intra-shot self-forcing DMD, inter-shot self-forcing DMD; each starts from --init
      (default: the teacher's weights) and writes DIR/student.safetensors (fp16), DIR/manifest.json and
      DIR/loss.jsonl; resumes from DIR/checkpoint.pt. --teacher defaults to the committed teacher of the stage's
      preset; weights of another geometry than the preset are refused before any data work
  shotstream train compare --recipe R --samples N [--variants tiny-p2,tiny-p1,tiny-wide] [--batch B] [--init W]
      [--out DIR]
      the image phase (the recipe's frames phase) of each DiT geometry at equal samples (N = steps x batch),
      read on held-out frames: flow-matching loss per noise level and the probe on frames drawn back from their
      prompts (distill/grid_compare.py); writes DIR/report.json, DIR/report.md, DIR/sheet.png and a run
      folder per variant (resumed when run again); with --init W every variant goes on from W (weights of its
      geometry, e.g. an earlier image phase) for N more samples, and W is read beside them in place of the floor
  --preset NAME (teacher and student stages) trains the recipe's phases or stage in another DiT geometry of the
      tiny family (e.g. tiny-p1) than the recipe's [teacher] / [student] preset; the manifests record it
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tomllib
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("what", choices=["data", "teacher", "ode", "dmd", "dmd-long", "compare"],
                        help="prepare the shards, train the teacher, one stage of the student, or compare DiT "
                             "geometries on the image phase")
    parser.add_argument("--recipe", required=True, type=Path, help="recipe TOML, e.g. build/recipes/tiny.toml")
    parser.add_argument("--data", type=Path, default=Path("artifacts/data"),
                        help="folder holding one sub-folder of shards per kind (default artifacts/data)")
    parser.add_argument("--kind", choices=["frames", "shots", "all"], default="all",
                        help="data: which shards to prepare (default: every kind the recipe's phases use)")
    parser.add_argument("--workers", type=int, default=2, help="data: processes rendering and encoding")
    parser.add_argument("--out", type=Path, default=Path("artifacts/teacher"),
                        help="teacher: run folder (checkpoint, loss log, weights, manifest)")
    parser.add_argument("--device", default="cpu",
                        help="torch device (cpu, cuda): where the teacher trains, and where data is encoded")
    parser.add_argument("--threads", type=int, default=None, help="teacher: torch CPU threads (default: torch's)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="teacher: stop after this much wall time (checkpoint and weights so far); data: start "
                             "no shard after it; rerun to go on")
    parser.add_argument("--init", type=Path, default=None,
                        help="start from these DiT weights (safetensors): teacher and compare default random, "
                             "student default the teacher's")
    parser.add_argument("--preset", default=None,
                        help="teacher and student stages: train in this preset instead of the recipe's (e.g. tiny-p1)")
    parser.add_argument("--teacher", type=Path, default=None,
                        help="student stages: the teacher's weights (default: the committed teacher of the stage's "
                             "preset, " + ", ".join(f"{k}: {v.name}" for k, v in COMMITTED_TEACHERS.items()) + ")")
    grid = parser.add_argument_group("compare: DiT geometries at equal samples (--out default artifacts/grid)")
    grid.add_argument("--variants", default="tiny-p2,tiny-p1,tiny-wide",
                      help="comma-separated tiny-family presets (default tiny-p2,tiny-p1,tiny-wide), each optionally "
                           "with the image phase's shift or peak learning rate changed: tiny-p1+lr=3e-3+shift=1")
    grid.add_argument("--samples", type=int, help="training samples per variant, a multiple of --batch (required)")
    grid.add_argument("--batch", type=int, help="batch (default: the recipe's frames phase's)")
    grid.add_argument("--heldout-stories", type=int, default=24, help="held-out stories, one frame per shot (default 24)")
    grid.add_argument("--euler-steps", type=int, default=20, help="Euler steps drawing each frame (default 20)")
    grid.add_argument("--guidance", default="1",
                      help="comma-separated classifier-free guidance scales drawing the held-out frames, a row per "
                           "variant and scale, paired with the first variant at the first scale (default 1: none)")
    grid.add_argument("--ema", type=float, default=0.0,
                      help="EMA decay of the weights read (default 0: the raw weights; a short run's EMA lags)")


# the committed teacher a student stage distils by default, by the preset it trains in (tiny is tiny-p1's grid)
COMMITTED_TEACHERS = {"tiny-p2": Path("distill/weights/teacher-tiny.safetensors"),
                      "tiny-p1": Path("distill/weights/teacher-tiny-p1b.safetensors"),
                      "tiny": Path("distill/weights/teacher-tiny-p1b.safetensors")}


def _check_geometry(path: Path, preset: str, flag: str) -> None:
    """Refuses, before any data work, DiT weights that do not fit `preset` (the run would otherwise stop on the
    mismatch only after its data was prepared)."""
    from distill.teacher import _read_dit
    from runtime.config import get_preset
    from runtime.errors import WeightsError
    from runtime.model import build_dit
    from runtime.weights import load_strict

    if not path.exists():
        raise SystemExit(f"{flag}: no weights at {path}")
    try:
        load_strict(build_dit(get_preset(preset)), _read_dit(path), source=str(path))
    except WeightsError as e:
        fits = [w for p, w in COMMITTED_TEACHERS.items() if w != path and get_preset(p).dit == get_preset(preset).dit]
        hint = f" (the committed teacher of {preset}: {fits[0]})" if fits else ""
        raise SystemExit(f"{flag}: not a DiT of preset {preset}: {e}. Name weights trained in {preset}{hint}, or "
                         "train in their preset with --preset") from None


def _kinds(recipe_path: Path, kind: str, what: str = "teacher") -> list[str]:
    from distill.teacher import TeacherRecipe

    if what in ("ode", "dmd", "dmd-long"):
        return ["shots"]
    if what == "compare":
        return ["frames"]
    if "teacher" not in tomllib.loads(recipe_path.read_text()):  # a student-only recipe: its stages read shots
        return ["shots"] if kind == "all" else [kind]
    recipe = TeacherRecipe.from_toml(recipe_path)
    # a "stream" phase renders its own frames while it trains; a seeded one starts from the frames shards
    stream = ["frames"] if recipe.stream is not None and recipe.stream.seeded else []
    used = list(dict.fromkeys(k for p in recipe.phases for k in ([p.data] if p.data != "stream" else stream)))
    return used if kind == "all" else [kind]


def run(args) -> int:
    import torch

    from distill import shards
    from distill.teacher import TeacherRecipe, train

    if not args.recipe.exists():
        raise SystemExit(f"no recipe at {args.recipe}")
    data_cfg = tomllib.loads(args.recipe.read_text()).get("data", {})
    if args.preset is not None:
        if args.what in ("data", "compare"):
            raise SystemExit(f"--preset is for the teacher and the student's stages; `train {args.what}` "
                             + ("takes its presets from --variants" if args.what == "compare" else "uses none"))
        from runtime.config import get_preset

        try:
            get_preset(args.preset)
        except ValueError as e:
            raise SystemExit(f"--preset: {e}") from None
    kinds = _kinds(args.recipe, args.kind, args.what)
    missing = [k for k in kinds if k not in data_cfg]
    if missing:
        raise SystemExit(f"{args.recipe} has no [data.{missing[0]}] table")
    if args.what == "data":
        import time

        deadline = None if args.minutes is None else time.perf_counter() + 60 * args.minutes
        for kind in kinds:  # with --minutes, each kind gets what the ones before it left
            left = None if deadline is None else max(0.0, deadline - time.perf_counter())
            index = shards.prepare(args.data / kind, kind=kind, workers=args.workers, device=args.device,
                                   max_seconds=left, **data_cfg[kind])
            print(json.dumps({k: index[k] for k in ("kind", "stories", "stories_planned", "complete", "samples",
                                                    "bytes", "wall_seconds_this_run")}))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.what in ("ode", "dmd", "dmd-long"):
        return _student(args, data_cfg)
    recipe = TeacherRecipe.from_toml(args.recipe)
    if args.preset is not None:
        recipe = dataclasses.replace(recipe, preset=args.preset)
    comparison = _comparison(args, recipe) if args.what == "compare" else None  # refused before any data work
    if args.what == "teacher" and args.init is not None:
        _check_geometry(args.init, recipe.preset, "--init")
    stream, frames_seed = recipe.stream, data_cfg.get("frames", {}).get("seed")
    if args.what == "teacher" and stream is not None and stream.seeded and frames_seed != stream.seed:
        raise SystemExit(f"{args.recipe}: a seeded stream renders the stories after the frames shards, so "
                         f"[teacher.stream] seed ({stream.seed}) must be [data.frames] seed ({frames_seed})")
    for kind in kinds:  # shards not yet written are prepared first (resumable: written ones are kept)
        if not (args.data / kind / "index.json").exists():
            shards.prepare(args.data / kind, kind=kind, workers=args.workers, device=args.device, **data_cfg[kind])
    data = {kind: (lambda kind=kind: shards.load(args.data / kind)) for kind in kinds}
    if comparison is not None:
        from distill.grid_compare import compare

        out = args.out if args.out != Path("artifacts/teacher") else Path("artifacts/grid")
        report = compare(comparison, recipe, data["frames"], out, device=args.device)
        print(json.dumps({"out": str(out), "rows": {name: row["probe"]["mean"] for name, row in report["rows"].items()},
                          "chance": report["chance"]["mean"]}))
        return 0
    entry = train(recipe, data, args.out, device=args.device, init=args.init,
                  max_seconds=None if args.minutes is None else 60 * args.minutes)
    indexes = {kind: json.loads((args.data / kind / "index.json").read_text()) for kind in kinds}
    entry["data"] = {kind: {k: indexes[kind].get(k) for k in ("seed", "stories", "samples", "complete")}
                     for kind in kinds}  # complete: false where the data stage was bounded in time
    (args.out / "manifest.json").write_text(json.dumps(entry, indent=2) + "\n")
    print(json.dumps({k: entry[k] for k in ("file", "steps", "wall_seconds", "device", "complete")}))
    return 0


def _comparison(args, recipe):
    from distill.grid_compare import Comparison

    if args.samples is None:
        raise SystemExit("compare needs --samples: training samples per variant (steps x batch)")
    frames = [p for p in recipe.phases if p.data == "frames"]
    if not frames:
        raise SystemExit(f"{args.recipe} has no phase on frames data: the comparison trains the image phase")
    if args.init is not None and not args.init.exists():
        raise SystemExit(f"compare: no weights at --init {args.init}")
    try:
        return Comparison(tuple(v for v in args.variants.split(",") if v), args.samples, args.batch or frames[0].batch,
                          heldout_stories=args.heldout_stories, euler_steps=args.euler_steps, ema=args.ema,
                          guidance=_scales(args.guidance), init=None if args.init is None else str(args.init))
    except ValueError as e:
        raise SystemExit(f"compare: {e}") from None


def _scales(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise SystemExit(f"compare: --guidance takes comma-separated numbers, got {text!r}") from None


def _student(args, data_cfg: dict) -> int:
    from distill import shards
    from distill.student import StudentRecipe, train

    recipe = StudentRecipe.from_toml(args.recipe)
    if args.preset is not None:
        recipe = dataclasses.replace(recipe, preset=args.preset)
    if args.teacher is None:
        if recipe.preset not in COMMITTED_TEACHERS:
            raise SystemExit(f"no committed teacher in preset {recipe.preset}: name one with --teacher")
        args.teacher = COMMITTED_TEACHERS[recipe.preset]
    if not args.teacher.exists():
        raise SystemExit(f"no teacher weights at {args.teacher}: train one with `shotstream train teacher`")
    _check_geometry(args.teacher, recipe.preset, "--teacher")
    if args.init is not None:
        _check_geometry(args.init, recipe.preset, "--init")
    recipe.stage(args.what)  # a clear error before any data work when the recipe lacks the stage
    if not (args.data / "shots" / "index.json").exists():
        shards.prepare(args.data / "shots", kind="shots", workers=args.workers, device=args.device, **data_cfg["shots"])
    out = args.out if args.out != Path("artifacts/teacher") else Path("artifacts/student") / args.what
    minutes = {} if args.minutes is None else {"minutes": args.minutes}
    if minutes:
        recipe = dataclasses.replace(recipe, stages={**recipe.stages, args.what: dataclasses.replace(
            recipe.stages[args.what], **minutes)})
    entry = train(recipe, args.what, shards.load(args.data / "shots"), args.teacher, out, init=args.init,
                  device=args.device)
    print(json.dumps({k: entry[k] for k in ("file", "stage", "steps", "wall_seconds", "device", "complete")}))
    return 0
