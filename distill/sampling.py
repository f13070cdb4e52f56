"""Sampling the bidirectional next-shot teacher: Euler steps with classifier-free guidance, shot after shot.

The teacher is the runtime's `CausalDiT.forward_full` over [context latents at t=0 ; the shot's noisy latents],
full attention (mask None). Flow matching: x_t = (1 - sigma) x0 + sigma eps and the model predicts v = eps - x0,
so one Euler step from sigma to sigma' is x += (sigma' - sigma) v. The N sigmas are 1 - i/N (i < N) warped by
the shift exactly as runtime/scheduler.py warps its table, then 0; the timestep fed to the model is 1000 sigma.
Guidance: v = v_u + g (v_c - v_u), v_u with the unconditional caption on every frame (context kept), so g = 1 is
the conditional prediction (then the unconditional one is not computed). Both run in one batch of two.
Every input the teacher reads (context plan, flags, caption routing, RoPE, t) is built by `distill.nextshot`,
as the teacher's training builds it; the unconditional caption is its `empty_caption`.

`TeacherStory` generates a story the way a game drives the runtime: per shot, context frames picked from the
story's own earlier *generated* shots by the runtime's rule, decoded and re-encoded one frame at a time as the
runtime encodes them; the shot decoded chunk by chunk with the VAE's causal state.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from distill.autoencoder import decode_latents
from distill.data import to_unit
from distill.nextshot import FrameText, Layout, NextShot
from runtime.config import ModelConfig, get_preset
from runtime.dit import CausalDiT
from runtime.model import ModelBundle
from runtime.scheduler import NUM_TRAIN_STEPS, shifted_sigmas
from runtime.text import shot_prompt
from runtime.weights import DIT_PREFIX, load_strict, read_state_dict

Tensor = torch.Tensor


def euler_sigmas(steps: int, shift: float) -> np.ndarray:
    """(steps + 1,) float64 sigmas from 1 down to 0: 1 - i/steps warped by `shift`, then 0."""
    if steps < 1:
        raise ValueError(f"at least one Euler step is needed, got {steps}")
    return np.concatenate([shifted_sigmas(shift, steps), [0.0]])


@dataclass(frozen=True)
class NextShotInputs:
    """What the teacher reads for one shot besides its noisy latents (built by `shot_inputs`)."""

    context: Tensor  # (C, z, h, w) clean context latents (all zero for a story's first shot)
    text: FrameText  # the story's captions so far (k + 1, L, text_dim) and the one each frame reads (1, C + F)
    cos: Tensor  # ((C + F) * tokens_per_frame, pairs) RoPE with the shot indicator
    sin: Tensor


def shot_inputs(nextshot: NextShot, layout: Layout, captions: Tensor, picked: Tensor | None) -> NextShotInputs:
    """Inputs of one shot from its layout, the story's caption embeddings (k + 1, L, text_dim) so far and the
    encoded context frames `picked` (len(layout.plan), z, h, w) in plan order (None without a plan)."""
    cos, sin = nextshot.rope(layout.flags)
    like = torch.zeros(nextshot.cfg.latent_shape)
    text = FrameText(captions, torch.tensor([layout.captions]))
    return NextShotInputs(nextshot.context(picked, layout, like), text, cos, sin)


def guided_velocities(dit: CausalDiT, nextshot: NextShot, x: Tensor, context: Tensor, text: FrameText, cos: Tensor,
                      sin: Tensor, t: Tensor, guidance: float) -> Tensor:
    """v_u + guidance (v_c - v_u) for a batch of shots: frames x (B, F, z, h, w) at timesteps t (B,), context
    (B, C, z, h, w) at t = 0; v_u with the unconditional caption on every frame, context kept. Guidance 1 is the
    conditional prediction (the unconditional one is then not computed); otherwise both run in one batch of 2B."""
    n_ctx = context.shape[1]
    seq = torch.cat([context, x], 1)
    if guidance != 1.0:
        text, seq, t = text.with_unconditional(), torch.cat([seq, seq]), torch.cat([t, t])
        cos, sin = (torch.cat([a, a]) if a.dim() == 3 else a for a in (cos, sin))  # per-sample RoPE tables
    t_freq = nextshot.t_freq(t).to(x.device)  # (B or 2B, C + F, freq_dim)
    v = dit.forward_full(seq, t_freq, text.table, cos, sin, None, text.index)[:, n_ctx:]
    return v if guidance == 1.0 else guide(v, guidance)


def guide(v: Tensor, guidance: float) -> Tensor:
    """v_u + guidance (v_c - v_u) from 2B predictions: the B conditional ones, then the B unconditional ones."""
    b = v.shape[0] // 2
    return v[b:] + guidance * (v[:b] - v[b:])


def guided_velocity(dit: CausalDiT, nextshot: NextShot, x: Tensor, inputs: NextShotInputs, t: float,
                    guidance: float) -> Tensor:
    """`guided_velocities` for one shot's frames x (F, z, h, w) at timestep t."""
    t = torch.full((1,), float(t), dtype=torch.float64)
    return guided_velocities(dit, nextshot, x[None], inputs.context[None], inputs.text, inputs.cos, inputs.sin, t,
                             guidance)[0]


@torch.no_grad()
def sample_latents(dit: CausalDiT, nextshot: NextShot, inputs: NextShotInputs, *, steps: int, guidance: float,
                   shift: float, generator: torch.Generator) -> Tensor:
    """One shot's latents (F, z, h, w): Euler from pure noise (drawn from `generator`) over
    `euler_sigmas(steps, shift)`, with guidance."""
    x = torch.randn((nextshot.n_target, *inputs.context.shape[1:]), generator=generator)
    sigmas = euler_sigmas(steps, shift)
    for i in range(steps):
        v = guided_velocity(dit, nextshot, x, inputs, NUM_TRAIN_STEPS * float(sigmas[i]), guidance)
        x = x + float(sigmas[i + 1] - sigmas[i]) * v
    return x


# ---------------------------------------------------------------------------------------------------------
# The teacher's weights


@dataclass(frozen=True)
class Teacher:
    dit: CausalDiT
    cfg: ModelConfig  # the preset the teacher works in, with its DiT's shape
    shift: float  # the flow-matching shift it was trained with
    manifest: dict


def manifest_path(weights: Path) -> Path:
    """`<name>.json` beside `<name>.safetensors`, else the folder's `manifest.json`."""
    own = weights.with_suffix(".json")
    return own if own.exists() else weights.parent / "manifest.json"


def weights_preset(weights: str | Path, default: str | None = "tiny") -> tuple[str, dict]:
    """The preset DiT weights were trained in, from the manifest beside them (`manifest_path`: the teacher's and
    each student stage's name theirs under "preset", `tiny` when they name none), and that manifest. Without a
    manifest: `default`, with an empty one, or FileNotFoundError when `default` is None."""
    weights = Path(weights)
    path = manifest_path(weights)
    if not path.exists():
        if default is None:
            raise FileNotFoundError(f"no manifest beside {weights} (looked for {weights.with_suffix('.json').name} "
                                    "and manifest.json)")
        return default, {}
    manifest = json.loads(path.read_text())
    return manifest.get("preset", "tiny"), manifest


def load_teacher(weights: str | Path) -> Teacher:
    """A teacher checkpoint: a safetensors state dict of `CausalDiT` (keys with or without the official
    "model." prefix) and a JSON manifest beside it naming its preset ("preset", default "tiny"), any DiT
    fields that differ from the preset's ("dit": {...}) and its shift ("shift", default the preset's)."""
    weights = Path(weights)
    preset, manifest = weights_preset(weights, default=None)
    base = get_preset(preset)
    cfg = replace(base, dit=replace(base.dit, **manifest.get("dit", {})))
    dit = CausalDiT(cfg.dit)
    sd = read_state_dict(weights)
    prefix = DIT_PREFIX if all(k.startswith(DIT_PREFIX) for k in sd) else ""
    load_strict(dit, sd, source=str(weights), prefix=prefix)
    dit.eval().requires_grad_(False)
    return Teacher(dit, cfg, float(manifest.get("shift", base.shot.shift)), manifest)


# ---------------------------------------------------------------------------------------------------------
# A story, shot by shot


@torch.no_grad()
def encode_prompt(bundle: ModelBundle, text: str) -> Tensor:
    """(L, text_dim) embeddings of a full prompt by the shipped text encoder."""
    return bundle.text_encoder(torch.from_numpy(bundle.tokenizer.encode(text)))[0]


class TeacherStory:
    """One story generated by a teacher: `shot(caption)` returns the next shot's frames (81, H, W, 3) uint8."""

    def __init__(self, teacher: Teacher, bundle: ModelBundle, global_caption: str, seed: int, *, steps: int,
                 guidance: float):
        if teacher.cfg.latent_shape != bundle.cfg.latent_shape or teacher.cfg.dit.text_dim != bundle.cfg.text.dim:
            raise ValueError(f"the teacher reads latents {teacher.cfg.latent_shape} and text of width "
                             f"{teacher.cfg.dit.text_dim}; the VAE and text encoder give {bundle.cfg.latent_shape} "
                             f"and {bundle.cfg.text.dim}")
        self.teacher, self.bundle, self.cfg = teacher, bundle, teacher.cfg
        self.global_caption, self.steps, self.guidance = global_caption, steps, guidance
        self.generator = torch.Generator().manual_seed(seed)
        self.nextshot = NextShot(self.cfg)
        self.captions: list[Tensor] = []  # embeddings of the full prompts of shots 0..k
        self.history: list[np.ndarray] = []  # decoded frames of the shots generated so far

    def next_inputs(self, caption: str) -> NextShotInputs:
        """The inputs of the next shot, with `caption` (nothing is kept)."""
        prompt = shot_prompt(self.global_caption, len(self.history), caption)
        captions = torch.stack(self.captions + [encode_prompt(self.bundle, prompt)])
        layout = self.nextshot.layout([len(h) for h in self.history])
        picked = None
        if layout.plan:
            frames = np.stack([self.history[shot][i] for shot, i in layout.plan])  # (len(plan), H, W, 3)
            with torch.no_grad():
                picked = self.bundle.vae.encode_frames(to_unit(frames))  # each frame alone, as the runtime encodes
        return shot_inputs(self.nextshot, layout, captions, picked)

    def shot(self, caption: str) -> np.ndarray:
        inputs = self.next_inputs(caption)
        z = sample_latents(self.teacher.dit, self.nextshot, inputs, steps=self.steps, guidance=self.guidance,
                           shift=self.teacher.shift, generator=self.generator)
        frames = decode_latents(self.bundle.vae, z, self.cfg.shot.latent_frames_per_chunk)
        self.captions.append(inputs.text.table[inputs.text.index[0, -1]])  # the shot's own frames read its caption
        self.history.append(frames)
        return frames
