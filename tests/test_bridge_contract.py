"""The contract kept to the letter, through a real server on 127.0.0.1: events in story order after a cut or
cancel, a timeline without gaps after a cut, and Play streams that end with their `closed` update."""
from __future__ import annotations

import threading
import time

import grpc
import pytest
from conftest import CAPTION

from engine_bridge.registry import Limits
from engine_bridge.testing import running_server
from engine_bridge.wire import TERMINAL_PHASES, pb, rpc

ASAP = pb.PACING_AS_FAST_AS_POSSIBLE
# A small HTTP/2 window: what the test has not read waits in the server's playout buffer.
SMALL_WINDOW = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 16 * 1024)]


@pytest.fixture(scope="module")
def server(ort_engine):
    with running_server(ort_engine, limits=Limits(max_sessions=4)) as server:
        yield server


@pytest.fixture
def stub(server):
    with grpc.insecure_channel(server.target, options=SMALL_WINDOW) as channel:
        yield rpc.StorytellerStub(channel)


def shots(*specs):
    return [pb.ShotSpec(prompt=prompt, chunks=chunks) for prompt, chunks in specs]


def run_until(stream, shot_id: int) -> list[pb.StoryUpdate]:
    """The stream's updates up to shot `shot_id`'s terminal event."""
    out = []
    for update in stream:
        out.append(update)
        if update.HasField("shot") and update.shot.shot_id == shot_id and update.shot.phase in TERMINAL_PHASES:
            return out
    raise AssertionError(f"the stream ended before shot {shot_id} did")


def stop_mid_shot(stub, cut: bool) -> tuple[list[pb.StoryUpdate], list[pb.StoryUpdate], int]:
    """Queues a long shot and two more, lets the buffer fill, then cuts to a short shot (or cancels and
    queues it). Returns the updates before and after the stop, and the short shot's id."""
    opened = stub.OpenSession(pb.OpenSessionRequest(seed=40, global_caption=CAPTION, pacing=ASAP,
                                                    buffer_frames=4), timeout=10)
    sid = opened.session_id
    stream = stub.WatchFrames(pb.WatchFramesRequest(session_id=sid), timeout=120)
    stub.SubmitShot(pb.SubmitShotRequest(session_id=sid, shots=shots(("the knight walks", 7),
                                                                     ("the knight walks", 2),
                                                                     ("the dragon flies", 2))), timeout=10)
    before = []
    for update in stream:
        before.append(update)
        if update.HasField("frame"):
            break
    time.sleep(1.0)  # not reading: the playout buffer fills behind the first frame
    if cut:
        last = stub.SubmitShot(pb.SubmitShotRequest(session_id=sid, shots=shots(("a dragon attacks", 1)),
                                                    policy=pb.SHOT_POLICY_CUT), timeout=10).shot_ids[0]
    else:
        stub.SubmitShot(pb.SubmitShotRequest(session_id=sid, policy=pb.SHOT_POLICY_CUT), timeout=10)
        last = stub.SubmitShot(pb.SubmitShotRequest(session_id=sid, shots=shots(("a dragon attacks", 1))),
                               timeout=10).shot_ids[0]
    after = run_until(stream, last)
    stream.cancel()
    stub.CloseSession(pb.CloseSessionRequest(session_id=sid), timeout=10)
    return before, after, last


def lifecycle(updates) -> list[tuple[int, int]]:
    return [(u.shot.shot_id, u.shot.phase) for u in updates if u.HasField("shot")]


@pytest.mark.parametrize("cut", [True, False], ids=["cut", "cancel"])
def test_the_stopped_shot_ends_before_the_queued_shots_are_dropped(stub, cut):
    before, after, last = stop_mid_shot(stub, cut)
    stopped = pb.SHOT_PHASE_CUT if cut else pb.SHOT_PHASE_CANCELLED
    assert lifecycle(before + after) == [
        (1, pb.SHOT_PHASE_STARTED), (1, stopped), (2, pb.SHOT_PHASE_DROPPED), (3, pb.SHOT_PHASE_DROPPED),
        (last, pb.SHOT_PHASE_STARTED), (last, pb.SHOT_PHASE_COMPLETED)]


def test_after_a_cut_the_timeline_runs_on_without_the_discarded_frames(stub):
    before, after, _ = stop_mid_shot(stub, cut=True)
    frames = [u.frame for u in before + after if u.HasField("frame")]
    cut_end = next(u.shot for u in after if u.HasField("shot") and u.shot.phase == pb.SHOT_PHASE_CUT)
    assert cut_end.frames_discarded > 0  # the buffer held frames when the cut came
    assert [f.story_frame for f in frames] == list(range(len(frames)))
    assert [f.pts_us for f in frames] == [i * 62_500 for i in range(len(frames))]
    assert sum(f.shot_id == 1 for f in frames) == cut_end.frames_generated - cut_end.frames_discarded


def play(*requests: pb.PlayRequest, hold: threading.Event | None = None):
    yield from requests
    if hold is not None:
        hold.wait(60)


def test_a_play_stream_that_owned_its_session_ends_with_closed(stub, server):
    updates = list(stub.Play(play(
        pb.PlayRequest(open=pb.OpenSessionRequest(seed=41, global_caption=CAPTION, pacing=ASAP)),
        pb.PlayRequest(request_id=1, submit=pb.ShotBatch(shots=shots(("the knight walks", 1))))), timeout=60))
    assert updates[-1].WhichOneof("update") == "closed"
    assert updates[-1].closed.reason == pb.CLOSE_REASON_CLIENT
    assert updates[-1].closed.session_id == updates[0].opened.session_id
    assert sum(u.HasField("frame") for u in updates) == 9  # every frame came before it
    assert server.registry.usage().open_sessions == 0


def test_a_play_stream_attached_to_a_session_closed_elsewhere_ends_with_closed(stub):
    sid = stub.OpenSession(pb.OpenSessionRequest(seed=42, global_caption=CAPTION, pacing=ASAP),
                           timeout=10).session_id
    hold = threading.Event()
    stream = stub.Play(play(pb.PlayRequest(attach=pb.AttachSession(session_id=sid)), hold=hold), timeout=60)
    assert next(stream).WhichOneof("update") == "opened"
    stub.CloseSession(pb.CloseSessionRequest(session_id=sid), timeout=10)
    rest = list(stream)
    hold.set()
    assert [u.WhichOneof("update") for u in rest] == ["closed"]
    assert rest[0].closed.reason == pb.CLOSE_REASON_CLIENT
