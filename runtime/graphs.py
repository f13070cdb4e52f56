"""The graphs as torch modules, one per family (runtime/backends/spec.py), whose forward takes the spec's
inputs in order and returns its outputs in order. The torch backend runs them; the exporter traces them.
Built from the model components only.
"""
from __future__ import annotations

import torch
from torch import nn

from runtime.dit import CausalDiT
from runtime.vae import TinyVAE


class TextEncodeGraph(nn.Module):
    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, ids):
        return (self.encoder(ids),)


class CrossKVGraph(nn.Module):
    def __init__(self, dit: CausalDiT):
        super().__init__()
        self.dit = dit

    def forward(self, text):
        k, v = self.dit.cross_kv(text)
        return k[0], v[0]


class ContextFillGraph(nn.Module):
    def __init__(self, dit: CausalDiT):
        super().__init__()
        self.dit = dit

    def forward(self, x, t_freq, cross_k, cross_v, cross_index, rope_cos, rope_sin):
        return self.dit.context_fill(x, t_freq, cross_k, cross_v, cross_index, rope_cos, rope_sin)


class DitChunkGraph(nn.Module):
    """Every `dit_chunk.<b>` variant: the shapes of `past_k`/`past_v` say the chunk's position."""

    def __init__(self, dit: CausalDiT):
        super().__init__()
        self.dit = dit

    def forward(self, x, t_freq, cross_k, cross_v, rope_cos, rope_sin, past_k, past_v):
        return self.dit.chunk_step(x, t_freq, cross_k, cross_v, rope_cos, rope_sin, past_k, past_v)


class VaeDecodeChunkGraph(nn.Module):
    """Latents + state -> frames (4n, H, W, 3) as floats already rounded to 0..255, and the new state."""

    def __init__(self, vae: TinyVAE):
        super().__init__()
        self.vae = vae

    def forward(self, latents, state):
        frames, state_out = self.vae.decode_chunk(latents, state)
        pixels = torch.round((frames.permute(0, 2, 3, 1) + 1.0) * 127.5).clamp(0.0, 255.0)
        return pixels, state_out


class VaeEncodeFrameGraph(nn.Module):
    def __init__(self, vae: TinyVAE):
        super().__init__()
        self.vae = vae

    def forward(self, frame):
        x = frame.permute(0, 3, 1, 2) / 127.5 - 1.0
        return (self.vae.encode_frames(x),)


def build_graphs(dit: CausalDiT, text_encoder: nn.Module, vae: TinyVAE) -> dict[str, nn.Module]:
    graphs = {
        "text_encode": TextEncodeGraph(text_encoder),
        "cross_kv": CrossKVGraph(dit),
        "context_fill": ContextFillGraph(dit),
        "dit_chunk": DitChunkGraph(dit),
        "vae_decode_chunk": VaeDecodeChunkGraph(vae),
        "vae_encode_frame": VaeEncodeFrameGraph(vae),
    }
    for g in graphs.values():
        g.eval()
    return graphs
