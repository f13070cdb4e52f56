"""RoPE tables with the per-shot discontinuity indicator (spec section 3), computed on the host in float64.

A token at temporal position p, shot flag s, row h, column w gets, on the head dim's interleaved pairs:
temporal pair j: p * 10000^(-2j/(2*nt)) + s * shot_phase; height pair j: h * 10000^(-2j/(2*nh)); width likewise.
The shot flag is a constant phase on every temporal pair, never on height/width pairs. Tables are written
into caller-owned float32 buffers (`out=`), so the per-chunk path allocates nothing.
"""
from __future__ import annotations

import numpy as np

from runtime.config import ModelConfig


def axis_frequencies(pairs: int) -> np.ndarray:
    """omega_j = 10000^(-2j / (2*pairs)), j in [0, pairs)."""
    return np.power(10000.0, -np.arange(pairs, dtype=np.float64) * 2.0 / (2 * pairs))


class RopeTable:
    """Precomputed angle pieces for one preset; fills (cos, sin) buffers for any run of frames."""

    def __init__(self, cfg: ModelConfig, max_frames: int):
        nt, nh, nw = cfg.dit.rope_pairs
        gh, gw = cfg.token_grid
        self.tokens_per_frame = gh * gw
        self.pairs = nt + nh + nw
        hh, ww = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")  # (gh, gw): row-major tokens
        spatial = np.concatenate(
            [np.outer(hh.ravel(), axis_frequencies(nh)), np.outer(ww.ravel(), axis_frequencies(nw))], axis=1
        )  # (tokens_per_frame, nh + nw)
        self._temporal = np.outer(np.arange(max_frames), axis_frequencies(nt))  # (max_frames, nt)
        self._spatial = spatial
        self._phase = cfg.shot.shot_phase
        self._nt = nt
        self.max_frames = max_frames

    def angles(self, positions, flags, out: np.ndarray) -> np.ndarray:
        """Write the float64 angles (len(positions) * tokens_per_frame, pairs) for frames at `positions`."""
        tpf, nt = self.tokens_per_frame, self._nt
        if len(positions) != len(flags) or len(positions) * tpf != len(out):
            raise ValueError(f"{len(positions)} positions, {len(flags)} flags and {len(out)} rows: one flag per "
                             f"frame and {tpf} rows per frame")
        for i, (p, s) in enumerate(zip(positions, flags)):
            if not 0 <= p < self.max_frames:
                raise ValueError(f"temporal position {p} outside [0, {self.max_frames})")
            rows = out[i * tpf:(i + 1) * tpf]
            np.add(self._temporal[p], float(s) * self._phase, out=rows[:, :nt])  # same row for every token
            rows[:, nt:] = self._spatial
        return out

    def fill(self, positions, flags, cos: np.ndarray, sin: np.ndarray, scratch: np.ndarray) -> None:
        """Write cos/sin (float32, (frames * tokens_per_frame, pairs)); `scratch` is float64 (2, same rows, pairs)."""
        angles, trig = scratch[0], scratch[1]
        self.angles(positions, flags, angles)
        np.cos(angles, out=trig)
        np.copyto(cos, trig, casting="same_kind")
        np.sin(angles, out=trig)
        np.copyto(sin, trig, casting="same_kind")

    def tables(self, positions, flags) -> tuple[np.ndarray, np.ndarray]:
        """Allocating convenience for tests and the full-sequence reference: float32 (cos, sin)."""
        n = len(positions) * self.tokens_per_frame
        cos, sin = np.empty((n, self.pairs), np.float32), np.empty((n, self.pairs), np.float32)
        self.fill(positions, flags, cos, sin, np.empty((2, n, self.pairs)))
        return cos, sin
