"""Training data resident on the training device, and batches drawn there: no host round trip per step.

A pool holds everything a batch is made of as device tensors: the latents (fp16, as the shards store them),
the caption bank (one embedding per distinct prompt), and integer tables that say which rows a sample reads.
`draw(b, gen)` picks indices (and, for shots, context dropout) with the run's generator on the same device and
gathers a batch with tensor indexing alone; `batch(idx, drop)` is the same with given draws (what the tests
set against the host path, `distill.teacher.FrameSamples` / `ShotSamples`).

Captions: a sample reads at most `slots` distinct captions (1 for a frame; for a shot, the captions its layout
routes frames to, padded to the most any layout reads by repeating its first). The batch's caption table is
those rows gathered, (B * slots, L, Dt), and each frame indexes its sample's own slots: the model projects a
fixed number of captions a step, with no `unique` (a host sync on CUDA) in the loop.

Shots: a sample's layout depends only on its shot number k and whether its context is dropped, so each
(k, dropped) layout is tabulated once: which earlier shot and which kept frame fills each context slot, the
caption slot each frame reads, and the RoPE tables with the shot indicator.
"""
from __future__ import annotations

import numpy as np
import torch

from distill.nextshot import FrameText, NextShot
from runtime.measure.flops import dit_call_flops

CONTEXT_DROPOUT = 0.1


class ResidentFrames:
    """Single latent frames, each at the first position of a shot with its shot's caption."""

    slots = 1

    def __init__(self, data: dict, bank, ns: NextShot, device):
        self.device, self.ns = torch.device(device), ns
        self.latents = torch.from_numpy(data["latents"]).to(self.device)  # (N, C, h, w) fp16
        self.caption = torch.from_numpy(bank.ids.astype(np.int64)).to(self.device)  # (N,) bank row
        self.table = bank.table.to(self.device)  # (n_prompts, L, Dt) fp16
        cos, sin = ns.rope(ns.layout([]).flags)
        rows = slice(ns.n_ctx * ns.cfg.tokens_per_frame, (ns.n_ctx + 1) * ns.cfg.tokens_per_frame)
        self.cos, self.sin = cos[rows].to(self.device), sin[rows].to(self.device)
        self.frames = 1

    def __len__(self) -> int:
        return len(self.latents)

    def draw(self, b: int, gen: torch.Generator):
        return self.batch(torch.randint(len(self), (b,), generator=gen, device=self.device))

    def batch(self, idx: torch.Tensor, drop: torch.Tensor | None = None):
        """(x0 (B, 1, C, h, w) float32, None, FrameText, cos, sin) of rows `idx` (B,) on the device."""
        b = len(idx)
        x0 = self.latents[idx].float().unsqueeze(1)
        text = FrameText(self.table[self.caption[idx]].float(), torch.arange(b, device=self.device).view(b, 1))
        return x0, None, text, self.cos, self.sin

    @property
    def tokens_per_sample(self) -> int:
        return self.frames * self.ns.cfg.tokens_per_frame

    def forward_flops_per_sample(self) -> int:
        return dit_call_flops(self.ns.cfg, self.frames, captions=self.slots)


class ResidentShots:
    """[context ; shot] samples: shot k of a story, context from its shots 0..k-1 by the runtime's rule."""

    def __init__(self, data: dict, bank, ns: NextShot, device):
        self.device, self.ns = torch.device(device), ns
        dev = self.device
        story, shot = np.asarray(data["story"], np.int64), np.asarray(data["shot"], np.int64)
        row = {(int(s), int(k)): i for i, (s, k) in enumerate(zip(story, shot))}
        shots = int(shot.max()) + 1
        shot_rows = np.zeros((len(story), shots), np.int64)  # row of the same story's shot j (j <= k)
        for i, (s, k) in enumerate(zip(story, shot)):
            shot_rows[i, : k + 1] = [row[(int(s), j)] for j in range(k + 1)]
        needed = [int(f) for f in data["context_frames"]]
        layouts = [ns.layout([ns.cfg.frames_per_shot] * k, drop_context=bool(d)) for k in range(shots) for d in (0, 1)]
        self.slots = max(len(set(lay.captions)) for lay in layouts)
        plan_shot = np.zeros((len(layouts), ns.n_ctx), np.int64)
        plan_frame = np.zeros((len(layouts), ns.n_ctx), np.int64)
        plan_kept = np.zeros((len(layouts), ns.n_ctx), bool)
        slot_shot = np.zeros((len(layouts), self.slots), np.int64)  # the story's shot whose caption fills a slot
        frame_slot = np.zeros((len(layouts), ns.frames), np.int64)
        for n, lay in enumerate(layouts):
            for c, (j, f) in enumerate(lay.plan):
                plan_shot[n, c], plan_frame[n, c], plan_kept[n, c] = j, needed.index(f), True
            distinct = sorted(set(lay.captions))
            slot_shot[n] = distinct + distinct[:1] * (self.slots - len(distinct))
            frame_slot[n] = [distinct.index(c) for c in lay.captions]
        tables = [ns.rope(lay.flags) for lay in layouts]

        def on(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(a).to(dev)
        self.latents = torch.from_numpy(data["latents"]).to(dev)  # (N, 21, C, h, w) fp16
        self.context = torch.from_numpy(data["context"]).to(dev)  # (N, n_needed, C, h, w) fp16
        self.table = bank.table.to(dev)
        self.prompt = on(bank.ids.astype(np.int64))  # (N,) bank row of each shot's prompt
        self.shot, self.shot_rows = on(shot), on(shot_rows)
        self.plan_shot, self.plan_frame, self.plan_kept = on(plan_shot), on(plan_frame), on(plan_kept)
        self.slot_shot, self.frame_slot = on(slot_shot), on(frame_slot)
        self.cos = torch.stack([c for c, _ in tables]).to(dev)  # (layouts, T, pairs)
        self.sin = torch.stack([s for _, s in tables]).to(dev)
        self.frames = ns.frames

    def __len__(self) -> int:
        return len(self.latents)

    def draw(self, b: int, gen: torch.Generator):
        idx = torch.randint(len(self), (b,), generator=gen, device=self.device)
        return self.batch(idx, torch.rand(b, generator=gen, device=self.device) < CONTEXT_DROPOUT)

    def batch(self, idx: torch.Tensor, drop: torch.Tensor | None = None):
        """(x0 (B, 21, C, h, w), context (B, n_ctx, C, h, w) float32, FrameText, cos, sin (B, T, pairs)) of
        rows `idx` (B,), context dropped where `drop` (B,) is true."""
        b = len(idx)
        drop = torch.zeros(b, dtype=torch.bool, device=self.device) if drop is None else drop
        lay = 2 * self.shot[idx] + drop.long()  # (B,) layout of each sample
        rows = self.shot_rows[idx]  # (B, shots)
        picked = self.context[rows.gather(1, self.plan_shot[lay]), self.plan_frame[lay]]  # (B, n_ctx, C, h, w)
        context = picked.float() * self.plan_kept[lay].view(b, -1, 1, 1, 1)
        captions = self.prompt[rows.gather(1, self.slot_shot[lay])]  # (B, slots) bank rows
        index = torch.arange(b, device=self.device).view(b, 1) * self.slots + self.frame_slot[lay]  # (B, F)
        text = FrameText(self.table[captions.flatten()].float(), index)
        return self.latents[idx].float(), context, text, self.cos[lay], self.sin[lay]

    @property
    def tokens_per_sample(self) -> int:
        return self.frames * self.ns.cfg.tokens_per_frame

    def forward_flops_per_sample(self) -> int:
        return dit_call_flops(self.ns.cfg, self.frames, captions=self.slots)


def resident_pool(kind: str, data: dict, bank, ns: NextShot, device):
    """The pool of a phase's data kind ("frames" or "shots") on `device`."""
    if kind == "frames":
        return ResidentFrames(data, bank, ns, device)
    if kind == "shots":
        return ResidentShots(data, bank, ns, device)
    raise ValueError(f"data kind must be 'frames' or 'shots', got {kind!r}")


def caption_embedder(text_encoder, tokenizer, device):
    """prompts -> (n, L, Dt) fp16 caption embeddings on `device`, by the run's text encoder (no gradient)."""
    text_encoder = text_encoder.to(device).eval()

    @torch.no_grad()
    def embed(prompts) -> torch.Tensor:
        ids = np.concatenate([tokenizer.encode(str(p)) for p in prompts])
        return text_encoder(torch.from_numpy(ids).to(device)).half()
    return embed
