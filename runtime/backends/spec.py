"""The one I/O spec of every graph: names, static shapes, dtypes. Read by the exporter, the TensorRT
builder and every binder, so the three can never disagree.

Graphs (all batch 1, all shapes static):
- text_encode      : ids -> text embeddings
- cross_kv         : one caption's text embedding -> every layer's cross-attention K and V (once per caption
                     and shot, never per step)
- context_fill     : context latents at t=0 + a table of their captions' cross K/V -> the global cache's K and V
- dit_chunk.<b>    : chunk b of a shot (one variant per chunk position b): the chunk + its caption's cross K/V
                     + the cache rows valid before it ([global ; local chunks 0..b-1], `past_k`/`past_v`)
                     -> velocity and the chunk's K/V (bound to its local slot, so they land there in place)
- vae_decode_chunk : one chunk of latents + causal state -> 4 frames per latent (RGB, 0..255) + new state
                     (a shot's first chunk: its first FIRST_KEEP frames are not part of the shot)
- vae_encode_frame : one RGB frame (0..255) -> one latent frame (a shot's first-frame path)

A family's variants (`dit_chunk.0` ... `dit_chunk.6`) differ only in the first axis of `past_k`/`past_v`: one
model is exported with that axis free (`free_dims`), and each variant is a static instance of it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from runtime.config import ModelConfig

GRAPH_NAMES = ("text_encode", "cross_kv", "context_fill", "dit_chunk", "vae_decode_chunk", "vae_encode_frame")
DIT_LOOP = ("cross_kv", "context_fill", "dit_chunk")  # a shot's DiT work: what the bench times as the DiT loop


def chunk_graph(b: int) -> str:
    """The `dit_chunk` variant of chunk position b."""
    return f"dit_chunk.{b}"


def family(graph: str) -> str:
    """The graph family (module, exported model) a graph name belongs to: `dit_chunk.3` -> `dit_chunk`."""
    return graph.split(".", 1)[0]


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

    @property
    def family(self) -> str:
        return family(self.name)

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
    cross = (d.num_layers, cfg.text.text_len, d.dim)
    n_ctx, n_chunk = s.context_frames, s.latent_frames_per_chunk
    T = TensorSpec

    def frames_in(frames: int) -> tuple[TensorSpec, ...]:
        return T("x", (1, frames) + lat), T("t_freq", (1, frames, d.freq_dim))

    def rope(frames: int) -> tuple[TensorSpec, ...]:
        return T("rope_cos", (frames * tpf, pairs)), T("rope_sin", (frames * tpf, pairs))

    def chunk(b: int) -> GraphSpec:
        past = (n_ctx + n_chunk * b) * tpf
        return GraphSpec(chunk_graph(b),
                         frames_in(n_chunk) + (T("cross_k", cross), T("cross_v", cross)) + rope(n_chunk)
                         + (T("past_k", (past,) + kv), T("past_v", (past,) + kv)),
                         (T("velocity", (1, n_chunk) + lat), T("chunk_k", (n_chunk * tpf,) + kv),
                          T("chunk_v", (n_chunk * tpf,) + kv)))

    state = vae_state_shape(cfg)
    specs = [
        GraphSpec("text_encode", (T("ids", (1, cfg.text.text_len), "int64"),),
                  (T("text", (1, cfg.text.text_len, cfg.text.dim)),)),
        GraphSpec("cross_kv", (T("text", (1, cfg.text.text_len, cfg.text.dim)),),
                  (T("cross_k", cross), T("cross_v", cross))),
        GraphSpec("context_fill",
                  frames_in(n_ctx) + (T("cross_k", (n_ctx,) + cross), T("cross_v", (n_ctx,) + cross),
                                      T("cross_index", (n_ctx,), "int64")) + rope(n_ctx),
                  (T("global_k", (n_ctx * tpf,) + kv), T("global_v", (n_ctx * tpf,) + kv))),
        *(chunk(b) for b in range(s.chunks_per_shot)),
        GraphSpec("vae_decode_chunk", (T("latents", (n_chunk,) + lat), T("state", state)),
                  (T("frames", (n_chunk * cfg.vae.temporal_stride, cfg.height, cfg.width, 3)), T("state_out", state))),
        GraphSpec("vae_encode_frame", (T("frame", (1, cfg.height, cfg.width, 3)),), (T("latent", (1,) + lat),)),
    ]
    return {g.name: g for g in specs}


def families(specs: dict[str, GraphSpec]) -> dict[str, list[GraphSpec]]:
    """The specs grouped by family, in order."""
    out: dict[str, list[GraphSpec]] = {}
    for spec in specs.values():
        out.setdefault(spec.family, []).append(spec)
    return out


def free_dims(variants: list[GraphSpec]) -> tuple[dict[str, dict[int, str]], list[dict[str, int]]]:
    """Where a family's variants differ: ({tensor: {axis: symbol}}, one {symbol: size} per variant).

    Axes whose sizes vary together across the variants share one symbol (`past_k` and `past_v` of
    `dit_chunk` both get `past_k_0`), so one override per symbol makes a variant static again."""
    symbols: dict[tuple[int, ...], str] = {}
    axes: dict[str, dict[int, str]] = {}
    for i, t in enumerate(variants[0].inputs + variants[0].outputs):
        for axis in range(len(t.shape)):
            sizes = tuple((v.inputs + v.outputs)[i].shape[axis] for v in variants)
            if len(set(sizes)) > 1:
                symbol = symbols.setdefault(sizes, f"{t.name}_{axis}")
                axes.setdefault(t.name, {})[axis] = symbol
    values = [{symbol: sizes[k] for sizes, symbol in symbols.items()} for k in range(len(variants))]
    return axes, values


def vae_state_shape(cfg: ModelConfig) -> tuple[int, ...]:
    """The causal decode state carried from chunk to chunk: the tiny VAE's previous-latent features, or
    the Wan2.1 VAE's flat feature cache (runtime/official/wan_vae.py)."""
    if cfg.vae.kind == "wan2.1":
        from runtime.official.wan_vae import state_size

        return (state_size(cfg),)
    return (4 * cfg.vae.base_channels, cfg.latent_height, cfg.latent_width)


def spec_hash(specs: dict[str, GraphSpec]) -> str:
    blob = json.dumps({k: asdict(v) for k, v in sorted(specs.items())}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
