"""The peer the runtime's DiT loop is measured against: a plain PyTorch causal loop, written the way the
official ShotStream pipeline runs one shot, on the weights of a loaded engine.

Owns only its orchestration. It reads `engine.bundle.dit` through its leaf modules (linears, norms, the
patch-embedding convolution, the modulation parameters) and the `rope_tables` / `apply_rope` / `attention` helpers, never
through the DiT's entry points, so it stays an independent check while those change.

The official way, per shot:
- self-attention cache: one dict per layer, {"k": (1, T, H, D), "v": (1, T, H, D)}, keys roped. The context
  frames' K/V (one pass at t=0) come first; each chunk's clean-pass K/V are appended with `torch.cat` after
  its denoising steps. A call attends to [cache ; its own tokens], with no mask.
- cross-attention cache: one dict per layer, {"k": (N, L, H, D), "v": (N, L, H, D)}, the text K/V of the N
  distinct captions the shot reads, computed once per shot and read by the context fill and all chunk calls.
- each call: patch embedding, per-frame AdaLN modulation, self-attention, cross-attention, FFN, and (chunk
  calls) the head and unpatchify -> velocity, v = eps - x0.
Noise comes from the caller's generator in the runtime's order (runtime/story.py), so for the same seed
both produce the same latents. Everything is allocated as it is needed: this is the baseline, fp32 on the CPU.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from runtime.context import caption_index
from runtime.dit import apply_rope, attention, rope_tables

if TYPE_CHECKING:
    from runtime.engine import Engine

Tensor = torch.Tensor
LayerCache = dict[str, Tensor]


class ReferenceLoop:
    """One shot at a time; keeps no state between shots (the caller passes the context and the generator)."""

    def __init__(self, engine: "Engine"):
        self.dit, self.cfg = engine.bundle.dit, engine.cfg
        self.rope, self.scheduler = engine.rope, engine.scheduler
        self.step_sigmas, self.t_freq_steps = engine.step_sigmas, engine.t_freq_steps
        self.t_freq_zero = engine.t_freq_zero
        weight = self.dit.patch_embedding.weight
        if weight.device.type != "cpu" or weight.dtype != torch.float32:
            raise ValueError(f"the reference loop runs fp32 on the CPU; the DiT is {weight.dtype} on {weight.device}")
        d = self.cfg.dit
        self.heads, self.head_dim = d.num_heads, d.head_dim

    # -- public API ------------------------------------------------------------------------------
    def shot(self, context: np.ndarray, context_flags: list[int], captions: list[np.ndarray], new_flag: int,
             rng: np.random.Generator, chunks: int | None = None) -> np.ndarray:
        """The x0 latents (chunks * frames_per_chunk, C, H, W) float32 of one shot.

        context: (n_ctx, C, H, W) latents at t=0 (zeros with flags 0 for a story's first shot); a frame with
        flag f reads captions[caption_index(f, len(captions))], each (text_len, text_dim); the new frames
        carry `new_flag`. Draws the shot's noise from `rng`."""
        cfg = self.cfg
        chunks = cfg.shot.chunks_per_shot if chunks is None else chunks
        self._check(context, context_flags, captions, chunks)
        ctx_rows = [caption_index(f, len(captions)) for f in context_flags]
        new_row = caption_index(new_flag, len(captions))
        used = sorted(set(ctx_rows) | {new_row})  # distinct captions; row r of the cross cache is captions[used[r]]
        with torch.inference_mode():
            cross = self._cross_cache([captions[i] for i in used])
            cache = self._context_fill(context, context_flags, cross, [used.index(r) for r in ctx_rows])
            out = [self._chunk(b, new_flag, cross, used.index(new_row), cache, rng) for b in range(chunks)]
        return np.concatenate(out)

    def timed_shot(self, *args, **kwargs) -> tuple[np.ndarray, float]:
        """`shot(...)` and its wall time in seconds (perf_counter)."""
        started = time.perf_counter()
        latents = self.shot(*args, **kwargs)
        return latents, time.perf_counter() - started

    def _check(self, context: np.ndarray, flags: list[int], captions: list[np.ndarray], chunks: int) -> None:
        cfg = self.cfg
        n_ctx, max_chunks = cfg.shot.context_frames, cfg.shot.chunks_per_shot
        if tuple(context.shape) != (n_ctx,) + cfg.latent_shape:
            raise ValueError(f"context must be {(n_ctx,) + cfg.latent_shape}, got {tuple(context.shape)}")
        if len(flags) != n_ctx:
            raise ValueError(f"{n_ctx} context flags expected, got {len(flags)}")
        text_shape = (cfg.text.text_len, cfg.dit.text_dim)
        if not captions or any(tuple(c.shape) != text_shape for c in captions):
            raise ValueError(f"captions must be a non-empty list of {text_shape} embeddings")
        if isinstance(chunks, bool) or not isinstance(chunks, int) or not 1 <= chunks <= max_chunks:
            raise ValueError(f"chunks must be an integer in [1, {max_chunks}], got {chunks!r}")

    # -- the loop --------------------------------------------------------------------------------
    def _cross_cache(self, texts: list[np.ndarray]) -> list[LayerCache]:
        """Per layer the text K/V (N, L, H, D) of N captions: text-embedding MLP, then norm_k(k(.)) and v(.)."""
        txt = self.dit.text_embedding(torch.from_numpy(np.stack(texts).astype(np.float32)))  # (N, L, dim)
        shape = txt.shape[:2] + (self.heads, self.head_dim)
        return [{"k": blk.cross_attn.norm_k(blk.cross_attn.k(txt)).view(shape), "v": blk.cross_attn.v(txt).view(shape)}
                for blk in self.dit.blocks]

    def _context_fill(self, context: np.ndarray, flags: list[int], cross: list[LayerCache],
                      rows: list[int]) -> list[LayerCache]:
        """The self-attention cache holding the context frames' K/V at t=0 (positions 0..n_ctx-1)."""
        n = len(flags)
        empty = torch.zeros(1, 0, self.heads, self.head_dim)
        cache = [{"k": empty, "v": empty} for _ in self.dit.blocks]
        x = np.ascontiguousarray(context, dtype=np.float32)
        self._call(x, self.t_freq_zero(n)[0], self._rope(range(n), flags), cross, rows, cache, commit=True, head=False)
        return cache

    def _chunk(self, b: int, flag: int, cross: list[LayerCache], row: int, cache: list[LayerCache],
               rng: np.random.Generator) -> np.ndarray:
        """Chunk b: 4 denoising calls with re-noising between them, then the clean pass whose K/V are appended.
        Returns its x0 (frames_per_chunk, C, H, W)."""
        fc, sched, sigmas = self.cfg.shot.latent_frames_per_chunk, self.scheduler, self.step_sigmas
        first = self.cfg.shot.context_frames + fc * b
        rope = self._rope(range(first, first + fc), [flag] * fc)
        x = np.empty((1, fc) + self.cfg.latent_shape, np.float32)
        x0, noise = np.empty_like(x), np.empty_like(x)
        rng.standard_normal(dtype=np.float32, out=x)
        for i, sigma in enumerate(sigmas):
            v = self._call(x[0], self.t_freq_steps[i][0], rope, cross, [row], cache, commit=False)
            sched.x0_from_velocity(x, v[None], sigma, out=x0)
            if i + 1 < len(sigmas):
                rng.standard_normal(dtype=np.float32, out=noise)
                sched.add_noise(x0, noise, sigmas[i + 1], out=x)
        self._call(x0[0], self.t_freq_zero(fc)[0], rope, cross, [row], cache, commit=True)
        return x0[0]

    def _rope(self, positions, flags: list[int]) -> tuple[Tensor, Tensor]:
        cos, sin = self.rope.tables(list(positions), flags)
        return rope_tables(torch.from_numpy(cos), torch.from_numpy(sin))

    # -- one DiT call ----------------------------------------------------------------------------
    def _call(self, x: np.ndarray, t_freq: np.ndarray, rope: tuple[Tensor, Tensor], cross: list[LayerCache],
              rows: list[int], cache: list[LayerCache], *, commit: bool, head: bool = True) -> np.ndarray | None:
        """One forward of frames x (F, C, H, W) at per-frame timestep features t_freq (F, freq_dim).

        `rows`: the cross-cache row each query group reads, one group per frame or one for the whole call.
        With `commit`, every layer's K/V are appended to `cache` after the last layer (as the official
        code commits). Returns the velocity (F, C, H, W), or None without the head."""
        dit, f = self.dit, x.shape[0]
        tokens = self._patch_embed(torch.from_numpy(x))  # (1, F*Tf, dim)
        e = dit.time_embedding(torch.from_numpy(t_freq))  # (F, dim)
        e0 = dit.time_projection(e).view(f, 6, -1)  # (F, 6, dim)
        fresh = []
        for blk, kv, text_kv in zip(dit.blocks, cache, cross):
            tokens, k, v = self._block(blk, tokens, e0, rope, kv, text_kv, rows)
            fresh.append((k, v))
        if commit:
            for kv, (k, v) in zip(cache, fresh):
                kv["k"], kv["v"] = torch.cat([kv["k"], k], 1), torch.cat([kv["v"], v], 1)
        return self._head(tokens, e).numpy() if head else None

    def _patch_embed(self, x: Tensor) -> Tensor:
        """(F, C, H, W) -> tokens (1, F*gh*gw, dim), frame-major then row-major: the official Conv3d."""
        y = self.dit.patch_embedding(x.transpose(0, 1).unsqueeze(0))  # (1, dim, F, gh, gw)
        return y.flatten(2).transpose(1, 2)

    def _block(self, blk, x: Tensor, e0: Tensor, rope: tuple[Tensor, Tensor], kv: LayerCache, text_kv: LayerCache,
               rows: list[int]) -> tuple[Tensor, Tensor, Tensor]:
        """One transformer block on x (1, T, dim). Returns (x, k, v) with this call's roped k and v (1, T, H, D)."""
        f, (_, t, dim) = e0.shape[0], x.shape
        e = (blk.modulation[0] + e0).unsqueeze(1)  # (F, 1, 6, dim): AdaLN pieces 0..5, per frame

        def modulate(y: Tensor, shift: int, scale: int) -> Tensor:
            return (y.view(f, t // f, dim) * (1 + e[:, :, scale]) + e[:, :, shift]).view(1, t, dim)

        def gated(y: Tensor, gate: int) -> Tensor:
            return (y.view(f, t // f, dim) * e[:, :, gate]).view(1, t, dim)

        sa, shape = blk.self_attn, (1, t, self.heads, self.head_dim)
        h = modulate(blk.norm1(x), 0, 1)
        q = apply_rope(sa.norm_q(sa.q(h)).view(shape), rope)
        k = apply_rope(sa.norm_k(sa.k(h)).view(shape), rope)
        v = sa.v(h).view(shape)
        y = attention(q, torch.cat([kv["k"], k], 1), torch.cat([kv["v"], v], 1), None)  # (1, T, H, D)
        x = x + gated(sa.o(y.flatten(2)), 2)
        x = x + self._cross(blk.cross_attn, blk.norm3(x), text_kv, rows)
        x = x + gated(blk.ffn(modulate(blk.norm2(x), 3, 4)), 5)
        return x, k, v

    def _cross(self, ca, x: Tensor, text_kv: LayerCache, rows: list[int]) -> Tensor:
        """Cross-attention of x (1, T, dim), split into len(rows) equal query groups, group g reading the
        cached text K/V of row rows[g]."""
        g, t, dim = len(rows), x.shape[1], x.shape[2]
        q = ca.norm_q(ca.q(x)).view(g, t // g, self.heads, self.head_dim)
        y = attention(q, text_kv["k"][rows], text_kv["v"][rows], None)  # (G, T/G, H, D)
        return ca.o(y.reshape(1, t, dim))

    def _head(self, x: Tensor, e: Tensor) -> Tensor:
        """Head on x (1, F*Tf, dim) with per-frame e (F, dim), then unpatchify -> velocity (F, C, H, W)."""
        head, f, dim = self.dit.head, e.shape[0], e.shape[1]
        gh, gw = self.cfg.token_grid
        _, ph, pw = self.cfg.dit.patch
        mod = (head.modulation[0] + e.unsqueeze(1)).unsqueeze(1)  # (F, 1, 2, dim): shift, scale
        y = head.head(head.norm(x).view(f, gh * gw, dim) * (1 + mod[:, :, 1]) + mod[:, :, 0])  # (F, Tf, c*ph*pw)
        y = y.view(f, gh, gw, ph, pw, -1).permute(0, 5, 1, 3, 2, 4)  # (F, c, gh, ph, gw, pw)
        return y.reshape(f, -1, gh * ph, gw * pw)
