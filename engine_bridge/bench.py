"""Time to first frame through gRPC, for `shotstream bench`: a real server on 127.0.0.1 (an ephemeral port,
started and stopped here) and one client session, as a game uses them.

Each shot is submitted to an idle session (the previous shot played out and a moment of play passed, as
between two game events) and timed from the SubmitShot call to its first frame in the client's hands. The
frame's own fields attribute that time: `chunk_gen_us` (the first chunk), `setup_us` (the caption, and the
context fill when it could not be prepared), `buffered_us` (the playout buffer); the rest is the network
and the threads between them.
"""
from __future__ import annotations

import statistics
import time

from engine_bridge.client import StorytellerClient
from engine_bridge.testing import running_server
from engine_bridge.wire import pb
from runtime.measure.bench import percentile

CAPTION = "a knight and a wizard, pixel art"
PROMPTS = ("the knight walks in the forest", "the wizard casts a spell in the cave",
           "the knight waves to the wizard in the castle hall")
IDLE_S = 1.0  # between a shot's end and the next request


def grpc_first_frame(engine, shots: int = 4, seed: int = 0, chunks: int = 2, serve=running_server) -> dict:
    """Figures (ms) for shots after the first; the first shot's (whose context cannot be prepared) apart.
    `serve(engine)` is the server to time (default: this process's, as `running_server` starts it)."""
    rows = []
    with serve(engine) as server, StorytellerClient(server.target, timeout=60) as client:
        with client.open_session(seed=seed, caption=CAPTION) as session:
            for i in range(shots):
                time.sleep(IDLE_S)
                started = time.perf_counter()
                shot_id = session.submit_shot(PROMPTS[i % len(PROMPTS)], chunks)
                frame = next(item for item in session.updates(timeout=60)
                             if isinstance(item, pb.Frame) and item.shot_id == shot_id)
                rows.append((time.perf_counter() - started, frame))
                session.collect_shot(shot_id, timeout=60)
    later = rows[1:] or rows
    ttff = [1000 * s for s, _ in later]
    chunk = [f.chunk_gen_us / 1000 for _, f in later]
    first_s, first = rows[0]
    return {
        "grpc_first_frame_ms_p50": round(statistics.median(ttff), 1),
        "grpc_first_frame_ms_p99": round(percentile(ttff, 0.99), 1),
        "grpc_first_chunk_gen_ms_p50": round(statistics.median(chunk), 1),
        "grpc_first_frame_minus_first_chunk_ms_p50": round(statistics.median(t - c for t, c in zip(ttff, chunk)), 1),
        "grpc_first_frame_over_first_chunk": round(statistics.median(t / c for t, c in zip(ttff, chunk)), 3),
        "grpc_setup_ms_p50": round(statistics.median(f.setup_us / 1000 for _, f in later), 1),
        "grpc_buffered_ms_p50": round(statistics.median(f.buffered_us / 1000 for _, f in later), 1),
        "grpc_first_shot_first_frame_ms": round(1000 * first_s, 1),
        "grpc_first_shot_setup_ms": round(first.setup_us / 1000, 1),
    }
