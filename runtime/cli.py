"""The `shotstream` command: render, model-info, bench (here) and serve / demo / eval (dispatched lazily to
their packages, so this module never imports grpc or pygame).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import logging
import sys
import textwrap
import time
from pathlib import Path

from runtime.config import PRESETS

# subcommand -> module providing add_arguments(parser) and run(args) -> int
PLUGINS = {
    "serve": ("engine_bridge.serve_cli", "run the gRPC server"),
    "demo": ("demo_game.cli", "play the pygame demo (headless: record a video)"),
    "eval": ("distill.eval_cli", "measure the shipped components, and generated stories, on held-out story-world data"),
    "train": ("distill.train_cli", "prepare the teacher's story-world data, or train the teacher (--recipe)"),
}


def load_story_file(path: Path) -> tuple[str, list[str]]:
    """The official test-set JSON: {"global_caption": ..., "shot1": ..., ..., "shotN": ...}."""
    from runtime.errors import InvalidRequestError

    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InvalidRequestError(f"cannot read story file {path}: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("global_caption"), str):
        raise InvalidRequestError(f"{path}: a story file is an object with a 'global_caption' string")
    shots, i = [], 1
    while f"shot{i}" in data:
        shots.append(str(data[f"shot{i}"]))
        i += 1
    if not shots:
        raise InvalidRequestError(f"{path}: no 'shot1' key")
    return data["global_caption"], shots


DEFAULT_OUT_DIR = Path("out")


def default_out(args) -> Path:
    """Where `render` writes when --out is not given: out/<story name or "prompts">-seed<S>.mp4."""
    stem = Path(args.story).stem if args.story else "prompts"
    return DEFAULT_OUT_DIR / f"{stem}-seed{args.seed}.mp4"


def render(args) -> int:
    from runtime.progress import progress

    if args.story:
        caption, prompts = load_story_file(Path(args.story))
    else:
        caption, prompts = args.global_caption, list(args.prompt or [])
    if not prompts:
        raise SystemExit("shotstream render: give a story file or at least one --prompt")
    if not 1 <= args.chunks <= 7:
        raise SystemExit(f"shotstream render: --chunks must be 1..7, got {args.chunks}")
    out = None if args.no_out else Path(args.out) if args.out else default_out(args)
    t0 = time.perf_counter()
    engine = load_engine(args, seed=args.seed)
    info = engine.info
    story = engine.open_story(seed=args.seed, global_caption=caption, prompt_mode=args.prompt_mode)
    # Every prompt is checked (as shot k of this story) before anything is generated or drawn.
    dropped = [list(story.check_prompt(p, shot_index=k).dropped) for k, p in enumerate(prompts)]
    for k, words in enumerate(dropped):
        if words and not args.json:
            print(f"shot{k + 1}: left out (not in the vocabulary): {', '.join(words)}", file=sys.stderr)
    load_s = time.perf_counter() - t0
    digest, frames, first_frame_s, writer = hashlib.sha256(), 0, None, None
    if out is not None:
        from runtime.video import VideoWriter

        out.parent.mkdir(parents=True, exist_ok=True)
        writer = VideoWriter(str(out), fps=info.fps, scale=args.scale)
    total = len(prompts) * engine.cfg.shot_pixel_frames(args.chunks)
    t1 = time.perf_counter()
    with progress(total, "render", unit="frame", disable=args.json or args.quiet) as bar:
        for prompt in prompts:
            for chunk in story.generate_shot(prompt, chunks=args.chunks):
                first_frame_s = first_frame_s or time.perf_counter() - t1
                digest.update(chunk.frames.tobytes())
                frames += len(chunk.frames)
                if writer:
                    writer.write(chunk.frames)
                bar.update(len(chunk.frames))
    gen_s = time.perf_counter() - t1
    if writer:
        writer.close()
    summary = {
        "frames": frames, "shots": len(prompts), "width": info.width, "height": info.height, "fps": info.fps,
        "frames_sha256": digest.hexdigest(), "preset": info.preset, "backend": info.backend, "seed": args.seed,
        "load_seconds": round(load_s, 3), "generate_seconds": round(gen_s, 3),
        "first_frame_seconds": round(first_frame_s or 0.0, 3),
        "realtime_factor": round(frames / info.fps / gen_s, 2) if gen_s else None,
        "prompt_mode": args.prompt_mode, "dropped_words": dropped, "out": str(out) if out else None,
    }
    print(json.dumps(summary) if args.json else "\n".join(f"{k}: {v}" for k, v in summary.items()))
    return 0


def vocab(args) -> int:
    from runtime.model import load_tokenizer

    tokenizer = load_tokenizer(args.preset, args.weights)
    words = tokenizer.words
    if args.json:
        print(json.dumps({"preset": args.preset, "text_len": tokenizer.text_len, "vocabulary": list(words)}))
    else:
        marks = [w for w in words if not w.isalnum()]
        plain = [w for w in words if w.isalnum()]
        print(f"{len(words)} words and marks a prompt of the {args.preset} preset may use "
              f"(at most {tokenizer.text_len} tokens with the caption and 'shotN:'):")
        print("marks: " + " ".join(marks))
        print(textwrap.fill(" ".join(plain), width=100))
    return 0


def model_info(args) -> int:
    from runtime.cache import CacheSpec
    from runtime.config import get_preset
    from runtime.model import build_dit
    from runtime.weights import DIT_PREFIX

    cfg = get_preset(args.preset)
    dit = build_dit(cfg, "meta")  # no memory: shapes only
    if args.state_dict:
        for name, t in dit.state_dict().items():
            print(f"{DIT_PREFIX}{name}\t{list(t.shape)}")
        return 0
    params = sum(p.numel() for p in dit.parameters())
    print(json.dumps({
        "preset": cfg.name, "dit_parameters": params, "tensors": len(dit.state_dict()),
        "resolution": [cfg.height, cfg.width], "tokens_per_frame": cfg.tokens_per_frame,
        "tokens_per_chunk": cfg.tokens_per_chunk, "frames_per_shot": cfg.frames_per_shot,
        "global_cache_bytes_fp32": CacheSpec.global_for(cfg).nbytes, "local_cache_bytes_fp32": CacheSpec.local_for(cfg).nbytes,
    }))
    return 0


def bench(args) -> int:
    """Each backend asked for in turn (its engine loaded, timed, released), then the reference loop on the
    weights of the last CPU engine; one JSON object with a row each and the ratios between them."""
    from runtime import Engine
    from runtime.bench import add_work_figures, machine, reference_row, run_bench

    if args.cluster:  # the scale-out figures instead (engine_bridge.cluster.bench; needs the cluster extra)
        return importlib.import_module("engine_bridge.cluster.bench").main(args)
    cfg = preset_config(args)
    backends = args.backend or [backend_for(args)]
    if len(set(backends)) != len(backends):
        raise SystemExit(f"shotstream bench: each backend once, got {backends}")
    peaks: dict[str, float | None] = {}
    rows, reference = [], None
    for name in backends:
        started = time.perf_counter()
        engine = Engine.load(cfg, name, args.weights, device=args.device, text_device=args.text_device,
                             random_weights=args.random_weights, seed=args.seed)
        load_s = time.perf_counter() - started
        row = run_bench(engine, shots=args.shots, seed=args.seed, device=args.device, text_device=args.text_device,
                        random_weights=args.random_weights, chunks=args.chunks)
        row["load_seconds"] = round(load_s, 2)
        if not args.no_grpc:  # a real server on 127.0.0.1, started and stopped by the bench
            row.update(importlib.import_module("engine_bridge.bench").grpc_first_frame(
                engine, shots=args.shots, seed=args.seed))
        rows.append(add_work_figures(row, engine.cfg, _matmul_peak(peaks, name, args.device), args.chunks))
        if not args.no_reference and args.device == "cpu":
            reference = engine
    result = {"machine": machine(), "rows": rows}
    if reference is not None:
        ref = reference_row(reference, shots=args.shots, seed=args.seed, chunks=args.chunks)
        rows.append(add_work_figures(ref, reference.cfg, _matmul_peak(peaks, "torch", "cpu"), args.chunks))
        result["dit_loop_speedup_over_reference"] = {
            r["backend"]: round(ref["dit_loop_seconds_per_shot"] / r["dit_loop_seconds_per_shot"], 2)
            for r in rows[:-1]}
    if len(rows) > 1:
        fastest = min(rows, key=lambda r: r["dit_loop_seconds_per_shot"])
        result["fastest_dit_loop"] = fastest["backend"]
        result["dit_loop_speedup_of_fastest"] = {
            r["backend"]: round(r["dit_loop_seconds_per_shot"] / fastest["dit_loop_seconds_per_shot"], 2)
            for r in rows if r is not fastest}
    if args.json:
        print(json.dumps(result))
    else:
        for row in rows:
            print(f"-- {row['backend']}")
            print("\n".join(f"{k}: {v}" for k, v in row.items() if k != "backend"))
        print("\n".join(f"{k}: {v}" for k, v in result.items() if k != "rows"))
    return 0


def _matmul_peak(peaks: dict, backend: str, device: str) -> float | None:
    """The matrix-multiply peak of a CPU backend, measured once per run (None on a GPU or for tensorrt)."""
    if device != "cpu" or backend not in ("torch", "onnxruntime"):
        return None
    if backend not in peaks:
        from runtime.flops import matmul_peak_gflops

        peaks[backend] = matmul_peak_gflops(backend)
    return peaks[backend]


# -- model options shared by render, bench, serve and demo ----------------------------------------
def add_model_options(p: argparse.ArgumentParser) -> None:
    """Where the official preset's weights are and which device runs it (the tiny preset ignores these)."""
    p.add_argument("--device", default="cpu", help="torch backend: where the DiT and VAE run, cpu or cuda[:N] "
                   "(bf16 on CUDA; default cpu)")
    p.add_argument("--text-device", default="cpu", help="torch backend: where the text encoder runs (default cpu: "
                   "umT5-XXL in bf16 takes ~11 GB of host memory, encodings are cached per prompt)")
    p.add_argument("--random-weights", action="store_true",
                   help="official preset: random weights in the official geometry (speed measurements; no --weights)")


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
    from runtime.official import reduced

    height, width = (int(v) for v in args.size.lower().split("x")) if args.size else (None, None)
    return reduced(cfg, layers=args.layers, height=height, width=width, vae_channels=args.vae_channels,
                   text_len=args.text_len)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="shotstream", description="ShotStream Runtime: live multi-shot cutscenes")
    ap.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    sub = ap.add_subparsers(dest="command", required=True)

    def model(p, generates: bool = True, backends: bool = False):
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

    r = sub.add_parser("render", help="render a story to a video file")
    model(r)
    r.add_argument("story", nargs="?", help="story JSON (official test-set format: global_caption, shot1..shotN)")
    r.add_argument("--prompt", action="append", help="a shot prompt (repeat for more shots)")
    r.add_argument("--global-caption", default="", help="cast and style, used with --prompt")
    r.add_argument("--chunks", type=int, default=7, help="chunks per shot, 1..7 (7 = 81 frames; default 7)")
    r.add_argument("--prompt-mode", choices=["strict", "lenient"], default="strict",
                   help="unknown words: refused (strict, default) or left out and listed (lenient)")
    r.add_argument("--out", help=f"output video (.mp4, .gif) or folder of PNGs "
                                 f"(default {DEFAULT_OUT_DIR}/<story>-seed<S>.mp4)")
    r.add_argument("--no-out", action="store_true", help="write nothing (figures and frames_sha256 only)")
    r.add_argument("--scale", type=int, default=4, help="nearest-neighbour upscale of the written video (default 4)")
    r.add_argument("--json", action="store_true", help="print one JSON summary line")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=render)

    v = sub.add_parser("vocab", help="print the words and marks prompts may use (the model's vocabulary)")
    model(v, generates=False)
    v.add_argument("--json", action="store_true", help="one JSON line: preset, text_len, vocabulary")
    v.set_defaults(func=vocab)

    m = sub.add_parser("model-info", help="describe a preset's DiT (built on the meta device)")
    m.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="model preset (default tiny)")
    m.add_argument("--state-dict", action="store_true", help="one line per tensor: name<TAB>shape")
    m.set_defaults(func=model_info)

    b = sub.add_parser("bench", help="speed and memory figures of one run, as ratios (in process and through gRPC), "
                                     "beside the official-style reference loop")
    model(b, backends=True)
    b.add_argument("--shots", type=int, default=3, help="shots to time, each way (default 3)")
    b.add_argument("--chunks", type=int, help="chunks per shot, 1..7 (default 7)")
    b.add_argument("--no-grpc", action="store_true", help="skip the time to first frame through a gRPC server")
    b.add_argument("--no-reference", action="store_true", help="skip the reference loop (the official-style PyTorch "
                   "loop on the same weights; it runs on the CPU only)")
    b.add_argument("--json", action="store_true", help="print one JSON line")
    b.add_argument("--cluster", action="store_true", help="instead: aggregate frames/s on a local Ray cluster of 1 "
                   "and 2 one-CPU nodes, first frame through its front door, a node lost mid-shot (extra 'cluster')")
    small = b.add_argument_group("reduced geometry (official preset: CPU runs, parity checks)")
    small.add_argument("--layers", type=int, help="DiT layers (official: 30)")
    small.add_argument("--size", help="frame HEIGHTxWIDTH, multiples of 16 (official: 480x832)")
    small.add_argument("--vae-channels", type=int, help="VAE base channels (official: 96)")
    small.add_argument("--text-len", type=int, help="text tokens (official: 512)")
    b.set_defaults(func=bench)

    for name, (_, help_text) in PLUGINS.items():
        sub.add_parser(name, help=help_text, add_help=False)  # listed in --help; main() hands these to their module
    return ap


def run_plugin(module_name: str, name: str, rest: list[str]) -> int:
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        print(f"shotstream {name}: not available ({e}); install the package's extras", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog=f"shotstream {name}")
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(rest)) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in PLUGINS:  # the plugin parses its own options (argparse would refuse "--x")
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return run_plugin(PLUGINS[argv[0]][0], argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from runtime.errors import ShotStreamError

    try:
        return args.func(args)
    except ShotStreamError as e:
        print(f"shotstream {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
