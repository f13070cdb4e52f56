"""`shotstream bench --cluster`: what a local Ray cluster of 1-CPU worker nodes serves through a front door.

For 1 and then 2 worker nodes (a fresh cluster each, one session per node: a session holds one CPU), every
session the cluster admits plays `shots` full shots as fast as possible at once; the aggregate is all
frames received over the wall time from the first submit to the last frame. Then the time to first frame
through the front door beside the single-process server's (engine_bridge.bench, same shots), and one node
lost mid-shot: the longest pause between two frames of the session that lost it, and whether its frames
are those of the uninterrupted run. Everything binds 127.0.0.1; the clusters are shut down on the way out.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from functools import partial

from engine_bridge.bench import CAPTION, grpc_first_frame
from engine_bridge.cluster.config import LOOPBACK_ENV, ClusterConfig, ModelSpec
from engine_bridge.client import StorytellerClient
from engine_bridge.registry import Limits
from engine_bridge.wire import pb
from runtime.bench import machine

PROMPT = "the knight walks in the forest"


def run(engine, shots: int = 3, seed: int = 0) -> dict:
    os.environ.setdefault(LOOPBACK_ENV, "0")
    from engine_bridge.cluster.testing import local_cluster, running_front_door

    config = ClusterConfig(session_cpus=1.0, model=ModelSpec(engine.cfg.name, engine.backend.name))
    serve = partial(running_front_door, cluster=config, limits=Limits(max_sessions=8))
    result = {}
    for workers in (1, 2):
        with local_cluster(workers=workers) as cluster:
            result[f"aggregate_frames_per_s_{workers}_nodes"] = _aggregate(engine, serve, workers, shots, seed)
            if workers == 2:
                result.update(_node_loss(engine, serve, cluster, seed))
    result["cluster_speedup_2_over_1_nodes"] = round(
        result["aggregate_frames_per_s_2_nodes"] / result["aggregate_frames_per_s_1_nodes"], 2)
    with local_cluster(workers=1):
        cluster = grpc_first_frame(engine, seed=seed, serve=serve)
    single = grpc_first_frame(engine, seed=seed)
    for name, row in (("cluster", cluster), ("single_process", single)):
        result[f"{name}_first_frame_ms_p50"] = row["grpc_first_frame_ms_p50"]
        result[f"{name}_first_chunk_gen_ms_p50"] = row["grpc_first_chunk_gen_ms_p50"]
        result[f"{name}_first_frame_minus_first_chunk_ms_p50"] = row["grpc_first_frame_minus_first_chunk_ms_p50"]
    # A session actor computes on one thread, the single-process server on all: its first chunk is slower.
    # What the front door adds is the rest of the first frame's wait, beside the single process's.
    result["front_door_added_first_frame_ms_p50"] = round(
        cluster["grpc_first_frame_minus_first_chunk_ms_p50"] - single["grpc_first_frame_minus_first_chunk_ms_p50"], 1)
    return result


def _aggregate(engine, serve, sessions: int, shots: int, seed: int) -> float:
    """Frames per second received by `sessions` sessions playing `shots` full shots each at once."""
    counts = [0] * sessions
    with serve(engine) as server, StorytellerClient(server.target, timeout=120) as client:
        opened = [client.open_session(seed=seed + i, caption=CAPTION, pacing="asap") for i in range(sessions)]
        barrier = threading.Barrier(sessions + 1)

        def play(i: int) -> None:
            barrier.wait()
            ids = opened[i].submit_shots([(PROMPT, 0)] * shots)
            for shot_id in ids:
                counts[i] += len(opened[i].collect_shot(shot_id, timeout=120)[0])

        players = [threading.Thread(target=play, args=(i,)) for i in range(sessions)]
        for t in players:
            t.start()
        barrier.wait()
        started = time.perf_counter()
        for t in players:
            t.join()
        seconds = time.perf_counter() - started
        for session in opened:
            session.close()
    return round(sum(counts) / seconds, 1)


def _node_loss(engine, serve, cluster, seed: int) -> dict:
    """One session plays a full shot in real time; its node is removed after a second of it."""
    import ray

    from engine_bridge.cluster.actor import unwrap

    story = engine.open_story(seed=seed, global_caption=CAPTION)
    want = hashlib.sha256(b"".join(f.tobytes() for c in story.generate_shot(PROMPT) for f in c.frames)).hexdigest()
    story.close()
    with serve(engine) as server, StorytellerClient(server.target, timeout=120) as client:
        session = client.open_session(seed=seed, caption=CAPTION, pacing="real_time")
        node = unwrap(ray.get(server.registry.directory.node_of.remote(session.id)))
        shot_id = session.submit_shot(PROMPT)
        arrivals, frames, end = [], [], None
        for item in session.updates(timeout=120):
            if isinstance(item, pb.Frame):
                arrivals.append(time.perf_counter())
                frames.append(item)
                if len(frames) == 16:
                    cluster.remove_node(next(n for n in cluster.worker_nodes if n.node_id == node))
            elif item.shot_id == shot_id and item.phase == pb.SHOT_PHASE_COMPLETED:
                end = item
                break
        session.close()
    got = hashlib.sha256(b"".join(f.data for f in frames)).hexdigest()
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    return {"node_loss_longest_pause_s": round(max(gaps), 2),
            "node_loss_frames_received": len(frames),
            "node_loss_frames_identical": got == want == (end.frames_sha256 if end else None)}


def main(args) -> int:
    """`shotstream bench --cluster` (runtime.cli hands its parsed options here)."""
    import json
    import logging

    from runtime.cli import load_engine

    logging.getLogger("ray").setLevel(logging.WARNING)
    result = {"machine": machine(), **run(load_engine(args), shots=args.shots, seed=args.seed)}
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()), flush=True)
    return 0
