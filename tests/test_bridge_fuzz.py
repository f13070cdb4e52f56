"""Malformed and fuzzed requests (hypothesis) never crash the server: every answer is OK or a specific
refusal (never INTERNAL or UNKNOWN), health stays SERVING, and a bystander still gets correct frames."""
from __future__ import annotations

import hashlib

import grpc
import pytest
from conftest import CAPTION
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine_bridge.registry import Limits
from engine_bridge.testing import running_server
from engine_bridge.wire import SERVICE_NAME, pb, rpc

Code = grpc.StatusCode
REFUSALS = {Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.RESOURCE_EXHAUSTED, Code.FAILED_PRECONDITION}
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])
SCRIPT = 'version = 1\n[events.door]\nparams = ["who"]\nshots = [{ prompt = "the {who} waves to the wizard", chunks = 1 }]\n'
UNARY = ["GetInfo", "OpenSession", "CloseSession", "SubmitShot", "TriggerEvent"]

words = st.sampled_from(["the", "knight", "dragon", "walks", "castle", "zorblax", "", ",", "{", "é", "🐉"])
prompts = st.one_of(st.lists(words, max_size=12).map(" ".join), st.text(max_size=60),
                    st.just("knight " * 150))
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@pytest.fixture(scope="module")
def server(ort_engine):
    with running_server(ort_engine, limits=Limits(max_sessions=4, max_queued_shots=4)) as server:
        yield server


@pytest.fixture(scope="module")
def channel(server):
    channel = grpc.insecure_channel(server.target)
    yield channel
    channel.close()


@pytest.fixture(scope="module")
def session_id(channel):
    stub = rpc.StorytellerStub(channel)
    opened = stub.OpenSession(pb.OpenSessionRequest(seed=1, global_caption=CAPTION, director_script=SCRIPT,
                                                    buffer_frames=4), timeout=10)
    yield opened.session_id
    stub.CloseSession(pb.CloseSessionRequest(session_id=opened.session_id), timeout=10)


def outcome(call) -> Code:
    try:
        result = call()
        if not hasattr(result, "ListFields") and not isinstance(result, bytes):
            for _ in result:
                pass
        return Code.OK
    except grpc.RpcError as error:
        return error.code()


def close_if_opened(channel, response) -> None:
    if isinstance(response, pb.OpenSessionResponse) and response.session_id:
        rpc.StorytellerStub(channel).CloseSession(pb.CloseSessionRequest(session_id=response.session_id), timeout=10)


@FUZZ
@given(method=st.sampled_from(UNARY + ["WatchFrames", "Play"]), blobs=st.lists(st.binary(max_size=200), min_size=1, max_size=3))
def test_random_bytes_are_refused_or_answered(channel, method, blobs):
    path = f"/{SERVICE_NAME}/{method}"
    if method in UNARY:
        raw = channel.unary_unary(path)
        try:
            response = raw(blobs[0], timeout=10)
        except grpc.RpcError as error:
            assert error.code() in REFUSALS, error.details()
            return
        if method == "OpenSession":
            close_if_opened(channel, pb.OpenSessionResponse.FromString(response))
        return
    if method == "WatchFrames":
        code = outcome(lambda: channel.unary_stream(path)(blobs[0], timeout=2))
    else:
        code = outcome(lambda: channel.stream_stream(path)(iter(blobs), timeout=3))
    assert code in REFUSALS | {Code.OK, Code.DEADLINE_EXCEEDED}


shot_specs = st.lists(st.builds(pb.ShotSpec, prompt=prompts, chunks=st.integers(0, 20)), max_size=10)


@FUZZ
@given(shots=shot_specs, policy=st.integers(0, 5), unknown_session=st.booleans())
def test_fuzzed_shots_get_specific_answers(channel, session_id, shots, policy, unknown_session):
    stub = rpc.StorytellerStub(channel)
    request = pb.SubmitShotRequest(session_id="f" * 32 if unknown_session else session_id, shots=shots, policy=policy)
    code = outcome(lambda: stub.SubmitShot(request, timeout=10))
    assert code in REFUSALS | {Code.OK}
    if code == Code.OK:  # keep the queue short and the CPU free
        stub.SubmitShot(pb.SubmitShotRequest(session_id=session_id, policy=pb.SHOT_POLICY_CUT), timeout=10)


@FUZZ
@given(event=st.one_of(st.just("door"), texts), params=st.dictionaries(texts, prompts, max_size=3))
def test_fuzzed_events_get_specific_answers(channel, session_id, event, params):
    stub = rpc.StorytellerStub(channel)
    code = outcome(lambda: stub.TriggerEvent(pb.TriggerEventRequest(session_id=session_id, event=event, params=params),
                                             timeout=10))
    assert code in REFUSALS | {Code.OK}
    stub.SubmitShot(pb.SubmitShotRequest(session_id=session_id, policy=pb.SHOT_POLICY_CUT), timeout=10)


script_lines = st.lists(st.sampled_from([
    "version = 1", "version = 2", "[events.a]", "[events.b]", "[[events.a.shots]]", 'prompt = "the knight walks"',
    'prompt = "a {x} walks"', "chunks = 3", "chunks = 99", 'priority = "interrupt"', "cooldown_s = -1",
    'params = ["x"]', "shots = []", "[defaults]", "= =", '"unterminated', "[events]", "x = { y = [1, {z = 2}] }",
]), max_size=10)


@FUZZ
@given(seed=st.integers(0, 2**64 - 1), caption=st.one_of(prompts, st.just(CAPTION)), fmt=st.integers(0, 6),
       pacing=st.integers(0, 4), buffer_frames=st.integers(0, 400), quality=st.integers(0, 200), script=script_lines)
def test_fuzzed_sessions_get_specific_answers(channel, seed, caption, fmt, pacing, buffer_frames, quality, script):
    stub = rpc.StorytellerStub(channel)
    request = pb.OpenSessionRequest(seed=seed, global_caption=caption, frame_format=fmt, pacing=pacing,
                                    buffer_frames=buffer_frames, jpeg_quality=quality, director_script="\n".join(script))
    try:
        response = stub.OpenSession(request, timeout=10)
    except grpc.RpcError as error:
        assert error.code() in REFUSALS, error.details()
        return
    close_if_opened(channel, response)


def test_after_the_fuzzing_the_server_still_serves_correct_frames(channel, ort_engine):
    status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    story = ort_engine.open_story(seed=2, global_caption=CAPTION)
    want = hashlib.sha256(b"".join(c.frames.tobytes() for c in story.generate_shot("the knight walks", 1))).hexdigest()
    story.close()
    stub = rpc.StorytellerStub(channel)
    opened = stub.OpenSession(pb.OpenSessionRequest(seed=2, global_caption=CAPTION,
                                                    pacing=pb.PACING_AS_FAST_AS_POSSIBLE), timeout=10)
    stream = stub.WatchFrames(pb.WatchFramesRequest(session_id=opened.session_id), timeout=60)
    stub.SubmitShot(pb.SubmitShotRequest(session_id=opened.session_id, shots=[
        pb.ShotSpec(prompt="the knight walks", chunks=1)]), timeout=10)
    end = next(u.shot for u in stream if u.HasField("shot") and u.shot.phase == pb.SHOT_PHASE_COMPLETED)
    assert end.frames_sha256 == want
    stream.cancel()
    stub.CloseSession(pb.CloseSessionRequest(session_id=opened.session_id), timeout=10)
