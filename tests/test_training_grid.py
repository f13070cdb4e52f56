"""The grid and model size compared on the image phase (distill/grid_compare.py): the geometry variants are
runtime presets that stream through the engine (patch 1 included, on both backends), a preset without shipped
DiT weights is refused unless random weights are asked for, and the comparison runs end to end on a few
rendered stories: equal samples per variant, the report's rows and columns, a contact sheet with a row per
reading, and the probe ranking the truth above an untrained DiT, which sits near chance."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from distill import shards
from distill.grid_compare import ATTRIBUTES, Comparison, compare
from distill.teacher import Phase, TeacherRecipe
from runtime import Engine
from runtime.config import get_preset
from runtime.errors import ComponentUnavailableError
from runtime.measure.bench import run_bench

RECIPE = TeacherRecipe(seed=0, checkpoint_every=1000, measure_peak=False, log_every=1,
                       phases=(Phase("image", "frames", steps=999, batch=99, lr=1e-3, warmup=100),))


def test_variants_differ_only_in_their_dit():
    tiny, p1, p2, wide = (get_preset(n) for n in ("tiny", "tiny-p1", "tiny-p2", "tiny-wide"))
    assert [v.tokens_per_frame for v in (tiny, p1, p2, wide)] == [64, 64, 16, 16]
    assert p1.dit == tiny.dit  # the shipped geometry, under the name its training runs record
    assert wide.dit.dim > p2.dit.dim and wide.dit.num_layers > p2.dit.num_layers
    for v in (p1, p2, wide):
        assert v.shares == "tiny" and (v.vae, v.text, v.shot, v.latent_shape) == (tiny.vae, tiny.text, tiny.shot,
                                                                                 tiny.latent_shape)


def test_a_variant_without_weights_is_refused_unless_random_weights_are_asked_for():
    with pytest.raises(ComponentUnavailableError, match="--random-weights"):
        Engine.load("tiny-p1", "torch")


@pytest.mark.parametrize("preset,backend", [("tiny-p1", "onnxruntime"), ("tiny-p1", "torch"), ("tiny-wide", "onnxruntime")])
def test_a_variant_streams_through_the_runtime_with_random_weights(preset, backend):
    engine = Engine.load(preset, backend, random_weights=True, seed=3)
    assert "random DiT weights" in engine.info.model and f"{engine.cfg.tokens_per_frame} tokens" in engine.info.model
    story = engine.open_story(seed=1, global_caption="a knight and a wizard, pixel art")
    try:
        chunks = [c.frames.copy() for c in story.generate_shot("the knight walks in the forest", chunks=2)]
    finally:
        story.close()
    frames = np.concatenate(chunks)
    assert frames.shape == (engine.cfg.shot_pixel_frames(2), 64, 64, 3) and frames.std() > 0


def test_the_bench_says_the_weights_it_timed_are_random():
    row = run_bench(Engine.load("tiny-p1", "onnxruntime", random_weights=True), shots=1, chunks=1)
    assert row["preset"] == "tiny-p1" and row["random_weights"] is True and "random DiT weights" in row["model"]


def test_first_frames_decode_in_batches_as_one_by_one():
    from distill.autoencoder import decode_first_frames, decode_latents
    from distill.shards import load_vae

    vae, z = load_vae(None), torch.randn(5, *get_preset("tiny").latent_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        one_by_one = np.concatenate([decode_latents(vae, latent[None]) for latent in z])
        batched = decode_first_frames(vae, z, batch=2)
    assert batched.shape == one_by_one.shape and np.abs(batched.astype(int) - one_by_one).max() <= 1


def test_equal_samples_are_whole_steps_of_one_batch():
    with pytest.raises(ValueError, match="multiple of the batch"):
        Comparison(("tiny-p2", "tiny-p1"), samples=10, batch=4)
    with pytest.raises(ValueError, match="once"):
        Comparison(("tiny-p2", "tiny-p2"), samples=8, batch=4)
    with pytest.raises(ValueError, match="unknown preset"):
        Comparison(("tiny-p2", "tiny-p3"), samples=8, batch=4)
    for bad, says in (("tiny-p1+ema=0.9", "setting=value"), ("tiny-p1+lr", "setting=value"),
                      ("tiny-p1+lr=1e-3+lr=2e-3", "each setting once"), ("tiny-p1+lr=-1", "positive"),
                      ("tiny-p1+shift=fast", "positive"), ("tiny-p3+lr=1e-3", "unknown preset")):
        with pytest.raises(ValueError, match=says):
            Comparison(("tiny-p2", bad), samples=8, batch=4)
    variant = "tiny-p1+lr=3e-3+shift=1"
    changed = Comparison(("tiny-p1", variant), samples=8, batch=4).recipe_for(RECIPE, variant)
    assert (changed.preset, changed.shift, changed.phases[0].lr, changed.phases[0].steps) == ("tiny-p1", 1.0, 3e-3, 2)
    with pytest.raises(ValueError, match="guidance"):
        Comparison(("tiny-p2", "tiny-p1"), samples=8, batch=4, guidance=(1.0, -1.0))
    with pytest.raises(ValueError, match="guidance"):
        Comparison(("tiny-p2", "tiny-p1"), samples=8, batch=4, guidance=(2.0, 2.0))
    cmp = Comparison(("tiny-p2", "tiny-p1", "tiny-wide"), samples=12, batch=4)
    recipes = [cmp.recipe_for(RECIPE, v) for v in cmp.variants]
    assert [r.preset for r in recipes] == list(cmp.variants)
    assert {(r.phases[0].steps, r.phases[0].batch, r.phases[0].lr, r.seed) for r in recipes} == {(3, 4, 1e-3, 0)}
    assert all(len(r.phases) == 1 and r.phases[0].data == "frames" and r.ema == 0.0 for r in recipes)


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid") / "frames"
    shards.prepare(root, kind="frames", seed=5, stories=2, shard_stories=2, frames_per_shot=1, workers=1)
    return shards.load(root)


def test_the_comparison_runs_end_to_end_and_refuses_unequal_samples(frames, tmp_path):
    cmp = Comparison(("tiny-p2", "tiny-p1", "tiny-p2+shift=1+lr=2e-3"), samples=4, batch=2, heldout_stories=3,
                     sigmas=(0.1, 0.9), euler_steps=2, sheet_frames=4, guidance=(1.0, 3.0))
    report = compare(cmp, RECIPE, frames, tmp_path)
    rows = report["rows"]
    assert (report["train_frames"], report["train_stories"]) == (len(frames["latents"]), 2)
    assert list(rows) == ["truth through the VAE", "untrained tiny-p2", "tiny-p2", "tiny-p2, guidance 3", "tiny-p1",
                          "tiny-p1, guidance 3", "tiny-p2+shift=1+lr=2e-3", "tiny-p2+shift=1+lr=2e-3, guidance 3"]
    guided = rows["tiny-p2, guidance 3"]  # the same weights drawn with guidance: its own probe reading, paired
    assert (guided["guidance"], rows["tiny-p2"]["guidance"]) == (3.0, 1.0)
    assert guided["heldout_loss"] == rows["tiny-p2"]["heldout_loss"] and "vs_tiny-p2" in guided
    assert (rows["tiny-p2"]["shift"], rows["tiny-p2"]["lr"]) == (2.0, 1e-3)  # the preset's shift, the recipe's rate
    assert (rows["tiny-p2+shift=1+lr=2e-3"]["shift"], rows["tiny-p2+shift=1+lr=2e-3"]["lr"]) == (1.0, 2e-3)
    assert rows["tiny-p2+shift=1+lr=2e-3"]["heldout_loss"] != rows["tiny-p2"]["heldout_loss"]
    for name in ("tiny-p2", "tiny-p1", "tiny-p2+shift=1+lr=2e-3", "tiny-p1, guidance 3"):
        row = rows[name]
        assert row["samples"] == 4 and row["steps"] == 2 and row["samples_per_s"] > 0 and row["wall_seconds"] > 0
        assert set(row["heldout_loss"]) == {"0.1", "0.9"} and all(v > 0 for v in row["heldout_loss"].values())
        assert set(row["probe"]) == {*ATTRIBUTES, "mean"}
    assert rows["tiny-p1"]["tokens_per_frame"] == 64 and rows["tiny-p2"]["tokens_per_frame"] == 16
    # Trained for two steps, the DiT's held-out loss is below its initialisation's (same noise, same frames).
    assert rows["tiny-p2"]["heldout_loss"]["0.9"] < rows["untrained tiny-p2"]["heldout_loss"]["0.9"]
    # The probe ranks the ceiling far above an untrained DiT, which reads no better than a constant guess.
    truth, floor, chance = rows["truth through the VAE"]["probe"], rows["untrained tiny-p2"]["probe"], report["chance"]
    assert truth["mean"] > floor["mean"] + 0.3 and floor["mean"] <= chance["mean"] + 0.1
    for name, row in rows.items():  # intervals over the held-out stories, every row paired with the first variant's
        lo, hi = row["probe_ci95"]["mean"]
        assert lo <= row["probe"]["mean"] <= hi, name
        assert ("vs_tiny-p2" in row) == (name != "tiny-p2"), name
    gap = rows["truth through the VAE"]["vs_tiny-p2"]["mean"]
    assert gap["difference"] == pytest.approx(truth["mean"] - rows["tiny-p2"]["probe"]["mean"], abs=1e-3)
    assert json.loads((tmp_path / "report.json").read_text())["rows"].keys() == rows.keys()
    table = (tmp_path / "report.md").read_text().splitlines()
    assert "loss @0.1" in table[0] and "characters" in table[0] and len(table) == 2 + len(rows) + 1
    assert "mean vs tiny-p2 (95%)" in table[0]
    sheet = Image.open(tmp_path / "sheet.png")
    assert sheet.height >= len(rows) * 128 and sheet.width >= 4 * 128
    with pytest.raises(RuntimeError, match="equal samples"):
        compare(replace(cmp, samples=2), RECIPE, frames, tmp_path)


def test_the_comparison_goes_on_from_trained_weights_and_reads_them_beside(frames, tmp_path):
    """With `init`, every variant starts from those weights (its run folder says so by digest), the weights
    themselves are the floor, read at every scale exactly as a comparison that trained them reads them, and each
    variant is paired with them scale by scale; other weights, or another geometry, are refused."""
    first = compare(Comparison(("tiny-p2",), samples=4, batch=2, heldout_stories=2, sigmas=(0.1, 0.9), euler_steps=2,
                               sheet_frames=2), RECIPE, frames, tmp_path / "first")
    weights = tmp_path / "first" / "tiny-p2" / "teacher.safetensors"
    cmp = Comparison(("tiny-p2",), samples=2, batch=2, heldout_stories=2, sigmas=(0.1, 0.9), euler_steps=2,
                     sheet_frames=2, guidance=(1.0, 3.0), init=str(weights))
    report = compare(cmp, RECIPE, frames, tmp_path / "more")
    rows, start = report["rows"], "start: teacher"
    assert list(rows) == ["truth through the VAE", start, f"{start}, guidance 3", "tiny-p2", "tiny-p2, guidance 3"]
    assert report["start"]["samples"] == 4 and report["start"]["preset"] == "tiny-p2"
    assert rows[start]["heldout_loss"] == first["rows"]["tiny-p2"]["heldout_loss"]  # the same weights, same noise
    assert rows[start]["probe"] == first["rows"]["tiny-p2"]["probe"]
    assert rows["tiny-p2"]["samples"] == 2 and rows["tiny-p2"]["heldout_loss"] != rows[start]["heldout_loss"]
    manifest = json.loads((tmp_path / "more" / "tiny-p2" / "manifest.json").read_text())
    assert manifest["init_sha256"] == report["start"]["sha256"]
    from distill.teacher import train  # called again without init, the run still says what it started from

    again = train(cmp.recipe_for(RECIPE, "tiny-p2"), {"frames": frames}, tmp_path / "more" / "tiny-p2")
    assert (again["init"], again["init_sha256"]) == (str(weights), report["start"]["sha256"])
    for name, against in (("tiny-p2", start), ("tiny-p2, guidance 3", f"{start}, guidance 3")):
        gap = rows[name]["vs_start"]["mean"]
        assert gap["ci95"][0] <= gap["difference"] <= gap["ci95"][1]
        assert gap["difference"] == pytest.approx(rows[name]["probe"]["mean"] - rows[against]["probe"]["mean"],
                                                  abs=1e-3)
    assert "4 + 2" in (tmp_path / "more" / "report.md").read_text()
    with pytest.raises(ValueError, match="started from its default"):  # the first run's folder
        compare(replace(cmp, samples=4), RECIPE, frames, tmp_path / "first")
    with pytest.raises(ValueError, match="another geometry"):
        compare(replace(cmp, variants=("tiny-wide",)), RECIPE, frames, tmp_path / "wide")


def test_the_train_command_trains_in_another_preset_only_where_one_applies(tmp_path, capsys):
    """`train --preset` replaces the recipe's preset for the teacher and the student's stages; the data stage
    has none and `compare` takes its presets from --variants, so both refuse it, as does a preset not known."""
    from shotstream.cli import main

    recipe = str(Path(__file__).parent / "data" / "teacher_smoke.toml")
    for what, preset, says in (("data", "tiny-p1", "uses none"), ("compare", "tiny-p1", "--variants"),
                               ("teacher", "tiny-p3", "unknown preset 'tiny-p3'")):
        assert main(["train", what, "--recipe", recipe, "--preset", preset, "--data", str(tmp_path)]) == 2
        assert says in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before any data work


def test_guided_frames_extrapolate_from_the_empty_caption(frames):
    """Guidance 1 draws with the prompts alone; guidance 0 draws exactly what the empty caption alone draws; any
    other scale draws neither (the same noise every time)."""
    from types import SimpleNamespace

    from distill.grid_compare import draw_frames
    from distill.nextshot import NextShot
    from distill.resident import ResidentFrames
    from distill.teacher import CaptionBank
    from runtime.dit import CausalDiT, init_weights
    from runtime.model import load_bundle

    cfg, bundle = get_preset("tiny-p1"), load_bundle("tiny")
    dit = init_weights(CausalDiT(cfg.dit), 3).eval()
    data = {"latents": frames["latents"][:3], "prompt": frames["prompt"][:3]}
    bank = CaptionBank(data["prompt"], bundle.text_encoder.float().eval(), bundle.tokenizer, device="cpu")
    pool = ResidentFrames(data, bank, NextShot(cfg), "cpu")
    noise = torch.randn(3, 1, *cfg.latent_shape, generator=torch.Generator().manual_seed(1))
    held = SimpleNamespace(sample_noise=noise)
    draw = {g: draw_frames(dit, pool, held, 3, cfg.shot.shift, "cpu", guidance=g) for g in (1.0, 0.0, 3.0)}
    pool.table = torch.zeros_like(pool.table)  # every prompt now reads the empty caption
    empty = draw_frames(dit, pool, held, 3, cfg.shot.shift, "cpu")
    torch.testing.assert_close(draw[0.0], empty, atol=1e-5, rtol=1e-5)
    assert (draw[1.0] - empty).abs().max() > 1e-3 and (draw[3.0] - draw[1.0]).abs().max() > 1e-3
    assert (draw[3.0] - empty).abs().max() > (draw[1.0] - empty).abs().max()  # extrapolated past the prompt
