"""ShotStream stages 2-4: the causal 4-step student, distilled from the bidirectional next-shot teacher.

The student is the runtime's `CausalDiT` (same weights file, same shape as the teacher, whose weights it starts
from). Everything it reads is built as the runtime builds it: `distill.nextshot` (context plan, flags, caption
routing, RoPE with the shot indicator), the runtime's scheduler (the preset's warped 4-step list, sigmas looked up
in its table), the block-wise causal mask (`runtime.dit.block_mask`).

A rollout keeps the keys of [context ; clean chunks so far], grown a chunk at a time as the runtime's cache grows
(`CausalDiT.prefix_kv`, then `extend_kv`), and every step of a chunk reads them (`forward_after`): the numbers of
`forward_full` over [context ; clean earlier chunks ; this chunk] under the block mask, in batches. One difference
from the cached step, noted: with gradient those keys carry it, so the exit step's gradient also reaches the
weights through the earlier frames' keys and values, which the official rollout reads from a detached cache.

- **ODE initialisation** (`ode`): teacher trajectories (Euler with `teacher_steps` steps and guidance from pure
  noise, context and captions from the data) kept at the student's 4 timesteps and at x0; the student regresses
  x0 from [context (t=0) ; each 3-frame block at one of those 5 levels, picked per block] under the block mask.
- **Intra-shot self-forcing DMD** (`dmd`): the student rolls a shot out chunk by chunk from the data's context;
  one exit step, shared by every chunk of a rollout, carries the gradient; its x0 is the chunk's output and the
  next chunks read it clean. The generator's gradient is DMD's: (fake - real) x0 predictions at a random noise
  level, normalised by mean |x_hat - real|; real = the teacher with guidance, fake = a critic (the teacher's
  copy) trained `critic_steps` times per generator step, and `critic_warmup` times alone before a run's first, by
  flow matching on fresh rollouts. The log's `x_hat_growth` is the rollouts' last chunk's spread over the first's.
  With `ode_weight`, the ODE stage's regression on teacher trajectories is added to the generator's loss.
- **Inter-shot self-forcing** (`dmd-long`): the same losses over whole stories the student generates itself:
  shot i's context is picked by the runtime's rule from the student's own earlier shots, decoded to pixels
  (uint8 levels) and re-encoded one frame at a time as the runtime does; one optimiser step per shot.

Stages are bounded by steps and by wall time (`minutes`, the learning rate annealed over whichever ends first),
checkpointed, resumable and deterministic by seed on one device.

Long module: the student's three stages share its geometry, losses, rollout, checkpoints and one `train` loop
(about 110 lines); the stages' step functions are the part to move out next, one module per stage.
"""
from __future__ import annotations

import copy
import json
import logging
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from distill.nextshot import FrameText, NextShot
from distill.resident import ResidentShots
from distill.runs import (CallRecord, LossMeter, StepClock, Throughput, TrainDevice, budget_progress, device_noise,
                         warmup_cosine)
from distill.sampling import guided_velocities
from distill.teacher import CaptionBank, ShotSamples, _init_fields, _read_dit, _save_ema, resumed_start
from runtime.config import ModelConfig, get_preset
from runtime.dit import CausalDiT, block_mask, timestep_frequencies
from runtime.measure.flops import dit_call_flops
from runtime.progress import progress
from runtime.scheduler import NUM_TRAIN_STEPS, RAW_STEP_LIST, FlowMatchScheduler
from runtime.weights import sha256_file

log = logging.getLogger(__name__)
STAGES = ("ode", "dmd", "dmd-long")
T_MIN, T_MAX = 20.0, 980.0  # DMD's noise levels, as timesteps


@dataclass(frozen=True)
class StageRecipe:
    steps: int
    batch: int
    lr: float
    warmup: int = 20
    minutes: float | None = None
    # ode
    pairs: int = 0  # teacher trajectories to sample
    teacher_steps: int = 50
    pair_batch: int = 64
    # the share of ODE samples whose blocks before a drawn chunk are clean (the teacher's x0), as the runtime's
    # cache holds them, that chunk noisy; the rest draw every block's level alone (the official init). With every
    # earlier block noisy, the best x0 leans on the context shots and not on the chunk before: the student's
    # chunks then jump where a new one starts (a still shot reads as moving). 0: the official draw only.
    clean_prefix: float = 0.0
    # the first of the student's 4 steps whose input the regression is asked about: 0, every step (the official
    # init); 1 leaves out the first, from pure noise, where an x0 regressed by MSE is the blurred mean of the
    # trajectories and the figures fade; blocks drawn below it are inputs only
    regress_from: int = 0
    # dmd / dmd-long
    critic_lr: float = 0.0
    critic_steps: int = 5
    # critic-only updates on the student's rollouts before the first generator step of a run. A fresh critic is
    # the teacher at guidance 1, so the first generator steps would follow the guidance direction (fake - real is
    # the unguided minus the guided prediction), which through the earlier chunks' keys grows every chunk's spread
    # over the one before it; a critic that has seen the student first turns that gradient around.
    critic_warmup: int = 0
    # the weight of a regression term beside DMD's generator loss: the ODE stage's loss on teacher trajectories
    # (`pairs`, `teacher_steps`, `clean_prefix` as there; `batch` pairs a step), as the first DMD paper paired its
    # distribution matching with a regression on noise-image pairs. 0: DMD alone (the official self-forcing).
    ode_weight: float = 0.0
    shots: int = 3  # dmd-long: shots per story rolled out
    # both: the teacher's guidance (trajectories and DMD's real score)
    guidance: float = 2.0

    def __post_init__(self):
        if self.ode_weight < 0 or (self.ode_weight > 0 and self.pairs < 1):
            raise ValueError(f"[student.*]: ode_weight must be at least 0, and a regression (ode_weight "
                             f"{self.ode_weight}) needs pairs >= 1 (got {self.pairs})")

    def progress(self, step: int, seconds: float) -> float:
        return budget_progress(step, self.steps, seconds, self.minutes)

    def lr_at(self, step: int, done: float, peak: float | None = None) -> float:
        return warmup_cosine(self.lr if peak is None else peak, step, self.warmup, done)


def check_regress_from(first: int, steps: int, where: str = "", preset: str = "") -> None:
    """`regress_from` names one of the student's `steps` (0..steps-1); a ValueError, prefixed by `where`, if not."""
    if not 0 <= first < steps:
        of = f" ({preset})" if preset else ""
        raise ValueError(f"{where}regress_from must be one of the student's steps 0..{steps - 1}{of}, got {first}")


@dataclass(frozen=True)
class StudentRecipe:
    preset: str = "tiny"
    seed: int = 0
    shift: float | None = None  # None: the preset's (the teacher's manifest must agree)
    stages: dict = field(default_factory=dict)  # stage name -> StageRecipe

    @staticmethod
    def from_toml(path: str | Path) -> "StudentRecipe":
        data = tomllib.loads(Path(path).read_text()).get("student")
        if data is None:
            raise ValueError(f"{path} has no [student] table")
        stages = {name: StageRecipe(**data.pop(name.replace("-", "_"))) for name in STAGES
                  if name.replace("-", "_") in data}
        return StudentRecipe(stages=stages, **data)

    def __post_init__(self):
        steps = self.config().shot.num_steps  # an unknown preset is refused here too, before any data work
        for name, sr in self.stages.items():
            check_regress_from(sr.regress_from, steps, f"[student.{name.replace('-', '_')}]: ", self.preset)

    def config(self) -> ModelConfig:
        return get_preset(self.preset)

    def shift_value(self) -> float:
        return self.config().shot.shift if self.shift is None else self.shift

    def stage(self, name: str) -> StageRecipe:
        if name not in self.stages:
            raise ValueError(f"the recipe has no [student.{name.replace('-', '_')}] table")
        return self.stages[name]


# -- the student's geometry ------------------------------------------------------------------------------
class Geometry:
    """Timesteps, sigmas and masks of the runtime's chunk loop, as tensors on one device."""

    def __init__(self, cfg: ModelConfig, shift: float, device, autocast: bool = True):
        sched = FlowMatchScheduler(shift)
        self.cfg, self.device, self.shift, self.autocast = cfg, device, shift, autocast  # autocast: bf16
        self.ns = NextShot(cfg)
        self.n_ctx, self.fc = cfg.shot.context_frames, cfg.shot.latent_frames_per_chunk
        self.chunks, self.tpf = cfg.shot.chunks_per_shot, cfg.tokens_per_frame
        steps = sched.warped_steps()[: cfg.shot.num_steps]
        self.step_t = [float(t) for t in steps]
        self.step_sigma = [sched.sigma_at(t) for t in steps]
        # the 5 levels of the ODE regression: the 4 steps, then clean; their frequencies and sigmas on the device
        level_t = np.asarray(self.step_t + [0.0])
        self.level_freq = self.t_freq(level_t[None])[0]  # (5, freq_dim)
        self.level_sigma = torch.tensor(self.step_sigma + [0.0], device=device)
        self.masks = [block_mask(self.n_ctx, self.fc * (b + 1), self.fc, self.tpf).to(device)
                      for b in range(self.chunks)]
        self.table_sigma = torch.from_numpy(sched.sigmas).float().to(device)
        self._timesteps: dict = {}

    def sigma_of(self, t: np.ndarray) -> np.ndarray:
        """Sigmas of timesteps that are the student's steps or 0 (the runtime's table lookups, precomputed)."""
        sig = np.zeros_like(t, dtype=np.float64)
        for step_t, step_sigma in zip(self.step_t, self.step_sigma):
            sig[t == step_t] = step_sigma
        if np.any((sig == 0) & (t != 0)):
            raise ValueError(f"timesteps other than the student's {self.step_t} and 0: {np.unique(t)}")
        return sig

    def t_freq(self, t: np.ndarray) -> torch.Tensor:
        """(B, F) timesteps -> (B, F, freq_dim) on the device."""
        return torch.from_numpy(timestep_frequencies(t, self.cfg.dit.freq_dim)).to(self.device)

    def timesteps(self, t: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(t_freq (B, F, freq_dim), sigma (B, F)) on the device of per-frame timesteps (B, F), made once per
        pattern (a rollout's patterns repeat every step: no host-to-device copy in the loop)."""
        key = (t.shape, t.tobytes())
        if key not in self._timesteps:
            self._timesteps[key] = (self.t_freq(t), torch.from_numpy(self.sigma_of(t)).float().to(self.device))
        return self._timesteps[key]

    def trajectory_sigmas(self, teacher_steps: int) -> tuple[np.ndarray, list[int]]:
        """The teacher's Euler sigmas (steps + 1, from 1 to 0) and the indices among them of the student's steps.

        The student's steps cut the unshifted time u in [0, 1] at its raw step list (1, .74, .5, .26 for the
        official list) and 0; each piece gets a share of the steps in proportion to its length, uniform in u
        within it, warped by the shift: the path passes exactly through the student's sigmas (50 steps give the
        official uniform 50-step path; fewer give a coarser Euler over the same points)."""
        cuts = [s / NUM_TRAIN_STEPS for s in RAW_STEP_LIST[: self.cfg.shot.num_steps]] + [0.0]
        if teacher_steps < len(cuts) - 1:
            raise ValueError(f"at least {len(cuts) - 1} teacher steps are needed, got {teacher_steps}")
        counts = [max(1, round(teacher_steps * (a - b))) for a, b in zip(cuts, cuts[1:])]
        u, keep = [], []
        for (a, b), n in zip(zip(cuts, cuts[1:]), counts):
            keep.append(len(u))
            u.extend(np.linspace(a, b, n + 1)[:-1])
        u = np.asarray(u + [0.0])
        sigmas = self.shift * u / (1.0 + (self.shift - 1.0) * u)
        if not np.allclose(sigmas[keep], self.step_sigma, atol=1e-9):
            raise ValueError(f"the teacher's path misses the student's sigmas {self.step_sigma}")
        return sigmas, keep

    def dmd_sigma(self, b: int, gen: torch.Generator) -> torch.Tensor:
        """(B,) sigmas of DMD's noise level: a table timestep clamped to [T_MIN, T_MAX], drawn on the device."""
        i = torch.randint(0, NUM_TRAIN_STEPS, (b,), generator=gen, device=gen.device).to(self.device)
        t = (self.table_sigma[i] * NUM_TRAIN_STEPS).clamp(T_MIN, T_MAX)
        return t / NUM_TRAIN_STEPS


def _rows(cos: torch.Tensor, n: int) -> torch.Tensor:
    """The first n token rows of a RoPE table, shared (T, P) or per sample (B, T, P)."""
    return _span(cos, 0, n)


def _autocast(geo: "Geometry"):
    return torch.autocast(device_type=torch.device(geo.device).type, dtype=torch.bfloat16, enabled=geo.autocast)


# -- the teacher's view ------------------------------------------------------------------------------------
def teacher_velocity(dit: CausalDiT, geo: Geometry, x_t, sigma, context, text, cos, sin, guidance: float):
    """The velocity a bidirectional model predicts for [context (t=0) ; x_t at sigma (B,)], with guidance
    (`distill.sampling.guided_velocities`), float32."""
    with _autocast(geo):
        return guided_velocities(dit, geo.ns, x_t, context, text, cos, sin, sigma.double() * NUM_TRAIN_STEPS,
                                 guidance).float()


def teacher_x0(dit: CausalDiT, geo: Geometry, x_t, sigma, context, text, cos, sin, guidance: float):
    """x0 = x_t - sigma v from `teacher_velocity`."""
    v = teacher_velocity(dit, geo, x_t, sigma, context, text, cos, sin, guidance)
    return x_t - sigma.view(-1, 1, 1, 1, 1) * v


@torch.no_grad()
def teacher_trajectories(dit: CausalDiT, geo: Geometry, context, text, cos, sin, *, steps: int, guidance: float,
                         gen: torch.Generator) -> torch.Tensor:
    """(B, 5, 21, C, h, w): the teacher's Euler path from pure noise, at the student's 4 steps and at x0."""
    sig, keep = geo.trajectory_sigmas(steps)
    b = context.shape[0]
    x = device_noise((b, geo.ns.n_target, *context.shape[2:]), gen, geo.device)
    kept = []
    for i in range(len(sig) - 1):
        if i in keep:
            kept.append(x)
        sigma = torch.full((b,), float(sig[i]), device=geo.device)
        x = x + float(sig[i + 1] - sig[i]) * teacher_velocity(dit, geo, x, sigma, context, text, cos, sin, guidance)
    return torch.stack(kept + [x], 1)


# -- the student's view ------------------------------------------------------------------------------------
def student_x0(dit: CausalDiT, geo: Geometry, seq, t_frames: np.ndarray, text, cos, sin, mask):
    """x0 of every frame of `seq` (B, F, ...) at per-frame timesteps (B, F) under `mask`, sigma looked up in the
    table (t = 0: the frame is returned as it is)."""
    return _x0(dit, geo, seq, *geo.timesteps(t_frames), text, cos, sin, mask)


def _x0(dit: CausalDiT, geo: Geometry, seq, t_freq, sigma, text, cos, sin, mask):
    """x0 = seq - sigma v from device tensors t_freq (B, F, freq_dim) and sigma (B, F)."""
    with _autocast(geo):
        v = dit.forward_full(seq, t_freq, text.table, cos, sin, mask, text.index).float()
    return seq - sigma[..., None, None, None] * v


def ode_levels(geo: Geometry, b: int, gen: torch.Generator, clean_prefix: float = 0.0,
               regress_from: int = 0) -> torch.Tensor:
    """(B, chunks) level indices into the 5 ODE levels (4: clean), drawn on the generator's device: each block's
    alone; then, for a `clean_prefix` share of the samples, the blocks before a drawn chunk clean and that chunk
    at one of the noisy levels from `regress_from` on."""
    check_regress_from(regress_from, len(geo.step_t))
    levels = torch.randint(0, 5, (b, geo.chunks), generator=gen, device=gen.device)
    if clean_prefix <= 0:
        return levels
    chosen = torch.rand((b, 1), generator=gen, device=gen.device) < clean_prefix
    start = torch.randint(0, geo.chunks, (b, 1), generator=gen, device=gen.device)
    noisy = torch.randint(regress_from, 4, (b, 1), generator=gen, device=gen.device)
    block = torch.arange(geo.chunks, device=gen.device)[None]
    levels = torch.where(chosen & (block < start), 4, levels)
    return torch.where(chosen & (block == start), noisy, levels)


def ode_loss(dit: CausalDiT, geo: Geometry, traj, context, text, cos, sin, gen: torch.Generator,
             clean_prefix: float = 0.0, regress_from: int = 0):
    """Each 3-frame block at one of the 5 levels (`ode_levels`); MSE of the x0 of the frames at the noisy levels
    from `regress_from` on against the teacher's x0."""
    b, _, f = traj.shape[:3]
    dev = traj.device
    levels = ode_levels(geo, b, gen, clean_prefix, regress_from).to(dev).repeat_interleave(geo.fc, 1)  # (B, F)
    x_in = traj[torch.arange(b, device=dev)[:, None], levels, torch.arange(f, device=dev)[None, :]]
    t_freq = torch.cat([geo.level_freq[-1].expand(b, geo.n_ctx, -1), geo.level_freq[levels]], 1)
    sigma = torch.cat([geo.level_sigma.new_zeros(b, geo.n_ctx), geo.level_sigma[levels]], 1)
    x0 = _x0(dit, geo, torch.cat([context, x_in], 1), t_freq, sigma, text, cos, sin, geo.masks[-1])[:, geo.n_ctx:]
    noisy = ((levels < 4) & (levels >= regress_from))[..., None, None, None]  # 4 is clean: nothing to regress
    err = ((x0 - traj[:, -1]) ** 2) * noisy
    return err.sum() / (noisy.sum() * np.prod(traj.shape[-3:])).clamp_min(1)


def _span(table: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Token rows start..stop of a RoPE table, shared (T, P) or per sample (B, T, P)."""
    return table[start:stop] if table.dim() == 2 else table[:, start:stop]


def _chunk_x0(dit: CausalDiT, geo: Geometry, x, t: np.ndarray, text, cos, sin, past):
    """x0 of a chunk's frames x (B, fc, ...) at its timesteps, the last fc of per-frame `t` (B, n), reading the
    prefix's keys `past` (`CausalDiT.prefix_kv`): the chunk's rows of `student_x0` under the block mask, with
    the prefix computed once instead of once per step."""
    n, p = t.shape[1], t.shape[1] - geo.fc
    t_freq, sigma = geo.timesteps(t)
    with _autocast(geo):
        v = dit.forward_after(x, t_freq[:, p:], text.table, _span(cos, p * geo.tpf, n * geo.tpf),
                              _span(sin, p * geo.tpf, n * geo.tpf), text.index[:, p:n], past).float()
    return x - sigma[:, p:, None, None, None] * v


def _context_kv(dit: CausalDiT, geo: Geometry, context, text, cos, sin):
    """Keys and values of the context frames (t = 0), which attend among themselves."""
    p = geo.n_ctx
    t_freq, _ = geo.timesteps(np.zeros((context.shape[0], p)))
    mask = geo.masks[0][..., : p * geo.tpf, : p * geo.tpf]
    with _autocast(geo):
        return dit.prefix_kv(context, t_freq, text.table, _rows(cos, p * geo.tpf), _rows(sin, p * geo.tpf), mask,
                             text.index[:, :p])


def _grown_kv(dit: CausalDiT, geo: Geometry, chunk, j: int, text, cos, sin, past):
    """`past` (keys of [context ; clean chunks before chunk j]) with clean chunk j's keys appended."""
    p = geo.n_ctx + geo.fc * j
    t_freq, _ = geo.timesteps(np.zeros((chunk.shape[0], geo.fc)))
    rows = slice(p * geo.tpf, (p + geo.fc) * geo.tpf)
    with _autocast(geo):
        return dit.extend_kv(chunk, t_freq, text.table, _span(cos, rows.start, rows.stop),
                             _span(sin, rows.start, rows.stop), text.index[:, p:p + geo.fc], past)


def rollout(dit: CausalDiT, geo: Geometry, context, text, cos, sin, exit_step: int, gen: torch.Generator,
            grad: bool, past: torch.Tensor | None = None) -> torch.Tensor:
    """A shot generated chunk by chunk: steps before `exit_step` without gradient (renoised as the runtime
    renoises), the exit step's x0 is the chunk's output (with gradient when `grad`); later chunks read it clean.

    Every step reads the keys of [context ; clean chunks so far], grown by one chunk as each is done (the
    runtime's cache, `CausalDiT.extend_kv`): the numbers of the whole sequence under the block mask, with each
    frame's keys computed once per rollout instead of once per step. With `grad` those keys carry gradient,
    so the exit steps' gradient reaches the network through the earlier frames' keys as it would through the
    whole masked sequence; the steps without gradient read them detached. `past` (B, F, ...): latents whose chunks
    the cache holds instead of the student's own outputs (teacher forcing: each chunk made from the true past)."""
    b = context.shape[0]
    outs = []
    with torch.set_grad_enabled(grad):
        keys = _context_kv(dit, geo, context, text.frames(geo.n_ctx), cos, sin)
    for c in range(geo.chunks):
        n = geo.n_ctx + geo.fc * (c + 1)
        tx, ts, tc = text.frames(n), _rows(sin, n * geo.tpf), _rows(cos, n * geo.tpf)
        if c:
            with torch.set_grad_enabled(grad):
                done = outs[-1] if past is None else past[:, (c - 1) * geo.fc:c * geo.fc]
                keys = _grown_kv(dit, geo, done.detach(), c - 1, tx, tc, ts, keys)
        frozen = tuple([kv.detach() for kv in part] for part in keys)
        x = device_noise((b, geo.fc, *context.shape[2:]), gen, geo.device)
        for i in range(exit_step + 1):
            t = np.zeros((b, n))
            t[:, -geo.fc:] = geo.step_t[i]
            with_grad = grad and i == exit_step
            with torch.set_grad_enabled(with_grad):
                x0 = _chunk_x0(dit, geo, x, t, tx, tc, ts, keys if with_grad else frozen)
            if i < exit_step:
                s = geo.step_sigma[i + 1]
                x = (1 - s) * x0.detach() + s * device_noise(x0.shape, gen, geo.device)
        outs.append(x0)
    return torch.cat(outs, 1)


def dmd_generator_loss(x_hat, teacher: CausalDiT, critic: CausalDiT, geo: Geometry, context, text, cos, sin,
                       guidance: float, gen: torch.Generator) -> torch.Tensor:
    """0.5 mean((x_hat - sg(x_hat - g))^2), whose gradient is g / N: g = (fake - real) / mean|x_hat - real|."""
    b = x_hat.shape[0]
    sigma = geo.dmd_sigma(b, gen)
    s = sigma.view(b, 1, 1, 1, 1)
    with torch.no_grad():
        x_t = (1 - s) * x_hat + s * device_noise(x_hat.shape, gen, geo.device)
        real = teacher_x0(teacher, geo, x_t, sigma, context, text, cos, sin, guidance)
        fake = teacher_x0(critic, geo, x_t, sigma, context, text, cos, sin, 1.0)
        norm = (x_hat - real).abs().mean(dim=(1, 2, 3, 4), keepdim=True)
        g = torch.nan_to_num((fake - real) / norm)
    return 0.5 * F.mse_loss(x_hat.double(), (x_hat - g).detach().double())


def critic_loss(critic: CausalDiT, geo: Geometry, x_hat, context, text, cos, sin, gen: torch.Generator):
    """Flow matching on the student's samples: the critic's velocity at x_t against eps - x_hat."""
    b = x_hat.shape[0]
    sigma = geo.dmd_sigma(b, gen)
    s = sigma.view(b, 1, 1, 1, 1)
    eps = device_noise(x_hat.shape, gen, geo.device)
    x_t = (1 - s) * x_hat + s * eps
    return F.mse_loss(teacher_velocity(critic, geo, x_t, sigma, context, text, cos, sin, 1.0), eps - x_hat)


# -- story rollouts for dmd-long ---------------------------------------------------------------------------
class SelfHistory:
    """B stories generated by the student shot after shot: context picked from its own decoded frames."""

    def __init__(self, vae, geo: Geometry, samples: ShotSamples, stories: np.ndarray):
        self.vae, self.geo, self.samples, self.stories = vae, geo, samples, stories
        self.frames: list[torch.Tensor] = []  # per shot: (B, 81, 3, H, W) decoded, at uint8 levels

    def inputs(self, k: int):
        """context (B, n_ctx, C, h, w), per-frame text, cos, sin of shot k (from the stories' own captions)."""
        geo, s = self.geo, self.samples
        lay = geo.ns.layout([s.length] * k)
        like = torch.zeros((len(self.stories), geo.n_ctx, *geo.cfg.latent_shape), device=geo.device)
        if lay.plan:
            with torch.no_grad():
                picked = torch.stack([self.frames[j][:, f] for j, f in lay.plan], 1)  # (B, n, 3, H, W)
                enc = self.vae.encode_frames(picked.flatten(0, 1)).unflatten(0, picked.shape[:2])
            like[:, : len(lay.plan)] = enc.float()
        prompt_ids = [s.frame_prompts(int(story), k, lay) for story in self.stories]
        cos, sin = geo.ns.rope(lay.flags)
        return like, FrameText.of(s.bank.table, prompt_ids).to(geo.device), cos.to(geo.device), sin.to(geo.device)

    @torch.no_grad()
    def append(self, latents: torch.Tensor) -> None:
        """Decode a generated shot (B, 21, C, h, w) whole (= chunk by chunk) and keep its frames at uint8 levels."""
        from runtime.vae import FIRST_KEEP

        state = torch.zeros(latents.shape[0], self.vae.state_channels, *latents.shape[-2:], device=latents.device)
        frames, _ = self.vae.decode_clips(latents.float(), state)
        frames = torch.round((frames[:, FIRST_KEEP:].clamp(-1, 1) + 1) * 127.5) / 127.5 - 1
        self.frames.append(frames)


# -- the loop ----------------------------------------------------------------------------------------------
@dataclass
class State:
    step: int = 0
    seconds: float = 0.0
    samples: int = 0
    pairs_seconds: float = 0.0
    throughput: dict = field(default_factory=dict)  # Throughput fields over every call
    init: str | None = None  # the weights the stage started from (None: the teacher's)
    init_sha256: str | None = None
    teacher_sha256: str | None = None  # the teacher it distils, the same in every call
    critic_warmed: int = 0  # critic warm-up updates done (`StageRecipe.critic_warmup`)
    calls: list = field(default_factory=list)  # a line per call (`CallRecord`): where and when each ran


def train(recipe: StudentRecipe, stage: str, shots: dict, teacher_path: str | Path, out: str | Path, *,
          init: str | Path | None = None, device: str = "cpu", max_steps: int | None = None) -> dict:
    """Run (or resume) one stage on `shots` (the teacher's `shots` data); returns the manifest entry written
    beside `out/student.safetensors`. `init`: the student's starting weights (default: the teacher's)."""
    from runtime.model import build_dit, load_bundle

    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    sr = recipe.stage(stage)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = recipe.config()
    td = TrainDevice.of(device)
    torch.manual_seed(recipe.seed)
    gen = td.generator(recipe.seed)  # every tensor draw, on the device
    pick = torch.Generator().manual_seed(recipe.seed + 7)  # the loop's own choices (exit steps, stories), on the host
    geo = Geometry(cfg, recipe.shift_value(), device, autocast=td.bf16)
    bundle = load_bundle(cfg.shares or recipe.preset)  # the text side and VAE (a DiT-only variant: its sharer's)
    bank = CaptionBank(shots["prompt"], bundle.text_encoder.float().eval(), bundle.tokenizer, device=device).to(device)
    samples = ShotSamples(shots, bank, geo.ns)
    pool = ResidentShots(shots, bank, geo.ns, device) if stage == "dmd" else None

    def dit_from(path) -> CausalDiT:
        m = build_dit(cfg)
        m.load_state_dict(_read_dit(path))
        return m.to(device)

    teacher = dit_from(teacher_path).eval().requires_grad_(False)
    vae = bundle.vae.to(device).eval().requires_grad_(False)
    student = dit_from(init if init is not None else teacher_path).train()
    critic = copy.deepcopy(teacher).train().requires_grad_(True) if stage != "ode" else None
    betas = (0.9, 0.99) if stage == "ode" else (0.0, 0.999)  # DMD: the official generator/critic betas
    opt = td.adamw(student.parameters(), lr=sr.lr, betas=betas, weight_decay=0.01)
    copt = td.adamw(critic.parameters(), lr=sr.critic_lr, betas=betas, weight_decay=0.01) if critic is not None else None
    state = State(**_init_fields(init), teacher_sha256=sha256_file(teacher_path))
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        student.load_state_dict(ckpt["student"])
        opt.load_state_dict(ckpt["opt"])
        if critic is not None:
            critic.load_state_dict(ckpt["critic"])
            copt.load_state_dict(ckpt["copt"])
        saved = ckpt["state"]
        if saved.get("teacher_sha256", state.teacher_sha256) != state.teacher_sha256:
            raise ValueError(f"{ckpt_path} is a run distilling another teacher than {teacher_path} (sha256 "
                             f"{saved['teacher_sha256'][:12]}): resume it with that teacher, or use another folder")
        state = State(**{**saved, **resumed_start(saved, state, init, ckpt_path),
                         "teacher_sha256": state.teacher_sha256})
        gen.set_state(ckpt["generator"])
        pick.set_state(ckpt["pick"])
        log.info("resuming %s from step %d", stage, state.step)
    record = CallRecord(state.calls, td, state.step, state.samples, state.seconds, out)

    pairs = None
    if stage == "ode" or sr.ode_weight > 0:
        pairs, state.pairs_seconds = _kept_pairs(out / "pairs.pt", teacher, geo, samples, sr, recipe.seed, device)
    peak = td.peak_tflops()
    log_path = out / "loss.jsonl"
    if critic is not None and state.step == 0 and state.critic_warmed < sr.critic_warmup:
        warm_inputs = (lambda: pool.draw(sr.batch, gen)[1:]) if pool is not None else (
            lambda: _story_inputs(samples, vae, geo, sr, pick))
        state.seconds += _warm_critic(student, critic, copt, geo, warm_inputs, sr, state, gen, pick)
        _checkpoint(ckpt_path, student, critic, opt, copt, state, gen, pick)
    started = time.perf_counter() - state.seconds
    call_steps, losses, rates = 0, LossMeter(), Throughput(**state.throughput)
    tokens = geo.ns.frames * geo.tpf  # a sample's [context ; shot] tokens
    flops = 3.0 * dit_call_flops(cfg, geo.ns.frames, captions=pairs["slots"].shape[1]) if stage == "ode" else 0.0
    clock = StepClock(td, rates, sr.batch, tokens, flops)
    with td.kernels(tokens), progress(sr.steps, f"student {stage}", unit="step") as bar, open(log_path, "a") as logf:
        bar.update(state.step)
        while sr.progress(state.step, state.seconds) < 1.0 and (max_steps is None or call_steps < max_steps):
            done = sr.progress(state.step, state.seconds)
            lr = sr.lr_at(state.step, done)
            for g in opt.param_groups:
                g["lr"] = lr
            if copt is not None:
                for g in copt.param_groups:
                    g["lr"] = sr.lr_at(state.step, done, sr.critic_lr)
            if stage == "ode":
                losses.add(**_ode_step(student, opt, geo, pairs, sr, gen))
            elif stage == "dmd":
                losses.add(**_dmd_update(student, critic, teacher, opt, copt, geo, pool.draw(sr.batch, gen), sr, gen,
                                         pick, pairs))
            else:
                losses.add(**_dmd_long_step(student, critic, teacher, opt, copt, geo, samples, vae, sr, gen, pick,
                                            pairs))
            state.step, state.samples, call_steps = state.step + 1, state.samples + sr.batch, call_steps + 1
            clock.tick()
            state.seconds = time.perf_counter() - started
            bar.update(1)
            read, save = state.step % 10 == 0 or state.step == 1, state.step % 200 == 0
            if read or save:  # the losses' only read-back, and the clock's: one host sync
                row = {"step": state.step, "lr": lr, **(losses.read() if read else {})}
                clock.close()
                state.throughput = asdict(rates)
                if read:
                    row.update(seconds=round(state.seconds, 1), samples=state.samples)
                    logf.write(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}) + "\n")
                    logf.flush()
                    bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k.endswith("loss")})
                if save:
                    record.update(state.step, state.samples, state.seconds)
                    _checkpoint(ckpt_path, student, critic, opt, copt, state, gen, pick)
                clock.reopen()
    clock.close()
    state.throughput = asdict(rates)
    record.update(state.step, state.samples, state.seconds)
    _checkpoint(ckpt_path, student, critic, opt, copt, state, gen, pick)
    complete = sr.progress(state.step, state.seconds) >= 1.0
    report = rates.report(peak if stage == "ode" else None, td.dtype)
    if stage != "ode":  # a DMD step's work (rollouts, teacher and critic calls) is not counted in FLOPs here
        report.update(model_tflops=None, of_peak=None)
    return _finish(recipe, stage, student, out, state, td, complete, teacher_path, report)


def _kept_pairs(path: Path, teacher, geo: Geometry, samples: ShotSamples, sr: StageRecipe, seed: int,
                device) -> tuple[dict, float]:
    """The stage's trajectories, resident (`_resident_pairs`), and the seconds sampling them took: read from
    `path` when a call before sampled them (a resumed run does not sample them again), else sampled and kept there."""
    if path.exists():
        pairs = torch.load(path, map_location=device, weights_only=False)
    else:
        pairs = _ode_pairs(teacher, geo, samples, sr, seed, device)
        torch.save(pairs, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
    return _resident_pairs(pairs, device), pairs["seconds"]


def _ode_pairs(teacher, geo: Geometry, samples: ShotSamples, sr: StageRecipe, seed: int, device) -> dict:
    """Teacher trajectories of `sr.pairs` data samples (context from the data as the runtime picks it)."""
    gen = torch.Generator().manual_seed(seed + 1)
    idx = torch.randint(len(samples), (sr.pairs,), generator=gen).numpy()
    started = time.perf_counter()
    out = {"traj": [], "context": [], "text_table": [], "text_index": [], "cos": [], "sin": []}
    rows = 0
    with progress(sr.pairs, "teacher trajectories", unit="pair") as bar:
        for a in range(0, sr.pairs, sr.pair_batch):
            part = idx[a:a + sr.pair_batch]
            _, context, text, cos, sin = samples.batch(part, geo.ns, gen, device)
            cos, sin = _per_sample(cos, len(part)), _per_sample(sin, len(part))
            traj = teacher_trajectories(teacher, geo, context, text, cos.to(device), sin.to(device),
                                        steps=sr.teacher_steps, guidance=sr.guidance, gen=gen)
            out["traj"].append(traj.half())
            out["context"].append(context.half())
            out["text_table"].append(text.table.half())
            out["text_index"].append(text.index + rows)  # into the concatenated table
            rows += len(text.table)
            out["cos"].append(cos)
            out["sin"].append(sin)
            bar.update(len(part))
    pairs = {k: torch.cat(v) for k, v in out.items()}
    pairs["seconds"] = time.perf_counter() - started
    return pairs


def _per_sample(table: torch.Tensor, b: int) -> torch.Tensor:
    return table if table.dim() == 3 else table.unsqueeze(0).expand(b, -1, -1)


def _resident_pairs(pairs: dict, device) -> dict:
    """The trajectories on the device with each pair's captions as slots (`distill.resident`): a batch projects
    its own pairs' captions, not the whole set's."""
    index = pairs["text_index"].cpu().numpy()  # (P, F) rows of the concatenated caption table
    distinct = [sorted(set(row.tolist())) for row in index]
    width = max(len(d) for d in distinct)
    slots = np.asarray([d + d[:1] * (width - len(d)) for d in distinct], np.int64)
    frame_slot = np.asarray([[d.index(r) for r in row] for d, row in zip(distinct, index.tolist())], np.int64)
    out = {k: v.to(device) for k, v in pairs.items() if isinstance(v, torch.Tensor)}
    out["slots"], out["frame_slot"] = torch.from_numpy(slots).to(device), torch.from_numpy(frame_slot).to(device)
    return out


def _pairs_loss(student, geo: Geometry, pairs: dict, sr: StageRecipe, gen) -> torch.Tensor:
    """`ode_loss` on `sr.batch` trajectories drawn from the resident pairs."""
    i = torch.randint(len(pairs["traj"]), (sr.batch,), generator=gen, device=gen.device).to(geo.device)
    width = pairs["slots"].shape[1]
    index = torch.arange(sr.batch, device=geo.device).view(-1, 1) * width + pairs["frame_slot"][i]
    text = FrameText(pairs["text_table"][pairs["slots"][i].flatten()].float(), index)
    return ode_loss(student, geo, pairs["traj"][i].float(), pairs["context"][i].float(), text,
                    pairs["cos"][i], pairs["sin"][i], gen, sr.clean_prefix, sr.regress_from)


def _ode_step(student, opt, geo: Geometry, pairs: dict, sr: StageRecipe, gen) -> dict:
    loss = _pairs_loss(student, geo, pairs, sr, gen)
    _update(opt, student, loss, 1.0)
    return {"ode_loss": loss}


def _critic_update(student, critic, copt, geo, inputs, gen, pick) -> torch.Tensor:
    """One critic update by flow matching on a fresh rollout of the student (exit step drawn); its loss."""
    exit_step = int(torch.randint(geo.cfg.shot.num_steps, (), generator=pick))
    with torch.no_grad():
        x_hat = rollout(student, geo, *inputs, exit_step, gen, grad=False)
    loss = critic_loss(critic, geo, x_hat, *inputs, gen)
    _update(copt, critic, loss, 10.0)
    return loss.detach()


def _warm_critic(student, critic, copt, geo, draw, sr: StageRecipe, state: State, gen, pick) -> float:
    """`sr.critic_warmup` critic updates on the inputs `draw()` returns, (context, text, cos, sin), before the
    first generator step (learning rate ramped over the first tenth); counts them in `state`, returns the seconds
    spent."""
    started, ramp = time.perf_counter(), max(1, sr.critic_warmup // 10)
    with progress(sr.critic_warmup, "critic warm-up", unit="step") as bar:
        bar.update(state.critic_warmed)
        while state.critic_warmed < sr.critic_warmup:
            for g in copt.param_groups:
                g["lr"] = sr.critic_lr * min(1.0, (state.critic_warmed + 1) / ramp)
            loss = _critic_update(student, critic, copt, geo, draw(), gen, pick)
            state.critic_warmed += 1
            bar.update(1)
            if state.critic_warmed % 10 == 0:
                bar.set_postfix(critic_loss=f"{float(loss):.4f}")
    seconds = time.perf_counter() - started
    log.info("critic warm-up: %d updates in %.0f s", sr.critic_warmup, seconds)
    return seconds


def chunk_growth(x_hat: torch.Tensor, fc: int) -> torch.Tensor:
    """The spread of a rollout's last chunk over its first's, averaged over the batch (B, F, ...): about 1 for the
    data; above 1 when every chunk comes out stronger than the one it reads (the probe reads that as a zoom)."""
    spread = x_hat.detach().float().flatten(2).std(2)  # (B, F)
    return (spread[:, -fc:].mean(1) / spread[:, :fc].mean(1).clamp_min(1e-6)).mean()


def _dmd_update(student, critic, teacher, opt, copt, geo, inputs, sr: StageRecipe, gen, pick,
                pairs: dict | None = None) -> dict:
    """`critic_steps` critic updates on fresh rollouts, then one generator update; losses stay on the device.
    `inputs`: (context, text, cos, sin), or a resident pool's batch (x0 first, unused here). With `sr.ode_weight`,
    the generator's loss adds that weight times `ode_loss` on `pairs` (the trajectories of `_kept_pairs`)."""
    inputs = inputs[1:] if len(inputs) == 5 else inputs
    closs = [_critic_update(student, critic, copt, geo, inputs, gen, pick) for _ in range(sr.critic_steps)]
    exit_step = int(torch.randint(geo.cfg.shot.num_steps, (), generator=pick))
    x_hat = rollout(student, geo, *inputs, exit_step, gen, grad=True)
    loss = dmd_generator_loss(x_hat, teacher, critic, geo, *inputs, sr.guidance, gen)
    row, total = {}, loss
    if sr.ode_weight > 0:
        row["ode_loss"] = _pairs_loss(student, geo, pairs, sr, gen)
        total = loss + sr.ode_weight * row["ode_loss"]
    _update(opt, student, total, 1.0)
    return {"dmd_loss": loss, "critic_loss": torch.stack(closs).mean() if closs else torch.zeros((), device=loss.device),
            "x_hat_std": x_hat.detach().float().std(), "x_hat_growth": chunk_growth(x_hat, geo.fc), **row}


def _story_inputs(samples: ShotSamples, vae, geo: Geometry, sr: StageRecipe, pick):
    """The first shot's inputs of `sr.batch` stories drawn as `dmd-long` draws them (the critic's warm-up)."""
    return SelfHistory(vae, geo, samples, _draw_stories(samples, sr, pick)).inputs(0)


def _draw_stories(samples: ShotSamples, sr: StageRecipe, pick) -> np.ndarray:
    """`sr.batch` stories with at least `sr.shots` shots, drawn on the host."""
    counts = np.bincount(samples.story.astype(np.int64))
    eligible = np.flatnonzero(counts >= sr.shots)
    return eligible[torch.randint(len(eligible), (sr.batch,), generator=pick).numpy()]


def _dmd_long_step(student, critic, teacher, opt, copt, geo: Geometry, samples: ShotSamples, vae, sr: StageRecipe,
                   gen, pick, pairs: dict | None = None) -> dict:
    """One story batch: shot after shot, each from the student's own earlier shots; one update per shot."""
    history = SelfHistory(vae, geo, samples, _draw_stories(samples, sr, pick))
    rows = []
    for k in range(sr.shots):
        inputs = history.inputs(k)
        row = _dmd_update(student, critic, teacher, opt, copt, geo, inputs, sr, gen, pick, pairs)
        rows.append(row)
        with torch.no_grad():  # the shot the story goes on from: a full 4-step rollout, as the runtime makes it
            history.append(rollout(student, geo, *inputs, geo.cfg.shot.num_steps - 1, gen, grad=False))
    return {k: torch.stack([r[k].float() for r in rows]).mean() for k in rows[0]}


def _update(opt, model, loss, clip: float) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip, foreach=True)
    opt.step()


def _checkpoint(path: Path, student, critic, opt, copt, state: State, gen, pick) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"student": student.state_dict(), "critic": None if critic is None else critic.state_dict(),
                "opt": opt.state_dict(), "copt": None if copt is None else copt.state_dict(),
                "state": asdict(state), "generator": gen.get_state(), "pick": pick.get_state()}, tmp)
    tmp.replace(path)


def _finish(recipe: StudentRecipe, stage: str, student, out: Path, state: State, td: TrainDevice, complete: bool,
            teacher_path, throughput: dict) -> dict:
    path = out / "student.safetensors"
    digest = _save_ema(student, path)
    entry = {"file": path.name, "sha256": digest, "bytes": path.stat().st_size, "preset": recipe.preset,
             "stage": stage, "shift": recipe.shift_value(), "seed": recipe.seed, "steps": state.step,
             "samples": state.samples, "recipe": asdict(recipe.stage(stage)), "wall_seconds": round(state.seconds, 1),
             "trajectory_seconds": round(state.pairs_seconds, 1), "device": td.name(), "throughput": throughput,
             "bf16": td.bf16, "torch": torch.__version__, "complete": complete, "teacher": str(teacher_path),
             "teacher_sha256": state.teacher_sha256, "init": state.init, "init_sha256": state.init_sha256,
             "calls": state.calls}
    (out / "manifest.json").write_text(json.dumps(entry, indent=2) + "\n")
    return entry
