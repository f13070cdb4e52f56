"""Training at the device's speed: batches gathered from data resident on the training device are the host
path's batches (same loss at fixed draws), draws come from the right pool, losses stay on the device between
reads, and the manifest's throughput figures agree with its own steps, batch and seconds."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from distill import shards
from distill.nextshot import NextShot
from distill.resident import CONTEXT_DROPOUT, ResidentFrames, ResidentShots
from distill.runs import LossMeter, Throughput, TrainDevice, native_bf16
from distill.teacher import CaptionBank, FrameSamples, Phase, ShotSamples, TeacherRecipe, flow_matching_loss, train
from runtime.config import get_preset
from runtime.dit import init_weights
from runtime.model import build_dit, load_bundle

CFG = get_preset("tiny")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("resident")
    for kind in ("frames", "shots"):
        shards.prepare(root / kind, kind=kind, seed=8, stories=3, shard_stories=3, workers=1)
    return {kind: shards.load(root / kind) for kind in ("frames", "shots")}


@pytest.fixture(scope="module")
def banks(data):
    bundle = load_bundle("tiny")
    return {kind: CaptionBank(d["prompt"], bundle.text_encoder.float().eval(), bundle.tokenizer)
            for kind, d in data.items()}


@pytest.fixture(scope="module")
def model():
    return init_weights(build_dit(CFG), 3).eval()


def _per_sample(table: torch.Tensor, b: int) -> torch.Tensor:
    return table if table.dim() == 3 else table.expand(b, -1, -1)


def _same_batch(resident, host) -> None:
    (x0, ctx, text, cos, sin), (hx0, hctx, htext, hcos, hsin) = resident, host
    b = x0.shape[0]
    torch.testing.assert_close(x0, hx0, rtol=0, atol=0)
    if hctx is None:
        assert ctx is None
    else:
        torch.testing.assert_close(ctx, hctx, rtol=0, atol=0)
    torch.testing.assert_close(text.dense(), htext.dense(), rtol=0, atol=0)  # each frame reads the same caption
    torch.testing.assert_close(_per_sample(cos, b), _per_sample(hcos, b), rtol=0, atol=0)
    torch.testing.assert_close(_per_sample(sin, b), _per_sample(hsin, b), rtol=0, atol=0)


def _losses(model, ns, resident, host, seed: int) -> tuple[float, float]:
    def loss(batch) -> float:
        with torch.no_grad():
            return float(flow_matching_loss(model, ns, *batch, torch.Generator().manual_seed(seed), CFG.shot.shift,
                                            "cpu", autocast=False))
    return loss(resident), loss(host)


def test_resident_frames_give_the_host_paths_batch_and_loss(data, banks, model):
    ns = NextShot(CFG)
    pool = ResidentFrames(data["frames"], banks["frames"], ns, "cpu")
    host = FrameSamples(data["frames"], banks["frames"])
    idx = np.array([0, 5, 5, 2, len(pool) - 1, 7])
    resident, old = pool.batch(torch.from_numpy(idx)), host.batch(idx, ns, torch.Generator(), "cpu")
    _same_batch(resident, old)
    a, b = _losses(model, ns, resident, old, seed=4)
    assert a == pytest.approx(b, rel=1e-5)


def test_resident_shots_give_the_host_paths_batch_and_loss_with_and_without_context(data, banks, model):
    ns = NextShot(CFG)
    pool = ResidentShots(data["shots"], banks["shots"], ns, "cpu")
    host = ShotSamples(data["shots"], banks["shots"], ns)
    idx = np.arange(4, 10)  # six of the 20 shots: a story's last ones, then the next story's first (no context)
    assert (pool.shot[idx] == 0).any() and (pool.shot[idx] > 0).any()
    seed = next(s for s in range(1000)  # a draw of the host path's context dropout with some dropped, some kept
                if 0 < int((torch.rand(len(idx), generator=torch.Generator().manual_seed(s)) < CONTEXT_DROPOUT).sum()) < 4)
    drop = torch.rand(len(idx), generator=torch.Generator().manual_seed(seed)) < CONTEXT_DROPOUT
    old = host.batch(idx, ns, torch.Generator().manual_seed(seed), "cpu")
    resident = pool.batch(torch.from_numpy(idx), drop)
    _same_batch(resident, old)
    assert resident[2].table.shape[0] == len(idx) * pool.slots  # a fixed number of captions a step
    a, b = _losses(model, ns, resident, old, seed=5)
    assert a == pytest.approx(b, rel=1e-5)


def test_device_draws_come_from_the_pool_and_the_runs_generator(data, banks):
    ns = NextShot(CFG)
    pool = ResidentShots(data["shots"], banks["shots"], ns, "cpu")
    gen = torch.Generator().manual_seed(11)
    start = gen.get_state()
    x0, context, text, cos, sin = pool.draw(400, gen)
    gen.set_state(start)
    idx = torch.randint(len(pool), (400,), generator=gen)
    drop = torch.rand(400, generator=gen) < CONTEXT_DROPOUT
    assert set(idx.tolist()) == set(range(len(pool)))  # every row of the pool, and only those
    assert 0.03 < drop.float().mean() < 0.2  # context dropout at its rate
    _same_batch((x0, context, text, cos, sin), pool.batch(idx, drop))
    dropped = context[drop].abs().sum(dim=(1, 2, 3, 4))
    assert torch.all(dropped == 0)  # a dropped context is all zeros, as shot 0's
    later = (pool.shot[idx] > 0) & ~drop
    assert torch.all(context[later].abs().sum(dim=(2, 3, 4))[:, 0] > 0)  # a kept context reads earlier shots


def test_losses_stay_on_the_device_until_read():
    meter = LossMeter()
    assert meter.read() == {}
    for v in (1.0, 2.0, 6.0):
        meter.add(loss=torch.tensor(v), other=torch.tensor(2 * v))
    assert meter.read() == {"loss": pytest.approx(3.0), "other": pytest.approx(6.0)}
    meter.add(loss=torch.tensor(5.0))
    assert meter.read() == {"loss": 5.0}


def test_throughput_rates_are_its_counts_over_its_seconds():
    rates = Throughput()
    rates.add(steps=4, samples=32, tokens=512, flops=3.2e9, seconds=2.0)
    rates.add(steps=4, samples=32, tokens=512, flops=3.2e9, seconds=2.0)
    report = rates.report(peak_tflops=0.5, peak_dtype="float32")
    assert report["samples_per_s"] == 16.0 and report["tokens_per_s"] == 256.0
    assert report["model_tflops"] == pytest.approx(0.0016) and report["of_peak"] == pytest.approx(0.0032)
    assert report["peak_dtype"] == "float32"


def test_the_manifest_records_throughput_consistent_with_its_steps_and_batches(data, tmp_path):
    torch.set_num_threads(1)
    recipe = TeacherRecipe(seed=2, checkpoint_every=3, log_every=2,
                           phases=(Phase("image", "frames", steps=5, batch=4, lr=1e-3, warmup=1),
                                   Phase("sequence", "shots", steps=2, batch=2, lr=3e-4, warmup=1)))
    part = train(recipe, data, tmp_path / "run", max_steps=3)
    entry = train(recipe, data, tmp_path / "run")  # resumed: the figures cover both calls
    assert not part["complete"] and entry["complete"]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["throughput"] == entry["throughput"] and manifest["bf16"] is native_bf16("cpu")
    tokens = {"image": CFG.tokens_per_frame, "sequence": (CFG.shot.context_frames + 21) * CFG.tokens_per_frame}
    for phase in recipe.phases:
        row = entry["throughput"][phase.name]
        assert row["steps"] == phase.steps and row["samples"] == phase.steps * phase.batch
        assert row["seconds"] > 0 and row["samples_per_s"] == pytest.approx(row["samples"] / row["seconds"], rel=1e-2)
        assert row["tokens_per_s"] == pytest.approx(row["samples_per_s"] * tokens[phase.name], rel=1e-2)
        assert row["peak_tflops"] > 0 and 0 < row["of_peak"] < 1  # against the peak of the dtype it trained in
        assert row["peak_dtype"] == ("bfloat16" if manifest["bf16"] else "float32")
        assert row["of_peak"] == pytest.approx(row["model_tflops"] / row["peak_tflops"], rel=0.02)
    log = [json.loads(line) for line in (tmp_path / "run" / "loss.jsonl").read_text().splitlines()]
    assert [(r["phase"], r["step"]) for r in log] == [("image", 2), ("image", 3), ("image", 4), ("image", 5),
                                                    ("sequence", 2)]  # every 2 steps of a phase, a call's end, a phase's end


def test_training_takes_bf16_only_where_the_cpu_has_it_natively():
    """bf16 autocast is emulated on an AVX2-only CPU (a matmul about 50x slower than fp32): a recipe that does not
    choose trains in fp32 there, one that asks for bf16 is refused with what to do, and fp32 can always be chosen."""
    flags = set()
    if Path("/proc/cpuinfo").exists():
        flags = set(next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                          if line.startswith("flags")), "").split())
    if {"avx512bw", "avx512vl", "avx512dq"} <= flags:
        assert native_bf16("cpu")  # oneDNN's bf16 path needs AVX-512 (BW, VL, DQ)
    elif flags and not flags & {"avx512f", "amx_bf16", "avx_ne_convert"}:
        assert not native_bf16("cpu")
    assert TrainDevice.of("cpu").bf16 is native_bf16("cpu")
    assert TrainDevice.of("cpu", bf16=False).bf16 is False and TrainDevice.of("cpu", bf16=False).dtype == "float32"
    if native_bf16("cpu"):
        assert TrainDevice.of("cpu", bf16=True).dtype == "bfloat16"
    else:
        with pytest.raises(ValueError, match="no native bf16"):
            TrainDevice.of("cpu", bf16=True)


def test_the_bf16_matmul_peak_is_measured_and_onnxruntime_refuses_bf16():
    from runtime.measure.flops import matmul_peak_gflops

    assert matmul_peak_gflops("torch", n=64, seconds=0.01, threads=1, dtype="bfloat16") > 0
    with pytest.raises(ValueError, match="fp32"):
        matmul_peak_gflops("onnxruntime", n=8, seconds=0.01, dtype="bfloat16")


def test_the_cpu_attention_kernel_goes_by_the_samples_length():
    """Single frames train under the math kernel, whole shots under the flash one (faster on the CPU at each
    length, docs/training.md); either gives the same attention to float tolerance, and CUDA keeps torch's choice."""
    import torch.nn.functional as F

    from distill.runs import FLASH_FROM_TOKENS, TrainDevice

    td = TrainDevice.of("cpu")
    q, k, v = (torch.randn(1, 4, FLASH_FROM_TOKENS, 64, generator=torch.Generator().manual_seed(i)) for i in range(3))
    outs = {}
    for tokens in (16, 64, FLASH_FROM_TOKENS, 1344):
        with td.kernels(tokens):
            flash = torch.backends.cuda.flash_sdp_enabled()
            assert flash == (tokens >= FLASH_FROM_TOKENS) and torch.backends.cuda.math_sdp_enabled()
            outs[flash] = F.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(outs[True], outs[False], atol=1e-5, rtol=1e-4)
    assert type(TrainDevice("cuda:0", True).kernels(16)).__name__ == "nullcontext"
