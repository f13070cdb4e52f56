"""Backends against each other on the same buffers, and the pieces every backend shares: the I/O spec,
the scheduler, the VAE's chunked decode. The TensorRT backend runs only where TensorRT and a GPU exist."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from runtime.backends.spec import DIT_LOOP, GRAPH_NAMES, chunk_graph, families, free_dims, graph_specs
from runtime.config import get_preset
from runtime.scheduler import FlowMatchScheduler
from runtime.vae import FIRST_KEEP, TinyVAE


def random_buffers(spec, seed):
    rng = np.random.default_rng(seed)
    bufs = {}
    for t in spec.inputs:
        if t.name == "cross_index":
            bufs[t.name] = rng.integers(0, t.shape[0], size=t.shape).astype(np.int64)
        elif t.dtype == "int64":
            bufs[t.name] = rng.integers(1, 40, size=t.shape).astype(np.int64)
        elif t.name == "frame":
            bufs[t.name] = rng.uniform(0, 255, size=t.shape).astype(np.float32)
        else:
            bufs[t.name] = rng.standard_normal(size=t.shape).astype(np.float32)
    for t in spec.outputs:
        bufs[t.name] = np.full(t.shape, np.nan, dtype=np.float32)
    return bufs


@pytest.mark.parametrize("graph", list(graph_specs(get_preset("tiny"))))
def test_onnxruntime_matches_torch_on_every_graph(ort_engine, torch_engine, graph):
    spec = ort_engine.specs[graph]
    a, b = random_buffers(spec, 1), random_buffers(spec, 1)
    ort_engine.backend.run(graph, ort_engine.backend.bind(graph, a))
    torch_engine.backend.run(graph, torch_engine.backend.bind(graph, b))
    for t in spec.outputs:
        assert np.isfinite(a[t.name]).all(), f"{graph}.{t.name} was not written in place"
        if t.name == "frames":  # rounded to integers: a value at .5 may round either way, rarely
            diff = np.abs(a[t.name] - b[t.name])
            assert diff.max() <= 1.0 and (diff > 0).mean() < 1e-3, f"{graph}.frames: {(diff > 0).mean():.2e} differ"
        else:
            np.testing.assert_allclose(a[t.name], b[t.name], atol=2e-4, rtol=2e-4, err_msg=f"{graph}.{t.name}")


def test_binding_refuses_buffers_that_do_not_match_the_spec(ort_engine):
    spec = ort_engine.specs["vae_decode_chunk"]
    bufs = random_buffers(spec, 0)
    bad = dict(bufs, latents=bufs["latents"][:, :8])
    with pytest.raises(ValueError, match="latents"):
        ort_engine.backend.bind("vae_decode_chunk", bad)
    strided = np.zeros((spec.tensor("state").shape[0] * 2,) + spec.tensor("state").shape[1:], np.float32)[::2]
    with pytest.raises(ValueError, match="contiguous"):
        ort_engine.backend.bind("vae_decode_chunk", dict(bufs, state=strided))


def test_spec_shapes_are_derived_from_the_preset():
    for name in ("tiny", "shotstream-1.3b"):
        cfg = get_preset(name)
        s = graph_specs(cfg)
        tpf = cfg.tokens_per_frame
        # chunk b reads the global rows and the b chunks before it, never an empty row
        assert [s[chunk_graph(b)].tensor("past_k").shape[0] for b in range(7)] == [(6 + 3 * b) * tpf for b in range(7)]
        assert s["context_fill"].tensor("global_k").shape[0] == 6 * tpf
        assert s[chunk_graph(6)].tensor("chunk_k").shape == (3 * tpf, cfg.dit.num_layers, cfg.dit.num_heads, cfg.dit.head_dim)
        assert s["cross_kv"].tensor("cross_k").shape == (cfg.dit.num_layers, cfg.text.text_len, cfg.dit.dim)
        # the variants differ in exactly the past rows, which one free axis describes
        axes, sizes = free_dims([s[chunk_graph(b)] for b in range(7)])
        assert axes == {"past_k": {0: "past_k_0"}, "past_v": {0: "past_k_0"}}
        assert [v["past_k_0"] for v in sizes] == [(6 + 3 * b) * tpf for b in range(7)]
        # every family is timed as part of the DiT loop, or is text encoding or the VAE (a new one must choose)
        assert tuple(families(s)) == GRAPH_NAMES
        assert set(GRAPH_NAMES) - set(DIT_LOOP) == {"text_encode", "vae_decode_chunk", "vae_encode_frame"}
    assert get_preset("shotstream-1.3b").tokens_per_frame == 1560


def test_warped_steps_and_noise_round_trip():
    s = FlowMatchScheduler(8.0)
    np.testing.assert_allclose(s.warped_steps(), [1000.0, 957.9288, 888.8889, 737.5887], atol=1e-4)
    rng = np.random.default_rng(0)
    x0, eps = rng.standard_normal((2, 3, 16, 8, 8))
    for t in s.warped_steps():
        sigma = s.sigma_at(t)
        xt = s.add_noise(x0, eps, sigma, out=np.empty_like(x0))
        back = s.x0_from_velocity(xt, eps - x0, sigma, out=np.empty_like(x0))
        np.testing.assert_allclose(back, x0, atol=1e-12)
    assert s.sigma_at(0.0) == 0.0


def test_vae_chunked_decode_equals_whole_shot_decode():
    cfg = get_preset("tiny")
    torch.manual_seed(0)
    vae = TinyVAE(cfg.vae).eval()
    z = torch.randn(21, *cfg.latent_shape)
    with torch.no_grad():
        whole = vae.decode_video(z)
        state = torch.zeros(vae.state_channels, *cfg.latent_shape[1:])
        parts = []
        for b in range(7):
            frames, state = vae.decode_chunk(z[3 * b:3 * b + 3], state)
            parts.append(frames[FIRST_KEEP:] if b == 0 else frames)
    chunked = torch.cat(parts)
    assert whole.shape == (81, 3, 64, 64) and [len(p) for p in parts] == [9] + [12] * 6
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)


def test_vae_encodes_a_shot_in_wans_layout():
    cfg = get_preset("tiny")
    vae = TinyVAE(cfg.vae).eval()
    video = torch.rand(81, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        z = vae.encode_video(video)
        first = vae.encode_frames(video[:1])
    assert z.shape == (21,) + cfg.latent_shape
    torch.testing.assert_close(z[:1], first)


EXPORT_IN_A_LOOP = textwrap.dedent("""
    import sys
    import time
    from pathlib import Path

    import torch

    from runtime.backends.export import ensure_onnx
    from runtime.backends.spec import GraphSpec, TensorSpec

    cache, flags = Path(sys.argv[1]), Path(sys.argv[2])
    spec = GraphSpec("text_encode", (TensorSpec("x", (2, 8)),), (TensorSpec("y", (2, 8)),))
    (flags / sys.argv[3]).touch()
    while not (flags / "go").exists():  # both processes start exporting at once
        time.sleep(0.001)
    for _ in range(50):
        ensure_onnx({"text_encode": torch.nn.Linear(8, 8)}, {"text_encode": spec}, cache, {"weights": "w"}, force=True)
""")


def test_two_processes_exporting_into_one_cache_both_succeed(tmp_path):
    """Two servers started at once on a fresh cache export the same graphs into the same folder: neither may read
    the other's half-written sidecar or lose its file to the other's rename, and what is left loads."""
    import onnx

    cache, flags = tmp_path / "cache", tmp_path / "flags"
    cache.mkdir()
    flags.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", EXPORT_IN_A_LOOP, str(cache), str(flags), f"ready{i}"],
                              cwd=Path(__file__).parents[1], text=True, stderr=subprocess.PIPE) for i in range(2)]
    while len(list(flags.iterdir())) < 2 and all(p.poll() is None for p in procs):
        time.sleep(0.01)
    (flags / "go").touch()
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-1000:] for e in errors)
    assert sorted(f.name for f in cache.iterdir()) == ["text_encode.json", "text_encode.onnx"]  # no tmp left
    assert json.loads((cache / "text_encode.json").read_text())["graph"] == "text_encode"
    onnx.checker.check_model(onnx.load(cache / "text_encode.onnx"), full_check=True)  # whole, not half of two


def test_unknown_backend_is_an_error_not_a_fallback():
    from runtime.backends.registry import select_backend

    with pytest.raises(ValueError, match="unknown backend"):
        select_backend("cuda-magic")


TRT_MISSING = importlib.util.find_spec("tensorrt") is None or importlib.util.find_spec("pycuda") is None


@pytest.mark.trt
@pytest.mark.skipif(TRT_MISSING, reason="needs TensorRT and pycuda (pip extra [gpu]) and an NVIDIA GPU; neither package is installed here")
def test_tensorrt_generates_the_same_shot_geometry():
    from runtime import Engine

    engine = Engine.load("tiny", "tensorrt")
    story = engine.open_story(seed=0, global_caption="a knight and a dragon, pixel art")
    chunks = list(story.generate_shot("the knight walks in the cave", chunks=2))
    assert [len(c.frames) for c in chunks] == [9, 12]
