"""Frame streams under stress, against the real runtime: a client that disconnects mid-shot frees its
session's work within one chunk; a slow consumer pauses only its own session (as fast as possible) or
loses its oldest frames, counted (real time)."""
from __future__ import annotations

import time

import grpc
import pytest
from conftest import CAPTION

from engine_bridge.client import StorytellerClient
from engine_bridge.testing import running_server
from engine_bridge.wire import TERMINAL_PHASES, pb, rpc

ASAP = pb.PACING_AS_FAST_AS_POSSIBLE


@pytest.fixture(scope="module")
def server(ort_engine):
    with running_server(ort_engine) as server:
        yield server


def wait_until(condition, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, what
        time.sleep(0.01)
    return time.monotonic() - started


def steady(read, timeout: float, quiet: float = 0.5):
    """Waits until read() stops changing for `quiet` seconds; returns its value."""
    deadline, value, since = time.monotonic() + timeout, read(), time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "never settled"
        time.sleep(0.05)
        if (now := read()) != value:
            value, since = now, time.monotonic()
    return value


def test_a_client_that_disconnects_mid_shot_frees_its_work_within_one_chunk(server):
    stub = rpc.StorytellerStub(grpc.insecure_channel(server.target))
    opened = stub.OpenSession(pb.OpenSessionRequest(seed=30, global_caption=CAPTION, pacing=ASAP,
                                                    buffer_frames=256), timeout=10)
    session = server.registry.get(opened.session_id)
    stream = stub.WatchFrames(pb.WatchFramesRequest(session_id=opened.session_id))
    stub.SubmitShot(pb.SubmitShotRequest(session_id=opened.session_id, shots=[
        pb.ShotSpec(prompt="the knight walks", chunks=7)] * 3), timeout=10)
    frames = 0
    for update in stream:
        frames += update.HasField("frame")
        if frames == 12:  # the first chunk is done and the model is on the next ones
            stream.cancel()
            break
    freed_in = wait_until(lambda: not session.busy, 30, "the session kept working after its client left")
    assert session.chunks_at_last_stop is not None
    assert session.chunks_generated - session.chunks_at_last_stop <= 1
    assert session.chunks_generated < 21  # the queued shots never ran
    print(f"\ndisconnect -> idle in {freed_in * 1000:.0f} ms, "
          f"{session.chunks_generated - session.chunks_at_last_stop} chunk(s) after the stop")

    # The session stays open: a new stream first gets the lifecycle events it missed, then new work.
    again = stub.WatchFrames(pb.WatchFramesRequest(session_id=opened.session_id), timeout=60)
    queued = stub.SubmitShot(pb.SubmitShotRequest(session_id=opened.session_id, shots=[
        pb.ShotSpec(prompt="the knight walks", chunks=1)]), timeout=10)
    ends = {}
    for update in again:
        if update.HasField("shot") and update.shot.phase in TERMINAL_PHASES:
            ends[update.shot.shot_id] = update.shot.phase
            if update.shot.shot_id == queued.shot_ids[0]:
                break
    assert sorted(ends) == [1, 2, 3, 4]  # shot 1 was cut short (or had just ended), 2 and 3 never ran whole
    assert ends[3] == pb.SHOT_PHASE_DROPPED and ends[4] == pb.SHOT_PHASE_COMPLETED
    again.cancel()
    stub.CloseSession(pb.CloseSessionRequest(session_id=opened.session_id), timeout=10)


def test_a_slow_consumer_pauses_only_its_own_session(server):
    with StorytellerClient(server.target, timeout=30) as client:
        slow = client.open_session(seed=31, caption=CAPTION, pacing="asap", buffer_frames=8, queue_frames=1)
        fast = client.open_session(seed=32, caption=CAPTION, pacing="asap")
        try:
            slow_ids = slow.submit_shots([("the knight walks", 7)])
            slow_updates = slow.updates(timeout=30)
            first = next(slow_updates)  # then the game stops reading this session
            state = server.registry.get(slow.id)
            # Paused: generation stands still with the buffer full. On loaded cores a chunk can take longer than
            # steady's quiet time, so standing still alone is not yet paused.
            deadline = time.monotonic() + 60
            while (paused_at := steady(lambda: state.chunks_generated, 30)) < 7 and state.outbox.pending < 8:
                assert time.monotonic() < deadline, f"never paused with a full buffer ({state.outbox.pending} frames)"
            assert paused_at < 7 and state.outbox.pending >= 8  # backpressure: its buffer is full

            fast_ids = fast.submit_shots([("the dragon flies above the castle", 7)])
            for shot_id in fast_ids:
                frames, end = fast.collect_shot(shot_id, timeout=120)
                assert end.phase == pb.SHOT_PHASE_COMPLETED and len(frames) == 81
            assert state.chunks_generated == paused_at  # still paused while the other session ran

            rest = [first, *slow_updates_until_done(slow_updates, slow_ids[-1])]
            ends = [u for u in rest if isinstance(u, pb.ShotEvent) and u.phase in TERMINAL_PHASES]
            assert [e.phase for e in ends] == [pb.SHOT_PHASE_COMPLETED]
            assert sum(e.frames_dropped for e in ends) == 0  # backpressure drops nothing
            assert sum(isinstance(u, pb.Frame) for u in rest) == 81
        finally:
            slow.close()
            fast.close()


def slow_updates_until_done(updates, last_shot: int):
    for item in updates:
        yield item
        if isinstance(item, pb.ShotEvent) and item.shot_id == last_shot and item.phase in TERMINAL_PHASES:
            return


def test_real_time_drops_the_oldest_frames_of_a_slow_consumer_and_counts_them(server):
    # A small HTTP/2 window, so that what the consumer has not read waits in the server's buffer.
    channel = grpc.insecure_channel(server.target, options=[("grpc.http2.bdp_probe", 0),
                                                            ("grpc.http2.lookahead_bytes", 16 * 1024)])
    stub = rpc.StorytellerStub(channel)
    opened = stub.OpenSession(pb.OpenSessionRequest(seed=33, global_caption=CAPTION, buffer_frames=4,
                                                    pacing=pb.PACING_REAL_TIME), timeout=10)
    stream = stub.WatchFrames(pb.WatchFramesRequest(session_id=opened.session_id), timeout=60)
    stub.SubmitShot(pb.SubmitShotRequest(session_id=opened.session_id, shots=[
        pb.ShotSpec(prompt="the knight walks", chunks=3)]), timeout=10)
    received, end = [], None
    for update in stream:
        if update.HasField("frame"):
            received.append(update.frame)
            time.sleep(0.2)  # a 5 fps consumer of a 16 fps story
        elif update.HasField("shot") and update.shot.phase in TERMINAL_PHASES:
            end = update.shot
            break
    stream.cancel()
    stub.CloseSession(pb.CloseSessionRequest(session_id=opened.session_id), timeout=10)
    assert end.phase == pb.SHOT_PHASE_COMPLETED and end.frames_generated == 33
    assert end.frames_dropped > 0 and sum(f.dropped_before for f in received) == end.frames_dropped
    assert len(received) + end.frames_dropped + end.frames_discarded == 33
    assert received[-1].frame_index == 32  # the newest frames still arrive: the stream stays live
    indices = [f.frame_index for f in received]
    assert indices == sorted(indices)
    print(f"\nreal time, 5 fps consumer: {len(received)} sent, {end.frames_dropped} dropped")
