"""Sessions on a real local Ray cluster (a head with no CPU, worker nodes of one CPU each), served by front
doors on 127.0.0.1: the contract tests of the single-process server, unchanged, then what a cluster adds:
spread and cluster-wide admission, a client moving between front doors, a front door restarted, a node lost
mid-shot. One cluster for the module; the node-loss test runs last and leaves the cluster changed."""
from __future__ import annotations

import hashlib
import os
import threading

import grpc
import pytest
from conftest import CAPTION

import test_bridge_contract as contract
from test_bridge_streams import wait_until
from engine_bridge.registry import Limits
from engine_bridge.wire import TERMINAL_PHASES, pb, rpc

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before Ray is imported: a cluster on 127.0.0.1 only
ray = pytest.importorskip("ray", reason="the cluster extra is not installed (pip install -e '.[cluster]')")
pytestmark = pytest.mark.cluster

from engine_bridge.cluster.config import ClusterConfig, ModelSpec  # noqa: E402
from engine_bridge.cluster.testing import add_node, local_cluster, running_front_door  # noqa: E402

# Two sessions per node, and a spare for each (every free slot warm): no open waits for a model to load, however
# busy the machine (on 2 busy cores an actor's start can take over a minute).
CONFIG = ClusterConfig(session_cpus=0.5, spares_per_node=2, model=ModelSpec("tiny", "onnxruntime"))
ASAP = pb.PACING_AS_FAST_AS_POSSIBLE


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(workers=2) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def server(cluster, ort_engine):
    """The front door the contract tests talk to (their own `server` fixture, replaced)."""
    with running_front_door(ort_engine, CONFIG, limits=Limits(max_sessions=8)) as server:
        yield server


stub = contract.stub  # a channel to `server`, this module's

# The contract, unchanged, against the cluster-backed front door.
test_the_stopped_shot_ends_before_the_queued_shots_are_dropped = \
    contract.test_the_stopped_shot_ends_before_the_queued_shots_are_dropped
test_after_a_cut_the_timeline_runs_on_without_the_discarded_frames = \
    contract.test_after_a_cut_the_timeline_runs_on_without_the_discarded_frames
test_a_play_stream_that_owned_its_session_ends_with_closed = \
    contract.test_a_play_stream_that_owned_its_session_ends_with_closed
test_a_play_stream_attached_to_a_session_closed_elsewhere_ends_with_closed = \
    contract.test_a_play_stream_attached_to_a_session_closed_elsewhere_ends_with_closed


# -- helpers ----------------------------------------------------------------------------------------
def expected_hashes(engine, seed: int, shots: list[tuple[str, int]]) -> list[str]:
    """sha256 of each shot's frames in a single process, uninterrupted."""
    story = engine.open_story(seed=seed, global_caption=CAPTION)
    out = []
    for prompt, chunks in shots:
        digest = hashlib.sha256()
        for chunk in story.generate_shot(prompt, chunks):
            for frame in chunk.frames:
                digest.update(frame.tobytes())
        out.append(digest.hexdigest())
    story.close()
    return out


def open_session(stub, seed: int, pacing=ASAP) -> str:
    return stub.OpenSession(pb.OpenSessionRequest(seed=seed, global_caption=CAPTION, pacing=pacing),
                            timeout=120).session_id


def play_shot(stub, server, sid: str, prompt: str, chunks: int) -> tuple[list[pb.Frame], pb.ShotEvent]:
    """Watches through `server`'s front door, submits one shot, returns its frames and its terminal event; the
    stream is then cancelled, and this returns once the front door has seen it end (on busy cores that can take a
    while, and a stream attached before then is refused)."""
    stream = stub.WatchFrames(pb.WatchFramesRequest(session_id=sid), timeout=120)
    shot_id = stub.SubmitShot(pb.SubmitShotRequest(session_id=sid, shots=[pb.ShotSpec(prompt=prompt, chunks=chunks)]),
                              timeout=30).shot_ids[0]
    frames, end = collect(stream, shot_id)
    stream.cancel()
    outbox = server.registry.get(sid).outbox
    wait_until(lambda: not outbox.streaming, 60, "the front door never saw the cancelled stream end")
    return frames, end


def collect(stream, shot_id: int) -> tuple[list[pb.Frame], pb.ShotEvent]:
    frames = []
    for update in stream:
        if update.HasField("frame") and update.frame.shot_id == shot_id:
            frames.append(update.frame)
        if update.HasField("shot") and update.shot.shot_id == shot_id and update.shot.phase in TERMINAL_PHASES:
            return frames, update.shot
    raise AssertionError(f"the stream ended before shot {shot_id} did")


def digest(frames: list[pb.Frame]) -> str:
    h = hashlib.sha256()
    for frame in frames:
        h.update(frame.data)
    return h.hexdigest()


def directory_call(server, method: str, *args):
    from engine_bridge.cluster.actor import unwrap

    return unwrap(ray.get(getattr(server.registry.directory, method).remote(*args), timeout=180))


# -- what a cluster adds ----------------------------------------------------------------------------
def test_sessions_spread_over_the_nodes_and_a_full_cluster_refuses_with_resource_exhausted(stub, server, cluster):
    from engine_bridge.cluster.actor import unwrap
    from engine_bridge.errors import SessionNotFoundError

    sids = [None] * 4
    openers = [threading.Thread(target=lambda i=i: sids.__setitem__(i, open_session(stub, 100 + i))) for i in range(4)]
    for t in openers:
        t.start()
    for t in openers:
        t.join()
    try:
        nodes = [directory_call(server, "node_of", sid) for sid in sids]
        assert sorted(nodes.count(n) for n in set(nodes)) == [2, 2]  # two nodes, two sessions each
        with pytest.raises(grpc.RpcError) as refused:
            open_session(stub, 104)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "no node of the cluster has room" in refused.value.details()
        usage = stub.GetInfo(pb.GetInfoRequest(), timeout=30).usage
        assert usage.open_sessions == 4 and usage.cache_bytes_in_use == 4 * server.registry.session_bytes
        assert directory_call(server, "spares") == ([], [])  # a full cluster has no room for spares
        # A closed session's actor, engine loaded, is its node's spare again, and refuses the old session.
        handle = directory_call(server, "lookup", sids[0])[0]
        closed = sids.pop(0)
        stub.CloseSession(pb.CloseSessionRequest(session_id=closed), timeout=30)
        assert directory_call(server, "spares")[0] == [handle._actor_id.hex()]
        with pytest.raises(SessionNotFoundError, match="no open session"):
            unwrap(ray.get(handle.state.remote(closed), timeout=30))
    finally:
        for sid in sids:
            stub.CloseSession(pb.CloseSessionRequest(session_id=sid), timeout=30)


def test_a_session_opens_on_a_warm_spare_and_its_actor_serves_no_other_session(stub, server):
    """Opening loads no model: each node keeps spare actors, engine loaded, in its free slots, and a session
    takes one. A call naming another session is refused by the actor itself."""
    from engine_bridge.cluster.actor import unwrap
    from engine_bridge.errors import SessionNotFoundError

    assert directory_call(server, "warm_spares", 150.0) == 4  # two a node: 2 nodes with room for 2 sessions each
    warm, _ = directory_call(server, "spares")
    sid = open_session(stub, 9)
    try:
        handle = directory_call(server, "lookup", sid)[0]
        assert handle._actor_id.hex() in warm
        # Its node has room for one more session now, and keeps one spare for it; the other node keeps two.
        assert directory_call(server, "warm_spares", 150.0) == 3
        assert handle._actor_id.hex() not in directory_call(server, "spares")[0]
        with pytest.raises(SessionNotFoundError, match="no open session 'another'"):
            unwrap(ray.get(handle.state.remote("another"), timeout=30))
        frames, end = play_shot(stub, server, sid, "the knight walks", 1)
        assert end.phase == pb.SHOT_PHASE_COMPLETED and len(frames) == end.frames_generated > 0
    finally:
        stub.CloseSession(pb.CloseSessionRequest(session_id=sid), timeout=30)


def test_a_client_moves_to_another_front_door_mid_story(stub, server, ort_engine):
    shots = [("the knight walks", 2), ("the dragon flies", 3)]
    want = expected_hashes(ort_engine, 7, shots)
    sid = open_session(stub, 7)
    frames, end = play_shot(stub, server, sid, *shots[0])
    with running_front_door(ort_engine, CONFIG) as other, grpc.insecure_channel(other.target) as channel:
        moved = rpc.StorytellerStub(channel)
        later, later_end = play_shot(moved, other, sid, *shots[1])
        moved.CloseSession(pb.CloseSessionRequest(session_id=sid), timeout=30)
    assert [digest(frames), digest(later)] == [end.frames_sha256, later_end.frames_sha256] == want
    assert [f.story_frame for f in frames + later] == list(range(len(frames) + len(later)))


def test_a_restarted_front_door_serves_the_session_again(ort_engine, server):
    shots = [("the wizard casts a spell", 2), ("the knight walks", 2)]
    want = expected_hashes(ort_engine, 8, shots)
    with running_front_door(ort_engine, CONFIG) as first, grpc.insecure_channel(first.target) as channel:
        stub = rpc.StorytellerStub(channel)
        sid = open_session(stub, 8)
        _, end = play_shot(stub, first, sid, *shots[0])
        hold = threading.Event()
        stream = stub.Play(contract.play(pb.PlayRequest(attach=pb.AttachSession(session_id=sid)), hold=hold),
                           timeout=60)
        assert next(stream).HasField("opened")
        first.stop()  # its stream ends with UNAVAILABLE; the session lives on in the cluster
        hold.set()
        with pytest.raises(grpc.RpcError) as ended:
            list(stream)
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    with running_front_door(ort_engine, CONFIG) as again, grpc.insecure_channel(again.target) as channel:
        stub = rpc.StorytellerStub(channel)
        _, later_end = play_shot(stub, again, sid, *shots[1])
        stub.CloseSession(pb.CloseSessionRequest(session_id=sid), timeout=30)
    assert [end.frames_sha256, later_end.frames_sha256] == want


def test_the_nodes_run_under_a_host_process_that_reports_a_bad_request_and_keeps_serving(cluster):
    """The local cluster's nodes are started by a spawned process of their own (never forked beside this
    process's gRPC threads); a request it cannot do is raised here with its reason, and it serves on."""
    import ray

    from engine_bridge.cluster.nodehost import HostedNode

    assert cluster._proc.is_alive() and cluster._proc.pid != os.getpid()
    nodes = cluster.worker_nodes
    with pytest.raises(RuntimeError, match="remove: KeyError"):
        cluster.remove_node(HostedNode("no-such-node"))
    assert cluster.worker_nodes == nodes
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert {n.node_id for n in nodes} <= alive


def test_a_front_door_with_other_placement_settings_refuses_to_serve(server, ort_engine):
    from engine_bridge.cluster.frontdoor import ClusterRegistry

    with pytest.raises(ValueError, match="places sessions by"):
        ClusterRegistry(ort_engine, Limits(max_sessions=8), cluster=ClusterConfig(session_cpus=1.0))


def test_a_lost_node_costs_its_sessions_a_pause_and_no_frame(stub, server, cluster, ort_engine):
    """Last in the module: it removes a node. Four sessions on three nodes play a long shot; the node with two
    of them goes mid-shot. Those two resume on the others with every frame once and the frames of an
    uninterrupted run; the other two are not interrupted. Each client stops reading a second into its shot
    until the node is gone: as-fast-as-possible pacing holds a worker whose client is not reading (real-time
    pacing would drop its late frames, by design, however slow the machine made the others)."""
    add_node(cluster, num_cpus=1)
    assert directory_call(server, "warm_spares", 150.0) == 6  # the new node's spares too: every free slot warm
    shot = ("the knight walks", 7)
    seeds = [20, 21, 22, 23]
    sids = [open_session(stub, seed, ASAP) for seed in seeds]
    nodes = [directory_call(server, "node_of", sid) for sid in sids]
    doomed = next(n for n in set(nodes) if nodes.count(n) == 2)
    results, streams, started = {}, [], threading.Barrier(len(sids) + 1)

    def watch(i: int, sid: str) -> None:
        stream = stub.WatchFrames(pb.WatchFramesRequest(session_id=sid), timeout=120)
        streams.append(stream)
        shot_id = stub.SubmitShot(pb.SubmitShotRequest(session_id=sid, shots=[pb.ShotSpec(prompt=shot[0],
                                                                                         chunks=shot[1])]),
                                  timeout=30).shot_ids[0]
        frames = []
        for update in stream:
            if update.HasField("frame"):
                frames.append(update.frame)
                if len(frames) == 16:
                    started.wait(60)  # every session is a second into its shot
            if update.HasField("shot") and update.shot.shot_id == shot_id and update.shot.phase in TERMINAL_PHASES:
                results[i] = (frames, update.shot)
                return

    watchers = [threading.Thread(target=watch, args=(i, sid)) for i, sid in enumerate(sids)]
    try:
        for t in watchers:
            t.start()
        started.wait(120)
        node = next(n for n in cluster.worker_nodes if n.node_id == doomed)
        cluster.remove_node(node)
        for t in watchers:
            t.join(180)
        for stream in streams:
            stream.cancel()
        for i, sid in enumerate(sids):
            frames, end = results[i]
            assert end.phase == pb.SHOT_PHASE_COMPLETED and end.frames_dropped == 0
            assert [f.frame_index for f in frames] == list(range(81))  # each frame once, in order
            assert [f.story_frame for f in frames] == list(range(81))
            assert digest(frames) == end.frames_sha256 == expected_hashes(ort_engine, seeds[i], [shot])[0]
            assert directory_call(server, "node_of", sid) != doomed
    finally:  # the next test fills the cluster: a failure here must not leave these sessions open
        for stream in streams:
            stream.cancel()
        for sid in sids:
            try:
                stub.CloseSession(pb.CloseSessionRequest(session_id=sid), timeout=30)
            except grpc.RpcError:
                pass


def test_a_session_whose_node_is_lost_with_no_room_elsewhere_ends_with_unavailable(stub, server, cluster):
    """After the node-loss test: the cluster is filled, then a node goes; its sessions have nowhere to go. The
    client stops reading 8 frames in: as-fast-as-possible pacing then holds the worker mid-shot until the node
    is gone, however long removing it takes."""
    sids = []
    with pytest.raises(grpc.RpcError) as full:
        while len(sids) < 8:
            sids.append(open_session(stub, 40 + len(sids), ASAP))
    assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    stream = stub.WatchFrames(pb.WatchFramesRequest(session_id=sids[0]), timeout=120)
    stub.SubmitShot(pb.SubmitShotRequest(session_id=sids[0], shots=[pb.ShotSpec(prompt="the knight walks", chunks=7)]),
                    timeout=30)
    frames = 0
    for update in stream:
        frames += update.HasField("frame")
        if frames == 8:
            break
    node = directory_call(server, "node_of", sids[0])
    cluster.remove_node(next(n for n in cluster.worker_nodes if n.node_id == node))
    with pytest.raises(grpc.RpcError) as lost:
        list(stream)
    assert lost.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "no node of the cluster has room" in lost.value.details()
    for sid in sids[1:]:
        try:
            stub.CloseSession(pb.CloseSessionRequest(session_id=sid), timeout=30)
        except grpc.RpcError as gone:  # the other session of the lost node had nowhere to go either
            assert gone.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE)
