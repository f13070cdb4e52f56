"""`shotstream bench`: speed and memory figures of one run, per backend, beside the official-style reference loop;
the time to first frame through a real gRPC server is measured by the bridge (`engine_bridge.bench`)."""
from __future__ import annotations

import argparse
import json
import time

from runtime.cli_options import UsageError, add_preset_options, backend_for, preset_config

HELP = "speed and memory figures of one run, as ratios (in process and through gRPC), beside the official-style reference loop"


def add_arguments(b: argparse.ArgumentParser) -> None:
    add_preset_options(b, backends=True)
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


def run(args) -> int:
    """Each backend asked for in turn (its engine loaded, timed, released), then the reference loop on the
    weights of the last CPU engine; one JSON object with a row each and the ratios between them."""
    from runtime import Engine
    from runtime.measure.bench import add_work_figures, machine, reference_row, run_bench, significant

    if args.cluster:  # the scale-out figures instead (needs the cluster extra)
        from engine_bridge.cluster.bench import main as cluster_bench

        return cluster_bench(args)
    cfg = preset_config(args)
    backends = args.backend or [backend_for(args)]
    if len(set(backends)) != len(backends):
        raise UsageError(f"each --backend once, got {backends}")
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
            from engine_bridge.bench import grpc_first_frame

            row.update(grpc_first_frame(engine, shots=args.shots, seed=args.seed))
        rows.append(add_work_figures(row, engine.cfg, _matmul_peak(peaks, name, args.device), args.chunks))
        if not args.no_reference and args.device == "cpu":
            reference = engine
    result = {"machine": machine(), "rows": rows}
    if reference is not None:
        ref = reference_row(reference, shots=args.shots, seed=args.seed, chunks=args.chunks)
        rows.append(add_work_figures(ref, reference.cfg, _matmul_peak(peaks, "torch", "cpu"), args.chunks))
        result["dit_loop_speedup_over_reference"] = {
            r["backend"]: significant(ref["dit_loop_seconds_per_shot"] / r["dit_loop_seconds_per_shot"], 3)
            for r in rows[:-1]}
    if len(rows) > 1:
        fastest = min(rows, key=lambda r: r["dit_loop_seconds_per_shot"])
        result["fastest_dit_loop"] = fastest["backend"]
        result["dit_loop_speedup_of_fastest"] = {
            r["backend"]: significant(r["dit_loop_seconds_per_shot"] / fastest["dit_loop_seconds_per_shot"], 3)
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
        from runtime.measure.flops import matmul_peak_gflops

        peaks[backend] = matmul_peak_gflops(backend)
    return peaks[backend]
