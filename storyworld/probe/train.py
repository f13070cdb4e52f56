"""Training and scoring of the probe: the loss, the loop, and per-attribute accuracies.

`train_probe(train_set, recipe)` fits a `ProbeNet` on a `ClipSet` (bf16 autocast on CPU,
AdamW with a one-cycle schedule, random flips and shifts).
`accuracies(net, clip_set)` scores it: exact match of the set of visible characters, accuracy of
each class head, and of the colour variant of every visible character ("identity").
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from storyworld.probe.clips import CLASS_HEADS
from storyworld.probe.data import ClipSet
from storyworld.probe.model import GLOBAL_HEADS, ProbeNet, to_input

log = logging.getLogger(__name__)

ATTRIBUTES = ("characters", "identity") + tuple(CLASS_HEADS)
SHIFT = 4  # pixels of random translation in training


@dataclass(frozen=True)
class Recipe:
    epochs: int = 12
    batch: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    seed: int = 0


def loss_terms(out: dict[str, torch.Tensor], tgt: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    terms = {name: F.cross_entropy(out[name].float(), tgt[name]) for name in GLOBAL_HEADS}
    terms["characters"] = F.binary_cross_entropy_with_logits(out["characters"].float(), tgt["characters"])
    present = tgt["variant"] >= 0  # (B, K)
    terms["identity"] = F.cross_entropy(out["variant"].float()[present], tgt["variant"][present])
    terms["action"] = F.cross_entropy(out["kind_action"].float()[present], tgt["kind_action"][present])
    return terms


def _batch(data: ClipSet, idx: np.ndarray, rng: np.random.Generator | None = None):
    """Inputs and targets of clips `idx`; with `rng`, augmented: random horizontal flips (no
    label depends on left or right) and a shift of the whole batch by up to SHIFT pixels."""
    x = to_input(data.clips[idx])
    if rng is not None:
        flip = torch.as_tensor(rng.random(len(idx)) < 0.5)
        x[flip] = x[flip].flip(-1)
        dy, dx = (int(v) for v in rng.integers(-SHIFT, SHIFT + 1, 2))
        h, w = x.shape[-2:]
        x = F.pad(x, (SHIFT,) * 4, mode="replicate")[..., SHIFT + dy:SHIFT + dy + h, SHIFT + dx:SHIFT + dx + w]
    return x, {name: torch.as_tensor(v[idx]) for name, v in data.targets.items()}


def train_probe(data: ClipSet, recipe: Recipe) -> ProbeNet:
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    net = ProbeNet().to(memory_format=torch.channels_last)  # oneDNN's faster layout on CPU
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = len(data) // recipe.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, recipe.lr, total_steps=recipe.epochs * steps_per_epoch,
                                                pct_start=0.15)
    net.train()
    for epoch in range(recipe.epochs):
        order, start, seen = rng.permutation(len(data)), time.perf_counter(), {}
        for s in range(steps_per_epoch):
            idx = np.sort(order[s * recipe.batch:(s + 1) * recipe.batch])
            x, tgt = _batch(data, idx, rng)
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                terms = loss_terms(net(x), tgt)
            loss = sum(terms.values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            for k, v in terms.items():
                seen[k] = seen.get(k, 0.0) + v.item() / steps_per_epoch
        log.info("epoch %d/%d  %.0f s  losses %s", epoch + 1, recipe.epochs, time.perf_counter() - start,
                 " ".join(f"{k}={v:.3f}" for k, v in seen.items()))
    return net.eval()


@torch.no_grad()
def predict(net: ProbeNet, clips: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
    """Probe outputs for uint8 clips (N, 5, 64, 64, 3), in float32, as numpy arrays."""
    net.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for s in range(0, len(clips), batch):
        out = net(to_input(clips[s:s + batch]))
        for k, v in out.items():
            parts.setdefault(k, []).append(v.float().numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def accuracies(net: ProbeNet, data: ClipSet, clips_per_shot: int = 1) -> dict[str, float]:
    """Accuracy per attribute; with clips_per_shot > 1 (consecutive clips of one shot, as
    `clip_set` lays them out) each shot is read once from the mean of its clips' logits."""
    out = {k: v.reshape(-1, clips_per_shot, *v.shape[1:]).mean(1) for k, v in predict(net, data.clips).items()}
    t = {k: v[::clips_per_shot] for k, v in data.targets.items()}
    acc = {name: float((out[name].argmax(1) == t[name]).mean()) for name in CLASS_HEADS}
    acc["characters"] = float(((out["characters"] > 0) == (t["characters"] > 0.5)).all(1).mean())
    present = t["variant"] >= 0
    acc["identity"] = float((out["variant"].argmax(2)[present] == t["variant"][present]).mean())
    acc = {k: acc[k] for k in ATTRIBUTES}
    acc["min_accuracy"] = min(acc.values())
    return acc
