"""`shotstream bench --cluster`: what a local Ray cluster of 1-CPU worker nodes serves through a front door.

For 1 and then 2 worker nodes (a fresh cluster each, one session per node: a session holds one CPU), every
session the cluster admits plays `shots` full shots as fast as possible at once; the aggregate is all
frames received over the wall time from the first submit to the last frame. Then the time to first frame
through the front door beside the single-process server's (engine_bridge.bench, same shots), and a node
lost mid-shot under four real-time sessions (`_node_loss`). Everything binds 127.0.0.1; the clusters are
shut down on the way out.
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
from runtime.measure.bench import machine

PROMPT = "the knight walks in the forest"


def run(engine, shots: int = 3, seed: int = 0) -> dict:
    os.environ.setdefault(LOOPBACK_ENV, "0")
    from engine_bridge.cluster.testing import local_cluster, running_front_door

    config = ClusterConfig(session_cpus=1.0, model=ModelSpec(engine.cfg.name, engine.backend.name))
    serve = partial(running_front_door, cluster=config, limits=Limits(max_sessions=8))
    result = {}
    for workers in (1, 2):
        with local_cluster(workers=workers):
            result[f"aggregate_frames_per_s_{workers}_nodes"] = _aggregate(engine, serve, workers, shots, seed)
    with local_cluster(workers=3) as cluster:
        result.update(_node_loss(engine, cluster, seed))
    result["cluster_speedup_2_over_1_nodes"] = round(
        result["aggregate_frames_per_s_2_nodes"] / result["aggregate_frames_per_s_1_nodes"], 2)
    # The first frame with the session computing on as many threads as the single-process server does, so
    # the two differ by the front door and Ray only (onnxruntime: the engine's pool size; torch: unused).
    same = ClusterConfig(session_cpus=1.0, model=ModelSpec(engine.cfg.name, engine.backend.name,
                                                           threads=getattr(engine.backend, "threads", 1)))
    with local_cluster(workers=1):
        cluster = grpc_first_frame(engine, seed=seed, serve=partial(running_front_door, cluster=same))
    single = grpc_first_frame(engine, seed=seed)
    for name, row in (("cluster", cluster), ("single_process", single)):
        result[f"{name}_first_frame_ms_p50"] = row["grpc_first_frame_ms_p50"]
        result[f"{name}_first_chunk_gen_ms_p50"] = row["grpc_first_chunk_gen_ms_p50"]
        result[f"{name}_first_frame_minus_first_chunk_ms_p50"] = row["grpc_first_frame_minus_first_chunk_ms_p50"]
    result["front_door_added_first_frame_ms_p50"] = round(
        cluster["grpc_first_frame_ms_p50"] - single["grpc_first_frame_ms_p50"], 1)
    result["front_door_added_beyond_first_chunk_ms_p50"] = round(
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


def _node_loss(engine, cluster, seed: int) -> dict:
    """Four sessions (two per node at most) play a full shot in real time on three nodes; after a second
    of it the node holding two of them is removed. Longest pause between two frames, for the sessions that
    lost their node and for the others; whether every session's frames are those of an uninterrupted run."""
    import ray

    from engine_bridge.cluster.actor import unwrap
    from engine_bridge.cluster.testing import running_front_door

    seeds = [seed + i for i in range(4)]
    config = ClusterConfig(session_cpus=0.5, model=ModelSpec(engine.cfg.name, engine.backend.name))
    with running_front_door(engine, config) as server, StorytellerClient(server.target, timeout=120) as client:
        sessions = [client.open_session(seed=s, caption=CAPTION, pacing="real_time") for s in seeds]
        nodes = [unwrap(ray.get(server.registry.directory.node_of.remote(s.id))) for s in sessions]
        doomed = next(n for n in set(nodes) if nodes.count(n) == 2)
        second_in = threading.Barrier(len(sessions) + 1)
        played = [None] * len(sessions)

        def play(i: int) -> None:
            shot_id, arrivals, frames = sessions[i].submit_shot(PROMPT), [], []
            for item in sessions[i].updates(timeout=120):
                if isinstance(item, pb.Frame):
                    arrivals.append(time.perf_counter())
                    frames.append(item.data)
                    if len(frames) == 16:
                        second_in.wait(60)
                elif item.shot_id == shot_id and item.phase == pb.SHOT_PHASE_COMPLETED:
                    played[i] = (arrivals, frames, item.frames_sha256)
                    return

        players = [threading.Thread(target=play, args=(i,)) for i in range(len(sessions))]
        for t in players:
            t.start()
        second_in.wait(120)
        cluster.remove_node(next(n for n in cluster.worker_nodes if n.node_id == doomed))
        for t in players:
            t.join(180)
        for session in sessions:
            session.close()
    pauses, identical = {True: [], False: []}, True
    for i, (arrivals, frames, sent_hash) in enumerate(played):
        pauses[nodes[i] == doomed].append(max(b - a for a, b in zip(arrivals, arrivals[1:])))
        got = hashlib.sha256(b"".join(frames)).hexdigest()
        identical &= len(frames) == engine.cfg.frames_per_shot and got == sent_hash == _uninterrupted(engine, seeds[i])
    return {"node_loss_sessions_lost_with_the_node": len(pauses[True]),
            "node_loss_longest_pause_s_of_those": round(max(pauses[True]), 2),
            "node_loss_longest_pause_s_of_the_others": round(max(pauses[False]), 2),
            "node_loss_every_frame_once_and_identical": identical}


def _uninterrupted(engine, seed: int) -> str:
    story = engine.open_story(seed=seed, global_caption=CAPTION)
    digest = hashlib.sha256(b"".join(f.tobytes() for c in story.generate_shot(PROMPT) for f in c.frames))
    story.close()
    return digest.hexdigest()


def main(args) -> int:
    """`shotstream bench --cluster` (shotstream/bench.py hands its parsed options here)."""
    import json
    import logging

    from runtime.cli_options import load_engine

    logging.getLogger("ray").setLevel(logging.WARNING)
    result = {"machine": machine(), **run(load_engine(args), shots=args.shots, seed=args.seed)}
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()), flush=True)
    return 0
