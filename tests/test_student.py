"""The causal student's stages: the rollout is the runtime's chunk loop, the teacher's path passes through the
student's steps, DMD's gradient is the spec's, and each stage trains, resumes and leaves weights."""
from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from distill import shards
from distill.nextshot import FrameText
from distill.runs import device_noise
from distill.sampling import euler_sigmas
from distill.student import (Geometry, StageRecipe, StudentRecipe, chunk_growth, dmd_generator_loss, ode_levels,
                             rollout, student_x0, teacher_x0, train)
from runtime.config import get_preset
from runtime.dit import init_weights, timestep_frequencies
from runtime.model import build_dit
from runtime.weights import DIT_PREFIX, save_module, sha256_file

# The patch-2 grid: the stages' code is the same on every geometry of the tiny family, and 16 tokens a frame train
# in a quarter of the shipped grid's time (the documented commands run the stages on the shipped grid, tiny-p1).
PRESET = "tiny-p2"
CFG = get_preset(PRESET)


@pytest.fixture(scope="module")
def geo():
    return Geometry(CFG, CFG.shot.shift, "cpu", autocast=False)


@pytest.fixture(scope="module")
def model():
    return init_weights(build_dit(CFG), 4).eval()


def _shot_inputs(geo, k: int = 1, seed: int = 0):
    """Inputs of shot k of a one-sample batch: random context latents, captions 0..k, RoPE with the indicator."""
    g = torch.Generator().manual_seed(seed)
    lay = geo.ns.layout([CFG.frames_per_shot] * k)
    context = torch.randn((1, geo.n_ctx, *CFG.latent_shape), generator=g)
    captions = torch.randn((k + 1, CFG.text.text_len, CFG.text.dim), generator=g)
    text = FrameText(captions, torch.tensor([lay.captions]))
    cos, sin = geo.ns.rope(lay.flags)
    return context, text, cos, sin


def test_the_teachers_path_passes_through_the_students_steps(geo):
    sig, keep = geo.trajectory_sigmas(50)
    np.testing.assert_allclose(sig, euler_sigmas(50, geo.shift), atol=1e-12)  # the official 50-step path
    assert keep == [0, 13, 25, 37]
    sig, keep = geo.trajectory_sigmas(20)
    assert len(sig) == 21 and sig[-1] == 0 and np.all(np.diff(sig) < 0)
    np.testing.assert_allclose(sig[keep], geo.step_sigma, atol=1e-12)
    with pytest.raises(ValueError, match="at least 4"):
        geo.trajectory_sigmas(3)


def test_the_rollout_is_the_runtimes_chunk_loop(geo, model):
    """Four steps per chunk, renoised between steps, the clean pass writing the local cache: the same chunks as
    the runtime's cached loop (cross_kv, context_fill + chunk_step), given the same noise draws."""
    context, text, cos, sin = _shot_inputs(geo)
    gen = torch.Generator().manual_seed(7)
    start = gen.get_state()
    with torch.no_grad():
        x_hat = rollout(model, geo, context, text, cos, sin, exit_step=3, gen=gen, grad=False)

    gen.set_state(start)
    tpf, fc = geo.tpf, geo.fc
    d = CFG.dit

    def tf(t, n):
        return torch.from_numpy(timestep_frequencies(np.full((1, n), t), d.freq_dim))
    outs = []
    with torch.no_grad():
        ck, cv = model.cross_kv(text.table)  # each caption once, as the story projects them
        index = text.index[0]
        gk, gv = model.context_fill(context, tf(0.0, geo.n_ctx), ck, cv, index[:geo.n_ctx], cos[:geo.n_ctx * tpf],
                                    sin[:geo.n_ctx * tpf])
        kk, vv = [gk], [gv]
        for c in range(geo.chunks):
            first = geo.n_ctx + fc * c
            rows = slice(first * tpf, (first + fc) * tpf)
            own = int(index[first])
            args = (ck[own], cv[own], cos[rows], sin[rows], torch.cat(kk), torch.cat(vv))
            x = device_noise((1, fc, *CFG.latent_shape), gen, "cpu")
            for i, (t, sigma) in enumerate(zip(geo.step_t, geo.step_sigma)):
                v, _, _ = model.chunk_step(x, tf(t, fc), *args)
                x0 = x - sigma * v
                if i < 3:
                    s = geo.step_sigma[i + 1]
                    x = (1 - s) * x0 + s * device_noise(x0.shape, gen, "cpu")
            _, k, v_clean = model.chunk_step(x0, tf(0.0, fc), *args)  # the clean pass
            kk.append(k)
            vv.append(v_clean)
            outs.append(x0)
    torch.testing.assert_close(x_hat, torch.cat(outs, 1), atol=1e-4, rtol=1e-4)


def test_a_rollout_from_a_given_past_reads_those_chunks_instead_of_its_own(geo, model):
    context, text, cos, sin = _shot_inputs(geo)
    with torch.no_grad():
        own = rollout(model, geo, context, text, cos, sin, 3, torch.Generator().manual_seed(7), grad=False)
        # its own outputs as the given past: the same rollout, chunk for chunk
        again = rollout(model, geo, context, text, cos, sin, 3, torch.Generator().manual_seed(7), grad=False,
                        past=own)
        other = rollout(model, geo, context, text, cos, sin, 3, torch.Generator().manual_seed(7), grad=False,
                        past=torch.randn_like(own))
    torch.testing.assert_close(again, own)
    fc = geo.fc
    torch.testing.assert_close(other[:, :fc], own[:, :fc])  # the first chunk reads only the context
    assert (other[:, fc:] - own[:, fc:]).abs().mean() > 1e-3


def test_only_the_exit_step_carries_gradient(geo, model):
    context, text, cos, sin = _shot_inputs(geo, k=0)
    m = init_weights(build_dit(CFG), 4).train()
    x_hat = rollout(m, geo, context, text, cos, sin, exit_step=2, gen=torch.Generator().manual_seed(1), grad=True)
    assert x_hat.requires_grad
    with torch.no_grad():
        again = rollout(m, geo, context, text, cos, sin, exit_step=2, gen=torch.Generator().manual_seed(1), grad=False)
    torch.testing.assert_close(x_hat.detach(), again)  # the gradient changes nothing of the numbers


def test_the_rollouts_gradient_is_that_of_the_whole_masked_sequence(geo):
    """The rollout reads keys grown a chunk at a time; its output and the network's gradient are those of the
    plain definition: every step x0 of [context ; clean chunks ; the chunk] under the block mask (student_x0),
    the exit step with gradient (through every earlier frame's keys too)."""
    context, text, cos, sin = _shot_inputs(geo, k=1)
    m = init_weights(build_dit(CFG), 5).train()
    weights = torch.randn((1, geo.chunks * geo.fc, *CFG.latent_shape), generator=torch.Generator().manual_seed(6))

    def plain(gen: torch.Generator) -> torch.Tensor:
        clean = []
        for c in range(geo.chunks):
            n = geo.n_ctx + geo.fc * (c + 1)
            args = (text.frames(n), cos[:n * geo.tpf], sin[:n * geo.tpf], geo.masks[c])
            x = device_noise((1, geo.fc, *CFG.latent_shape), gen, "cpu")
            for i in range(3):
                t = np.zeros((1, n))
                t[:, -geo.fc:] = geo.step_t[i]
                with torch.set_grad_enabled(i == 2):
                    x0 = student_x0(m, geo, torch.cat([context, *[y.detach() for y in clean], x], 1), t, *args)
                x0 = x0[:, -geo.fc:]
                if i < 2:
                    x = (1 - geo.step_sigma[i + 1]) * x0 + geo.step_sigma[i + 1] * device_noise(x0.shape, gen, "cpu")
            clean.append(x0)
        return torch.cat(clean, 1)

    grads = []
    for make in (lambda gen: rollout(m, geo, context, text, cos, sin, exit_step=2, gen=gen, grad=True), plain):
        m.zero_grad()
        x_hat = make(torch.Generator().manual_seed(1))
        (x_hat * weights).sum().backward()
        grads.append((x_hat.detach(), {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}))
    (ours, ours_grad), (ref, ref_grad) = grads
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    assert ours_grad.keys() == ref_grad.keys() and len(ref_grad) > 10
    assert ref_grad["blocks.0.self_attn.k.weight"].abs().sum() > 0  # earlier frames' keys do take gradient
    for k in ref_grad:  # float32 sums in another order: to 1e-5 of each gradient's largest entry (up to ~100)
        assert (ours_grad[k] - ref_grad[k]).abs().max() <= 1e-5 * ref_grad[k].abs().max(), k


def test_the_generators_gradient_is_dmds(geo, model):
    """dL/dx_hat = g / N with g = (fake - real) / mean|x_hat - real| (real: teacher with guidance; fake: critic)."""
    context, text, cos, sin = _shot_inputs(geo, k=1)
    critic = init_weights(build_dit(CFG), 9).eval()
    x_hat = torch.randn((1, 21, *CFG.latent_shape), generator=torch.Generator().manual_seed(2)).requires_grad_()
    gen = torch.Generator().manual_seed(3)
    start = gen.get_state()
    dmd_generator_loss(x_hat, model, critic, geo, context, text, cos, sin, 2.0, gen).backward()
    gen.set_state(start)
    with torch.no_grad():
        sigma = geo.dmd_sigma(1, gen)
        s = sigma.view(1, 1, 1, 1, 1)
        x_t = (1 - s) * x_hat + s * device_noise(x_hat.shape, gen, "cpu")
        real = teacher_x0(model, geo, x_t, sigma, context, text, cos, sin, 2.0)
        fake = teacher_x0(critic, geo, x_t, sigma, context, text, cos, sin, 1.0)
        g = (fake - real) / (x_hat - real).abs().mean()
    assert 0.02 - 1e-6 <= float(sigma) <= 0.98 + 1e-6
    torch.testing.assert_close(x_hat.grad, g / x_hat.numel(), atol=1e-9, rtol=1e-4)


# -- the stages through `train` ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Shots data of three stories and a (random) teacher's weights."""
    root = tmp_path_factory.mktemp("student")
    shards.prepare(root / "shots", kind="shots", seed=5, stories=3, shard_stories=3, workers=1)
    teacher = root / "teacher.safetensors"
    save_module(init_weights(build_dit(CFG), 1), teacher, prefix=DIT_PREFIX, dtype=torch.float16)
    return root, shards.load(root / "shots"), teacher


def _recipe(**stages) -> StudentRecipe:
    return StudentRecipe(seed=2, stages=stages, preset=PRESET)


def test_the_ode_draw_with_a_clean_prefix_gives_one_noisy_chunk_the_runtimes_clean_past(geo):
    official = ode_levels(geo, 4000, torch.Generator().manual_seed(0))
    assert official.shape == (4000, geo.chunks) and set(official.unique().tolist()) == {0, 1, 2, 3, 4}
    # the same stream as before the option existed: a share of 0 draws nothing more
    again = ode_levels(geo, 4000, torch.Generator().manual_seed(0), 0.0)
    assert torch.equal(official, again)
    clean_past = lambda lv: [bool((row[:c] == 4).all()) for row in lv.numpy() for c in range(geo.chunks) if row[c] < 4]
    every = ode_levels(geo, 4000, torch.Generator().manual_seed(0), 1.0)
    # every sample has a noisy chunk whose earlier blocks are all clean, and that chunk starts anywhere
    firsts = [next(c for c in range(geo.chunks) if row[c] < 4 and (row[:c] == 4).all()) for row in every.numpy()]
    assert np.bincount(firsts, minlength=geo.chunks).min() > 4000 / geo.chunks * 0.8
    # far more noisy chunks read an all-clean past than under the official draw
    assert np.mean(clean_past(every)) > 1.5 * np.mean(clean_past(official))
    half = ode_levels(geo, 4000, torch.Generator().manual_seed(1), 0.5)
    assert np.mean(clean_past(official)) < np.mean(clean_past(half)) < np.mean(clean_past(every))


def test_the_ode_regression_from_a_later_step_asks_nothing_of_the_blocks_drawn_before_it(geo, model):
    """With `regress_from` 1, no block is asked its x0 from pure noise: changing the target of the blocks drawn at
    level 0 leaves the loss as it was (with 0 it does not), and every clean-prefix chunk is drawn from step 1 on."""
    from distill.student import ode_loss

    g = torch.Generator().manual_seed(0)
    context, text, cos, sin = _shot_inputs(geo)
    b = 6
    traj = torch.randn((b, 5, geo.chunks * geo.fc, *CFG.latent_shape), generator=g)
    batch = context.expand(b, -1, -1, -1, -1), FrameText(text.table, text.index.expand(b, -1)), cos, sin
    levels = ode_levels(geo, b, torch.Generator().manual_seed(1), 1.0, 1).repeat_interleave(geo.fc, 1)
    assert (levels == 0).any() and (levels == 1).any()  # blocks after the drawn chunk keep every level
    firsts = [next(c for c in range(geo.chunks) if row[c] < 4) for row in levels[:, ::geo.fc].numpy()]
    assert all(levels[i, c * geo.fc] >= 1 for i, c in enumerate(firsts))
    moved = traj.clone()
    moved[:, -1][levels == 0] += 3.0  # the x0 of the frames drawn at level 0 (only a target there)

    def loss(t, first):
        with torch.no_grad():
            return float(ode_loss(model, geo, t, *batch, torch.Generator().manual_seed(1), 1.0, first))
    assert loss(moved, 1) == pytest.approx(loss(traj, 1), rel=1e-6)
    levels0 = ode_levels(geo, b, torch.Generator().manual_seed(1), 1.0, 0).repeat_interleave(geo.fc, 1)
    moved0 = traj.clone()
    moved0[:, -1][levels0 == 0] += 3.0
    assert loss(moved0, 0) > loss(traj, 0) + 0.3  # measured: 2.85 -> 3.79
    with pytest.raises(ValueError, match="regress_from"):
        loss(traj, 4)


def test_the_ode_stage_fits_the_teachers_trajectories_and_resumes(run, tmp_path):
    root, shots, teacher = run
    ode = StageRecipe(steps=20, batch=2, lr=1e-3, warmup=2, pairs=4, pair_batch=4, teacher_steps=4)
    entry = train(_recipe(ode=ode), "ode", shots, teacher, tmp_path / "ode")
    assert entry["complete"] and entry["steps"] == 20 and entry["stage"] == "ode"
    log = [json.loads(line) for line in (tmp_path / "ode" / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 10, 20]  # the first step, then every 10
    first, last = log[0]["ode_loss"], log[-1]["ode_loss"]
    assert last < 0.5 * first, (first, last)  # measured: 0.42 -> 0.13
    manifest = json.loads((tmp_path / "ode" / "manifest.json").read_text())
    assert manifest["sha256"] == entry["sha256"] and manifest["teacher"] == str(teacher)
    assert manifest["teacher_sha256"] == sha256_file(teacher)  # the teacher it learnt from, by digest
    rates = manifest["throughput"]  # every step's samples, timed between host syncs
    assert rates["steps"] == 20 and rates["samples"] == 20 * ode.batch
    assert rates["samples_per_s"] == pytest.approx(rates["samples"] / rates["seconds"], rel=1e-2)
    assert 0 < rates["of_peak"] < 1

    short = replace(ode, steps=4)  # the resume on a shorter run: stopped after 2 steps, then run to its end
    part = train(_recipe(ode=short), "ode", shots, teacher, tmp_path / "split", max_steps=2)
    assert not part["complete"] and part["steps"] == 2
    other = tmp_path / "other.safetensors"  # a resume keeps the teacher and the start the run began with
    save_module(init_weights(build_dit(CFG), 2), other, prefix=DIT_PREFIX, dtype=torch.float16)
    with pytest.raises(ValueError, match="another teacher"):
        train(_recipe(ode=short), "ode", shots, other, tmp_path / "split")
    with pytest.raises(ValueError, match="started from"):
        train(_recipe(ode=short), "ode", shots, teacher, tmp_path / "split", init=other)
    done = train(_recipe(ode=short), "ode", shots, teacher, tmp_path / "split")
    assert done["steps"] == 4 and done["init"] is None and done["teacher_sha256"] == sha256_file(teacher)
    assert [c["steps"] for c in entry["calls"]] == [[0, 20]]
    first, second = done["calls"]  # a line per call that trained, where it ran; the two refused calls add none
    assert first["steps"] == [0, 2] and second["steps"] == [2, 4] and first["samples"] + second["samples"] == 8
    assert first["device"] == second["device"] == done["device"] and first["began"] <= second["began"]


def test_the_dmd_stages_update_the_student_from_its_own_rollouts(run, tmp_path):
    from safetensors.torch import load_file

    root, shots, teacher = run
    dmd = StageRecipe(steps=1, batch=1, lr=1e-3, warmup=1, critic_lr=1e-3, critic_steps=1)
    long = StageRecipe(steps=1, batch=1, lr=1e-3, warmup=1, critic_lr=1e-3, critic_steps=1, shots=2)
    recipe = _recipe(dmd=dmd, **{"dmd-long": long})
    a = train(recipe, "dmd", shots, teacher, tmp_path / "dmd")
    b = train(recipe, "dmd-long", shots, teacher, tmp_path / "long", init=tmp_path / "dmd" / "student.safetensors")
    assert a["complete"] and b["complete"] and b["init"].endswith("student.safetensors")
    assert b["init_sha256"] == a["sha256"] and a["init_sha256"] is None  # the weights it started from, by digest
    assert a["throughput"]["samples"] == 1 and a["throughput"]["of_peak"] is None  # DMD's FLOPs not counted
    before, after = load_file(teacher), load_file(tmp_path / "long" / "student.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the generator moved
    row = json.loads((tmp_path / "long" / "loss.jsonl").read_text().splitlines()[0])
    assert np.isfinite(row["dmd_loss"]) and np.isfinite(row["critic_loss"])
    from PIL import Image

    from distill.plots import student_loss_curve

    with Image.open(student_loss_curve(tmp_path / "long" / "loss.jsonl", tmp_path / "loss.png")) as image:
        assert image.size == (720, 360)


def test_the_dmd_stage_adds_the_ode_regression_on_teacher_trajectories_with_its_weight(run, tmp_path):
    """With guidance 1 and a critic that is still the teacher's copy, DMD's gradient is 0: without the regression
    the student only decays (its weights a multiple of the start's); with `ode_weight` the trajectories, sampled
    once and kept beside the checkpoint, move it."""
    root, shots, teacher = run
    sr = StageRecipe(steps=2, batch=2, lr=1e-3, warmup=1, critic_lr=1e-3, critic_steps=0, guidance=1.0, pairs=3,
                     pair_batch=3, teacher_steps=4, clean_prefix=1.0)
    from safetensors.torch import load_file

    began = torch.cat([v.double().flatten() for k, v in sorted(load_file(teacher).items())])

    def moved(out):
        ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
        return torch.cat([ckpt["student"][k[len(DIT_PREFIX):]].double().flatten()
                          for k in sorted(load_file(teacher))])

    def off_the_line(w):  # what is left of w after its best multiple of the start
        return float((w - (w @ began) / (began @ began) * began).norm() / w.norm())

    train(_recipe(dmd=sr), "dmd", shots, teacher, tmp_path / "plain")
    assert not (tmp_path / "plain" / "pairs.pt").exists()
    assert off_the_line(moved(tmp_path / "plain")) < 1e-6
    entry = train(_recipe(dmd=replace(sr, ode_weight=0.5)), "dmd", shots, teacher, tmp_path / "reg")
    assert off_the_line(moved(tmp_path / "reg")) > 1e-4
    assert len(torch.load(tmp_path / "reg" / "pairs.pt", weights_only=False)["traj"]) == 3
    assert entry["trajectory_seconds"] > 0 and entry["recipe"]["ode_weight"] == 0.5
    row = json.loads((tmp_path / "reg" / "loss.jsonl").read_text().splitlines()[0])
    assert np.isfinite(row["ode_loss"]) and row["ode_loss"] > 0 and row["dmd_loss"] == 0


@pytest.mark.parametrize("stage", ["dmd", "dmd-long"])
def test_the_critic_warms_up_alone_once_before_the_first_generator_step(run, tmp_path, stage):
    """`critic_warmup` updates move the critic and leave the student as it started; they are counted in the
    checkpoint, so the run that goes on from it trains the generator without warming the critic again."""
    from safetensors.torch import load_file

    root, shots, teacher = run
    sr = StageRecipe(steps=1, batch=1, lr=1e-3, warmup=1, critic_lr=1e-3, critic_steps=1, critic_warmup=2, shots=2)
    recipe = _recipe(**{stage: sr})
    out = tmp_path / stage
    train(recipe, stage, shots, teacher, out, max_steps=0)
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    started = {k[len(DIT_PREFIX):]: v for k, v in load_file(teacher).items()}
    assert ckpt["state"]["critic_warmed"] == 2 and ckpt["state"]["step"] == 0 and ckpt["state"]["seconds"] > 0
    assert all(torch.equal(ckpt["student"][k], started[k].to(ckpt["student"][k].dtype)) for k in started)
    assert any(not torch.equal(ckpt["critic"][k], started[k].to(ckpt["critic"][k].dtype)) for k in started)
    critic = ckpt["critic"]
    entry = train(recipe, stage, shots, teacher, out)
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    assert entry["complete"] and ckpt["state"]["critic_warmed"] == 2 and ckpt["state"]["step"] == 1
    assert any(not torch.equal(ckpt["critic"][k], critic[k]) for k in critic)  # the generator step's own critic update
    row = json.loads((out / "loss.jsonl").read_text().splitlines()[0])
    assert np.isfinite(row["x_hat_growth"]) and row["x_hat_growth"] > 0


def test_chunk_growth_is_the_last_chunks_spread_over_the_firsts(geo):
    g = torch.Generator().manual_seed(0)
    x = torch.randn((2, 21, *CFG.latent_shape), generator=g)
    assert chunk_growth(x, geo.fc).item() == pytest.approx(1.0, abs=0.05)  # the same spread throughout
    grown = x * torch.linspace(1.0, 1.5, 21).view(1, 21, 1, 1, 1)
    assert chunk_growth(grown, geo.fc).item() == pytest.approx(1.475 / 1.025, rel=0.03)  # frames 18-20 over 0-2


def test_seams_are_read_between_chunks_and_groups_inside_them():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "build"))
    from chunk_spread import seam_group

    steps = torch.tensor([2.0 if (f + 1) % 3 == 0 else 0.5 for f in range(20)])  # a jump after every third frame
    x = torch.cat([torch.zeros(1), steps.cumsum(0)]).view(1, 21, 1, 1, 1).expand(2, 21, 2, 2, 2)
    assert seam_group(x, 3) == (2.0, 0.5)
    # forced: each chunk's first frame against the given past's frame before it
    before = x + 1.0
    assert seam_group(x, 3, before=before) == (1.0, 0.5)


def test_the_chunk_spread_script_reads_the_data_a_student_and_a_teacher_on_the_same_shots(run, tmp_path):
    import cli_runner

    root, shots, teacher = run
    script = Path(__file__).resolve().parents[1] / "build" / "chunk_spread.py"
    out = cli_runner.run([sys.executable, script, "--data", root, "--student", teacher, "--teacher", teacher,
                          "--preset", PRESET, "--shots", 2, "--json", tmp_path / "s.json"], timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = json.loads((tmp_path / "s.json").read_text())["lines"]
    assert [line["source"].split()[0] for line in lines] == ["data", "student", "teacher"]
    assert all(len(line["spread"]) == CFG.shot.chunks_per_shot and line["growth"] > 0 for line in lines)
    assert all(line["seam"] > 0 and line["group"] > 0 for line in lines)
    assert lines[1]["forced_seam"] > 0 and "forced_seam" not in lines[0] and "forced_seam" not in lines[2]
    # other noise moves a forced rollout; another shot's past is measured from that past and from the shot's own
    assert all(lines[1][k] > 0 for k in ("draw_spread", "other_seam", "other_from_own"))
    data = shards.load(root / "shots")["latents"]  # the data's line is its own latents' spread
    first_chunk = [data[i, f].astype(np.float32).std() for i in (0, len(data) - 1) for f in range(3)]
    assert lines[0]["spread"][0] == pytest.approx(float(np.mean(first_chunk)), abs=2e-3)
    missing = cli_runner.run([sys.executable, script, "--data", tmp_path], timeout=120)
    assert missing.returncode != 0 and "no shots data" in missing.stderr


def test_a_regression_without_trajectories_is_refused_when_the_recipe_is_read():
    with pytest.raises(ValueError, match="needs pairs >= 1"):
        StageRecipe(steps=1, batch=1, lr=1e-3, ode_weight=0.5)
    with pytest.raises(ValueError, match="ode_weight must be at least 0"):
        StageRecipe(steps=1, batch=1, lr=1e-3, ode_weight=-0.5, pairs=4)
    assert StageRecipe(steps=1, batch=1, lr=1e-3, ode_weight=0.5, pairs=4).ode_weight == 0.5


def test_a_regression_step_the_preset_does_not_have_is_refused_when_the_recipe_is_read(tmp_path):
    def recipe(first: int):
        path = tmp_path / f"r{first}.toml"
        path.write_text(f'[student]\npreset = "{PRESET}"\n[student.dmd]\nsteps = 1\nbatch = 1\nlr = 1e-4\n'
                        f"regress_from = {first}\n")
        return StudentRecipe.from_toml(path)
    with pytest.raises(ValueError, match=r"student.dmd\]: regress_from must be one of the student's steps 0..3"):
        recipe(4)
    with pytest.raises(ValueError, match="regress_from"):
        recipe(-1)
    assert recipe(3).stage("dmd").regress_from == 3


def test_a_recipe_without_the_stage_is_refused(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text("[student]\nseed = 1\n[student.ode]\nsteps = 1\nbatch = 1\nlr = 1e-4\n")
    recipe = StudentRecipe.from_toml(path)
    with pytest.raises(ValueError, match="student.dmd_long"):
        recipe.stage("dmd-long")
    with pytest.raises(ValueError, match="stage must be one of"):
        train(recipe, "distill", {}, path, tmp_path / "x")


def test_the_train_command_refuses_weights_of_another_geometry_before_any_data_work(tmp_path, monkeypatch, capsys):
    """A patch-2 teacher named for a patch-1 stage (or the reverse, or such an --init) is refused in one message that
    names the committed teacher of the stage's preset, before any shard is written; without --teacher the stage
    distils the committed teacher of its own preset."""
    from shotstream.cli import main

    weights = Path(__file__).parents[1] / "distill" / "weights"
    recipe, data = str(Path(__file__).parent / "data" / "teacher_smoke.toml"), tmp_path / "data"  # preset tiny-p2
    base = ["train", "ode", "--recipe", recipe, "--data", str(data), "--out", str(tmp_path / "ode")]
    assert main([*base, "--preset", "tiny-p1", "--teacher", str(weights / "teacher-tiny.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "--teacher: not a DiT of preset tiny-p1" in err and "patch_embedding.weight [256, 32, 1, 2, 2]" in err
    assert "distill/weights/teacher-tiny-p1b.safetensors" in err
    assert main([*base, "--teacher", str(weights / "teacher-tiny.safetensors"),
                 "--init", str(weights / "student-tiny-p1-ode.safetensors")]) == 2
    assert "--init: not a DiT of preset tiny-p2" in capsys.readouterr().err
    assert main(["train", "teacher", "--recipe", recipe, "--data", str(data), "--out", str(tmp_path / "t"),
                 "--init", str(weights / "teacher-tiny-p1b.safetensors")]) == 2
    assert "--init: not a DiT of preset tiny-p2" in capsys.readouterr().err
    assert not data.exists() and not (tmp_path / "ode").exists()
    monkeypatch.chdir(tmp_path)  # the defaults are paths in the repository: not here, and the error names them
    for preset, teacher in (("tiny-p1", "teacher-tiny-p1b"), ("tiny-p2", "teacher-tiny")):
        assert main([*base, "--preset", preset]) == 2
        assert f"no teacher weights at distill/weights/{teacher}.safetensors" in capsys.readouterr().err


COMMITTED_STUDENTS = sorted((Path(__file__).parents[1] / "distill" / "weights").glob("student-*.safetensors"))


@pytest.mark.parametrize("weights", COMMITTED_STUDENTS, ids=lambda p: p.stem)
def test_every_committed_student_matches_its_manifest_and_loads_in_its_preset(weights):
    """A committed student is its manifest's bytes, loads strictly into the DiT of the preset the manifest names
    (patch 1 and patch 2 differ in their patch embedding, so a wrong name fails here), and records its teacher by
    digest, its stage, steps, wall time, device and eval row."""
    from distill.sampling import weights_preset
    from runtime.weights import load_strict, read_state_dict

    preset, manifest = weights_preset(weights, default=None)
    assert sha256_file(weights) == manifest["sha256"] and manifest["complete"]
    load_strict(build_dit(get_preset(preset)), read_state_dict(weights), source=str(weights), prefix=DIT_PREFIX)
    teacher = Path(__file__).parents[1] / manifest["teacher"]
    assert sha256_file(teacher) == manifest["teacher_sha256"]
    assert {"stage", "steps", "wall_seconds", "device", "eval"} <= set(manifest)
