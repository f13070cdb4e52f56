"""The official preset's Wan2.1 VAE behind the runtime's VAE interface, on diffusers' `AutoencoderKLWan`.

What this module owns:
- the streaming decode: diffusers decodes a shot one latent at a time, carrying a feature cache (the last 2
  input frames of every causal 3D convolution) in a Python list on the model. Here that cache is the
  caller's: one flat float buffer (`state`) whose element 0 counts the latents already decoded in the shot
  (0 = a shot's start, so zeroing the buffer starts a shot) and whose rest holds every convolution's 2 cached
  frames at a fixed offset. A chunk decodes exactly as the whole shot would: 3 latents -> 9 frames for the
  first chunk (the first latent gives 1 frame), then 12. The first chunk's 9 frames are written after
  `FIRST_KEEP` blank frames so the output always has 4 frames per latent, like the tiny VAE's.
- single-frame encode (a context frame is a 1-frame clip -> 1 latent, the posterior mean);
- the per-channel latent normalisation constants of Wan2.1 (latents in the runtime are normalised);
- loading `Wan2.1_VAE.pth` by its own key names through diffusers' maintained key map.
diffusers is the optional `official` extra and is imported lazily, so `import runtime` never needs it.
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from runtime.config import ModelConfig, VAEConfig
from runtime.vae import FIRST_KEEP

# Wan2.1's latent statistics (the same values as Wan's own VAE wrapper and diffusers' defaults).
LATENT_MEAN = (-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
               0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921)
LATENT_STD = (2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
              3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160)
CACHE_FRAMES = 2  # frames every causal convolution keeps (diffusers' CACHE_T)


def build_autoencoder(cfg: VAEConfig, device: str | torch.device = "cpu") -> nn.Module:
    """diffusers' AutoencoderKLWan in Wan2.1's layout with `base_channels` (96 for the official model)."""
    from diffusers import AutoencoderKLWan

    if cfg.z_dim != len(LATENT_MEAN) or cfg.temporal_stride != 4 or cfg.spatial_stride != 8:
        raise ValueError("the Wan2.1 VAE has 16 latent channels and 4x8x8 compression")
    with torch.device(device):
        return AutoencoderKLWan(base_dim=cfg.base_channels, z_dim=cfg.z_dim, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                                temperal_downsample=[False, True, True], latents_mean=list(LATENT_MEAN),
                                latents_std=list(LATENT_STD))


@lru_cache(maxsize=8)
def _cache_layout(base_channels: int, z_dim: int, latent_h: int, latent_w: int) -> tuple[tuple[int, ...] | None, ...]:
    """Shape (C, 2, h, w) of every decoder feature-cache entry, or None for entries diffusers never fills.

    Found by decoding two latents on the meta device (no memory, no compute)."""
    ae = build_autoencoder(VAEConfig(kind="wan2.1", z_dim=z_dim, base_channels=base_channels), "meta")
    cache: list = [None] * ae._cached_conv_counts["decoder"]
    with torch.device("meta"):
        x = torch.zeros(1, z_dim, 1, latent_h, latent_w)
    ae.decoder(x, feat_cache=cache, feat_idx=[0], first_chunk=True)
    ae.decoder(x, feat_cache=cache, feat_idx=[0])
    return tuple(tuple(e.shape[1:]) if isinstance(e, torch.Tensor) else None for e in cache)


def state_size(cfg: ModelConfig) -> int:
    """Floats in the decode state of one shot: the latent counter plus every cached frame."""
    layout = _cache_layout(cfg.vae.base_channels, cfg.vae.z_dim, cfg.latent_height, cfg.latent_width)
    return 1 + sum(torch.Size(s).numel() for s in layout if s is not None)


class WanVAE(nn.Module):
    """The runtime's VAE interface (`encode_frames`, `decode_chunk`, `decode_video`) on AutoencoderKLWan."""

    def __init__(self, cfg: VAEConfig, autoencoder: nn.Module | None = None):
        super().__init__()
        self.cfg = cfg
        self.ae = autoencoder if autoencoder is not None else build_autoencoder(cfg)
        self.register_buffer("latent_mean", torch.tensor(LATENT_MEAN), persistent=False)
        self.register_buffer("latent_std", torch.tensor(LATENT_STD), persistent=False)

    # -- normalisation ---------------------------------------------------------------------------
    def _denormalise(self, z: torch.Tensor) -> torch.Tensor:
        """(n, z, h, w) normalised -> (1, z, n, h, w) in the VAE's own scale."""
        z = z * self.latent_std.view(1, -1, 1, 1).to(z.dtype) + self.latent_mean.view(1, -1, 1, 1).to(z.dtype)
        return z.permute(1, 0, 2, 3).unsqueeze(0)

    # -- encoder ---------------------------------------------------------------------------------
    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Single frames (N, 3, H, W) in [-1, 1], each a 1-frame clip -> normalised latents (N, z, h, w)."""
        mu = self.ae.encode(frames.unsqueeze(2)).latent_dist.mode()[:, :, 0]  # (N, z, h, w)
        mean, std = self.latent_mean.view(1, -1, 1, 1), self.latent_std.view(1, -1, 1, 1)
        return (mu - mean.to(mu.dtype)) / std.to(mu.dtype)

    # -- decoder ---------------------------------------------------------------------------------
    def _layout(self, h: int, w: int):
        return _cache_layout(self.cfg.base_channels, self.cfg.z_dim, h, w)

    def initial_state(self, h: int, w: int, dtype=torch.float32) -> torch.Tensor:
        n = 1 + sum(torch.Size(s).numel() for s in self._layout(h, w) if s is not None)
        return torch.zeros(n, dtype=dtype, device=self.latent_mean.device)

    def _views(self, state: torch.Tensor, h: int, w: int) -> list[torch.Tensor | None]:
        views, offset = [], 1
        for shape in self._layout(h, w):
            if shape is None:
                views.append(None)
                continue
            n = torch.Size(shape).numel()
            views.append(state[offset:offset + n].view(1, *shape))
            offset += n
        return views

    def decode_chunk(self, z: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One chunk's latents (n, z, h, w) and the shot's state -> (4n, 3, H, W) in [-1, 1], new state.

        For the shot's first chunk the first `FIRST_KEEP` frames are blank (the first latent gives 1 frame)."""
        n, _, h, w = z.shape
        first = bool(state[0] == 0)  # one host read per chunk, not per step
        x = self.ae.post_quant_conv(self._denormalise(z))  # (1, z, n, h, w)
        cache = [None] * len(self._layout(h, w)) if first else list(self._views(state, h, w))
        frames = []
        for i in range(n):
            frames.append(self.ae.decoder(x[:, :, i:i + 1], feat_cache=cache, feat_idx=[0], first_chunk=first and i == 0))
        out = torch.cat(frames, 2).clamp(-1.0, 1.0)[0].permute(1, 0, 2, 3)  # (frames, 3, H, W)
        if first:
            out = torch.cat([out.new_zeros(FIRST_KEEP, *out.shape[1:]), out])
        return out, self._pack(cache, state, n, h, w)

    def _pack(self, cache: list, state: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
        """The new state: counter advanced, every cache entry as exactly 2 frames (missing ones zero)."""
        new = torch.empty_like(state)
        new[0] = state[0] + n
        for entry, dst in zip(cache, self._views(new, h, w)):
            if dst is None:
                continue
            if not isinstance(entry, torch.Tensor):  # None or diffusers' "Rep": equivalent to zero frames
                dst.zero_()
                continue
            frames = entry.shape[2]
            dst[:, :, :CACHE_FRAMES - frames].zero_()
            dst[:, :, CACHE_FRAMES - frames:].copy_(entry)
        return new

    def decode_video(self, z: torch.Tensor) -> torch.Tensor:
        """Whole-shot decode by diffusers itself (the reference): (1 + k) latents -> (1 + 4k, 3, H, W)."""
        return self.ae.decode(self._denormalise(z)).sample[0].permute(1, 0, 2, 3)


# -- weights -------------------------------------------------------------------------------------
def convert_wan_vae_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`Wan2.1_VAE.pth` names -> diffusers' AutoencoderKLWan names (diffusers' own single-file key map)."""
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    return convert_wan_vae_to_diffusers(sd)


def wan_vae_keys(ae: nn.Module) -> dict[str, tuple[int, ...]]:
    """The names and shapes a `Wan2.1_VAE.pth` for this autoencoder holds (the key map inverted)."""
    return {_to_wan(k): tuple(v.shape) for k, v in ae.state_dict().items()}


def _to_wan(key: str) -> str:
    """diffusers name -> Wan name (inverse of `convert_wan_vae_keys`; used to check files before loading)."""
    import re

    fixed = {"quant_conv": "conv1", "post_quant_conv": "conv2", "encoder.conv_in": "encoder.conv1",
             "decoder.conv_in": "decoder.conv1", "encoder.norm_out": "encoder.head.0", "encoder.conv_out": "encoder.head.2",
             "decoder.norm_out": "decoder.head.0", "decoder.conv_out": "decoder.head.2"}
    stem, leaf = key.rsplit(".", 1)
    if stem in fixed:
        return f"{fixed[stem]}.{leaf}"
    res = {"norm1": "residual.0", "conv1": "residual.2", "norm2": "residual.3", "conv2": "residual.6",
           "conv_shortcut": "shortcut"}
    m = re.fullmatch(r"(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d)\.(.+)", stem)
    if m:
        where, kind, i, rest = m.groups()
        idx = 2 * int(i) if kind == "resnets" else 1
        return f"{where}.middle.{idx}.{res.get(rest, rest)}.{leaf}"
    m = re.fullmatch(r"encoder\.down_blocks\.(\d+)\.(.+)", stem)
    if m:
        i, rest = m.groups()
        return f"encoder.downsamples.{i}.{res.get(rest, rest)}.{leaf}"
    m = re.fullmatch(r"decoder\.up_blocks\.(\d+)\.(resnets\.(\d+)|upsamplers\.0)\.?(.*)", stem)
    if m:
        block, _, resnet, rest = m.groups()
        index = 4 * int(block) + (int(resnet) if resnet is not None else 3)
        inner = res.get(rest, rest)
        return f"decoder.upsamples.{index}." + (f"{inner}." if inner else "") + leaf
    return key


def load_wan_vae(path, cfg: VAEConfig) -> WanVAE:
    """Read `Wan2.1_VAE.pth`, map its names, load strictly (every mismatch listed)."""
    from runtime.weights import load_strict, read_state_dict

    vae = WanVAE(cfg)
    load_strict(vae.ae, convert_wan_vae_keys(read_state_dict(path)), source=str(path))
    return vae
