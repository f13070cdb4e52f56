"""The tiny causal video VAE: 4x temporal, 8x spatial, Wan's layout (the first frame alone, then groups of 4).

Encoder: a group of 4 frames (the first frame of a shot is repeated 4 times to form its own group) stacked
on the channel axis -> one latent frame. Groups are encoded independently, so encoding is trivially causal.
Decoder: one latent frame -> 4 pixel frames; a causal temporal mix reads the features of the previous latent
frame, carried explicitly as `state` (zeros at a shot's start), so a shot decodes chunk by chunk exactly as
it would whole. For a shot's first latent only the last of its 4 decoded frames is kept (`FIRST_KEEP`).
Pixels are RGB in [-1, 1] inside the networks (decoder outputs are clamped by the caller); latents are normalised by per-channel mean/std buffers.
The official preset's Wan2.1 VAE is user-supplied and not part of this package.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from runtime.config import VAEConfig

FIRST_KEEP = 3  # index, among the 4 frames decoded from a shot's first latent, of the frame that is kept


class _Res(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(ch, ch, 3, padding=1), nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class TinyVAE(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        if cfg.spatial_stride != 8 or cfg.temporal_stride != 4:
            raise ValueError("the tiny VAE is built for 4x temporal, 8x spatial compression")
        if cfg.decoder_blocks < 1:
            raise ValueError(f"decoder_blocks must be at least 1, got {cfg.decoder_blocks}")
        c, z, t = cfg.base_channels, cfg.z_dim, cfg.temporal_stride
        self.cfg = cfg
        self.state_channels = 4 * c
        self.encoder = nn.Sequential(
            nn.Conv2d(3 * t, c, 3, padding=1), _Res(c),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), _Res(2 * c),
            nn.Conv2d(2 * c, 4 * c, 4, stride=2, padding=1), _Res(4 * c),
            nn.Conv2d(4 * c, 4 * c, 4, stride=2, padding=1), _Res(4 * c),
            nn.Conv2d(4 * c, z, 3, padding=1),
        )
        self.dec_in = nn.Conv2d(z, 4 * c, 3, padding=1)
        self.dec_time = nn.Conv2d(8 * c, 4 * c, 1)  # causal mix of (this latent, previous latent) features
        n = cfg.decoder_blocks
        self.decoder = nn.Sequential(
            *[_Res(4 * c) for _ in range(n)],
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(4 * c, 2 * c, 3, padding=1), *[_Res(2 * c) for _ in range(n)],
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2 * c, c, 3, padding=1), *[_Res(c) for _ in range(n)],
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c, 3 * t, 3, padding=1),
        )
        self.register_buffer("latent_mean", torch.zeros(z))
        self.register_buffer("latent_std", torch.ones(z))

    # -- encoder ---------------------------------------------------------------------------------
    def encode_groups(self, groups: torch.Tensor) -> torch.Tensor:
        """groups (N, 4, 3, H, W) in [-1, 1] -> normalised latents (N, z, H/8, W/8)."""
        n, t, c, h, w = groups.shape
        z = self.encoder(groups.reshape(n, t * c, h, w))
        return (z - self.latent_mean.view(1, -1, 1, 1)) / self.latent_std.view(1, -1, 1, 1)

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Single frames (N, 3, H, W) in [-1, 1], each as a shot's first frame -> latents (N, z, h, w)."""
        return self.encode_groups(frames.unsqueeze(1).expand(-1, self.cfg.temporal_stride, -1, -1, -1))

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """A shot (1 + 4k, 3, H, W) -> (1 + k) latents: the first frame alone, then groups of 4."""
        first = self.encode_frames(video[:1])
        rest = video[1:]
        if rest.shape[0] == 0:
            return first
        return torch.cat([first, self.encode_groups(rest.reshape(-1, self.cfg.temporal_stride, *rest.shape[1:]))])

    # -- decoder ---------------------------------------------------------------------------------
    def decode_clips(self, z: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents (B, n, z, h, w) and previous-latent features (B, C, h, w) -> (B, 4n, 3, H, W), new state.

        Pixels are nominally in [-1, 1] and not squashed (a saturating output stalls training); whoever
        turns them into colours clamps.

        The causal mix is a kernel-2 temporal convolution: latent i reads its own and latent i-1's features.
        """
        b, n = z.shape[:2]
        z = z * self.latent_std.view(1, 1, -1, 1, 1) + self.latent_mean.view(1, 1, -1, 1, 1)
        feats = self.dec_in(z.flatten(0, 1)).unflatten(0, (b, n))  # (B, n, C, h, w)
        prev = torch.cat([state.unsqueeze(1), feats[:, :-1]], 1)
        mixed = feats + self.dec_time(torch.cat([feats, prev], 2).flatten(0, 1)).unflatten(0, (b, n))
        out = self.decoder(mixed.flatten(0, 1))  # (B*n, 3*4, H, W)
        hh, ww = out.shape[-2:]
        frames = out.view(b, n * self.cfg.temporal_stride, 3, hh, ww)
        return frames, feats[:, -1]

    def decode_chunk(self, z: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One clip's latents (n, z, h, w) and state (C, h, w) -> (4n, 3, H, W), new state."""
        frames, state = self.decode_clips(z.unsqueeze(0), state.unsqueeze(0))
        return frames[0], state[0]

    def decode_video(self, z: torch.Tensor) -> torch.Tensor:
        """Whole-shot decode (reference): (1 + k) latents -> (1 + 4k, 3, H, W)."""
        state = torch.zeros(self.state_channels, z.shape[-2], z.shape[-1], dtype=z.dtype)
        frames, _ = self.decode_chunk(z, state)
        return frames[FIRST_KEEP:]
