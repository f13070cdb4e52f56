"""Training and measuring the tiny causal VAE on story-world clips.

Loss: L1 + MSE between a clip and its reconstruction (the first frame through the first-frame path, then
groups of 4), plus a small L2 on the latents so they stay near unit scale for the diffusion model. After
training, per-channel latent mean/std are measured on held-out clips and stored in the VAE's buffers.
PSNR is measured the way the runtime decodes: whole held-out shots, chunk by chunk with the causal state,
rounded to uint8.
"""
from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch

from distill.data import to_unit
from distill.runs import budget_progress, chosen_bf16
from runtime.progress import progress
from runtime.vae import FIRST_KEEP, TinyVAE

log = logging.getLogger(__name__)


def encode_clips(vae: TinyVAE, x: torch.Tensor) -> torch.Tensor:
    """Clips (B, 1 + 4k, 3, H, W) -> latents (B, 1 + k, z, h, w)."""
    b, t = x.shape[:2]
    k = (t - 1) // vae.cfg.temporal_stride
    first = vae.encode_frames(x[:, 0])
    rest = vae.encode_groups(x[:, 1:].reshape(b * k, vae.cfg.temporal_stride, *x.shape[2:]))
    return torch.cat([first.unsqueeze(1), rest.unflatten(0, (b, k))], 1)


def reconstruct(vae: TinyVAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z = encode_clips(vae, x)
    state = torch.zeros(x.shape[0], vae.state_channels, *z.shape[-2:], dtype=z.dtype, device=z.device)
    frames, _ = vae.decode_clips(z, state)
    return frames[:, FIRST_KEEP:], z


def train_vae(vae: TinyVAE, clips: np.ndarray, steps: int, batch: int = 8, lr: float = 2e-3,
              latent_l2: float = 1e-4, seed: int = 0, bf16: bool | None = None, crop: int = 0,
              whole_tail: int = 0, on_step=None, device: str = "cpu",
              max_seconds: float | None = None) -> list[float]:
    """Train on a uint8 clip pool (N, 1 + 4k, H, W, 3); returns the loss curve (one value per step).

    The learning rate warms up, then follows a cosine over the run's progress: the larger of steps done / `steps`
    and, with `max_seconds`, seconds spent / `max_seconds` (a run bounded by time still anneals; it stops when
    either is spent). The clip pool stays on the host; each batch moves to `device`.

    `crop` > 0 trains on random crop x crop windows, placed on the 8-pixel latent grid so the network sees
    the pixel phase it sees on whole frames: the CPU's pixels per second then buy more updates. The last
    `whole_tail` steps use whole frames, so the network settles on the borders it meets when it runs.
    `on_step(step, losses)` is called after every step (checkpoints, logs). `bf16`: autocast; None where the
    device has it natively, else fp32; True is refused where it would be emulated (`distill.runs.chosen_bf16`).
    """
    bf16 = chosen_bf16(device, bf16)
    if crop % 8 or crop > min(clips.shape[2:4]):
        raise ValueError(f"crop must be a multiple of 8 no larger than the frames {clips.shape[2:4]}, got {crop}")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.99))
    started = time.perf_counter()

    vae.train()
    losses = []
    with progress(steps, "train vae", unit="step") as bar:
        for step in range(steps):
            done = budget_progress(step, steps, time.perf_counter() - started,
                                   None if max_seconds is None else max_seconds / 60)
            if done >= 1.0:
                break
            for g in opt.param_groups:
                g["lr"] = lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * done))
            idx = torch.randint(len(clips), (batch,), generator=gen)
            x = to_unit(clips[idx.numpy()]).to(device, non_blocking=True)
            if crop and step < steps - whole_tail:
                cells_y, cells_x = (x.shape[-2] - crop) // 8 + 1, (x.shape[-1] - crop) // 8 + 1
                top = 8 * int(torch.randint(cells_y, (), generator=gen))
                left = 8 * int(torch.randint(cells_x, (), generator=gen))
                x = x[..., top:top + crop, left:left + crop]
            if torch.rand((), generator=gen) < 0.5:
                x = x.flip(-1)  # the world is left-right symmetric
            with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
                out, z = reconstruct(vae, x)
            out = out.float()
            loss = (out - x).abs().mean() + (out - x).pow(2).mean() + latent_l2 * z.float().pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            opt.step()
            losses.append(float(loss.detach()))
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
            if on_step is not None:
                on_step(step, losses)
    vae.eval()
    return losses


@torch.no_grad()
def set_latent_stats(vae: TinyVAE, clips: np.ndarray, batch: int = 16) -> None:
    """Measure per-channel latent mean/std on clips and store them, so encoded latents are ~N(0, 1)."""
    vae.latent_mean.zero_()
    vae.latent_std.fill_(1.0)
    device = vae.latent_mean.device
    zs = torch.cat([encode_clips(vae, to_unit(clips[i:i + batch], device)) for i in range(0, len(clips), batch)])
    vae.latent_mean.copy_(zs.mean(dim=(0, 1, 3, 4)))
    vae.latent_std.copy_(zs.std(dim=(0, 1, 3, 4)).clamp_min(1e-3))


@torch.no_grad()
def decode_shot(vae: TinyVAE, shot: np.ndarray, chunk_latents: int = 3) -> np.ndarray:
    """A whole shot (81, H, W, 3) uint8, encoded, then decoded chunk by chunk with the causal state as the
    runtime streams it -> its reconstruction, (81, H, W, 3) uint8."""
    return decode_latents(vae, encode_clips(vae, to_unit(shot[None], vae.latent_mean.device))[0], chunk_latents)


@torch.no_grad()
def decode_latents(vae: TinyVAE, z: torch.Tensor, chunk_latents: int = 3) -> np.ndarray:
    """A shot's latents (1 + k, z, h, w), decoded chunk by chunk with the causal state as the runtime streams
    them -> (1 + 4k, H, W, 3) uint8 frames."""
    state = torch.zeros(vae.state_channels, *z.shape[-2:], device=z.device)
    parts = []
    for b in range(0, z.shape[0], chunk_latents):
        frames, state = vae.decode_chunk(z[b:b + chunk_latents], state)
        parts.append(frames[FIRST_KEEP:] if b == 0 else frames)
    return torch.round((torch.cat(parts).movedim(1, -1) + 1) * 127.5).clamp(0, 255).to(torch.uint8).cpu().numpy()


def decode_first_frames(vae: TinyVAE, z: torch.Tensor, batch: int = 64) -> np.ndarray:
    """Latents (N, z, h, w), each decoded alone as a shot's first latent (zero causal state) -> the frame it
    stands for, (N, H, W, 3) uint8; in batches (one decode per batch, not per latent)."""
    parts = []
    for a in range(0, z.shape[0], batch):
        part = z[a:a + batch].unsqueeze(1)  # (B, 1, z, h, w)
        state = torch.zeros(part.shape[0], vae.state_channels, *z.shape[-2:], device=z.device)
        frames, _ = vae.decode_clips(part, state)  # (B, 4, 3, H, W)
        parts.append(frames[:, FIRST_KEEP])
    return torch.round((torch.cat(parts).movedim(1, -1) + 1) * 127.5).clamp(0, 255).to(torch.uint8).cpu().numpy()


def psnr_db(decoded: np.ndarray, truth: np.ndarray) -> float:
    """PSNR (dB) of uint8 pictures against their ground truth, over all of their pixels."""
    mse = float(np.mean((np.asarray(decoded, np.float64) - truth) ** 2))
    return 10 * math.log10(255.0**2 / max(mse, 1e-12))


def shot_psnr(vae: TinyVAE, shots: np.ndarray, chunk_latents: int = 3) -> float:
    """PSNR (dB) over whole shots (N, 81, H, W, 3) decoded chunk by chunk and rounded to uint8."""
    return psnr_db(np.stack([decode_shot(vae, shot, chunk_latents) for shot in shots]), shots)


def timed(fn, *args, **kw):
    started = time.time()
    return fn(*args, **kw), time.time() - started
