"""What every training loop in distill/ shares: how far a run is through a budget of steps and wall time, the
warmup-then-cosine learning rate, and noise drawn on the training device from the run's own generator."""
from __future__ import annotations

import math

import torch


def budget_progress(step: int, steps: int, seconds: float, minutes: float | None) -> float:
    """How far through a run bounded by `steps` and, when given, `minutes`: the larger fraction, at most 1."""
    done = step / max(steps, 1)
    if minutes:
        done = max(done, seconds / (60 * minutes))
    return min(done, 1.0)


def warmup_cosine(peak: float, step: int, warmup: int, done: float) -> float:
    """Linear warmup over `warmup` steps, then a cosine from `peak` to a tenth of it over `done` in [0, 1]."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done)))


def device_noise(shape, gen: torch.Generator, device) -> torch.Tensor:
    """Standard normal noise drawn where the model runs, from a generator seeded by the run's own (host)
    generator: deterministic per device, and resumable with the host generator's state."""
    g = torch.Generator(device=device).manual_seed(int(torch.randint(2**62, (), generator=gen)))
    return torch.randn(shape, generator=g, device=device)
