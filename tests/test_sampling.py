"""The teacher's sampler (distill/sampling.py) on real, small, randomly initialised DiT weights."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from distill.nextshot import NextShot
from distill.sampling import (Teacher, TeacherStory, encode_prompt, euler_sigmas, guided_velocity, load_teacher,
                              sample_latents, shot_inputs)
from runtime.config import get_preset
from runtime.dit import CausalDiT, init_weights, timestep_frequencies
from runtime.scheduler import FlowMatchScheduler
from runtime.weights import DIT_PREFIX, save_module

TINY = get_preset("tiny")
SMALL = replace(TINY, dit=replace(TINY.dit, dim=64, num_layers=2, num_heads=2, ffn_dim=128))
N_CTX, FRAMES = TINY.shot.context_frames, TINY.shot.latent_frames_per_shot


@pytest.fixture(scope="module")
def dit() -> CausalDiT:
    return init_weights(CausalDiT(SMALL.dit), seed=3).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def bundle():
    from runtime.model import load_bundle

    return load_bundle("tiny")


NEXT = NextShot(SMALL)


def _inputs(seed: int = 0):
    """A second shot's inputs: random context latents (from shot 0) and random caption embeddings."""
    gen = torch.Generator().manual_seed(seed)
    captions = torch.randn((2, SMALL.text.text_len, SMALL.dit.text_dim), generator=gen)
    picked = torch.randn((N_CTX, *SMALL.latent_shape), generator=gen)
    return shot_inputs(NEXT, NEXT.layout([81]), captions, picked)


def test_shot_inputs_place_the_context_and_route_the_captions_by_layout():
    gen = torch.Generator().manual_seed(0)
    captions = torch.randn((2, SMALL.text.text_len, SMALL.dit.text_dim), generator=gen)
    picked = torch.randn((N_CTX, *SMALL.latent_shape), generator=gen)
    second = shot_inputs(NEXT, NEXT.layout([81]), captions, picked)
    assert torch.equal(second.context, picked)
    text = second.text.dense()[0]  # the caption each frame reads
    assert torch.equal(text[:N_CTX], captions[0].expand(N_CTX, -1, -1))
    assert torch.equal(text[N_CTX:], captions[1].expand(FRAMES, -1, -1))
    first = shot_inputs(NEXT, NEXT.layout([]), captions[:1], None)
    assert not first.context.any() and torch.equal(first.text.dense()[0], captions[0].expand(N_CTX + FRAMES, -1, -1))
    assert second.cos.shape == ((N_CTX + FRAMES) * SMALL.tokens_per_frame, sum(SMALL.dit.rope_pairs))
    third = shot_inputs(NEXT, NEXT.layout([81, 81]), torch.cat([captions, captions[:1]]), picked)
    assert not torch.equal(third.cos, second.cos)  # the shot indicator: a third shot's frames carry flag 2


def test_euler_sigmas_fall_from_one_to_zero_warped_like_the_schedulers_table():
    assert np.allclose(euler_sigmas(4, 1.0), [1.0, 0.75, 0.5, 0.25, 0.0])
    sig = euler_sigmas(1000, 8.0)
    assert np.allclose(sig[:-1], FlowMatchScheduler(8.0).sigmas) and sig[-1] == 0.0
    few = euler_sigmas(5, 3.0)
    assert few[0] == 1.0 and np.all(np.diff(few) < 0) and few[1] > 0.8  # a shift > 1 spends steps at high noise
    with pytest.raises(ValueError):
        euler_sigmas(0, 8.0)


def _velocity(dit, x, inputs, text, t):
    """The model's velocity for x alone, one caption set, batch of one."""
    seq = torch.cat([inputs.context, x])[None]
    times = np.concatenate([np.zeros(N_CTX), np.full(len(x), t)])
    t_freq = torch.from_numpy(timestep_frequencies(times, dit.cfg.freq_dim))[None]
    return dit.forward_full(seq, t_freq, text[None], inputs.cos, inputs.sin, None)[0, N_CTX:]


@torch.no_grad()
def test_guidance_one_is_the_conditional_prediction_and_others_extrapolate_from_the_empty_caption(dit):
    inputs = _inputs()
    x = torch.randn((FRAMES, *SMALL.latent_shape), generator=torch.Generator().manual_seed(1))
    text = inputs.text.dense()[0]
    cond = _velocity(dit, x, inputs, text, 700.0)
    uncond = _velocity(dit, x, inputs, torch.zeros_like(text), 700.0)  # the zero caption of caption dropout
    assert (cond - uncond).abs().max() > 1e-3  # the caption matters to these weights
    torch.testing.assert_close(guided_velocity(dit, NEXT, x, inputs, 700.0, 1.0), cond)
    torch.testing.assert_close(guided_velocity(dit, NEXT, x, inputs, 700.0, 3.0), uncond + 3.0 * (cond - uncond),
                               rtol=1e-4, atol=1e-4)


@torch.no_grad()
def test_sampling_takes_n_euler_steps_at_the_warped_timesteps_with_clean_context(dit):
    inputs = _inputs()
    seen = []
    hook = dit.time_embedding.register_forward_hook(lambda m, args, out: seen.append(args[0].clone()))
    try:
        sample_latents(dit, NEXT, inputs, steps=5, guidance=2.0, shift=3.0, generator=torch.Generator().manual_seed(0))
    finally:
        hook.remove()
    assert len(seen) == 5
    zero = torch.from_numpy(timestep_frequencies(np.zeros(N_CTX), dit.cfg.freq_dim))
    for t_freq, sigma in zip(seen, euler_sigmas(5, 3.0)[:-1]):
        assert t_freq.shape == (2, N_CTX + FRAMES, dit.cfg.freq_dim)  # conditional and unconditional together
        want = torch.from_numpy(timestep_frequencies(np.full(FRAMES, 1000.0 * sigma), dit.cfg.freq_dim))
        torch.testing.assert_close(t_freq[0, :N_CTX], zero)
        torch.testing.assert_close(t_freq[1, N_CTX:], want)


@torch.no_grad()
def test_one_euler_step_moves_from_noise_along_the_velocity(dit):
    # With a single step x0 = eps - 1 * v(eps, t=1000): the sampler's output is the model's x0 guess.
    inputs = _inputs()
    out = sample_latents(dit, NEXT, inputs, steps=1, guidance=1.0, shift=8.0, generator=torch.Generator().manual_seed(5))
    eps = torch.randn((FRAMES, *SMALL.latent_shape), generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(out, eps - _velocity(dit, eps, inputs, inputs.text.dense()[0], 1000.0))


@torch.no_grad()
def test_sampling_is_deterministic_by_seed_and_shaped_like_a_shot(dit):
    inputs = _inputs()

    def run(seed):
        return sample_latents(dit, NEXT, inputs, steps=3, guidance=2.0, shift=8.0,
                              generator=torch.Generator().manual_seed(seed))

    a = run(11)
    assert a.shape == (FRAMES, *SMALL.latent_shape) and torch.isfinite(a).all()
    assert torch.equal(a, run(11)) and not torch.equal(a, run(12))


def test_a_teacher_story_conditions_each_shot_on_its_own_generated_shots(dit, bundle):
    teacher = Teacher(dit, SMALL, 8.0, {})
    story = TeacherStory(teacher, bundle, "starring a red knight. retro pixel art.", seed=4, steps=2, guidance=2.0)
    opening = story.next_inputs("wide shot, the red knight walks in the forest by day.")
    assert not opening.context.any()  # the first shot: zero context
    shot0 = story.shot("wide shot, the red knight walks in the forest by day.")
    assert shot0.shape == (81, 64, 64, 3) and shot0.dtype == np.uint8
    inputs = story.next_inputs("close up, the red knight waves in the castle.")
    second = encode_prompt(bundle, "starring a red knight. retro pixel art. shot2: close up, the red knight waves in "
                                   "the castle.")
    # One earlier shot: its frames 0, 16, 32, 48, 64 and 80, each encoded alone (spec's table for n = 1).
    picked = torch.from_numpy(shot0[[0, 16, 32, 48, 64, 80]]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    torch.testing.assert_close(inputs.context, bundle.vae.encode_frames(picked), rtol=1e-5, atol=1e-5)
    assert torch.equal(inputs.text.dense()[0][:N_CTX], story.captions[0].expand(N_CTX, -1, -1))  # context reads its shot's
    assert torch.equal(inputs.text.dense()[0][N_CTX:], second.expand(FRAMES, -1, -1))  # the new frames read shot 2's
    again = TeacherStory(teacher, bundle, "starring a red knight. retro pixel art.", seed=4, steps=2, guidance=2.0)
    assert np.array_equal(again.shot("wide shot, the red knight walks in the forest by day."), shot0)


def test_a_teacher_checkpoint_loads_with_the_shape_its_manifest_names(tmp_path, dit):
    path = tmp_path / "teacher.safetensors"
    save_module(dit, path, prefix=DIT_PREFIX)
    with pytest.raises(FileNotFoundError, match="no manifest"):
        load_teacher(path)
    fields = {"dim": 64, "num_layers": 2, "num_heads": 2, "ffn_dim": 128}
    (tmp_path / "teacher.json").write_text(json.dumps({"preset": "tiny", "dit": fields, "shift": 2.0}))
    teacher = load_teacher(path)
    assert teacher.shift == 2.0 and teacher.cfg.dit == SMALL.dit
    for (name, a), (_, b) in zip(teacher.dit.state_dict().items(), dit.state_dict().items()):
        assert torch.equal(a, b), name
