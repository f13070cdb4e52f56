"""The dual KV cache: a spec (what it holds, how big) apart from its storage (allocated once per story).

Layout is time-major, (tokens, layers, heads, head_dim), and both caches share one joint buffer per K and V,
[global ; local]: so one chunk's slot (all layers) is one contiguous block, and so is everything valid
before it. Keys are stored after RoPE, so attention does not care where a token sits.

- global cache: roped K/V of the context frames at t=0, rebuilt at the start of every shot (`context_fill`
  writes all of it, its outputs bound to the global rows); chunks never write it.
- local cache: the current shot. The graph of chunk b (`dit_chunk.<b>`) reads `past` = the joint rows
  before its slot ([global ; local chunks 0..b-1], exactly what is valid) and writes its K/V straight into
  its slot (`chunk`, an output bound there): every denoising call of the chunk overwrites it and the clean
  pass writes it last; `commit` then marks it valid. `reset` starts a new shot.
Nothing is masked: a graph only ever sees valid rows, so shapes stay static per chunk position.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from runtime.config import ModelConfig

Allocator = Callable[[tuple[int, ...], np.dtype], np.ndarray]

# Graph tensors whose storage is the cache's own (bound by name, never allocated separately).
CACHE_TENSORS = ("global_k", "global_v", "past_k", "past_v", "chunk_k", "chunk_v")


def zeros_allocator(shape: tuple[int, ...], dtype) -> np.ndarray:
    # Zero-initialised: garbage under a -inf mask would still turn into NaN through 0 * inf.
    return np.zeros(shape, dtype=dtype)


@dataclass(frozen=True)
class CacheSpec:
    layers: int
    heads: int
    head_dim: int
    capacity_frames: int
    tokens_per_frame: int
    dtype: str = "float32"

    @property
    def capacity_tokens(self) -> int:
        return self.capacity_frames * self.tokens_per_frame

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.capacity_tokens, self.layers, self.heads, self.head_dim)

    @property
    def nbytes(self) -> int:
        """Bytes of K and V together."""
        return 2 * int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize

    @classmethod
    def global_for(cls, cfg: ModelConfig, dtype: str = "float32") -> "CacheSpec":
        d = cfg.dit
        return cls(d.num_layers, d.num_heads, d.head_dim, cfg.shot.context_frames, cfg.tokens_per_frame, dtype)

    @classmethod
    def local_for(cls, cfg: ModelConfig, dtype: str = "float32") -> "CacheSpec":
        d = cfg.dit
        return cls(d.num_layers, d.num_heads, d.head_dim, cfg.shot.latent_frames_per_shot, cfg.tokens_per_frame, dtype)


class KVCache:
    """Preallocated K/V storage for one cache with a small API: slot, commit, view, reset."""

    def __init__(self, *, spec: CacheSpec, alloc: Allocator = zeros_allocator, storage: tuple | None = None):
        """`storage`: (K, V) buffers of the spec's shape to use instead of allocating (views of a joint one)."""
        self.spec = spec
        if storage is None:
            storage = (alloc(spec.shape, np.dtype(spec.dtype)), alloc(spec.shape, np.dtype(spec.dtype)))
        self.k, self.v = storage
        self.valid = np.zeros((1,), dtype=np.int64)  # valid tokens

    @property
    def nbytes(self) -> int:
        return self.spec.nbytes

    def slot(self, frame: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
        """Contiguous (K, V) views of `frames` frames starting at `frame`."""
        if frame < 0 or frame + frames > self.spec.capacity_frames:
            raise IndexError(f"frames [{frame}, {frame + frames}) outside capacity {self.spec.capacity_frames}")
        tpf = self.spec.tokens_per_frame
        return self.k[frame * tpf:(frame + frames) * tpf], self.v[frame * tpf:(frame + frames) * tpf]

    def commit(self, frames: int) -> None:
        """Mark the first `frames` frames valid."""
        if not 0 <= frames <= self.spec.capacity_frames:
            raise IndexError(f"cannot commit {frames} frames (capacity {self.spec.capacity_frames})")
        self.valid[0] = frames * self.spec.tokens_per_frame

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        """The valid part of K and V."""
        n = int(self.valid[0])
        return self.k[:n], self.v[:n]

    def reset(self) -> None:
        """Forget every entry; storage is kept (and zeroed so stale values never leak through a mask)."""
        self.valid[0] = 0
        self.k.fill(0)
        self.v.fill(0)

    def data_ptrs(self) -> tuple[int, int]:
        from runtime.backends.base import address

        return address(self.k), address(self.v)


class DualKVCache:
    """The global (context) cache and the local (current shot) cache of one story.

    Both live in one joint K and one joint V buffer, (global tokens + local tokens, layers, heads, head_dim):
    the global cache is its first rows and the local cache the rest. `fill_tensors` and `chunk_tensors(b)`
    are the contiguous first-axis views the graphs are bound to (see the module docstring)."""

    def __init__(self, *, cfg: ModelConfig, alloc: Allocator = zeros_allocator, dtype: str = "float32"):
        g_spec, l_spec = CacheSpec.global_for(cfg, dtype), CacheSpec.local_for(cfg, dtype)
        joint = (g_spec.capacity_tokens + l_spec.capacity_tokens,) + g_spec.shape[1:]
        self.k, self.v = alloc(joint, np.dtype(dtype)), alloc(joint, np.dtype(dtype))
        split = g_spec.capacity_tokens
        self.global_ = KVCache(spec=g_spec, storage=(self.k[:split], self.v[:split]))
        self.local = KVCache(spec=l_spec, storage=(self.k[split:], self.v[split:]))
        self.chunk_frames = cfg.shot.latent_frames_per_chunk

    @property
    def nbytes(self) -> int:
        return self.global_.nbytes + self.local.nbytes

    def start_shot(self) -> None:
        """A new shot: the local cache is emptied; the global cache is then overwritten by context_fill."""
        self.local.reset()
        self.global_.commit(self.global_.spec.capacity_frames)

    def data_ptrs(self) -> tuple[int, ...]:
        return self.global_.data_ptrs() + self.local.data_ptrs()

    def fill_tensors(self) -> dict:
        """`context_fill`'s outputs: the global rows."""
        return {"global_k": self.global_.k, "global_v": self.global_.v}

    def chunk_tensors(self, b: int) -> dict:
        """`dit_chunk.<b>`'s cache tensors: `past_*` every row before chunk b's slot, `chunk_*` the slot."""
        n = self.global_.spec.capacity_tokens + self.local.spec.tokens_per_frame * self.chunk_frames * b
        slot_k, slot_v = self.local.slot(self.chunk_frames * b, self.chunk_frames)
        return {"past_k": self.k[:n], "past_v": self.v[:n], "chunk_k": slot_k, "chunk_v": slot_v}
