"""The official-style reference loop reproduces the runtime's shots frame for frame; the FLOP count adds up
by hand; the matmul peak is measured on both CPU backends."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import CAPTION, collect
from runtime.context import context_plan, flags_for_shot
from runtime.measure.flops import OPS, PHASES, dit_loop_flops, dit_loop_flops_breakdown, matmul_peak_gflops
from runtime.graphs import VaeDecodeChunkGraph
from runtime.measure.reference_loop import ReferenceLoop
from runtime.vae import FIRST_KEEP

SEED, CHUNKS = 11, 2
PROMPTS = ("the knight walks in the cave", "the dragon breathes fire at the knight")


def decode(engine, latents: np.ndarray) -> np.ndarray:
    """Latents (chunks * fc, C, h, w) -> uint8 frames, chunk by chunk with the VAE's causal state carried,
    the first FIRST_KEEP frames of chunk 0 dropped (as the story decodes)."""
    graph = VaeDecodeChunkGraph(engine.bundle.vae).eval()
    fc = engine.cfg.shot.latent_frames_per_chunk
    state = torch.zeros(engine.specs["vae_decode_chunk"].tensor("state").shape)
    out = []
    with torch.inference_mode():
        for b in range(len(latents) // fc):
            pixels, state = graph(torch.from_numpy(latents[b * fc:(b + 1) * fc]), state)
            out.append(pixels[FIRST_KEEP:] if b == 0 else pixels)
    return torch.cat(out).numpy().astype(np.uint8)


def assert_within_one_level(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert diff.max() <= 1, f"{int((diff > 1).sum())} values differ by more than one level (max {diff.max()})"


@pytest.fixture(scope="module")
def story_run(torch_engine):
    """Two shots of a story on the torch engine, and what the reference loop needs to redo them."""
    eng = torch_engine
    story = eng.open_story(seed=SEED, global_caption=CAPTION)
    texts = [eng.encode_text(story.check_prompt(p, k).text) for k, p in enumerate(PROMPTS)]
    frames = [collect(story.generate_shot(p, chunks=CHUNKS)) for p in PROMPTS]
    return story, texts, frames


def test_reference_loop_reproduces_a_storys_two_shots(torch_engine, story_run):
    eng, (story, texts, frames) = torch_engine, story_run
    cfg, ref = eng.cfg, ReferenceLoop(eng)
    n_ctx = cfg.shot.context_frames
    rng = np.random.Generator(np.random.PCG64(SEED))  # one generator across shots, as the story's
    first = ref.shot(np.zeros((n_ctx,) + cfg.latent_shape, np.float32), [0] * n_ctx, texts[:1], 1, rng, CHUNKS)
    assert first.shape == (CHUNKS * cfg.shot.latent_frames_per_chunk,) + cfg.latent_shape
    assert_within_one_level(decode(eng, first), frames[0])

    # Shot 1: context frames from shot 0 (latents as the story encoded them), flags by shot, two captions.
    plan = context_plan([story.history[0].length], n_ctx)
    flags, new_flag = flags_for_shot(plan, n_ctx)
    context = np.stack([story._latent(story.history[s], i) for s, i in plan])
    second = ref.shot(context, flags, texts, new_flag, rng, CHUNKS)
    assert_within_one_level(decode(eng, second), frames[1])


def test_a_wrong_shot_flag_is_not_within_one_level(torch_engine, story_run):
    """The comparison can fail: the same noise with the new frames at another RoPE phase drifts visibly."""
    eng, (_, texts, frames) = torch_engine, story_run
    n_ctx = eng.cfg.shot.context_frames
    latents = ReferenceLoop(eng).shot(np.zeros((n_ctx,) + eng.cfg.latent_shape, np.float32), [0] * n_ctx,
                                      texts[:1], 2, np.random.Generator(np.random.PCG64(SEED)), CHUNKS)
    diff = np.abs(decode(eng, latents).astype(np.int16) - frames[0].astype(np.int16))
    assert diff.max() > 1


def test_reference_loop_refuses_bad_geometry(torch_engine):
    cfg, ref = torch_engine.cfg, ReferenceLoop(torch_engine)
    n_ctx, text = cfg.shot.context_frames, np.zeros((cfg.text.text_len, cfg.dit.text_dim), np.float32)
    rng = np.random.Generator(np.random.PCG64(0))
    with pytest.raises(ValueError, match="context must be"):
        ref.shot(np.zeros((n_ctx - 1,) + cfg.latent_shape, np.float32), [0] * (n_ctx - 1), [text], 1, rng)
    with pytest.raises(ValueError, match="chunks must be"):
        ref.shot(np.zeros((n_ctx,) + cfg.latent_shape, np.float32), [0] * n_ctx, [text], 1, rng, chunks=0)


# -- FLOPs ------------------------------------------------------------------------------------------
def test_ffn_width_adds_exactly_its_two_linears_over_every_call(torch_engine):
    cfg, delta = torch_engine.cfg, 64
    wider = replace(cfg, dit=replace(cfg.dit, ffn_dim=cfg.dit.ffn_dim + delta))
    s, chunks = cfg.shot, 3
    for official, clean_passes in ((True, chunks), (False, chunks - 1)):  # the runtime cleans no last chunk
        calls_frames = s.context_frames + (chunks * s.num_steps + clean_passes) * s.latent_frames_per_chunk
        tokens = calls_frames * cfg.tokens_per_frame
        want = cfg.dit.num_layers * 2 * (2 * tokens * cfg.dit.dim * delta)
        assert dit_loop_flops(wider, chunks, official=official) - dit_loop_flops(cfg, chunks, official=official) == want


def test_each_context_caption_adds_its_text_projections(torch_engine):
    cfg = torch_engine.cfg
    d, length = cfg.dit, cfg.text.text_len
    one = 2 * length * d.text_dim * d.dim + 2 * length * d.dim * d.dim + d.num_layers * 2 * (2 * length * d.dim * d.dim)
    assert dit_loop_flops(cfg, context_captions=3) - dit_loop_flops(cfg, context_captions=1) == 2 * one


def test_flops_grow_with_chunks_and_faster_each_chunk(torch_engine):
    cfg = torch_engine.cfg
    totals = [dit_loop_flops(cfg, c) for c in range(1, cfg.shot.chunks_per_shot + 1)]
    steps = np.diff(totals)
    assert (steps > 0).all() and (np.diff(steps) > 0).all()  # later chunks attend to more keys
    assert dit_loop_flops(cfg) == totals[-1]


def test_breakdowns_add_up_to_the_total(torch_engine):
    cfg = torch_engine.cfg
    by_op, by_phase = dit_loop_flops_breakdown(cfg), dit_loop_flops_breakdown(cfg, by="phase")
    assert tuple(by_op) == OPS and tuple(by_phase) == PHASES
    assert sum(by_op.values()) == sum(by_phase.values()) == dit_loop_flops(cfg)
    official = dit_loop_flops_breakdown(cfg, by="phase", official=True)
    assert official["denoise"] == by_phase["denoise"] == cfg.shot.num_steps * official["clean_pass"]
    assert by_phase["clean_pass"] < official["clean_pass"]  # no pass for the last chunk


# -- matmul peak ------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_matmul_peak_is_a_positive_rate(backend):
    rate = matmul_peak_gflops(backend, n=128, seconds=0.05, threads=1)
    assert math.isfinite(rate) and rate > 0


def test_matmul_peak_refuses_an_unknown_backend():
    with pytest.raises(ValueError, match="backend"):
        matmul_peak_gflops("tensorrt", n=8, seconds=0.01)
