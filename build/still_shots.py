"""Where a model's still shots move: frame-to-frame change on the held-out stories' static-camera shots, split at
the seams of the runtime's chunk loop, and what the probe's camera head reads there.

A still shot of the story world changes only where its characters move. The VAE decodes each latent frame into
a group of 4 frames (the first into 1), so every model's frames change most between groups; a causal student also
makes its shot 3 latent frames at a time, each chunk reading the ones before it. If a new chunk does not continue
the one before, the picture jumps at the seam, and the probe reads the shot as a pan or a zoom. Per row (the story
eval's rows: truth, truth-vae, runtime, student:PATH, teacher:PATH), over the static shots of the first N held-out
stories:

- `seam`: the mean absolute difference (0-255 levels) between the last frame of a chunk and the first of the
  next (frames 8|9, 20|21, ...); `group`: the same between latent frames inside a chunk (0|1, 4|5, 12|13, ...);
  `seam_ratio`: seam over group, about 1 for the truth and a bidirectional teacher, above 1 where chunks jump;
- `change`: the mean absolute difference of 8x8-pixel block means from frame 0 at a few frames (slow drift);
- `static_by_clip`: the share of shots the probe's camera head reads as static, per clip start (frames 0..40).

    python build/still_shots.py --stories 12 --model runtime --model student:PATH [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distill.story_eval import check_rows, heldout_set, row_maker  # noqa: E402
from runtime.config import get_preset  # noqa: E402
from storyworld.probe import HELDOUT_EVAL_SEED, Probe  # noqa: E402
from storyworld.probe.clips import clips_from_frames  # noqa: E402
from storyworld.world import CAMERA_MOVES  # noqa: E402

CLIP_STARTS = (0, 10, 20, 30, 40)
CHANGE_AT = (8, 20, 44, 80)
BLOCK = 8


def seams(frames: int, stride: int, chunk: int) -> tuple[list[int], list[int]]:
    """Indices t of the differences |f[t+1] - f[t]| that cross a chunk seam, and those that cross a latent-frame
    boundary inside a chunk, for a shot of `frames` frames (latent j > 0 decodes to frames stride*(j-1)+1 ..
    stride*j, latent 0 to frame 0)."""
    latents = 1 + (frames - 1) // stride
    seam, group = [], []
    for j in range(latents - 1):  # the boundary after latent j is after frame stride*j
        (seam if (j + 1) % chunk == 0 else group).append(stride * j)
    return seam, group


def block_means(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) -> (T, H/8, W/8, 3) means of 8x8-pixel blocks."""
    t, h, w, c = frames.shape
    return frames.reshape(t, h // BLOCK, BLOCK, w // BLOCK, BLOCK, c).mean(axis=(2, 4))


def read_row(shots: list[np.ndarray], probe: Probe, stride: int, chunk: int) -> dict:
    """The figures above over a row's still shots (each (T, H, W, 3) uint8)."""
    seam_idx, group_idx = seams(len(shots[0]), stride, chunk)
    diffs, change, static = [], [], []
    still = CAMERA_MOVES.index("static")
    for shot in shots:
        f = shot.astype(np.float32)
        diffs.append(np.abs(np.diff(f, axis=0)).mean(axis=(1, 2, 3)))
        blocks = block_means(f)
        change.append([float(np.abs(blocks[t] - blocks[0]).mean()) for t in CHANGE_AT])
        camera = probe.read(clips_from_frames(shot, list(CLIP_STARTS)))["camera"]
        static.append(camera.argmax(-1) == still)
    d = np.mean(diffs, axis=0)
    seam, group = float(d[seam_idx].mean()), float(d[group_idx].mean())
    return {"shots": len(shots), "seam": round(seam, 2), "group": round(group, 2),
            "seam_ratio": round(seam / max(group, 1e-6), 3),
            "change": {str(t): round(float(v), 2) for t, v in zip(CHANGE_AT, np.mean(change, axis=0))},
            "static_by_clip": {str(s): round(float(v), 3) for s, v in zip(CLIP_STARTS, np.mean(static, axis=0))},
            "diff_by_frame": [round(float(v), 2) for v in d]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stories", type=int, default=12, help="held-out stories read (their static shots)")
    ap.add_argument("--model", action="append", default=[], help="a story-eval row; truth is always read first")
    ap.add_argument("--seed", type=int, default=HELDOUT_EVAL_SEED)
    ap.add_argument("--steps", type=int, default=20, help="Euler steps of a teacher row")
    ap.add_argument("--guidance", type=float, default=2.0, help="guidance scale of a teacher row")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    if args.stories < 1:
        raise SystemExit("--stories must be at least 1")
    rows = ["truth"] + [r for r in args.model if r != "truth"]
    check_rows(rows)
    stories = heldout_set(args.stories, args.seed)
    still = [(s, k) for s in stories for k, shot in enumerate(s.story.shots) if shot.camera.move == "static"]
    if not still:
        raise SystemExit(f"the first {args.stories} held-out stories have no static shot: read more stories")
    cfg = get_preset("tiny")
    stride, chunk = cfg.vae.temporal_stride, cfg.shot.latent_frames_per_chunk
    probe, out = Probe.load(), {"stories": args.stories, "seed": args.seed, "rows": {}}
    for row in rows:
        # the truth was rendered with the held-out set: read it, not rendered again
        make = (lambda s: s.truth) if row == "truth" else row_maker(row, args.seed, steps=args.steps,
                                                                     guidance=args.guidance)
        made = {}
        for s, _ in still:
            if s.index not in made:
                made[s.index] = make(s)
        figures = read_row([np.asarray(made[s.index][k]) for s, k in still], probe, stride, chunk)
        out["rows"][row] = figures
        print(f"{row}: {figures['shots']} still shots, seam {figures['seam']} / group {figures['group']} = "
              f"{figures['seam_ratio']}; change from frame 0 {figures['change']}; read static by clip start "
              f"{figures['static_by_clip']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
