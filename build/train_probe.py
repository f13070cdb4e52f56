"""Train the story-world evaluation probe and ship it: `python build/train_probe.py`.

Renders a training set of clips from the story world's train split (in memory), trains the probe
CNN on 2 CPU threads, scores it on a freshly rendered held-out set (compositions never seen in
training), and writes `storyworld/assets/probe.safetensors` with `probe.manifest.json` beside it
(sha256, recipe, command, data seeds, wall time, held-out accuracies). About 10-15 minutes.
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from storyworld.probe import (HELDOUT_EVAL_SEED, MANIFEST_PATH, WEIGHTS_PATH, Probe,  # noqa: E402
                              accuracies, clip_set)
from storyworld.probe.train import Recipe, train_probe  # noqa: E402
from storyworld.probe.weights import sha256  # noqa: E402

log = logging.getLogger("train_probe")


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0, help="data seed of the training stories")
    p.add_argument("--stories", type=int, default=4000, help="training stories (about 5 shots each)")
    p.add_argument("--clips-per-shot", type=int, default=1)
    p.add_argument("--heldout-stories", type=int, default=200)
    p.add_argument("--epochs", type=int, default=Recipe.epochs)
    p.add_argument("--batch", type=int, default=Recipe.batch)
    p.add_argument("--lr", type=float, default=Recipe.lr)
    p.add_argument("--workers", type=int, default=2, help="rendering processes")
    p.add_argument("--threads", type=int, default=2,
                   help="torch threads (on a machine busy with other work, 1 thread avoids thrashing)")
    p.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = _args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    train = clip_set(args.seed, "train", args.stories, args.clips_per_shot, args.workers, progress=True)
    heldout = clip_set(HELDOUT_EVAL_SEED, "heldout", args.heldout_stories, 1, args.workers, progress=True)
    log.info("rendered %d training and %d held-out clips in %.0f s", len(train), len(heldout),
             time.perf_counter() - start)
    recipe = Recipe(epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed)
    net = train_probe(train, recipe)
    acc = accuracies(net, heldout)
    wall = time.perf_counter() - start
    log.info("held-out accuracy: %s", " ".join(f"{k}={v:.4f}" for k, v in acc.items()))
    probe = Probe(net)
    probe.save(args.out)
    manifest = {
        "file": args.out.name, "sha256": sha256(args.out), "bytes": args.out.stat().st_size,
        "command": "python build/train_probe.py" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:])),
        "recipe": asdict(recipe) | {"clips_per_shot": args.clips_per_shot, "threads": args.threads,
                                    "autocast": "bfloat16"},
        "data_seed": args.seed, "train_stories": args.stories, "train_clips": len(train),
        "heldout_seed": HELDOUT_EVAL_SEED, "heldout_stories": args.heldout_stories, "heldout_clips": len(heldout),
        "heldout_accuracy": {k: round(v, 4) for k, v in acc.items()},
        "wall_time_s": round(wall, 1), "torch": torch.__version__, "python": platform.python_version(),
    }
    manifest_path = args.out.with_name(MANIFEST_PATH.name) if args.out != WEIGHTS_PATH else MANIFEST_PATH
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    log.info("wrote %s (%d bytes) and %s in %.0f s", args.out, manifest["bytes"], manifest_path.name, wall)
    return 0 if acc["min_accuracy"] >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
