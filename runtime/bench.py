"""`shotstream bench`: speed and memory figures of one run, reported as ratios so a noisy shared machine
still gives comparable numbers (real-time factor, first frame vs whole shot, allocations per chunk)."""
from __future__ import annotations

import resource
import statistics
import time
import tracemalloc



def run_bench(preset: str, backend: str, shots: int = 3, seed: int = 0) -> dict:
    from runtime import Engine

    t0 = time.perf_counter()
    engine = Engine.load(preset, backend)
    load_s = time.perf_counter() - t0
    info = engine.info
    story = engine.open_story(seed=seed, global_caption="a knight and a wizard, pixel art")
    addresses = story.buffer_addresses()
    prompts = ["the knight walks in the forest", "the wizard casts a spell in the cave",
               "the knight waves to the wizard in the castle hall"]
    chunk_s, first_frame_s, shot_s, alloc_peaks = [], [], [], []
    for i in range(shots):
        started = time.perf_counter()
        it = story.generate_shot(prompts[i % len(prompts)])
        for b, chunk in enumerate(_traced(it, alloc_peaks)):
            if b == 0:
                first_frame_s.append(time.perf_counter() - started)
            chunk_s.append((chunk.gen_seconds, len(chunk.frames)))
        shot_s.append(time.perf_counter() - started)
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
        "first_frame_ms_p50": round(1000 * statistics.median(first_frame_s), 2),
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

