"""The causal student DiT (Wan2.1 layout, official parameter names) and its three entry points.

Entry points (spec section 2), all pure functions of their inputs (no hidden state, no cache writes):
- `forward_full`  : whole [context ; target] sequence with the block mask. Training and the reference.
- `context_fill`  : context latents at t=0, attending among themselves; returns every layer's roped K and V
                    (time-major: (tokens, layers, heads, head_dim)) for the global cache.
- `chunk_step`    : one chunk attending to [global cache ; valid local cache ; itself]; returns the velocity
                    and the chunk's own roped K/V so the caller can write them into the chunk's local slot.
Per-frame AdaLN timestep, RMS qk-norm over the full width, interleaved 3-axis RoPE whose (cos, sin) tables
come from the host (runtime/rope.py), per-frame caption routing (the caller gathers one caption per frame).
The patch embedding is the official Conv3d weight applied as a matmul over (c, 1, 2, 2) patches.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from runtime.config import DiTConfig

Tensor = torch.Tensor


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate interleaved pairs (2j, 2j+1) of x (B, T, H, D) by angles with cos/sin (T, D/2), or (B, T, D/2)
    when the samples of a batch sit at different shot flags (training)."""
    b, t, h, d = x.shape
    pairs = x.reshape(b, t, h, d // 2, 2)
    x0, x1 = pairs[..., 0], pairs[..., 1]
    if cos.dim() == 3:
        c, s = cos[:, :, None, :], sin[:, :, None, :]
    else:
        c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).reshape(b, t, h, d)


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
    """Softmax attention over (B, T, H, D) tensors; `mask` broadcastable to (B, H, Tq, Tk)."""
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask)
    return out.transpose(1, 2)


class SelfAttention(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.heads, self.head_dim = cfg.num_heads, cfg.head_dim
        self.q, self.k, self.v, self.o = (nn.Linear(cfg.dim, cfg.dim) for _ in range(4))
        self.norm_q, self.norm_k = RMSNorm(cfg.dim, cfg.eps), RMSNorm(cfg.dim, cfg.eps)

    def project(self, x: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Roped q, roped k and v, each (B, T, H, D)."""
        b, t, _ = x.shape
        shape = (b, t, self.heads, self.head_dim)
        q = apply_rope(self.norm_q(self.q(x)).view(shape), cos, sin)
        k = apply_rope(self.norm_k(self.k(x)).view(shape), cos, sin)
        return q, k, self.v(x).view(shape)


class CrossAttention(nn.Module):
    """Text cross-attention, routed per frame: the tokens of frame f attend only to text[:, f]."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.heads, self.head_dim = cfg.num_heads, cfg.head_dim
        self.q, self.k, self.v, self.o = (nn.Linear(cfg.dim, cfg.dim) for _ in range(4))
        self.norm_q, self.norm_k = RMSNorm(cfg.dim, cfg.eps), RMSNorm(cfg.dim, cfg.eps)

    def forward(self, x: Tensor, text: Tensor, text_index: Tensor | None = None) -> Tensor:
        """x: (B, F*Tf, dim); text already embedded: (B, F, L, dim), one caption per frame, or, with
        `text_index` (B, F), a table of distinct captions (N, L, dim) that each frame indexes (their keys and
        values are then projected once per caption, not once per frame)."""
        k, v = self.norm_k(self.k(text)), self.v(text)
        if text_index is not None:
            k, v = k[text_index], v[text_index]
        b, f, length, dim = k.shape
        tf = x.shape[1] // f
        q = self.norm_q(self.q(x)).view(b * f, tf, self.heads, self.head_dim)
        k = k.reshape(b * f, length, self.heads, self.head_dim)
        v = v.reshape(b * f, length, self.heads, self.head_dim)
        return self.o(attention(q, k, v, None).reshape(b, f * tf, dim))


class Block(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.dim, eps=cfg.eps, elementwise_affine=False)
        self.self_attn = SelfAttention(cfg)
        self.norm3 = nn.LayerNorm(cfg.dim, eps=cfg.eps, elementwise_affine=True)
        self.cross_attn = CrossAttention(cfg)
        self.norm2 = nn.LayerNorm(cfg.dim, eps=cfg.eps, elementwise_affine=False)
        self.ffn = nn.Sequential(nn.Linear(cfg.dim, cfg.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.ffn_dim, cfg.dim))
        self.modulation = nn.Parameter(torch.randn(1, 6, cfg.dim) / cfg.dim**0.5)

    def forward(self, x: Tensor, e0: Tensor, text: Tensor, cos: Tensor, sin: Tensor, keys,
                text_index: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """One block. `keys(k, v) -> (k_all, v_all, mask)` decides what the chunk attends to.

        x: (B, F*Tf, dim); e0: (B, F, 6, dim) per-frame modulation. Returns (x, k, v) with this block's own
        roped k and v (B, F*Tf, H, D) so callers can cache them.
        """
        b, f = e0.shape[:2]
        e = (self.modulation.unsqueeze(0) + e0).unsqueeze(2)  # (B, F, 1, 6, dim)
        tf = x.shape[1] // f

        def per_token(i: int) -> Tensor:
            return e[:, :, :, i].expand(b, f, tf, -1).reshape(b, f * tf, -1)

        h = self.norm1(x) * (1 + per_token(1)) + per_token(0)
        q, k, v = self.self_attn.project(h, cos, sin)
        k_all, v_all, mask = keys(k, v)
        y = self.self_attn.o(attention(q, k_all, v_all, mask).flatten(2))
        x = x + y * per_token(2)
        x = x + self.cross_attn(self.norm3(x), text, text_index)
        y = self.ffn(self.norm2(x) * (1 + per_token(4)) + per_token(3))
        return x + y * per_token(5), k, v


class Head(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.eps, elementwise_affine=False)
        self.head = nn.Linear(cfg.dim, cfg.out_channels * math.prod(cfg.patch))
        self.modulation = nn.Parameter(torch.randn(1, 2, cfg.dim) / cfg.dim**0.5)

    def forward(self, x: Tensor, e: Tensor) -> Tensor:
        # x: (B, F*Tf, dim); e: (B, F, dim)
        b, f, dim = e.shape
        tf = x.shape[1] // f
        mod = (self.modulation.unsqueeze(0) + e.unsqueeze(2)).unsqueeze(2).expand(b, f, tf, 2, dim)
        mod = mod.reshape(b, f * tf, 2, dim)
        return self.head(self.norm(x) * (1 + mod[:, :, 1]) + mod[:, :, 0])


class CausalDiT(nn.Module):
    """The student. Latents are frame-major (B, F, C, H, W); text is per frame (B, F, L, text_dim)."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        if cfg.patch[0] != 1:
            raise ValueError("only a temporal patch of 1 is supported (both presets use (1, 2, 2))")
        self.cfg = cfg
        self.patch_embedding = nn.Conv3d(cfg.in_channels, cfg.dim, kernel_size=cfg.patch, stride=cfg.patch)
        self.text_embedding = nn.Sequential(nn.Linear(cfg.text_dim, cfg.dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.dim, cfg.dim))
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(cfg.dim, cfg.dim * 6))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.head = Head(cfg)

    # -- shared pieces ---------------------------------------------------------------------------
    def _patchify(self, x: Tensor) -> Tensor:
        b, f, c, hh, ww = x.shape
        _, ph, pw = self.cfg.patch
        x = x.reshape(b, f, c, hh // ph, ph, ww // pw, pw).permute(0, 1, 3, 5, 2, 4, 6)
        x = x.reshape(b, f * (hh // ph) * (ww // pw), c * ph * pw)
        return F.linear(x, self.patch_embedding.weight.flatten(1), self.patch_embedding.bias)

    def _unpatchify(self, y: Tensor, f: int, hh: int, ww: int) -> Tensor:
        b = y.shape[0]
        _, ph, pw = self.cfg.patch
        c = self.cfg.out_channels
        y = y.reshape(b, f, hh // ph, ww // pw, ph, pw, c).permute(0, 1, 6, 2, 4, 3, 5)
        return y.reshape(b, f, c, hh, ww)

    def _embed(self, x: Tensor, t_freq: Tensor, text: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """tokens (B, F*Tf, dim), e (B, F, dim), e0 (B, F, 6, dim), text (B, F, L, dim)."""
        b, f = t_freq.shape[:2]
        e = self.time_embedding(t_freq)
        e0 = self.time_projection(e).view(b, f, 6, self.cfg.dim)
        return self._patchify(x), e, e0, self.text_embedding(text)

    def _run_blocks(self, x, e0, text, cos, sin, keys_for_layer, text_index=None):
        ks, vs = [], []
        for i, block in enumerate(self.blocks):
            x, k, v = block(x, e0, text, cos, sin, keys_for_layer(i), text_index)
            ks.append(k)
            vs.append(v)
        return x, ks, vs

    # -- entry points ----------------------------------------------------------------------------
    def forward_full(self, x: Tensor, t_freq: Tensor, text: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None,
                     text_index: Tensor | None = None) -> Tensor:
        """Velocity for every frame of x (B, F, C, H, W); mask (B|1, 1, T, T) boolean or additive.

        text: (B, F, L, text_dim), or with `text_index` (B, F) a table (N, L, text_dim) of distinct captions
        that each frame indexes (training and sampling: a few captions, embedded once each)."""
        b, f, _, hh, ww = x.shape
        tokens, e, e0, txt = self._embed(x, t_freq, text)
        out, _, _ = self._run_blocks(tokens, e0, txt, cos, sin, lambda i: (lambda k, v: (k, v, mask)), text_index)
        return self._unpatchify(self.head(out, e), f, hh, ww)

    def context_fill(self, x: Tensor, t_freq: Tensor, text: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor]:
        """Roped K and V of every layer for the context frames, time-major (T, layers, H, D). B must be 1."""
        tokens, _, e0, txt = self._embed(x, t_freq, text)
        _, ks, vs = self._run_blocks(tokens, e0, txt, cos, sin, lambda i: (lambda k, v: (k, v, None)))
        return torch.stack(ks, 2)[0], torch.stack(vs, 2)[0]

    def chunk_step(self, x, t_freq, text, cos, sin, global_k, global_v, local_k, local_v, local_len):
        """One cached step for a chunk (B = 1).

        x (1, Fc, C, H, W); global_k/v (Tg, layers, H, D); local_k/v (Tl, layers, H, D) of which the first
        `local_len` (int64 tensor of shape (1,)) tokens are valid. Returns (velocity, k_new, v_new) with
        k_new/v_new (Fc*Tf, layers, H, D): this chunk's roped K/V, to be written into its local slot.
        """
        _, f, _, hh, ww = x.shape
        tokens, e, e0, txt = self._embed(x, t_freq, text)
        tg, tl, tc = global_k.shape[0], local_k.shape[0], tokens.shape[1]
        valid = torch.arange(tl, device=x.device) < local_len
        mask = torch.cat([torch.ones(tg, dtype=torch.bool, device=x.device), valid,
                          torch.ones(tc, dtype=torch.bool, device=x.device)]).view(1, 1, 1, tg + tl + tc)

        def keys_for_layer(i: int):
            def keys(k: Tensor, v: Tensor):
                k_all = torch.cat([global_k[:, i].unsqueeze(0), local_k[:, i].unsqueeze(0), k], 1)
                v_all = torch.cat([global_v[:, i].unsqueeze(0), local_v[:, i].unsqueeze(0), v], 1)
                return k_all, v_all, mask
            return keys

        out, ks, vs = self._run_blocks(tokens, e0, txt, cos, sin, keys_for_layer)
        velocity = self._unpatchify(self.head(out, e), f, hh, ww)
        return velocity, torch.stack(ks, 2)[0], torch.stack(vs, 2)[0]


    def chunk_step_joint(self, x, t_freq, text, cos, sin, kv_k, kv_v, n_global: int, local_len,
                         n_valid: int | None = None):
        """`chunk_step` on the joint cache, with no concatenation: (velocity, k_new, v_new) as there.

        kv_k/kv_v (Tg + Tl, layers, H, D) hold [global ; local] (runtime/cache.py's DualKVCache). Each layer
        writes its roped K/V into the chunk's own slot, rows [Tg + local_len, + chunk tokens), in place (the
        slot every call of the chunk writes; the caller commits it), then attends to that layer's column of
        the buffer. Without `n_valid` the whole buffer is read with the rows past the chunk masked: one static
        shape for every chunk position (`local_len` stays a tensor). With `n_valid` (= Tg + local_len + chunk
        tokens, known to the caller) only those rows are read, unmasked: a static shape per chunk position
        (one CUDA graph each) and no attention over empty rows.
        """
        _, f, _, hh, ww = x.shape
        tokens, e, e0, txt = self._embed(x, t_freq, text)
        total, tc = kv_k.shape[0], tokens.shape[1]
        if n_valid is None:
            start = n_global + local_len.reshape(1)  # (1,) int64, on the device
            mask = (torch.arange(total, device=x.device) < start + tc).view(1, 1, 1, total)
            rows = start + torch.arange(tc, device=x.device)  # (tc,)
        else:  # a kernel, not a host-to-device copy: capturable
            rows, mask, total = torch.arange(n_valid - tc, n_valid, device=x.device), None, n_valid

        def keys_for_layer(i: int):
            def keys(k: Tensor, v: Tensor):
                kv_k[:, i].index_copy_(0, rows, k[0].to(kv_k.dtype))
                kv_v[:, i].index_copy_(0, rows, v[0].to(kv_v.dtype))
                return kv_k[:total, i].unsqueeze(0), kv_v[:total, i].unsqueeze(0), mask
            return keys

        out, ks, vs = self._run_blocks(tokens, e0, txt, cos, sin, keys_for_layer)
        velocity = self._unpatchify(self.head(out, e), f, hh, ww)
        return velocity, torch.stack(ks, 2)[0], torch.stack(vs, 2)[0]


def timestep_frequencies(t, freq_dim: int, out=None):
    """Sinusoidal timestep embedding (cos half, then sin half), computed in float64 on the host.

    t: array of timesteps (any shape); returns float32 (*t.shape, freq_dim), or fills `out`.
    """
    import numpy as np

    half = freq_dim // 2
    freqs = np.power(10000.0, -np.arange(half, dtype=np.float64) / half)
    ang = np.multiply.outer(np.asarray(t, dtype=np.float64), freqs)
    emb = np.concatenate([np.cos(ang), np.sin(ang)], axis=-1)
    if out is None:
        return emb.astype(np.float32)
    np.copyto(out, emb, casting="same_kind")
    return out


def block_mask(context_frames: int, target_frames: int, frames_per_block: int, tokens_per_frame: int) -> Tensor:
    """Boolean (1, 1, T, T) training mask: id 0 for context frames, i+1 for target block i; allowed iff m_q >= m_k."""
    ids = [0] * context_frames + [1 + i // frames_per_block for i in range(target_frames)]
    m = torch.tensor(ids).repeat_interleave(tokens_per_frame)
    return (m[:, None] >= m[None, :]).view(1, 1, m.numel(), m.numel())


def init_weights(model: CausalDiT, seed: int) -> CausalDiT:
    """Deterministic random init (xavier linears, small-normal embeddings, random modulations)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif "norm" in name:
                p.fill_(1.0)
            elif name.endswith("modulation"):
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)
            else:
                fan_in = p[0].numel()
                fan_out = p.shape[0]
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                p.copy_(torch.rand(p.shape, generator=gen) * 2 * bound - bound)
    return model
