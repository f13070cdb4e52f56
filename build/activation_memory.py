"""What one training step of each teacher phase keeps for its backward pass, per sample, measured on the CPU:
   python build/activation_memory.py --recipe build/recipes/tiny-p1-gpu.toml [--preset NAME] [--batch 4]

A recipe's batches are sized for a GPU that a session may not have, and a batch that does not fit ends a GPU call
at its first step. This runs one step of each phase at two small batches (b and 2b) on a few rendered stories and
adds up the bytes of every tensor autograd saves (`torch.autograd.graph.saved_tensors_hooks`, each storage once), with the
fused attention kernel CUDA uses, which keeps the output and its log-sum-exp, not the score matrix (the CPU loop
otherwise runs the math kernel on single frames: `distill.runs.TrainDevice.kernels`). Saved bytes grow with the
batch: the difference between the two steps, per sample, times the recipe's batch, plus what does not grow with
it (weights' casts, the batch's captions), is what the phase holds at the end of its forward pass; the backward
pass needs more on top for the gradients it is making (on the CPU, peak memory was about 1.8x the saved bytes).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path


def saved_bytes(recipe, phase, data: dict, batch: int) -> int:
    """Bytes autograd saves in one step of `phase` at `batch`."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from distill import runs
    from distill.teacher import train

    seen: dict = {}

    def pack(t):
        seen.setdefault((t.untyped_storage().data_ptr(), t.dtype), t.untyped_storage().nbytes())
        return t

    one = dataclasses.replace(recipe, measure_peak=False, checkpoint_every=10**9, snapshot_every=0, compile=False,
                              phases=(dataclasses.replace(phase, steps=1, batch=batch, minutes=None),))
    kernels = runs.TrainDevice.kernels
    runs.TrainDevice.kernels = lambda self, tokens: sdpa_kernel([SDPBackend.FLASH_ATTENTION])  # what CUDA's keep
    try:
        with tempfile.TemporaryDirectory() as out, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            train(one, data, Path(out))
    finally:
        runs.TrainDevice.kernels = kernels
    return sum(seen.values())


def main(argv: list[str] | None = None) -> int:
    from distill import shards
    from distill.teacher import TeacherRecipe

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", required=True, type=Path)
    ap.add_argument("--preset", default=None, help="measure in this preset instead of the recipe's")
    ap.add_argument("--batch", type=int, default=4, help="the smaller batch measured, b (default 4; then 2b)")
    args = ap.parse_args(argv)
    recipe = TeacherRecipe.from_toml(args.recipe)
    if args.preset:
        recipe = dataclasses.replace(recipe, preset=args.preset)
    rows = {}
    with tempfile.TemporaryDirectory() as root:
        data = {}
        for kind in ("frames", "shots"):
            shards.prepare(Path(root) / kind, kind=kind, seed=3, stories=2, shard_stories=1, workers=1)
            data[kind] = shards.load(Path(root) / kind)
        for phase in recipe.phases:
            if phase.data == "stream":  # a streamed phase draws single frames, as a frames phase does
                phase = dataclasses.replace(phase, data="frames")
            small, large = (saved_bytes(recipe, phase, data, b) for b in (args.batch, 2 * args.batch))
            per = (large - small) / args.batch
            fixed = max(0.0, small - per * args.batch)
            rows[phase.name] = {"preset": recipe.preset, "data": phase.data, "saved_mib_per_sample": round(per / 2**20, 2),
                                "saved_mib_fixed": round(fixed / 2**20, 1), "batch": phase.batch,
                                "saved_gib_at_batch": round((fixed + per * phase.batch) / 2**30, 1)}
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
