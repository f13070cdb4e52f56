"""`shotstream render`: a story file, or prompts, to a video file (or to figures only), every prompt and the output
path checked before anything is generated."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from runtime.cli_options import UsageError, add_preset_options, load_engine

HELP = "render a story to a video file"


def add_arguments(r: argparse.ArgumentParser) -> None:
    add_preset_options(r)
    r.add_argument("story", nargs="?", help="story JSON (official test-set format: global_caption, shot1..shotN)")
    r.add_argument("--prompt", action="append", help="a shot prompt (repeat for more shots)")
    r.add_argument("--global-caption", default="", help="cast and style, used with --prompt")
    r.add_argument("--chunks", type=int, default=7, help="chunks per shot, 1..7 (7 = 81 frames; default 7)")
    r.add_argument("--prompt-mode", choices=["strict", "lenient"], default="strict",
                   help="unknown words: refused (strict, default) or left out and listed (lenient)")
    r.add_argument("--out", help=f"output video (.mp4, .gif) or folder of PNGs "
                                 f"(default {DEFAULT_OUT_DIR}/<story>-seed<S>.mp4)")
    r.add_argument("--no-out", action="store_true", help="write nothing (figures and frames_sha256 only)")
    r.add_argument("--scale", type=int, default=4, help="nearest-neighbour upscale of the written video (default 4)")
    r.add_argument("--json", action="store_true", help="print one JSON summary line")
    r.add_argument("--quiet", action="store_true", help="no progress bar")


def load_story_file(path: Path) -> tuple[str, list[str]]:
    """The official test-set JSON: {"global_caption": ..., "shot1": ..., ..., "shotN": ...}, every value a string."""
    from runtime.errors import InvalidRequestError

    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InvalidRequestError(f"cannot read story file {path}: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("global_caption"), str):
        raise InvalidRequestError(f"{path}: a story file is an object with a 'global_caption' string")
    shots, i = [], 1
    while f"shot{i}" in data:
        if not isinstance(data[f"shot{i}"], str):
            raise InvalidRequestError(f"{path}: 'shot{i}' must be a string (the shot's prompt), "
                                      f"got {json.dumps(data[f'shot{i}'])}")
        shots.append(data[f"shot{i}"])
        i += 1
    if not shots:
        raise InvalidRequestError(f"{path}: no 'shot1' key")
    return data["global_caption"], shots


def check_writable(out: Path) -> None:
    """Refuses an output path that cannot be written, before any work: a folder of PNGs (no suffix) must be
    creatable, a file creatable in its folder. Nothing is left behind."""
    from runtime.errors import InvalidRequestError

    try:
        folder = out if out.suffix == "" else out.parent
        folder.mkdir(parents=True, exist_ok=True)
        if out.suffix:
            existed = out.exists()
            with open(out, "ab"):
                pass
            if not existed:
                out.unlink()
        elif not os.access(folder, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise InvalidRequestError(f"cannot write the output {out}: {e.strerror or e}") from e


DEFAULT_OUT_DIR = Path("out")


def default_out(args) -> Path:
    """Where `render` writes when --out is not given: out/<story name or "prompts">-seed<S>.mp4."""
    stem = Path(args.story).stem if args.story else "prompts"
    return DEFAULT_OUT_DIR / f"{stem}-seed{args.seed}.mp4"


def run(args) -> int:
    from runtime.progress import progress

    if args.story and (args.prompt or args.global_caption):
        raise UsageError("give a story file or --prompt/--global-caption, not both (the story file has its own)")
    if args.no_out and args.out:
        raise UsageError("give --out or --no-out, not both")
    if not 1 <= args.chunks <= 7:
        raise UsageError(f"--chunks must be 1..7, got {args.chunks}")
    if args.story:
        caption, prompts = load_story_file(Path(args.story))
    else:
        caption, prompts = args.global_caption, list(args.prompt or [])
    if not prompts:
        raise UsageError("give a story file or at least one --prompt")
    out = None if args.no_out else Path(args.out) if args.out else default_out(args)
    if out is not None:
        check_writable(out)
    t0 = time.perf_counter()
    engine = load_engine(args, seed=args.seed)
    info = engine.info
    story = engine.open_story(seed=args.seed, global_caption=caption, prompt_mode=args.prompt_mode)
    # Every prompt is checked (as shot k of this story) before anything is generated or drawn.
    checks = [story.check_prompt(p, shot_index=k) for k, p in enumerate(prompts)]
    dropped = [list(c.dropped) for c in checks]
    for k, check in enumerate(checks):
        if check.dropped and not args.json:
            print(f"shot{k + 1}: left out (not in the vocabulary): {', '.join(check.dropped)}", file=sys.stderr)
        if check.read_as and not args.json:
            print(f"shot{k + 1}: read as: " + ", ".join(f"{w} -> {r or '(nothing)'}" for w, r in check.read_as),
                  file=sys.stderr)
    load_s = time.perf_counter() - t0
    digest, frames, first_frame_s, writer = hashlib.sha256(), 0, None, None
    if out is not None:
        from runtime.video import VideoWriter

        out.parent.mkdir(parents=True, exist_ok=True)
        writer = VideoWriter(str(out), fps=info.fps, scale=args.scale)
    total = len(prompts) * engine.cfg.shot_pixel_frames(args.chunks)
    t1 = time.perf_counter()
    with progress(total, "render", unit="frame", disable=args.json or args.quiet) as bar:
        for prompt in prompts:
            for chunk in story.generate_shot(prompt, chunks=args.chunks):
                first_frame_s = first_frame_s or time.perf_counter() - t1
                digest.update(chunk.frames.tobytes())
                frames += len(chunk.frames)
                if writer:
                    writer.write(chunk.frames)
                bar.update(len(chunk.frames))
    gen_s = time.perf_counter() - t1
    if writer:
        writer.close()
    summary = {
        "frames": frames, "shots": len(prompts), "width": info.width, "height": info.height, "fps": info.fps,
        "frames_sha256": digest.hexdigest(), "preset": info.preset, "backend": info.backend, "seed": args.seed,
        "load_seconds": round(load_s, 3), "generate_seconds": round(gen_s, 3),
        "first_frame_seconds": round(first_frame_s or 0.0, 3),
        "realtime_factor": round(frames / info.fps / gen_s, 2) if gen_s else None,
        "prompt_mode": args.prompt_mode, "dropped_words": dropped,
        "read_as": [[list(pair) for pair in c.read_as] for c in checks],
        "out": str(out) if out else None,
    }
    print(json.dumps(summary) if args.json else "\n".join(f"{k}: {v}" for k, v in summary.items()))
    return 0
