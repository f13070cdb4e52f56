"""`shotstream bench`: speed and memory figures of one run, reported as ratios so a noisy shared machine
still gives comparable numbers (real-time factor, first frame vs whole shot, allocations per chunk).

Time to first frame, in process: from `generate_shot` to its first chunk, for shots after the first, with the
next shot's context prepared between shots (`Story.prepare_next`, as a server session does while idle), next
to the first chunk's own generation time. The same through gRPC comes from `engine_bridge.bench` (the CLI
adds it; this module never imports grpc)."""
from __future__ import annotations

import resource
import statistics
import time
import tracemalloc


def run_bench(preset: str, backend: str, shots: int = 3, seed: int = 0, engine=None) -> dict:
    from runtime import Engine

    t0 = time.perf_counter()
    engine = engine or Engine.load(preset, backend)
    load_s = time.perf_counter() - t0
    info = engine.info
    story = engine.open_story(seed=seed, global_caption="a knight and a wizard, pixel art")
    addresses = story.buffer_addresses()
    prompts = ["the knight walks in the forest", "the wizard casts a spell in the cave",
               "the knight waves to the wizard in the castle hall"]
    chunk_s, first_frame_s, first_chunk_s, shot_s, alloc_peaks = [], [], [], [], []
    for i in range(shots):
        story.prepare_next()  # what a session does while idle (nothing before the first shot)
        started = time.perf_counter()
        it = story.generate_shot(prompts[i % len(prompts)])
        for b, chunk in enumerate(_traced(it, alloc_peaks)):
            if b == 0:
                first_frame_s.append(time.perf_counter() - started)
                first_chunk_s.append(chunk.gen_seconds)
            chunk_s.append((chunk.gen_seconds, len(chunk.frames)))
        shot_s.append(time.perf_counter() - started)
    later = slice(1, None) if shots > 1 else slice(None)
    steady = chunk_s[1:] if len(chunk_s) > 1 else chunk_s
    video_s = sum(n for _, n in chunk_s) / info.fps
    per_chunk_ratio = [n / info.fps / s for s, n in steady]
    return {
        "preset": preset, "backend": engine.backend.name, "shots": shots, "resolution": [info.height, info.width],
        "load_seconds": round(load_s, 2),
        "realtime_factor": round(video_s / sum(shot_s), 2),
        "worst_chunk_realtime_factor": round(min(per_chunk_ratio), 2),
        "chunk_ms_p50": round(1000 * statistics.median(s for s, _ in steady), 2),
        "chunk_ms_max": round(1000 * max(s for s, _ in steady), 2),
        "first_frame_ms_p50": round(1000 * statistics.median(first_frame_s[later]), 2),
        "first_chunk_gen_ms_p50": round(1000 * statistics.median(first_chunk_s[later]), 2),
        "first_frame_over_first_chunk": round(statistics.median(
            f / c for f, c in zip(first_frame_s[later], first_chunk_s[later])), 3),
        "first_shot_first_frame_ms": round(1000 * first_frame_s[0], 2),
        "first_frame_over_whole_shot": round(statistics.median(f / s for f, s in zip(first_frame_s, shot_s)), 3),
        # Peak Python-heap growth while one steady chunk (not a shot's first) is generated: the yielded
        # FrameChunk and its view; every array is preallocated.
        "python_heap_peak_bytes_per_steady_chunk": max(alloc_peaks) if alloc_peaks else None,
        "buffers_never_reallocated": addresses == story.buffer_addresses(),
        "session_cache_bytes": info.session_cache_bytes,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "dit_calls_per_full_shot": 1 + 5 * info.max_chunks_per_shot,
    }


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

