"""The teacher's data shards and training loop: deterministic, resumable, and learning."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import cli_runner
from distill import shards
from distill.teacher import Phase, TeacherRecipe, train

STORIES = 2


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    for kind in ("frames", "shots"):
        shards.prepare(root / kind, kind=kind, seed=3, stories=STORIES, shard_stories=1, workers=1)
    return root


def test_shards_hold_runtime_encoded_shots_with_their_prompts(data):
    shots = shards.load(data / "shots")
    frames = shards.load(data / "frames")
    n = len(shots["prompt"])
    assert shots["latents"].shape[1:] == (21, 32, 8, 8) and shots["latents"].dtype == np.float16
    assert shots["context"].shape[:2] == (n, len(shots["context_frames"]))
    assert all(p.split(" shot")[1].startswith(str(k + 1)) for p, k in zip(shots["prompt"], shots["shot"]))
    # the context encodes of frame 0 are the single-frame encode a shot's first latent is
    first = list(shots["context_frames"]).index(0)
    np.testing.assert_allclose(shots["context"][:, first].astype(np.float32),
                               shots["latents"][:, 0].astype(np.float32), atol=2e-3)
    assert frames["latents"].shape == (4 * n, 32, 8, 8) and set(frames["prompt"]) == set(shots["prompt"])


def test_shots_encoded_in_batches_are_the_shots_encoded_one_at_a_time(data):
    """A GPU encodes shots SHOT_BATCH a call; what it writes is the runtime's one-shot encode (to fp16's step)."""
    plan = shards.ShardPlan(data / "shots", "shots", 3, STORIES, 1, 1, None)
    rows = shards.render_shard(plan, 0)
    vae = shards.load_vae(None)
    one = shards.encode_rows(plan, rows, vae)
    batched = shards.encode_rows(plan, rows, vae, shot_batch=3)  # a last batch shorter than the others
    assert len(rows["frames"]) % 3 and batched["latents"].shape == one["latents"].shape
    for key in ("latents", "context"):
        np.testing.assert_allclose(batched[key].astype(np.float32), one[key].astype(np.float32), atol=4e-3)
    stored = shards.load(data / "shots")
    np.testing.assert_array_equal(one["latents"], stored["latents"][:len(one["latents"])])


def test_shards_are_deterministic_and_resumable(data, tmp_path):
    again = tmp_path / "frames"
    shards.prepare(again, kind="frames", seed=3, stories=STORIES, shard_stories=1, workers=1)
    before = (again / "shard-00001.npz").read_bytes()
    assert before == (data / "frames" / "shard-00001.npz").read_bytes()
    (again / "shard-00001.npz").unlink()
    index = shards.prepare(again, kind="frames", seed=3, stories=STORIES, shard_stories=1, workers=1)
    assert index["written_shards_this_run"] == 1 and (again / "shard-00001.npz").read_bytes() == before
    with pytest.raises(ValueError, match="seed"):
        shards.prepare(again, kind="frames", seed=4, stories=STORIES, shard_stories=1, workers=1)


@pytest.mark.parametrize("workers, device", [(1, "cpu"), (2, "cpu"), (2, "cpu:0")],
                         ids=["one process", "workers encode", "this process encodes (the GPU path)"])
def test_shards_bounded_in_time_index_what_was_written_and_go_on_when_run_again(data, tmp_path, workers, device):
    """`max_seconds`: no shard starts after it, but the first is always written; the index covers the written
    prefix (fewer stories than planned, not complete) and loads; a later call writes the rest."""
    out, plan = tmp_path / "frames", dict(kind="frames", seed=3, shard_stories=1, workers=workers, device=device)
    index = shards.prepare(out, stories=8, max_seconds=0, **plan)
    assert not index["complete"] and index["stories_planned"] == 8 and 1 <= index["shards"] < 8
    assert index["stories"] == index["shards"] and index["written_shards_this_run"] >= index["shards"]
    part = shards.load(out)
    assert set(part["story"]) == set(range(index["stories"])) and len(part["latents"]) == index["samples"]
    first = (out / "shard-00000.npz").read_bytes()
    index = shards.prepare(out, stories=8, **plan)
    assert index["complete"] and index["stories"] == index["shards"] == 8
    assert (out / "shard-00000.npz").read_bytes() == first
    np.testing.assert_array_equal(shards.load(out)["latents"][:len(part["latents"])], part["latents"])


def _recipe(**kw) -> TeacherRecipe:
    phases = (Phase("image", "frames", steps=3, batch=4, lr=1e-3, warmup=1),
              Phase("sequence", "shots", steps=2, batch=2, lr=3e-4, warmup=1))
    kw.setdefault("checkpoint_every", 2)
    kw.setdefault("measure_peak", False)  # a second of matmuls a run; the manifests' peak is tested with the GPU script
    return TeacherRecipe(seed=1, phases=kw.pop("phases", phases), **kw)


def _load(data):
    return {"frames": shards.load(data / "frames"), "shots": shards.load(data / "shots")}


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(folder / "teacher.safetensors")


def test_an_interrupted_run_resumes_to_the_same_weights(data, tmp_path):
    whole = train(_recipe(snapshot_every=2), _load(data), tmp_path / "whole")
    part = train(_recipe(), _load(data), tmp_path / "split", max_steps=4)  # stops inside the second phase
    assert not part["complete"] and part["steps"] == 4
    ckpt = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)
    del ckpt["state"]["calls"]  # as a checkpoint from before runs kept a line per call
    torch.save(ckpt, tmp_path / "split" / "checkpoint.pt")
    resumed = train(_recipe(), _load(data), tmp_path / "split")
    assert resumed["complete"] and resumed["steps"] == whole["steps"] == 5
    assert [c["steps"] for c in whole["calls"]] == [[0, 5]] and whole["calls"][0]["device"] == whole["device"]
    earlier, this = resumed["calls"]  # the earlier calls in one line, their device from the manifest they left
    assert earlier["steps"] == [0, 4] and earlier["device"] == part["device"] and earlier["began"] is None
    assert this["steps"] == [4, 5] and earlier["samples"] + this["samples"] == resumed["samples"]
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(line) for line in (tmp_path / "whole" / "loss.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in log] == ["image", "sequence"] and all(np.isfinite(r["loss"]) for r in log)
    snaps = sorted((tmp_path / "whole" / "snapshots").glob("*.safetensors"))
    assert [p.stem for p in snaps] == ["teacher-000002", "teacher-000004"]
    assert json.loads(snaps[1].with_suffix(".json").read_text())["phase"] == "sequence"
    manifest = json.loads((tmp_path / "whole" / "manifest.json").read_text())
    assert manifest["sha256"] == whole["sha256"] and manifest["device"].startswith("cpu")


def test_the_teacher_fits_a_small_set_of_frames(data, tmp_path):
    """On a handful of frames, the flow-matching loss at fixed noise draws falls well below the initial model's."""
    from distill.nextshot import NextShot
    from distill.teacher import CaptionBank, FrameSamples, _read_dit, flow_matching_loss
    from runtime.dit import init_weights
    from runtime.model import build_dit, load_bundle

    recipe = _recipe(phases=(Phase("image", "frames", steps=20, batch=8, lr=4e-3, warmup=3),), checkpoint_every=1000)
    few = {k: v[:8] if isinstance(v, np.ndarray) else v for k, v in _load(data)["frames"].items()}
    train(recipe, {"frames": few}, tmp_path / "fit")

    cfg, ns, bundle = recipe.config(), NextShot(recipe.config()), load_bundle("tiny")
    pool = FrameSamples(few, CaptionBank(few["prompt"], bundle.text_encoder, bundle.tokenizer))
    batch = pool.batch(np.arange(8), ns, torch.Generator().manual_seed(0), "cpu")

    def loss(model) -> float:
        with torch.no_grad():
            draws = [flow_matching_loss(model, ns, *batch, torch.Generator().manual_seed(i), recipe.shift_value(),
                                        "cpu", autocast=False) for i in range(8)]
        return float(torch.stack(draws).mean())

    start = init_weights(build_dit(cfg), recipe.seed).eval()
    trained = build_dit(cfg).eval()
    trained.load_state_dict(_read_dit(tmp_path / "fit" / "teacher.safetensors"))
    before, after = loss(start), loss(trained)
    assert after < 0.6 * before, (before, after)  # measured: 0.46 of the initial loss after 20 steps


def test_the_loss_curve_is_drawn_from_the_log(tmp_path):
    from PIL import Image

    from distill.plots import loss_curve, loss_records

    log = tmp_path / "loss.jsonl"
    rows = [{"phase": p, "step": i, "total": i + 30 * k, "loss": 1.0 / (1 + i), "seconds": 6.0 * (i + 30 * k)}
            for k, p in enumerate(("image", "sequence")) for i in range(1, 30)]
    redone = [{"phase": "image", "step": 5, "total": 5, "loss": 1e6, "seconds": 1.0}]  # an abandoned record
    log.write_text("\n".join(json.dumps(r) for r in redone + rows) + "\n")
    kept = loss_records(log)
    assert [r["total"] for r in kept] == sorted({r["total"] for r in rows}) and max(r["loss"] for r in kept) < 1
    img = np.asarray(Image.open(loss_curve(log, tmp_path / "loss.png")))
    assert img.shape == (360, 720, 3)
    inside = img[40:310, 70:700].reshape(-1, 3)
    colours = {tuple(c) for c in inside if len(set(c)) > 1}  # the lines are coloured, the frame grey
    assert len(colours) >= 2
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError):
        loss_curve(empty, tmp_path / "x.png")


def test_the_long_run_script_prepares_data_trains_and_leaves_weights(tmp_path):
    """build/train_teacher.sh, the one script a GPU call runs, end to end at a test's size on the CPU."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).parents[1]
    out = tmp_path / "run"
    proc = subprocess.run(["bash", str(root / "build" / "train_teacher.sh"), str(out),
                           str(root / "tests" / "data" / "teacher_smoke.toml"), "cpu"],
                          capture_output=True, text=True, timeout=600, env={**__import__("os").environ,
                                                                             "OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((out / "teacher" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["steps"] == 5 and manifest["data"]["shots"]["stories"] == 2
    assert (out / "teacher" / "teacher.safetensors").stat().st_size > 1_000_000
    assert "done" in (out / "run.log").read_text()


def test_the_eval_over_training_time_scores_every_snapshot_and_the_final_weights(data, tmp_path):
    from distill.training_report import over_time, plot, snapshot_points

    recipe = _recipe(phases=(Phase("image", "frames", steps=4, batch=4, lr=1e-3, warmup=1),), snapshot_every=3)
    train(recipe, _load(data), tmp_path / "run")
    assert [m["steps"] for _, m in snapshot_points(tmp_path / "run")] == [3, 4]
    points = over_time(tmp_path / "run", stories=1, seed=84, steps=1, guidance=2.0)
    assert [p["phase"] for p in points] == ["image", "final"]
    assert all(0.0 <= p["adherence"]["mean"] <= 1.0 for p in points)
    assert plot(points, tmp_path / "over_time.png").stat().st_size > 1000


COMMITTED_TEACHERS = sorted((Path(__file__).parents[1] / "distill" / "weights").glob("teacher-*.safetensors"))


@pytest.mark.parametrize("weights", COMMITTED_TEACHERS, ids=lambda p: p.stem)
def test_every_committed_teacher_matches_its_manifest_and_loads(weights):
    from distill.sampling import load_teacher
    from runtime.weights import sha256_file

    manifest = json.loads(weights.with_suffix(".json").read_text())
    assert sha256_file(weights) == manifest["sha256"]
    # a finished run, or a kept snapshot of one that goes on, which says where it stopped
    assert manifest["complete"] or (manifest["partial"] and manifest["steps"] == manifest["calls"][-1]["steps"][1])
    teacher = load_teacher(weights)
    assert teacher.shift == manifest["shift"] == teacher.cfg.shot.shift
    assert {"recipe", "data", "steps", "wall_seconds", "device", "eval"} <= set(manifest)


def test_a_phase_with_a_time_budget_ends_there_with_its_learning_rate_annealed(data, tmp_path):
    from distill.teacher import _lr

    timed = Phase("image", "frames", steps=10_000, batch=2, lr=1e-3, warmup=1, minutes=0.02)
    assert timed.progress(5_000, 0.0) == 0.5 and timed.progress(10, 0.6) == 0.5 and timed.progress(10, 5.0) == 1.0
    assert _lr(timed, 10, 0.0) == pytest.approx(1e-3) and _lr(timed, 10, 1.0) == pytest.approx(1e-4)
    run = train(_recipe(phases=(timed,)), _load(data), tmp_path / "timed")
    assert run["complete"] and 1 <= run["steps"] < 10_000  # ended by its 1.2 s, not its steps
    assert run["wall_seconds"] >= 1.2


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "build" / "recipes").glob("*.toml")),
                         ids=lambda p: p.name)
def test_every_shipped_recipe_reads_whole_before_a_machine_is_spent_on_it(path):
    """A GPU call runs a recipe it cannot try first: every recipe in build/recipes parses as a teacher and/or a
    student in a preset the runtime knows, with a [data] table for every kind its phases and stages read."""
    import tomllib

    from distill.student import StudentRecipe
    from distill.train_cli import _kinds
    from runtime.config import get_preset

    tables = tomllib.loads(path.read_text())
    assert "teacher" in tables or "student" in tables, f"{path.name}: neither a teacher nor a student"
    kinds = set(_kinds(path, "all"))  # a seeded stream reads the frames shards
    teacher = TeacherRecipe.from_toml(path) if "teacher" in tables else None
    if teacher is not None:
        get_preset(teacher.preset)
        assert all(p.batch > 0 and p.lr > 0 and p.steps > 0 for p in teacher.phases)
        if teacher.stream is not None and teacher.stream.seeded:
            assert tables["data"]["frames"]["seed"] == teacher.stream.seed, f"{path.name}: the stream's seed"
    if "student" in tables:
        student = StudentRecipe.from_toml(path)
        get_preset(student.preset)
        assert student.stages, f"{path.name}: a [student] table without a stage"
        kinds.add("shots")
    have = set(tables.get("data", {}))
    assert kinds <= have, f"{path.name}: no [data] table for {kinds - have}"


def test_the_activation_memory_tool_measures_what_a_step_keeps_per_sample():
    """build/activation_memory.py: one step of each phase at b and 2b samples; a shot (27 latent frames) keeps
    many times what a single frame keeps, and the recipe's batch scales the per-sample figure."""
    import os
    import sys

    root = Path(__file__).parents[1]
    done = cli_runner.run([sys.executable, str(root / "build" / "activation_memory.py"), "--recipe",
                           str(root / "tests" / "data" / "teacher_smoke.toml"), "--batch", "2"],
                          timeout=600, env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout)
    image, sequence = rows["image"], rows["sequence"]
    assert image["data"] == "frames" and sequence["data"] == "shots" and image["preset"] == "tiny-p2"
    assert 0.5 < image["saved_mib_per_sample"] and 10 * image["saved_mib_per_sample"] < sequence["saved_mib_per_sample"]
    for row in rows.values():
        expected = (row["saved_mib_fixed"] + row["saved_mib_per_sample"] * row["batch"]) / 1024
        assert abs(row["saved_gib_at_batch"] - expected) <= 0.06 + 0.01 * expected


def test_the_train_command_refuses_a_seeded_stream_whose_seed_is_not_its_frames_shards(tmp_path, capsys):
    """A seeded stream renders the stories after the frames shards of the same seed, so no streamed story is one
    the shards hold; with another seed nothing would say so, and the command refuses before any data work."""
    from conftest import streamed_smoke_recipe
    from shotstream.cli import main

    recipe = streamed_smoke_recipe(tmp_path, stream_seed=4)
    assert main(["train", "teacher", "--recipe", str(recipe), "--data", str(tmp_path / "data")]) == 2
    assert "[teacher.stream] seed (4) must be [data.frames] seed (5)" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()
