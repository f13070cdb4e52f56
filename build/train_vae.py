"""Train the tiny VAE on the story world and ship it in runtime/assets/tiny/ with its manifest entry.

Run: python build/train_vae.py [--steps 3000] [--clips 2500] [--seed 0]
Renders a pool of 9-frame training clips (train split), trains with L1 + MSE on 32x32 crops and then briefly
on whole frames, sets the latent statistics,
measures PSNR on whole held-out shots decoded chunk by chunk, and writes vae.safetensors (fp16) + manifest.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill.autoencoder import set_latent_stats, shot_psnr, train_vae  # noqa: E402
from distill.data import clip_pool, shot_pool  # noqa: E402
from runtime.config import get_preset  # noqa: E402
from runtime.model import default_weights_dir  # noqa: E402
from runtime.vae import TinyVAE  # noqa: E402
from runtime.weights import save_module  # noqa: E402


TARGET_PSNR_DB = 30.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--clips", type=int, default=2500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--crop", type=int, default=32, help="train on random crops this size (0: whole frames)")
    ap.add_argument("--whole-tail", type=int, default=2000, help="the last this many steps use whole frames")
    ap.add_argument("--init", type=Path, help="start from this checkpoint (with --steps 0: only finalise it)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 when another training shares a 2-core machine)")
    ap.add_argument("--eval-shots", type=int, default=24)
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    ap.add_argument("--minutes", type=float, default=None,
                    help="wall-time budget of the training steps; the learning rate anneals over it (stops at --steps or here)")
    ap.add_argument("--workers", type=int, default=1, help="processes rendering the clip pool")
    ap.add_argument("--base-channels", type=int, default=None, help="VAE width (default: the tiny preset's)")
    ap.add_argument("--decoder-blocks", type=int, default=None,
                    help="residual blocks per decoder resolution (default: the tiny preset's)")
    ap.add_argument("--out", type=Path, default=default_weights_dir("tiny"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.time()
    clips = clip_pool(args.seed, "train", args.clips, frames=9, workers=args.workers)
    shape = {k: v for k, v in (("base_channels", args.base_channels), ("decoder_blocks", args.decoder_blocks)) if v}
    cfg = dataclasses.replace(get_preset("tiny").vae, **shape)
    vae = TinyVAE(cfg)
    done_before = 0  # steps already in the --init checkpoint
    if args.init:
        state = torch.load(args.init)
        vae.load_state_dict(state["vae"])
        done_before = int(state.get("step", 0))
    vae.to(args.device)
    ckpt = args.out / "vae_training.pt" if args.out != default_weights_dir("tiny") else ROOT / "artifacts" / "vae_training.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)

    def checkpoint(step: int, losses: list[float]) -> None:
        if (step + 1) % 1000 == 0:
            torch.save({"step": done_before + step + 1, "vae": vae.state_dict()}, ckpt)
            logging.info("step %d loss %.4f (checkpoint %s)", step + 1, sum(losses[-50:]) / 50, ckpt)

    losses = train_vae(vae, clips, args.steps, batch=args.batch, lr=args.lr, seed=args.seed, crop=args.crop,
                       whole_tail=args.whole_tail, on_step=checkpoint, device=args.device,
                       max_seconds=None if args.minutes is None else 60 * args.minutes)
    trained = len(losses)
    set_latent_stats(vae, clips[:256])
    psnr = shot_psnr(vae, shot_pool(args.seed, "heldout", args.eval_shots))
    path = args.out / "vae.safetensors"
    digest = save_module(vae.cpu(), path, dtype=torch.float16)
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"files": {}, "preset": "tiny"}
    manifest["files"][path.name] = {
        "sha256": digest, "bytes": path.stat().st_size, "trained": True,
        "recipe": f"python build/train_vae.py --steps {args.steps} --clips {args.clips} --batch {args.batch} --lr {args.lr} --seed {args.seed} --threads {args.threads}"
                  f" --crop {args.crop} --whole-tail {args.whole_tail}"
                  + (f" --init {args.init}" if args.init else "")
                  + (f" --minutes {args.minutes} --device {args.device} --workers {args.workers}" if args.minutes else "")
                  + "".join(f" --{k.replace('_', '-')} {v}" for k, v in shape.items()),
        "config": dataclasses.asdict(cfg), "device": _device_name(args.device),
        "data_seed": args.seed, "wall_seconds": round(time.time() - started, 1),
        "heldout_psnr_db": round(psnr, 2), "trained_steps": done_before + trained,
    }
    if psnr < TARGET_PSNR_DB:
        manifest["files"][path.name]["note"] = f"below the {TARGET_PSNR_DB} dB target"
    if losses:  # --steps 0 only finalises a checkpoint: no loss of its own to report
        manifest["files"][path.name]["final_loss"] = round(sum(losses[-50:]) / len(losses[-50:]), 5)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(json.dumps({"psnr_db": round(psnr, 2), "bytes": path.stat().st_size, "steps": trained,
                      "wall_seconds": round(time.time() - started)}))
    return 0


def _device_name(device: str) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({torch.get_num_threads()} threads)"


if __name__ == "__main__":
    raise SystemExit(main())
