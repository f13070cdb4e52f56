"""The one I/O spec of every graph: names, static shapes, dtypes. Read by the exporter, the TensorRT
builder and every binder, so the three can never disagree.

Graphs (all batch 1, all shapes static):
- text_encode      : ids -> text embeddings
- context_fill     : context latents at t=0 -> the global cache's K and V (whole buffers)
- dit_chunk        : one chunk + both caches -> velocity and the chunk's K/V (for its local slot)
- vae_decode_chunk : one chunk of latents + causal state -> 4 frames per latent (RGB, 0..255) + new state
                     (a shot's first chunk: its first FIRST_KEEP frames are not part of the shot)
- vae_encode_frame : one RGB frame (0..255) -> one latent frame (a shot's first-frame path)
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from runtime.config import ModelConfig

GRAPH_NAMES = ("text_encode", "context_fill", "dit_chunk", "vae_decode_chunk", "vae_encode_frame")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    @property
    def nbytes(self) -> int:
        size = 1
        for d in self.shape:
            size *= d
        return size * (8 if self.dtype == "int64" else 4)


@dataclass(frozen=True)
class GraphSpec:
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def tensor(self, name: str) -> TensorSpec:
        for t in self.inputs + self.outputs:
            if t.name == name:
                return t
        raise KeyError(f"graph {self.name} has no tensor {name!r}")


def graph_specs(cfg: ModelConfig) -> dict[str, GraphSpec]:
    d, s = cfg.dit, cfg.shot
    lat = cfg.latent_shape
    tpf, pairs = cfg.tokens_per_frame, sum(d.rope_pairs)
    kv = (d.num_layers, d.num_heads, d.head_dim)
    n_ctx, n_chunk, n_local = s.context_frames, s.latent_frames_per_chunk, s.latent_frames_per_shot
    T = TensorSpec

    def dit_inputs(frames: int) -> tuple[TensorSpec, ...]:
        return (T("x", (1, frames) + lat), T("t_freq", (1, frames, d.freq_dim)),
                T("text", (1, frames, cfg.text.text_len, d.text_dim)),
                T("rope_cos", (frames * tpf, pairs)), T("rope_sin", (frames * tpf, pairs)))

    state = vae_state_shape(cfg)
    specs = [
        GraphSpec("text_encode", (T("ids", (1, cfg.text.text_len), "int64"),),
                  (T("text", (1, cfg.text.text_len, cfg.text.dim)),)),
        GraphSpec("context_fill", dit_inputs(n_ctx),
                  (T("global_k", (n_ctx * tpf,) + kv), T("global_v", (n_ctx * tpf,) + kv))),
        GraphSpec("dit_chunk",
                  dit_inputs(n_chunk) + (T("global_k", (n_ctx * tpf,) + kv), T("global_v", (n_ctx * tpf,) + kv),
                                         T("local_k", (n_local * tpf,) + kv), T("local_v", (n_local * tpf,) + kv),
                                         T("local_len", (1,), "int64")),
                  (T("velocity", (1, n_chunk) + lat), T("chunk_k", (n_chunk * tpf,) + kv),
                   T("chunk_v", (n_chunk * tpf,) + kv))),
        GraphSpec("vae_decode_chunk", (T("latents", (n_chunk,) + lat), T("state", state)),
                  (T("frames", (n_chunk * cfg.vae.temporal_stride, cfg.height, cfg.width, 3)), T("state_out", state))),
        GraphSpec("vae_encode_frame", (T("frame", (1, cfg.height, cfg.width, 3)),), (T("latent", (1,) + lat),)),
    ]
    return {g.name: g for g in specs}


def vae_state_shape(cfg: ModelConfig) -> tuple[int, ...]:
    """The causal decode state carried from chunk to chunk: the tiny VAE's previous-latent features, or
    the Wan2.1 VAE's flat feature cache (runtime/wan_vae.py)."""
    if cfg.vae.kind == "wan2.1":
        from runtime.wan_vae import state_size

        return (state_size(cfg),)
    return (4 * cfg.vae.base_channels, cfg.latent_height, cfg.latent_width)


def spec_hash(specs: dict[str, GraphSpec]) -> str:
    blob = json.dumps({k: asdict(v) for k, v in sorted(specs.items())}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
