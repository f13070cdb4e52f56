"""How the spread of a student's latents moves chunk by chunk over a shot, beside the data's and a teacher's.

A causal student makes a shot 3 latent frames at a time, each chunk reading the ones before it. If each comes out a
little stronger than what it read, the spread (std of a frame's latents) climbs over the shot: the frames brighten
and their figures swell, and the probe reads a static shot as a zoom. This reads that directly on the training
shots: the data's own latents, each student's rollout (the runtime's 4-step chunk loop, `distill.student.rollout`)
and each teacher's Euler samples (20 steps, guidance 2), all from the same shots' context and captions.

    python build/chunk_spread.py --data artifacts/data --student runtime/assets/tiny/dit.safetensors \
        --teacher distill/weights/teacher-tiny-p1d.safetensors [--shots 16] [--json out.json]

Prints one line per source: the mean spread of each chunk, the growth (last chunk over first, mean over shots), and
where the latents change: `seam`, the mean absolute difference between the last latent frame of a chunk and the
first of the next, `group`, the same between neighbours inside a chunk (the data's are equal). A student's line
also has `forced_seam` and `forced_group`: the same with every chunk made from the data's own earlier chunks
(teacher forcing), the seam taken from the data's last frame to the made chunk's first. A student that continues
what it reads has a forced seam near the data's; one that starts each chunk afresh jumps there even from the truth.
Two more say why: `draw_spread`, how far apart two forced rollouts with other noise land (chunks after the first),
and `other_seam`: each shot given another shot's past (its own context and caption), the seam from that past's last
frame (`other_from_own`: from its own past's). A student that reads its cache continues the past it is given.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import still_shots  # noqa: E402  (beside this script)
from distill import shards  # noqa: E402
from distill.resident import ResidentShots  # noqa: E402
from distill.student import Geometry, chunk_growth, rollout, teacher_trajectories  # noqa: E402
from distill.teacher import CaptionBank, _read_dit  # noqa: E402
from runtime.config import get_preset  # noqa: E402
from runtime.model import build_dit, load_bundle  # noqa: E402


def chunk_spreads(x: torch.Tensor, fc: int) -> list[float]:
    """Mean over the batch of each chunk's latent spread, (B, F, ...) -> F / fc values."""
    spread = x.float().flatten(2).std(2).mean(0)  # (F,)
    return [round(float(spread[i:i + fc].mean()), 3) for i in range(0, len(spread), fc)]


def seam_group(x: torch.Tensor, fc: int, before: torch.Tensor | None = None) -> tuple[float, float]:
    """(seam, group): mean |x[f+1] - x[f]| over boundaries between chunks and inside them, (B, F, ...); with
    `before`, the seams run from before's last frame of each chunk to x's next chunk (forced rollouts)."""
    d = (x[:, 1:] - x[:, :-1]).abs().float().mean(dim=(0, *range(2, x.dim())))  # (F - 1,)
    seams, group = still_shots.seams(x.shape[1], 1, fc)  # the same split, one latent frame a frame
    if before is None:
        seam = d[seams].mean()
    else:
        seam = torch.stack([(x[:, f + 1] - before[:, f]).abs().float().mean() for f in seams]).mean()
    return round(float(seam), 3), round(float(d[group].mean()), 3)


def _line(source: str, x: torch.Tensor, fc: int, **extra) -> dict:
    seam, group = seam_group(x, fc)
    return {"source": source, "spread": chunk_spreads(x, fc), "growth": float(chunk_growth(x, fc)), "seam": seam,
            "group": group, **extra}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a data folder with shots/ (`shotstream train data`)")
    ap.add_argument("--student", action="append", default=[], help="student DiT weights (repeatable)")
    ap.add_argument("--teacher", action="append", default=[], help="teacher DiT weights (repeatable)")
    ap.add_argument("--preset", default="tiny-p1")
    ap.add_argument("--shots", type=int, default=16, help="shots read, spread evenly over the data")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the lines here")
    args = ap.parse_args(argv)
    if not (args.data / "shots" / "index.json").exists():
        raise SystemExit(f"no shots data in {args.data}: make it with `shotstream train data --recipe R`")
    for path in args.student + args.teacher:
        if not Path(path).exists():
            raise SystemExit(f"no weights at {path}")
    cfg = get_preset(args.preset)
    data = shards.load(args.data / "shots")
    bundle = load_bundle(cfg.shares or cfg.name)
    geo = Geometry(cfg, cfg.shot.shift, "cpu", autocast=True)
    bank = CaptionBank(data["prompt"], bundle.text_encoder.float().eval(), bundle.tokenizer, device="cpu")
    pool = ResidentShots(data, bank, geo.ns, "cpu")
    rows = torch.linspace(0, len(pool) - 1, args.shots).long()
    x0, *inputs = pool.batch(rows)
    lines = [_line("data", x0, geo.fc)]

    def model(path):
        m = build_dit(cfg)
        m.load_state_dict(_read_dit(path))
        return m.eval()

    with torch.no_grad():
        for path in args.student:
            student, last = model(path), cfg.shot.num_steps - 1
            x = rollout(student, geo, *inputs, last, torch.Generator().manual_seed(args.seed), grad=False)
            forced = rollout(student, geo, *inputs, last, torch.Generator().manual_seed(args.seed), grad=False, past=x0)
            seam, group = seam_group(forced, geo.fc, before=x0)
            again = rollout(student, geo, *inputs, last, torch.Generator().manual_seed(args.seed + 1), grad=False,
                            past=x0)
            other = x0.roll(1, 0)  # each shot given the next one's past, with its own context and caption
            crossed = rollout(student, geo, *inputs, last, torch.Generator().manual_seed(args.seed), grad=False,
                              past=other)
            lines.append(_line(f"student {path}", x, geo.fc, forced_seam=seam, forced_group=group,
                               draw_spread=round(float((forced - again)[:, geo.fc:].abs().float().mean()), 3),
                               other_seam=seam_group(crossed, geo.fc, before=other)[0],
                               other_from_own=seam_group(crossed, geo.fc, before=x0)[0]))
        for path in args.teacher:
            x = teacher_trajectories(model(path), geo, *inputs, steps=20, guidance=2.0,
                                     gen=torch.Generator().manual_seed(args.seed))[:, -1]
            lines.append(_line(f"teacher {path}", x, geo.fc))
    for line in lines:
        line["growth"] = round(line["growth"], 3)
        forced = (f", forced seam {line['forced_seam']} / group {line['forced_group']}, two draws apart "
                  f"{line['draw_spread']}, from another shot's past {line['other_seam']} (from its own "
                  f"{line['other_from_own']})") if "forced_seam" in line else ""
        print(f"{line['source']}: spread per chunk {line['spread']}, growth {line['growth']:.3f}, seam {line['seam']} / "
              f"group {line['group']}{forced}")
    if args.json:
        args.json.write_text(json.dumps({"shots": args.shots, "preset": args.preset, "lines": lines}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
