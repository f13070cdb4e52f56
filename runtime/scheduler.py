"""Flow-matching scheduler of the student (spec section 5): shift, the warped 4-step list, add_noise, x0.

sigma_i = S(1 - i/1000) with S(s) = shift*s / (1 + (shift-1)*s), t_i = 1000*sigma_i (i = 0..999).
The official `denoising_step_list` [1000, 740, 500, 260] is warped to t = T_ext[1000 - s] with
T_ext = timesteps + [0], giving [1000, 957.93, 888.89, 737.59]. The model predicts v = eps - x0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_TRAIN_STEPS = 1000
RAW_STEP_LIST = (1000, 740, 500, 260)


def shifted_sigmas(shift: float, n: int = NUM_TRAIN_STEPS) -> np.ndarray:
    base = 1.0 - np.arange(n, dtype=np.float64) / n
    return shift * base / (1.0 + (shift - 1.0) * base)


@dataclass(frozen=True)
class FlowMatchScheduler:
    shift: float = 8.0

    @property
    def sigmas(self) -> np.ndarray:
        return shifted_sigmas(self.shift)

    @property
    def timesteps(self) -> np.ndarray:
        return self.sigmas * NUM_TRAIN_STEPS

    def warped_steps(self, raw=RAW_STEP_LIST) -> np.ndarray:
        """The denoising timesteps actually used: T_ext[1000 - s] for each raw step s."""
        ext = np.concatenate([self.timesteps, [0.0]])
        return np.array([ext[NUM_TRAIN_STEPS - s] for s in raw])

    def sigma_at(self, t: float) -> float:
        """sigma of the table entry nearest to timestep t (t = 0 gives sigma 0)."""
        if t <= 0.0:
            return 0.0
        ts = self.timesteps
        return float(self.sigmas[int(np.argmin(np.abs(ts - t)))])

    @staticmethod
    def add_noise(x0: np.ndarray, noise: np.ndarray, sigma: float, out: np.ndarray) -> np.ndarray:
        """x_t = (1 - sigma) x0 + sigma eps = x0 + sigma (eps - x0), into `out` (aliasing neither input)."""
        np.subtract(noise, x0, out=out)
        out *= sigma
        out += x0
        return out

    @staticmethod
    def x0_from_velocity(x_t: np.ndarray, v: np.ndarray, sigma: float, out: np.ndarray) -> np.ndarray:
        """x0 = x_t - sigma v, into `out` (aliasing neither input)."""
        np.multiply(v, -sigma, out=out)
        out += x_t
        return out
