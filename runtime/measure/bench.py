"""`shotstream bench`: speed and memory of one run, as figures a user can compare across machines.

Reported: frames per second with the VAE decode included (`fps`) and with the DiT alone (`dit_fps`: frames
over the time spent in the DiT graphs), the real-time factor against the model's 16 fps, chunk milliseconds
p50/p99, peak device memory (CUDA) or peak resident memory (CPU), and the memory estimate made before loading
(official preset). The first shot includes one-time work (CUDA graph capture, warm-up); `first_shot_seconds`
reports it apart and the steady figures leave it out when there are more.

Time to first frame, in process: from `generate_shot` to its first chunk, for shots after the first, with the
next shot's context prepared between shots (`Story.prepare_next`, as a server session does while idle), next
to the first chunk's own generation time. The same through gRPC comes from `engine_bridge.bench` (the CLI
adds it; this module never imports grpc).

The DiT loop alone (`dit_loop_seconds_per_shot`: caption projection, context fill and the 34 chunk calls,
without the VAE) is set against the work it does (`runtime.measure.flops`) and a matrix-multiply peak measured in the
same run (`achieved_gflops`, `of_matmul_peak`), and against `reference_row`: the official-style loop
(`runtime.measure.reference_loop`) on the same weights and geometry, timed in the same process."""
from __future__ import annotations

import os
import platform
import resource
import statistics
import time
import tracemalloc

import numpy as np

from runtime.backends.spec import DIT_LOOP


CAPTION = "a knight and a wizard, pixel art"
PROMPTS = ["the knight walks in the forest", "the wizard casts a spell in the cave",
           "the knight waves to the wizard in the castle hall"]


def significant(x: float, digits: int = 4) -> float:
    """`x` to `digits` significant figures: a figure derived from it keeps its precision however fast or slow the
    machine (rounding to fixed decimals made a slow machine's 0.8 GFLOP/s a 5% error)."""
    return float(f"{x:.{digits}g}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_bench(engine, shots: int = 3, seed: int = 0, *, device: str = "cpu", text_device: str = "cpu",
              random_weights: bool = False, chunks: int | None = None) -> dict:
    """Time `shots` shots of one story on a loaded engine (a reduced official one for CPU runs and tests)."""
    import torch

    cuda = device.startswith("cuda")
    info = engine.info
    story = engine.open_story(seed=seed, global_caption=CAPTION)
    addresses = story.buffer_addresses()
    engine.backend.seconds = {}
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    chunk_s, first_frame_s, first_chunk_s, shot_s, shot_frames, alloc_peaks, dit_s = [], [], [], [], [], [], []
    for i in range(shots):
        story.prepare_next()  # what a session does while idle (nothing before the first shot)
        started, frames = time.perf_counter(), 0
        it = story.generate_shot(PROMPTS[i % len(PROMPTS)], chunks=chunks)
        for b, chunk in enumerate(it):
            if b == 0:
                first_frame_s.append(time.perf_counter() - started)
                first_chunk_s.append(chunk.gen_seconds)
            chunk_s.append((chunk.gen_seconds, len(chunk.frames)))
            frames += len(chunk.frames)
        shot_s.append(time.perf_counter() - started)
        shot_frames.append(frames)
        dit_s.append(sum(engine.backend.seconds.get(g, 0.0) for g in DIT_LOOP) - sum(dit_s))
    if not cuda:  # one more shot, untimed: tracing the heap slows Python-side work (torch eager most of all)
        story.prepare_next()
        for _ in _traced(story.generate_shot(PROMPTS[shots % len(PROMPTS)], chunks=chunks), alloc_peaks):
            pass
    steady = slice(1, None) if shots > 1 else slice(None)
    frames_steady, seconds_steady = sum(shot_frames[steady]), sum(shot_s[steady])
    dit_steady = sum(dit_s[steady])
    chunk_steady = chunk_s[1:] if len(chunk_s) > 1 else chunk_s
    chunk_ms = [1000 * s for s, _ in chunk_steady]
    result = {
        "preset": info.preset, "model": info.model, "random_weights": bool(engine.bundle.manifest.get("random_weights")), "backend": engine.backend.name, "device": _device_name(device),
        "dtype": str(getattr(engine.backend, "dtype", "float32")).replace("torch.", ""),
        "shots": shots, "resolution": [info.height, info.width], "layers": engine.cfg.dit.num_layers,
        "first_shot_seconds": round(shot_s[0], 3),
        "fps": round(frames_steady / seconds_steady, 2),
        "dit_fps": round(frames_steady / dit_steady, 2) if dit_steady else None,
        "realtime_factor": round(frames_steady / info.fps / seconds_steady, 2),
        "worst_chunk_realtime_factor": round(min(n / info.fps / s for s, n in chunk_steady), 2),
        "chunk_ms_p50": round(statistics.median(chunk_ms), 2), "chunk_ms_p99": round(percentile(chunk_ms, 0.99), 2),
        "first_frame_ms_p50": round(1000 * statistics.median(first_frame_s[steady]), 2),
        "first_frame_ms_p99": round(1000 * percentile(first_frame_s[steady], 0.99), 2),
        "dit_loop_seconds_per_shot": significant(statistics.median(dit_s[steady])),
        "first_chunk_gen_ms_p50": round(1000 * statistics.median(first_chunk_s[steady]), 2),
        "first_frame_over_first_chunk": round(statistics.median(
            f / c for f, c in zip(first_frame_s[steady], first_chunk_s[steady])), 3),
        "first_shot_first_frame_ms": round(1000 * first_frame_s[0], 2),
        "graph_seconds": {g: round(s, 3) for g, s in sorted(engine.backend.seconds.items())},
        "first_frame_over_whole_shot": round(statistics.median(f / s for f, s in zip(first_frame_s, shot_s)), 3),
        # Peak Python-heap growth while one steady chunk (not a shot's first) is generated: the yielded
        # FrameChunk and its view; every array is preallocated.
        "python_heap_peak_bytes_per_steady_chunk": max(alloc_peaks) if alloc_peaks else None,
        "buffers_never_reallocated": addresses == story.buffer_addresses(),
        "session_cache_bytes": info.session_cache_bytes,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_device_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
        "dit_calls_per_full_shot": 5 * info.max_chunks_per_shot,  # fill, 4 steps a chunk, clean passes but the last
    }
    if engine.cfg.vae.kind != "tiny":
        from runtime.official.loader import memory_estimate

        est = memory_estimate(engine.cfg, device, text_device, random_weights)
        result["memory_estimate_mb"] = {k: round(v / 2**20, 1) for k, v in est.items()}
    return result


def reference_row(engine, shots: int = 3, seed: int = 0, chunks: int | None = None) -> dict:
    """The official-style loop (runtime.measure.reference_loop) on `engine`'s weights: the same DiT work as a runtime
    shot (caption projection, context fill, 4 steps and a clean pass per chunk), timed shot by shot.

    Its shots read a zero context under one caption (a story's first shot); the runtime's later shots
    project two or three captions for their context, so the comparison, if anything, favours the reference.
    Raises ValueError where the weights are not fp32 on the CPU (the reference runs only there)."""
    from runtime.measure.reference_loop import ReferenceLoop

    loop = ReferenceLoop(engine)
    story = engine.open_story(seed=seed, global_caption=CAPTION)
    context = np.zeros((engine.cfg.shot.context_frames,) + engine.cfg.latent_shape, np.float32)
    rng = np.random.Generator(np.random.PCG64(seed))
    seconds = []
    for i in range(shots + 1):  # the first is a warm-up, as the runtime's first shot is left out
        caption = engine.encode_text(story.check_prompt(PROMPTS[i % len(PROMPTS)], 0).text)
        seconds.append(loop.timed_shot(context, [0] * len(context), [caption], 1, rng, chunks)[1])
    return {"backend": "reference_loop", "dit_loop_seconds_per_shot": significant(statistics.median(seconds[1:])),
            "dit_loop_seconds_per_shot_min": round(min(seconds[1:]), 4), "shots": shots,
            "what": "official-style PyTorch loop: dict caches grown by concatenation, cross-attention cached per shot"}


def add_work_figures(row: dict, cfg, peak_gflops: float | None, chunks: int | None = None) -> dict:
    """`row` with the DiT loop's GFLOP per shot (the reference loop's on the official schedule), its achieved
    GFLOP/s and the share of `peak_gflops`."""
    from runtime.measure.flops import dit_loop_flops

    gflop = dit_loop_flops(cfg, chunks, official=row["backend"] == "reference_loop") / 1e9
    achieved = gflop / row["dit_loop_seconds_per_shot"]
    return dict(row, dit_loop_gflop_per_shot=round(gflop, 3), achieved_gflops=significant(achieved),
                matmul_peak_gflops=significant(peak_gflops) if peak_gflops else None,
                of_matmul_peak=significant(achieved / peak_gflops, 3) if peak_gflops else None)


def machine() -> dict:
    """This machine in words: CPU model, logical cores, OS, and the widest vector instructions torch uses on it
    (`isa`: AVX2 or AVX512, for example; the same EPYC name has come with either, at 2x apart in matmul peak)."""
    name = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return {"cpu": name, "cores": os.cpu_count(), "os": platform.system(),
            "isa": torch.backends.cpu.get_cpu_capability()}


def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device


def _traced(iterator, peaks: list[int]):
    """Yield a shot's chunks, recording the peak Python-heap growth while each one after the first is made."""
    first = True
    while True:
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        try:
            chunk = next(iterator)
        except StopIteration:
            tracemalloc.stop()
            return
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        if not first:
            peaks.append(peak)
        first = False
        yield chunk
