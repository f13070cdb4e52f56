"""The bidirectional teacher's view of one shot, conditioned exactly as `runtime/story.py` conditions the student.

The teacher reads [context latents ; the shot's latents] in one full-attention pass (`CausalDiT.forward_full`,
mask None). Everything that tells the frames apart comes from the runtime's own rules and tables:
- which earlier frames are context, and their shot flags (`runtime.context.context_plan` / `flags_for_shot`);
  shot 0 (and a context-dropped sample) has all-zero context latents with flag 0, its frames flag 1;
- which caption each frame reads (`runtime.context.caption_index`: captions 0..k of the story so far);
- the RoPE angles with the shot indicator (`runtime.rope.RopeTable`, positions 0..F-1 as at inference:
  context at 0..n_ctx-1, the shot's latents after them);
- timesteps: context at t=0, the shot's latents at the sample's t (`runtime.dit.timestep_frequencies`).
The unconditional caption (classifier-free guidance's negative, and what 10% caption dropout trains) is the
all-zero embedding (`empty_caption`), as the official training zeroes dropped prompt embeddings.
The sampler of the eval and the teacher's training both build their inputs here, so they cannot disagree.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch

from runtime.config import ModelConfig
from runtime.context import caption_index, context_plan, flags_for_shot
from runtime.dit import timestep_frequencies
from runtime.rope import RopeTable


@dataclass(frozen=True)
class Layout:
    """One shot's sequence: `plan` picks the context frames, the rest is per frame of [context ; shot]."""

    plan: tuple[tuple[int, int], ...]  # (earlier shot, pixel frame within it) of each context frame
    flags: tuple[int, ...]  # RoPE shot flag per frame
    captions: tuple[int, ...]  # index of the caption (0..k) each frame reads

    @property
    def context_dropped(self) -> bool:
        return not self.plan


class NextShot:
    """Input builder for one preset: layouts, RoPE tables, timestep frequencies and per-frame text."""

    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg
        self.n_ctx = cfg.shot.context_frames
        self.n_target = cfg.shot.latent_frames_per_shot
        self.frames = self.n_ctx + self.n_target
        self._rope = RopeTable(cfg, self.frames)

    def layout(self, shot_lengths: Sequence[int], drop_context: bool = False) -> Layout:
        """Layout of the shot that follows earlier shots of `shot_lengths` pixel frames each.

        `drop_context` gives the context dropout of training: no plan, zero flags (shot 0's look), while the
        frames still read the story's own captions."""
        plan = [] if drop_context else context_plan(list(shot_lengths), self.n_ctx)
        ctx_flags, new_flag = flags_for_shot(plan, self.n_ctx)
        flags = tuple(ctx_flags) + (new_flag,) * self.n_target
        n_captions = len(shot_lengths) + 1
        captions = tuple(caption_index(f, n_captions) for f in flags)
        if drop_context:  # the shot's own frames still read the shot's own caption
            captions = captions[: self.n_ctx] + (n_captions - 1,) * self.n_target
        return Layout(tuple(plan), flags, captions)

    def rope(self, flags: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """(cos, sin) float32 (frames * tokens_per_frame, pairs) for frames at positions 0..F-1."""
        return _rope_tables(self._rope, flags)

    def rope_batch(self, layouts: Sequence[Layout]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample tables (B, T, pairs); one shared (T, pairs) pair when every layout has the same flags."""
        tables = [self.rope(lay.flags) for lay in layouts]
        if all(lay.flags == layouts[0].flags for lay in layouts):
            return tables[0]
        return torch.stack([c for c, _ in tables]), torch.stack([s for _, s in tables])

    def t_freq(self, t: torch.Tensor, frames: int | None = None) -> torch.Tensor:
        """(B, F, freq_dim): t=0 on the context frames, the sample's timestep `t` (B,) on the shot's."""
        frames = self.frames if frames is None else frames
        steps = np.zeros((len(t), frames))
        steps[:, frames - self.n_target if frames >= self.n_target else 0:] = t.detach().cpu().double().numpy()[:, None]
        return torch.from_numpy(timestep_frequencies(steps, self.cfg.dit.freq_dim))

    @staticmethod
    def text(captions: torch.Tensor, layout: Layout) -> torch.Tensor:
        """Per-frame text (F, L, Dt) from the story's caption embeddings (n_captions, L, Dt)."""
        return captions[list(layout.captions)]

    def context(self, picked: torch.Tensor | None, layout: Layout, like: torch.Tensor) -> torch.Tensor:
        """(n_ctx, C, h, w) context latents: `picked` in plan order, zeros where there is no plan."""
        out = torch.zeros((self.n_ctx,) + tuple(like.shape[-3:]), dtype=like.dtype, device=like.device)
        if layout.plan:
            out[: len(layout.plan)] = picked
        return out


@dataclass(frozen=True)
class FrameText:
    """The caption each frame of a batch reads, as a table of distinct caption embeddings (N, L, Dt) and each
    frame's row (B, F): the model projects each caption once (`CausalDiT.forward_full(..., text_index=)`)."""

    table: torch.Tensor
    index: torch.Tensor

    @staticmethod
    def of(bank_table: torch.Tensor, prompt_ids) -> "FrameText":
        """From a bank of prompt embeddings and each frame's prompt id (B, F)."""
        ids = torch.as_tensor(np.asarray(prompt_ids), dtype=torch.long)
        unique, inverse = torch.unique(ids, return_inverse=True)
        return FrameText(bank_table[unique.to(bank_table.device)].float(), inverse.to(bank_table.device))

    def dense(self) -> torch.Tensor:
        """(B, F, L, Dt) per-frame text."""
        return self.table[self.index]

    def to(self, device) -> "FrameText":
        return FrameText(self.table.to(device), self.index.to(device))

    def frames(self, n: int) -> "FrameText":
        """The first n frames."""
        return FrameText(self.table, self.index[:, :n])

    def dropped(self, keep: torch.Tensor) -> "FrameText":
        """Samples where `keep` (B,) is false read the empty caption on every frame (caption dropout)."""
        table = torch.cat([self.table, empty_caption(self.table[:1])])
        empty = torch.full_like(self.index, len(self.table))
        return FrameText(table, torch.where(keep.to(self.index.device).view(-1, 1), self.index, empty))

    def with_unconditional(self) -> "FrameText":
        """A batch of 2B: these samples, then the same with the empty caption on every frame (guidance)."""
        table = torch.cat([self.table, empty_caption(self.table[:1])])
        return FrameText(table, torch.cat([self.index, torch.full_like(self.index, len(self.table))]))

    def repeat(self, times: int) -> "FrameText":
        return FrameText(self.table, self.index.repeat(times, 1))


def empty_caption(captions: torch.Tensor) -> torch.Tensor:
    """The unconditional caption embeddings, shaped like `captions`: all zeros."""
    return torch.zeros_like(captions)


@lru_cache(maxsize=64)
def _rope_tables(table: RopeTable, flags: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    cos, sin = table.tables(range(len(flags)), flags)
    return torch.from_numpy(cos), torch.from_numpy(sin)
