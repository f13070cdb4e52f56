"""The official preset through the runtime at reduced size with random weights: the 1.3B-geometry chunk
step, the weights-folder errors, the device path of the torch backend, bench and gpu_check on the CPU."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers", reason="the official preset needs the `official` extra")
pytest.importorskip("transformers", reason="the official preset needs the `official` extra")

from runtime.backends.spec import chunk_graph  # noqa: E402
from runtime.config import get_preset  # noqa: E402
from runtime.context import caption_index  # noqa: E402
from runtime.dit import CausalDiT, block_mask, init_weights, timestep_frequencies  # noqa: E402
from runtime.official.loader import (DIT_FILE, FILES, T5_FILE, TOKENIZER_DIR, VAE_FILE, WeightsFolderError,  # noqa: E402
                              check_weights_dir, reduced)
from runtime.rope import RopeTable  # noqa: E402

OFFICIAL = get_preset("shotstream-1.3b")
# The official DiT width (1536, 12 heads x 128, FFN 8960, text 4096) at two layers on a 32x48 frame.
SMALL = reduced(OFFICIAL, layers=2, height=32, width=48, vae_channels=8, text_len=32)


def test_1_3b_geometry_cached_chunk_step_equals_full_masked_forward():
    cfg, d = SMALL, SMALL.dit
    assert (d.dim, d.num_heads, d.head_dim, d.ffn_dim, d.text_dim, d.num_layers) == (1536, 12, 128, 8960, 4096, 2)
    tpf, c, n = cfg.tokens_per_frame, cfg.shot.context_frames, 2
    model = init_weights(CausalDiT(d), seed=5).eval()
    table = RopeTable(cfg, c + 21)
    g = torch.Generator().manual_seed(0)
    ctx = torch.randn(1, c, *cfg.latent_shape, generator=g)
    chunks = [torch.randn(1, 3, *cfg.latent_shape, generator=g) for _ in range(n)]
    text = torch.randn(1, 2, 8, d.text_dim, generator=g)  # two captions of 8 tokens
    ctx_flags, flag, t = [0] * 6, 1, 957.9288

    def tf(values):
        return torch.from_numpy(timestep_frequencies(np.asarray(values, np.float64)[None], d.freq_dim))

    def rope(pos, flags):
        return [torch.from_numpy(a) for a in table.tables(list(pos), list(flags))]

    with torch.no_grad():
        ck, cv = model.cross_kv(text[0])  # each caption projected once
        gk, gv = model.context_fill(ctx, tf([0] * c), ck, cv, torch.zeros(c, dtype=torch.int64), *rope(range(c), ctx_flags))
        kk, vv = [gk], [gv]
        for b, x in enumerate(chunks):
            steps = [t] * 3 if b == n - 1 else [0.0] * 3
            vel, kn, vn = model.chunk_step(x, tf(steps), ck[1], cv[1], *rope(range(c + 3 * b, c + 3 * b + 3), [flag] * 3),
                                           torch.cat(kk), torch.cat(vv))  # exactly the rows valid before the chunk
            kk.append(kn)
            vv.append(vn)
        frames, flags = c + 3 * n, ctx_flags + [flag] * 3 * n
        full = model.forward_full(torch.cat([ctx] + chunks, 1), tf([0.0] * (frames - 3) + [t] * 3),
                                  text[:, [caption_index(f, 2) for f in flags]], *rope(range(frames), flags),
                                  block_mask(c, 3 * n, 3, tpf))
    assert vel.abs().mean() > 0.1
    torch.testing.assert_close(vel, full[:, -3:], atol=1e-4, rtol=1e-4)


def test_missing_weights_folder_names_every_file_and_what_was_expected(tmp_path):
    with pytest.raises(WeightsFolderError) as err:
        check_weights_dir(tmp_path / "nowhere", SMALL)
    text = str(err.value)
    for name, what in FILES.items():
        assert f"{name}: missing" in text and what in text
    (tmp_path / "wan").mkdir()
    torch.save({"generator": {"model.head.head.bias": torch.zeros(3)}}, tmp_path / "wan" / DIT_FILE)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "wan" / VAE_FILE)
    (tmp_path / "wan" / T5_FILE).write_text("not a checkpoint")
    with pytest.raises(WeightsFolderError) as err:
        check_weights_dir(tmp_path / "wan", SMALL)
    problems = err.value.problems
    assert problems[0] == f"{TOKENIZER_DIR}: missing"
    assert problems[1].startswith(f"{DIT_FILE}: 1 tensors, ") and "mis-shaped (model.head.head.bias [3] (expected [64]))" in problems[1]
    assert "missing (model.blocks.0.cross_attn.k.bias" in problems[1]
    assert problems[2].startswith(f"{VAE_FILE}: 1 tensors, ") and "mis-shaped (conv1.weight [1]" in problems[2]
    assert problems[3].startswith(f"{T5_FILE}: unreadable")
    assert len(problems) == 4


def test_cli_reports_the_weights_folder_problems(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.getcwd(), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "shotstream.cli", "render", "--preset", "shotstream-1.3b", "--backend",
                          "torch", "--weights", str(tmp_path), "--prompt", "a knight"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2
    for name in FILES:
        assert f"{name}: missing" in out.stderr


def test_official_preset_refuses_onnxruntime_before_loading():
    from runtime import Engine
    from runtime.errors import BackendUnavailableError

    with pytest.raises(BackendUnavailableError, match="--backend torch"):
        Engine.load("shotstream-1.3b", "onnxruntime", random_weights=True)


def test_random_weights_shot_streams_through_the_engine():
    from runtime import Engine

    engine = Engine.load(reduced(SMALL, layers=1), "torch", random_weights=True)
    info = engine.info
    assert "random weights" in info.model and info.chunk_frames[:2] == (9, 12)
    story = engine.open_story(seed=1, global_caption="a knight")
    chunks = list(story.generate_shot("walks in the forest", chunks=2))
    assert [c.frames.shape for c in chunks] == [(9, 32, 48, 3), (12, 32, 48, 3)]
    assert engine.backend.calls["dit_chunk"] == 9 and "vae_encode_frame" not in engine.backend.calls  # no last clean pass
    second = list(story.generate_shot("walks in the cave", chunks=1))  # context frames from shot 0 re-encoded
    assert second[0].frames.shape == (9, 32, 48, 3) and engine.backend.calls["vae_encode_frame"] == 6


def _tiny_torch_engine(**backend_options):
    """The tiny preset on a torch backend built with these options (rebinding the engine's text buffers)."""
    from runtime import Engine
    from runtime.backends.torch_backend import TorchBackend
    from runtime.graphs import build_graphs

    engine = Engine.load("tiny", "torch")
    engine.backend = TorchBackend("test", **backend_options)
    b = engine.bundle
    engine.backend.prepare(engine.specs, build_graphs(b.dit, b.text_encoder, b.vae), None, {})
    engine._text_binding = engine.backend.bind("text_encode", engine._text_buffers)
    return engine


def _shots(engine, seed=3, shots=2):
    """The story and the frames of its first `shots` shots (1 or 2; None for a shot not made)."""
    story = engine.open_story(seed=seed, global_caption="a knight and a dragon, pixel art")
    first = np.concatenate([c.frames.copy() for c in story.generate_shot("the knight walks in the forest", chunks=3)])
    if shots < 2:
        return story, first, None
    second = np.concatenate([c.frames.copy() for c in story.generate_shot("the wizard casts a spell in the cave", chunks=2)])
    return story, first, second


def test_device_path_bookkeeping_runs_on_the_cpu():
    """Resident DeviceTensors (caches, chunk K/V, VAE state) and host mirrors, as on CUDA, here on the CPU."""
    from runtime.backends.torch_backend import DeviceTensor

    _, ref1, ref2 = _shots(_tiny_torch_engine())
    engine = _tiny_torch_engine(resident=True)
    story, d1, d2 = _shots(engine)
    assert isinstance(story.cache.local.k, DeviceTensor) and isinstance(story.buffers["vae_decode_chunk"]["state"], DeviceTensor)
    assert np.array_equal(ref1, d1) and np.array_equal(ref2, d2)
    bf16 = _tiny_torch_engine(resident=True, dtype=torch.bfloat16)
    story, h1, _ = _shots(bf16, shots=1)  # one shot to compare: bf16 is emulated (slow) on CPUs without native bf16
    assert story.bindings[chunk_graph(0)].uploads  # float inputs go through bf16 mirrors
    assert np.abs(ref1.astype(int) - h1).mean() < 12


# build/gpu_check.sh --cpu-reduced runs end to end in tests/test_training_gpu_script.py, beside the data stage
# of build/train_gpu.sh (as it runs on a GPU machine).


def test_gpu_check_refuses_clearly_without_a_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    out = subprocess.run(["bash", "build/gpu_check.sh", str(tmp_path / "out")], capture_output=True, text=True,
                         env=dict(os.environ, PYTHON=sys.executable), timeout=120)
    assert out.returncode == 2 and "torch sees no CUDA GPU" in out.stderr and "--cpu-reduced" in out.stderr


def test_import_runtime_needs_none_of_the_official_extra():
    code = ("import sys, runtime, shotstream.cli, runtime.official.loader; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'diffusers', 'transformers', 'tokenizers'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert out.stdout.strip() == "[]", out.stderr


def test_gpu_check_names_a_missing_package_instead_of_failing_later(tmp_path):
    (tmp_path / "shadow").mkdir()
    (tmp_path / "shadow" / "diffusers.py").write_text("raise ImportError('not installed here')\n")
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(tmp_path / "shadow"))
    out = subprocess.run(["bash", "build/gpu_check.sh", str(tmp_path / "out"), "--cpu-reduced", "--no-install"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and "python package 'diffusers>=0.35' is missing" in out.stderr


def test_a_weights_folder_in_the_official_format_loads_and_generates(tmp_path):
    """Every file in its official format and names (a narrow model), through Engine.load(..., weights=DIR)."""
    from dataclasses import replace

    from test_official_text import tiny_tokenizer_dir

    from runtime import Engine
    from runtime.config import TextConfig
    from runtime.official.umt5 import UmT5Encoder, convert_wan_t5_keys, wan_t5_keys
    from runtime.official.wan_vae import WanVAE, _to_wan

    cfg = replace(SMALL, dit=replace(SMALL.dit, dim=64, num_heads=2, ffn_dim=128, text_dim=64, num_layers=1),
                  text=TextConfig(kind="umt5-xxl", text_len=32, dim=64, vocab_size=64, num_layers=1, num_heads=2))
    folder = tmp_path / "Wan2.1-T2V-1.3B"
    folder.mkdir()
    dit = init_weights(CausalDiT(cfg.dit), seed=4)
    torch.save({"generator": {"model." + k: v for k, v in dit.state_dict().items()}}, folder / DIT_FILE)
    torch.save({_to_wan(k): v for k, v in WanVAE(cfg.vae).ae.state_dict().items()}, folder / VAE_FILE)
    enc = UmT5Encoder(cfg.text).to(torch.bfloat16)
    hf = enc.model.state_dict()
    torch.save({name: hf[next(iter(convert_wan_t5_keys({name: None})))] for name in wan_t5_keys(enc)}, folder / T5_FILE)
    tiny_tokenizer_dir(folder / TOKENIZER_DIR)
    engine = Engine.load(cfg, "torch", folder)
    assert engine.info.model.endswith("weights from Wan2.1-T2V-1.3B)")
    torch.testing.assert_close(engine.bundle.dit.blocks[0].ffn[0].weight, dit.blocks[0].ffn[0].weight)
    story = engine.open_story(seed=0, global_caption="a knight")
    frames = [c.frames.shape for c in story.generate_shot("walks in the forest", chunks=2)]
    assert frames == [(9, 32, 48, 3), (12, 32, 48, 3)]
