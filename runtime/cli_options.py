"""What every `shotstream` command line shares, whichever package its command lives in: the exit-status
convention (`EXIT_STATUS`, shown in each `--help`; `UsageError` for an argument a command refuses) and the model
options (`add_preset_options`, `add_model_options`) with the engine they ask for (`load_engine`). Argument parsing
itself belongs to the entry points (`shotstream/`, `engine_bridge/serve_cli.py`, `demo_game/cli.py`, ...).
"""
from __future__ import annotations

import argparse

from runtime.config import PRESETS

EXIT_STATUS = ("exit status: 0 done; 2 refused (a bad argument or input, said in one line on stderr, before any "
               "work where it can be known then); 1 failed unexpectedly (a bug: the traceback is printed)")


class UsageError(Exception):
    """A command-line argument the command refuses (exit status 2, like argparse's own refusals)."""


def add_preset_options(p: argparse.ArgumentParser, generates: bool = True, backends: bool = False) -> None:
    """--preset and --weights; for a command that generates, --backend (repeatable with `backends`), --seed and
    the model options."""
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="model preset (default tiny)")
    p.add_argument("--weights", help="weights folder: the tiny preset's (default: the embedded one), or the "
                   "official one (shotstream_merged.pt, Wan2.1_VAE.pth, models_t5_umt5-xxl-enc-bf16.pth, "
                   "google/umt5-xxl/)")
    if generates:
        p.add_argument("--backend", choices=["onnxruntime", "torch", "tensorrt"], action="append" if backends else None,
                       help="inference backend (default onnxruntime; torch for the official preset or a "
                            "--device other than cpu)" + ("; repeat to compare several in one run" if backends else ""))
        p.add_argument("--seed", type=int, default=0, help="story seed: same seed, same frames (default 0)")
        add_model_options(p)


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Where the official preset's weights are and which device runs it (the tiny preset ignores these)."""
    p.add_argument("--device", default="cpu", help="torch backend: where the DiT and VAE run, cpu or cuda[:N] "
                   "(bf16 on CUDA; default cpu)")
    p.add_argument("--text-device", default="cpu", help="torch backend: where the text encoder runs (default cpu: "
                   "umT5-XXL in bf16 takes ~11 GB of host memory, encodings are cached per prompt)")
    p.add_argument("--random-weights", action="store_true",
                   help="a random DiT in the preset's geometry, said so in every output (speed measurements): the "
                        "official preset's components all random; a tiny-family preset (tiny-p1, tiny-wide ship no "
                        "DiT) keeps the shipped text encoder and VAE")


def backend_for(args) -> str:
    """--backend, or its default: torch for the official preset or a device other than the CPU, else onnxruntime."""
    from runtime.config import get_preset

    if args.backend:
        return args.backend
    return "torch" if get_preset(args.preset).vae.kind != "tiny" or args.device != "cpu" else "onnxruntime"


def load_engine(args, seed: int = 0):
    """The engine the parsed options ask for (`--preset`, `--backend`, `--weights`, `--device`, ...);
    `seed` seeds random weights."""
    from runtime import Engine

    return Engine.load(args.preset, backend_for(args), args.weights, device=args.device, text_device=args.text_device,
                       random_weights=args.random_weights, seed=seed)


def preset_config(args):
    """The preset, reduced when bench's --layers/--size/--vae-channels/--text-len ask (CPU runs, gpu_check)."""
    from runtime.config import get_preset

    cfg = get_preset(args.preset)
    if not (args.layers or args.size or args.vae_channels or args.text_len):
        return cfg
    from runtime.official.loader import reduced

    height, width = (int(v) for v in args.size.lower().split("x")) if args.size else (None, None)
    return reduced(cfg, layers=args.layers, height=height, width=width, vae_channels=args.vae_channels,
                   text_len=args.text_len)
