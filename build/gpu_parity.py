"""CPU-vs-device parity of the official preset at reduced layers (run by build/gpu_check.sh).

Two checks, random weights, the official DiT width (1536, 12 heads x 128, FFN 8960, text 4096):
1. the chunk step: the caption's cross K/V, context fill, chunk 0's clean pass appended to the cache, then
   chunk 1 at a noisy step over exactly the valid rows, on the CPU in float32 and on the device in float32 and in bf16; relative L2 error of the velocity;
2. the engine: a 2-chunk shot through the torch backend (on CUDA: resident caches, mirrors, the chunk step
   replayed as a CUDA graph) in float32 on both, the frames compared in 0..255 levels.
Writes one JSON object; exits 1 when a check fails its tolerance. `--device cpu` runs the same script on
the CPU against itself (the device path's bookkeeping without a GPU), which is how the tests run it.

    python build/gpu_parity.py --device cuda --json out/parity.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.config import get_preset  # noqa: E402
from runtime.dit import CausalDiT, init_weights, timestep_frequencies  # noqa: E402
from runtime.official.loader import reduced  # noqa: E402
from runtime.rope import RopeTable  # noqa: E402

TOLERANCE = {"float32": 2e-3, "bfloat16": 4e-2}  # relative L2 error of the velocity
FRAME_MAX_LEVELS = 3  # float32 engine frames: largest per-pixel difference, in 0..255 levels


def chunk_step_inputs(cfg, seed: int = 0) -> dict:
    d, c = cfg.dit, cfg.shot.context_frames
    g = torch.Generator().manual_seed(seed)
    table = RopeTable(cfg, c + cfg.shot.latent_frames_per_shot)

    def rope(first, frames, flag):
        return [torch.from_numpy(a) for a in table.tables(list(range(first, first + frames)), [flag] * frames)]

    def tf(t, frames):
        return torch.from_numpy(timestep_frequencies(np.full((1, frames), t), d.freq_dim))

    return {
        "ctx": torch.randn(1, c, *cfg.latent_shape, generator=g), "x0": torch.randn(1, 3, *cfg.latent_shape, generator=g),
        "x1": torch.randn(1, 3, *cfg.latent_shape, generator=g),
        "text": torch.randn(1, 1, cfg.text.text_len, d.text_dim, generator=g) * 0.1,
        "t_ctx": tf(0.0, c), "t_zero": tf(0.0, 3), "t_noisy": tf(888.8889, 3),
        "rope_ctx": rope(0, c, 0), "rope_0": rope(c, 3, 1), "rope_1": rope(c + 3, 3, 1),
    }


def run_chunk_step(model: CausalDiT, inp: dict, device: str, dtype: torch.dtype) -> torch.Tensor:
    model = model.to(device, dtype)

    def on(t):
        return t.to(device, dtype) if t.is_floating_point() else t.to(device)

    with torch.inference_mode():
        ck, cv = model.cross_kv(on(inp["text"])[0])  # (1, layers, L, dim): the one caption
        c = inp["ctx"].shape[1]
        gk, gv = model.context_fill(on(inp["ctx"]), on(inp["t_ctx"]), ck, cv,
                                    torch.zeros(c, dtype=torch.int64, device=device), *map(on, inp["rope_ctx"]))
        _, k0, v0 = model.chunk_step(on(inp["x0"]), on(inp["t_zero"]), ck[0], cv[0], *map(on, inp["rope_0"]), gk, gv)
        vel, _, _ = model.chunk_step(on(inp["x1"]), on(inp["t_noisy"]), ck[0], cv[0], *map(on, inp["rope_1"]),
                                     torch.cat([gk, k0]), torch.cat([gv, v0]))
    return vel.float().cpu()


def engine_frames(cfg, device: str) -> np.ndarray:
    from runtime import Engine

    engine = Engine.load(cfg, "torch", device=device, random_weights=True, seed=1, dtype="float32")
    story = engine.open_story(seed=2, global_caption="a knight and a wizard")
    return np.concatenate([c.frames.copy() for c in story.generate_shot("the knight walks in the forest", chunks=2)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="device compared with the CPU (default cuda)")
    ap.add_argument("--layers", type=int, default=2, help="DiT layers (default 2)")
    ap.add_argument("--size", default="240x416", help="frame HEIGHTxWIDTH (default 240x416)")
    ap.add_argument("--vae-channels", type=int, default=16, help="VAE base channels for the engine check (default 16)")
    ap.add_argument("--text-len", type=int, default=64, help="text tokens (default 64)")
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args(argv)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # float32 means float32
    height, width = (int(v) for v in args.size.lower().split("x"))
    cfg = reduced(get_preset("shotstream-1.3b"), layers=args.layers, height=height, width=width,
                  vae_channels=args.vae_channels, text_len=args.text_len)
    started = time.perf_counter()
    model, inp = init_weights(CausalDiT(cfg.dit), seed=0).eval(), chunk_step_inputs(cfg)
    reference = run_chunk_step(model, inp, "cpu", torch.float32)
    result = {"device": args.device, "layers": args.layers, "size": [height, width], "torch": torch.__version__,
              "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None, "chunk_step": {}}
    ok = True
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        vel = run_chunk_step(model, inp, args.device, dtype)
        err = float((vel - reference).norm() / reference.norm())
        result["chunk_step"][name] = {"relative_l2_error": err, "tolerance": TOLERANCE[name], "ok": err <= TOLERANCE[name]}
        ok &= err <= TOLERANCE[name]
    ref_frames, dev_frames = engine_frames(cfg, "cpu"), engine_frames(cfg, args.device)
    diff = np.abs(ref_frames.astype(np.int16) - dev_frames.astype(np.int16))
    result["engine_frames"] = {"frames": len(dev_frames), "max_levels": int(diff.max()), "mean_levels": float(diff.mean()),
                               "tolerance_max_levels": FRAME_MAX_LEVELS, "ok": int(diff.max()) <= FRAME_MAX_LEVELS}
    ok &= result["engine_frames"]["ok"]
    result.update(ok=bool(ok), seconds=round(time.perf_counter() - started, 2))
    text = json.dumps(result)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
