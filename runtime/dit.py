"""The causal student DiT (Wan2.1 layout, official parameter names) and its entry points.

Entry points (spec section 2), all pure functions of their inputs (no hidden state, no cache writes):
- `forward_full`  : whole [context ; target] sequence with the block mask. Training and the reference.
- `cross_kv`      : a caption's text embedding -> every layer's cross-attention K and V. Once per caption
                    (a shot's), never per denoising step: the text MLP and the text-side projections are
                    the largest part of a chunk step otherwise.
- `context_fill`  : context latents at t=0, attending among themselves; returns every layer's roped K and V
                    (time-major: (tokens, layers, heads, head_dim)) for the global cache.
- `chunk_step`    : one chunk attending to [what is valid of the cache ; itself]; returns the velocity and
                    the chunk's own roped K/V (for its local slot). The cache comes in as exactly its valid
                    rows, so nothing is masked and no empty row is attended to.
Per-frame AdaLN timestep, RMS qk-norm over the full width, interleaved 3-axis RoPE whose (cos, sin) tables
come from the host (runtime/rope.py), per-frame caption routing (frames index a table of captions).
The patch embedding is the official Conv3d weight applied as a matmul over (c, 1, ph, pw) patches.
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


def rope_tables(cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Full-width tables from the host's (T, D/2) or (B, T, D/2) ones, ready to broadcast over heads:
    (cos, cos) and (sin, sin) interleaved, shape (T, 1, D) or (B, T, 1, D), and the (D, D) matrix that maps
    each pair (x0, x1) to (-x1, x0). Made once per call, shared by every layer."""
    d = 2 * cos.shape[-1]
    turn = torch.zeros(d, d, dtype=cos.dtype, device=cos.device)
    even = torch.arange(0, d, 2, device=cos.device)
    turn[even + 1, even], turn[even, even + 1] = -1.0, 1.0
    return (torch.stack((cos, cos), -1).flatten(-2).unsqueeze(-2),
            torch.stack((sin, sin), -1).flatten(-2).unsqueeze(-2), turn)


def apply_rope(x: Tensor, rope: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """Rotate interleaved pairs (2j, 2j+1) of x (B, T, H, D) by the angles of `rope_tables`:
    (x0, x1) -> (x0 c - x1 s, x1 c + x0 s) = x * c + (-x1, x0) * s. The pair turn is a product with a
    matrix of 0 and +-1, exact in any precision, and one graph node where slicing pairs takes several."""
    cos, sin, turn = rope
    return x * cos + (x @ turn.to(x.dtype)) * sin


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

    def project(self, x: Tensor, rope: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Roped q, roped k and v, each (B, T, H, D); `rope` from `rope_tables`."""
        b, t, _ = x.shape
        shape = (b, t, self.heads, self.head_dim)
        q = apply_rope(self.norm_q(self.q(x)).view(shape), rope)
        k = apply_rope(self.norm_k(self.k(x)).view(shape), rope)
        return q, k, self.v(x).view(shape)


class CrossAttention(nn.Module):
    """Text cross-attention, routed per group of tokens: group g (a frame, or a whole chunk) attends only to
    its own caption's keys and values, which `project` makes once per caption."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.heads, self.head_dim = cfg.num_heads, cfg.head_dim
        self.q, self.k, self.v, self.o = (nn.Linear(cfg.dim, cfg.dim) for _ in range(4))
        self.norm_q, self.norm_k = RMSNorm(cfg.dim, cfg.eps), RMSNorm(cfg.dim, cfg.eps)

    def project(self, text: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values (..., L, dim) of embedded captions (..., L, dim)."""
        return self.norm_k(self.k(text)), self.v(text)

    def forward(self, x: Tensor, k: Tensor, v: Tensor, index: Tensor | None = None) -> Tensor:
        """x: (B, T, dim); k, v: (B, G, L, dim), the caption of each of G equal groups of consecutive tokens,
        or with `index` (B, G) a table (N, L, dim) of distinct captions that each group picks from."""
        if index is not None:
            k, v = k[index], v[index]
        b, g, length, dim = k.shape
        tg = x.shape[1] // g
        q = self.norm_q(self.q(x)).view(b * g, tg, self.heads, self.head_dim)
        k = k.reshape(b * g, length, self.heads, self.head_dim)
        v = v.reshape(b * g, length, self.heads, self.head_dim)
        return self.o(attention(q, k, v, None).reshape(b, g * tg, dim))


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

    def forward(self, x: Tensor, e0: Tensor, cross: tuple, rope: tuple, keys) -> tuple[Tensor, Tensor, Tensor]:
        """One block. `keys(k, v) -> (k_all, v_all, mask)` decides what the tokens attend to; `cross` is this
        layer's (k, v, index) of the captions (CrossAttention.forward).

        x: (B, F*Tf, dim); e0: (B, F, 6, dim) per-frame modulation. Returns (x, k, v) with this block's own
        roped k and v (B, F*Tf, H, D) so callers can cache them.
        """
        b, f = e0.shape[:2]
        t, dim = x.shape[1:]
        # six (B, F, 1, 1, dim) pieces, each broadcast over a frame's tokens viewed as (B, F, 1, T/F, dim)
        e = (self.modulation.unsqueeze(0) + e0).unsqueeze(3).chunk(6, dim=2)

        def modulated(y: Tensor, shift: int, scale: int) -> Tensor:
            return (y.view(b, f, 1, t // f, dim) * (1 + e[scale]) + e[shift]).view(b, t, dim)

        def gated(y: Tensor, gate: int) -> Tensor:
            return (y.view(b, f, 1, t // f, dim) * e[gate]).view(b, t, dim)

        q, k, v = self.self_attn.project(modulated(self.norm1(x), 0, 1), rope)
        k_all, v_all, mask = keys(k, v)
        x = x + gated(self.self_attn.o(attention(q, k_all, v_all, mask).flatten(2)), 2)
        x = x + self.cross_attn(self.norm3(x), *cross)
        return x + gated(self.ffn(modulated(self.norm2(x), 3, 4)), 5), k, v


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
    """The student. Latents are frame-major (B, F, C, H, W); captions are text embeddings (L, text_dim) that
    frames pick (per frame in `forward_full`, projected by `cross_kv` for the cached entry points)."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        if cfg.patch[0] != 1:
            raise ValueError(f"only a temporal patch of 1 is supported, got {cfg.patch}")
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

    def _embed(self, x: Tensor, t_freq: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """tokens (B, F*Tf, dim), e (B, F, dim), e0 (B, F, 6, dim)."""
        b, f = t_freq.shape[:2]
        e = self.time_embedding(t_freq)
        e0 = self.time_projection(e).view(b, f, 6, self.cfg.dim)
        return self._patchify(x), e, e0

    def _run_blocks(self, x, e0, cross_for_layer, cos, sin, keys_for_layer):
        ks, vs = [], []
        rope = rope_tables(cos, sin)  # once for every layer
        for i, block in enumerate(self.blocks):
            x, k, v = block(x, e0, cross_for_layer(i), rope, keys_for_layer(i))
            ks.append(k)
            vs.append(v)
        return x, ks, vs

    # -- entry points ----------------------------------------------------------------------------
    def cross_kv(self, text: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-attention K and V of every layer, (N, layers, L, dim) each, for captions (N, L, text_dim)."""
        txt = self.text_embedding(text)
        kv = [block.cross_attn.project(txt) for block in self.blocks]
        return torch.stack([k for k, _ in kv], 1), torch.stack([v for _, v in kv], 1)

    def forward_full(self, x: Tensor, t_freq: Tensor, text: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None,
                     text_index: Tensor | None = None) -> Tensor:
        """Velocity for every frame of x (B, F, C, H, W); mask (B|1, 1, T, T) boolean or additive.

        text: (B, F, L, text_dim), or with `text_index` (B, F) a table (N, L, text_dim) of distinct captions
        that each frame indexes (training and sampling: a few captions, projected once each)."""
        b, f, _, hh, ww = x.shape
        if text_index is None:
            text, text_index = text.flatten(0, 1), torch.arange(b * f, device=x.device).view(b, f)
        out, e, _, _ = self._blocks_over(x, t_freq, text, text_index, cos, sin, lambda i: (lambda k, v: (k, v, mask)))
        return self._unpatchify(self.head(out, e), f, hh, ww)

    def _blocks_over(self, x: Tensor, t_freq: Tensor, text: Tensor, text_index: Tensor, cos: Tensor, sin: Tensor,
                     keys_for_layer) -> tuple[Tensor, Tensor, list[Tensor], list[Tensor]]:
        """Every block over frames x reading a caption table `text` by `text_index` (B, F), each layer projecting
        the table as it goes (cross_kv's work, without the stack): (out, e, ks, vs)."""
        txt = self.text_embedding(text)
        tokens, e, e0 = self._embed(x, t_freq)
        out, ks, vs = self._run_blocks(tokens, e0, lambda i: (*self.blocks[i].cross_attn.project(txt), text_index),
                                       cos, sin, keys_for_layer)
        return out, e, ks, vs

    def prefix_kv(self, x: Tensor, t_freq: Tensor, text: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None,
                  text_index: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Roped K and V of every layer, (B, F*Tf, H, D) each, for frames x that attend among themselves under
        `mask` (a block-causal prefix: its keys do not depend on any frame after it). Inputs as forward_full's,
        with a caption table and `text_index`; for `forward_after`."""
        _, _, ks, vs = self._blocks_over(x, t_freq, text, text_index, cos, sin, lambda i: (lambda k, v: (k, v, mask)))
        return ks, vs

    def forward_after(self, x: Tensor, t_freq: Tensor, text: Tensor, cos: Tensor, sin: Tensor, text_index: Tensor,
                      past: tuple[list[Tensor], list[Tensor]]) -> Tensor:
        """Velocity for frames x (B, F, ...) of one block that reads every frame of a prefix and itself: the
        block's rows of forward_full under the block mask, from the prefix's `prefix_kv` (computed once, read by
        each denoising step of the block). cos/sin: the block's own RoPE rows; text_index (B, F): its frames'."""
        _, f, _, hh, ww = x.shape
        out, e, _, _ = self._blocks_over(x, t_freq, text, text_index, cos, sin, _reading(past))
        return self._unpatchify(self.head(out, e), f, hh, ww)

    def extend_kv(self, x: Tensor, t_freq: Tensor, text: Tensor, cos: Tensor, sin: Tensor, text_index: Tensor,
                  past: tuple[list[Tensor], list[Tensor]]) -> tuple[list[Tensor], list[Tensor]]:
        """`prefix_kv` of [prefix ; x] from the prefix's `past`: the keys of one more block x that reads the prefix
        and itself, appended (a block-causal prefix grows a block at a time, as the runtime's cache does)."""
        _, _, ks, vs = self._blocks_over(x, t_freq, text, text_index, cos, sin, _reading(past))
        return [torch.cat(p, 1) for p in zip(past[0], ks)], [torch.cat(p, 1) for p in zip(past[1], vs)]

    def context_fill(self, x: Tensor, t_freq: Tensor, cross_k: Tensor, cross_v: Tensor, cross_index: Tensor,
                     cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor]:
        """Roped K and V of every layer for the context frames, time-major (T, layers, H, D). B must be 1.

        cross_k/cross_v (N, layers, L, dim): a table of captions (`cross_kv`); cross_index (F,) int64: the
        entry each context frame reads."""
        tokens, _, e0 = self._embed(x, t_freq)
        index = cross_index.view(1, -1)
        _, ks, vs = self._run_blocks(tokens, e0, lambda i: (cross_k[:, i], cross_v[:, i], index), cos, sin,
                                     lambda i: (lambda k, v: (k, v, None)))
        return torch.stack(ks, 2)[0], torch.stack(vs, 2)[0]

    def chunk_step(self, x, t_freq, cross_k, cross_v, cos, sin, past_k, past_v):
        """One cached step for a chunk (B = 1) whose frames all read one caption.

        x (1, Fc, C, H, W); cross_k/cross_v (layers, L, dim): the shot's caption (`cross_kv`); past_k/past_v
        (P, layers, H, D): every valid cache row before the chunk, [global ; local prefix], time-major.
        Returns (velocity, k_new, v_new) with k_new/v_new (Fc*Tf, layers, H, D): this chunk's roped K/V,
        for its local slot.
        """
        _, f, _, hh, ww = x.shape
        tokens, e, e0 = self._embed(x, t_freq)

        def keys_for_layer(i: int):
            def keys(k: Tensor, v: Tensor):
                return (torch.cat([past_k[:, i].unsqueeze(0), k], 1), torch.cat([past_v[:, i].unsqueeze(0), v], 1),
                        None)
            return keys

        out, ks, vs = self._run_blocks(tokens, e0, lambda i: (cross_k[i][None, None], cross_v[i][None, None]),
                                       cos, sin, keys_for_layer)
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


def _reading(past: tuple[list[Tensor], list[Tensor]]):
    """keys_for_layer of a block that attends to every key of `past` (per layer) and to its own."""
    past_k, past_v = past
    return lambda i: (lambda k, v: (torch.cat([past_k[i], k], 1), torch.cat([past_v[i], v], 1), None))


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
