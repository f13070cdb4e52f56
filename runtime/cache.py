"""The dual KV cache: a spec (what it holds, how big) apart from its storage (allocated once per story).

Layout is time-major, (tokens, layers, heads, head_dim), so one chunk's slot (all layers) is one contiguous
block and can be written or bound as a single buffer. Keys are stored after RoPE, so attention does not care
where a token sits. `valid` is a preallocated int64 array of shape (1,) holding the number of valid tokens;
graphs read it as an input and mask the rest, so shapes never change.

- global cache: roped K/V of the context frames at t=0, rebuilt at the start of every shot (`context_fill`
  writes all of it); chunks never write it.
- local cache: the current shot. Chunk b's K/V are written into slot b by every denoising call of the chunk;
  the clean pass writes it last and `commit` then marks it valid. `reset` starts a new shot.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from runtime.config import ModelConfig

Allocator = Callable[[tuple[int, ...], np.dtype], np.ndarray]

# Graph tensors whose storage is the cache's own (bound by name, never allocated separately).
CACHE_TENSORS = ("global_k", "global_v", "local_k", "local_v", "local_len")


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
    """Preallocated K/V storage for one cache with a small API: write, commit, view, reset."""

    def __init__(self, *, spec: CacheSpec, alloc: Allocator = zeros_allocator, storage: tuple | None = None):
        """`storage`: (K, V) buffers of the spec's shape to use instead of allocating (views of a joint one)."""
        self.spec = spec
        if storage is None:
            storage = (alloc(spec.shape, np.dtype(spec.dtype)), alloc(spec.shape, np.dtype(spec.dtype)))
        self.k, self.v = storage
        self.valid = np.zeros((1,), dtype=np.int64)  # valid tokens, read by graphs as `local_len`

    @property
    def nbytes(self) -> int:
        return self.spec.nbytes

    def slot(self, frame: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
        """Contiguous (K, V) views of `frames` frames starting at `frame`."""
        if frame < 0 or frame + frames > self.spec.capacity_frames:
            raise IndexError(f"frames [{frame}, {frame + frames}) outside capacity {self.spec.capacity_frames}")
        tpf = self.spec.tokens_per_frame
        return self.k[frame * tpf:(frame + frames) * tpf], self.v[frame * tpf:(frame + frames) * tpf]

    def write(self, frame: int, k: np.ndarray, v: np.ndarray) -> None:
        """Copy K/V of whole frames into the slot starting at `frame` (no allocation)."""
        frames = k.shape[0] // self.spec.tokens_per_frame
        dst_k, dst_v = self.slot(frame, frames)
        dst_k[...] = k  # in place, for host arrays and device arrays alike
        dst_v[...] = v

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
    the global cache is its first rows and the local cache the rest, so a chunk step can attend to
    [global ; local] as one tensor with no concatenation (runtime/backends/torch_backend.py). Each part is a
    contiguous first-axis view, bound like a buffer of its own by the backends that take them apart."""

    def __init__(self, *, cfg: ModelConfig, alloc: Allocator = zeros_allocator, dtype: str = "float32"):
        g_spec, l_spec = CacheSpec.global_for(cfg, dtype), CacheSpec.local_for(cfg, dtype)
        joint = (g_spec.capacity_tokens + l_spec.capacity_tokens,) + g_spec.shape[1:]
        self.k, self.v = alloc(joint, np.dtype(dtype)), alloc(joint, np.dtype(dtype))
        split = g_spec.capacity_tokens
        self.global_ = KVCache(spec=g_spec, storage=(self.k[:split], self.v[:split]))
        self.local = KVCache(spec=l_spec, storage=(self.k[split:], self.v[split:]))

    @property
    def nbytes(self) -> int:
        return self.global_.nbytes + self.local.nbytes

    def start_shot(self) -> None:
        """A new shot: the local cache is emptied; the global cache is then overwritten by context_fill."""
        self.local.reset()
        self.global_.commit(self.global_.spec.capacity_frames)

    def data_ptrs(self) -> tuple[int, ...]:
        return self.global_.data_ptrs() + self.local.data_ptrs()

    def tensors(self) -> dict:
        """The cache's storage under the graph tensor names of CACHE_TENSORS."""
        storage = (self.global_.k, self.global_.v, self.local.k, self.local.v, self.local.valid)
        return dict(zip(CACHE_TENSORS, storage, strict=True))
