"""Every refusal has its own status code, and after each one the server keeps serving everyone else.
Also: admission control, token auth, TLS, oversized messages, idle expiry, graceful shutdown."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
import time

import grpc
import pytest
from conftest import CAPTION
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from engine_bridge.client import StorytellerClient, Unauthenticated
from engine_bridge.registry import Limits
from engine_bridge.testing import running_server
from engine_bridge.wire import SERVICE_NAME, UNKNOWN_WORDS_KEY, pb, rpc

LIMITS = Limits(max_sessions=4, max_queued_shots=4, max_message_bytes=64 * 1024)
SCRIPT = 'version = 1\n[events.door]\nshots = [{ prompt = "the wizard waves", chunks = 1 }]\n'
Code = grpc.StatusCode


@pytest.fixture(scope="module")
def server(ort_engine):
    with running_server(ort_engine, limits=LIMITS) as server:
        yield server


@pytest.fixture(scope="module", autouse=True)
def health_throughout(server):
    """Watches the server's health for the whole module: it must never leave SERVING."""
    channel = grpc.insecure_channel(server.target)
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    seen: list[int] = []
    reader = threading.Thread(target=lambda: seen.extend(r.status for r in _until_cancelled(watch)), daemon=True)
    reader.start()
    yield
    watch.cancel()
    reader.join(10)
    channel.close()
    assert seen and set(seen) == {health_pb2.HealthCheckResponse.SERVING}


def _until_cancelled(stream):
    try:
        yield from stream
    except grpc.RpcError as error:
        assert error.code() == Code.CANCELLED


@pytest.fixture(scope="module")
def stub(server):
    channel = grpc.insecure_channel(server.target)
    yield rpc.StorytellerStub(channel)
    channel.close()


@pytest.fixture(scope="module")
def bystander_hash(ort_engine):
    story = ort_engine.open_story(seed=21, global_caption=CAPTION)
    digest = hashlib.sha256()
    for chunk in story.generate_shot("the knight walks", 1):
        digest.update(chunk.frames.tobytes())
    story.close()
    return digest.hexdigest()


@pytest.fixture
def own_server():
    """Marks a test that runs its own server: the module server's after-check is skipped."""


@pytest.fixture(autouse=True)
def still_serving_afterwards(request, server, bystander_hash):
    """After each test: health is SERVING and a fresh session still gets its correct frames."""
    yield
    if "own_server" in request.fixturenames:
        return
    channel = grpc.insecure_channel(server.target)
    status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    channel.close()
    with StorytellerClient(server.target, timeout=30) as client:
        with client.open_session(seed=21, caption=CAPTION, pacing="asap") as session:
            _, end = session.collect_shot(session.submit_shot("the knight walks", 1), timeout=60)
    assert end.frames_sha256 == bystander_hash


def refused(call, request, stream: bool = False) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        result = call(request, timeout=10)
        if stream:
            list(result)
    return caught.value


def open_request(**fields) -> pb.OpenSessionRequest:
    return pb.OpenSessionRequest(**{"seed": 1, "global_caption": CAPTION,
                                    "pacing": pb.PACING_AS_FAST_AS_POSSIBLE, **fields})


@pytest.fixture
def session_id(stub):
    opened = stub.OpenSession(open_request(director_script=SCRIPT), timeout=10)
    yield opened.session_id
    try:
        stub.CloseSession(pb.CloseSessionRequest(session_id=opened.session_id), timeout=10)
    except grpc.RpcError:
        pass


def submit(stub, session_id, prompt="the knight walks", chunks=1, **kw):
    return stub.SubmitShot, pb.SubmitShotRequest(session_id=session_id, shots=[pb.ShotSpec(prompt=prompt, chunks=chunks)], **kw)


@pytest.mark.parametrize("prompt, chunks, words", [
    ("", 1, "empty"),
    ("knight " * 200, 1, "at most 1000"),
    ("the knight " * 45, 1, "tokens"),
    ("the knight walks", 8, "chunks must be 1..7"),
], ids=["empty", "too-many-characters", "too-many-tokens", "too-many-chunks"])
def test_bad_shots_are_invalid_argument(stub, session_id, prompt, chunks, words):
    error = refused(*submit(stub, session_id, prompt, chunks))
    assert error.code() == Code.INVALID_ARGUMENT and words in error.details()


def test_unknown_words_are_listed_in_the_message_and_the_trailers(stub, session_id):
    error = refused(*submit(stub, session_id, "the knigt watches a zorblax"))
    assert error.code() == Code.INVALID_ARGUMENT and "knigt, zorblax" in error.details()
    trailers = dict(error.trailing_metadata())
    assert trailers[UNKNOWN_WORDS_KEY].decode().split("\n") == ["knigt", "zorblax"]


@pytest.mark.parametrize("fields, words", [
    ({"pacing": 7}, "pacing 7 is not a Pacing"),
    ({"frame_format": 9}, "frame_format 9"),
    ({"buffer_frames": 100_000}, "buffer_frames must be 1..256"),
    ({"jpeg_quality": 101, "frame_format": pb.FRAME_FORMAT_JPEG}, "jpeg_quality"),
    ({"seed": 2**63}, "seed"),
    ({"global_caption": "a zorblax, pixel art"}, "zorblax"),
    ({"director_script": "version = 1\n[events.a]\nshots = [{ prompt = 'a cat', chunks = 0 }]\n"},
     "line 3: events.a.shots[0].chunks"),
])
def test_bad_sessions_are_invalid_argument(stub, fields, words):
    error = refused(stub.OpenSession, open_request(**fields))
    assert error.code() == Code.INVALID_ARGUMENT and words in error.details()


def test_events_unknown_or_without_a_script(stub, session_id):
    error = refused(stub.TriggerEvent, pb.TriggerEventRequest(session_id=session_id, event="nope"))
    assert error.code() == Code.INVALID_ARGUMENT and "unknown event" in error.details()
    plain = stub.OpenSession(open_request(), timeout=10).session_id
    error = refused(stub.TriggerEvent, pb.TriggerEventRequest(session_id=plain, event="door"))
    assert error.code() == Code.FAILED_PRECONDITION
    stub.CloseSession(pb.CloseSessionRequest(session_id=plain), timeout=10)


def test_a_prompt_too_long_with_its_caption_is_refused_before_anything_is_queued(stub):
    # Each prompt fits alone, but with this long caption the model's text length is exceeded: SubmitShot
    # refuses the whole request (the proto: validated before queued), and the session goes on.
    caption = ("a knight and a dragon and a wizard and a robot and a ghost and a cat and an owl and a princess, "
               "retro pixel art, storybook style")
    long_prompt = ("the red knight walks slowly through the dark woods at night, while the green dragon soars above "
                   "the snowy mountains and the blue wizard watches quietly in the middle of the sandy street, as "
                   "the grey ghost looks on happily next to the pink cat")
    opened = stub.OpenSession(open_request(global_caption=caption), timeout=10)
    try:
        error = refused(stub.SubmitShot, pb.SubmitShotRequest(session_id=opened.session_id, shots=[
            pb.ShotSpec(prompt="the knight walks", chunks=1), pb.ShotSpec(prompt=long_prompt, chunks=1)]))
        assert error.code() == Code.INVALID_ARGUMENT and "tokens" in error.details()
        stream = stub.WatchFrames(pb.WatchFramesRequest(session_id=opened.session_id), timeout=60)
        answer = stub.SubmitShot(pb.SubmitShotRequest(session_id=opened.session_id, shots=[
            pb.ShotSpec(prompt="the knight walks", chunks=1)]), timeout=10)
        assert list(answer.shot_ids) == [1] and answer.queued_shots == 1  # nothing of the refused request
        end = next(u.shot for u in stream if u.HasField("shot") and u.shot.phase != pb.SHOT_PHASE_STARTED)
        stream.cancel()
    finally:
        stub.CloseSession(pb.CloseSessionRequest(session_id=opened.session_id), timeout=10)
    assert end.shot_id == 1 and end.phase == pb.SHOT_PHASE_COMPLETED


def test_jpeg_quality_is_ignored_on_sessions_that_do_not_send_jpeg(stub):
    for frame_format in (pb.FRAME_FORMAT_RGB8, pb.FRAME_FORMAT_PNG, pb.FRAME_FORMAT_UNSPECIFIED):
        opened = stub.OpenSession(open_request(frame_format=frame_format, jpeg_quality=101), timeout=10)
        stub.CloseSession(pb.CloseSessionRequest(session_id=opened.session_id), timeout=10)
        assert opened.frame_format in (pb.FRAME_FORMAT_RGB8, pb.FRAME_FORMAT_PNG)


def test_unknown_sessions_are_not_found(stub, session_id):
    assert refused(*submit(stub, "0" * 32)).code() == Code.NOT_FOUND
    stub.CloseSession(pb.CloseSessionRequest(session_id=session_id), timeout=10)
    assert refused(stub.CloseSession, pb.CloseSessionRequest(session_id=session_id)).code() == Code.NOT_FOUND
    assert refused(stub.WatchFrames, pb.WatchFramesRequest(session_id=session_id), stream=True).code() == Code.NOT_FOUND


def test_session_count_and_queue_length_are_resource_exhausted(stub, session_id):
    opened = [stub.OpenSession(open_request(), timeout=10).session_id for _ in range(LIMITS.max_sessions - 1)]
    try:
        error = refused(stub.OpenSession, open_request())
        assert error.code() == Code.RESOURCE_EXHAUSTED and "4 of 4 sessions" in error.details()
    finally:
        for sid in opened:
            stub.CloseSession(pb.CloseSessionRequest(session_id=sid), timeout=10)
    shots = [pb.ShotSpec(prompt="the knight walks", chunks=7)] * 5
    error = refused(stub.SubmitShot, pb.SubmitShotRequest(session_id=session_id, shots=shots))
    assert error.code() == Code.RESOURCE_EXHAUSTED and "queue" in error.details()


def test_the_cache_budget_is_resource_exhausted(ort_engine, own_server):
    budget = int(ort_engine.info.session_cache_bytes * 2.5)
    with running_server(ort_engine, limits=Limits(cache_budget_bytes=budget)) as small:
        stub = rpc.StorytellerStub(grpc.insecure_channel(small.target))
        for _ in range(2):
            stub.OpenSession(open_request(), timeout=10)
        error = refused(stub.OpenSession, open_request())
        assert error.code() == Code.RESOURCE_EXHAUSTED and "cache memory budget" in error.details()
        assert stub.GetInfo(pb.GetInfoRequest(), timeout=10).usage.open_sessions == 2


def test_oversized_messages_are_refused(stub):
    error = refused(stub.OpenSession, open_request(director_script="#" * (LIMITS.max_message_bytes + 1)))
    assert error.code() == Code.RESOURCE_EXHAUSTED


def test_undecodable_bytes_are_invalid_argument(server):
    channel = grpc.insecure_channel(server.target)
    raw = channel.unary_unary("/shotstream.v1.Storyteller/SubmitShot")  # bytes in, bytes out
    error = refused(raw, b"\xff\xff\xff\xff")
    assert error.code() == Code.INVALID_ARGUMENT and "does not parse" in error.details()
    channel.close()


def test_a_second_frame_stream_is_failed_precondition(server, stub, session_id):
    first = stub.WatchFrames(pb.WatchFramesRequest(session_id=session_id))
    session, deadline = server.registry.get(session_id), time.monotonic() + 10
    while not session.attached:
        assert time.monotonic() < deadline, "the first stream never attached"
        time.sleep(0.02)
    error = refused(stub.WatchFrames, pb.WatchFramesRequest(session_id=session_id), stream=True)
    assert error.code() == Code.FAILED_PRECONDITION and "already has a frame stream" in error.details()
    first.cancel()


@pytest.mark.parametrize("how, code", [("cancel", Code.CANCELLED), ("deadline", Code.DEADLINE_EXCEEDED)])
def test_a_stream_cancelled_or_past_its_deadline_stops_its_sessions_work(server, stub, session_id, how, code):
    stream = stub.WatchFrames(pb.WatchFramesRequest(session_id=session_id), timeout=1.5 if how == "deadline" else None)
    stub.SubmitShot(pb.SubmitShotRequest(session_id=session_id, shots=[
        pb.ShotSpec(prompt="the knight walks", chunks=7)] * 3), timeout=10)
    with pytest.raises(grpc.RpcError) as caught:
        for update in stream:
            if how == "cancel" and update.HasField("frame"):
                stream.cancel()
    assert caught.value.code() == code
    session = server.registry.get(session_id)
    deadline = time.monotonic() + 30
    while session.busy:
        assert time.monotonic() < deadline, "the session kept working after its stream ended"
        time.sleep(0.02)


def test_a_token_is_required_except_for_health(ort_engine, own_server):
    with running_server(ort_engine, token="s3cret") as secured:
        with StorytellerClient(secured.target) as anonymous:
            with pytest.raises(Unauthenticated):
                anonymous.info()
        with StorytellerClient(secured.target, token="wrong") as wrong:
            with pytest.raises(Unauthenticated):
                wrong.open_session(caption=CAPTION)
        with StorytellerClient(secured.target, token="s3cret") as client:
            assert client.info().auth_required
            with client.open_session(caption=CAPTION, pacing="asap") as session:
                frames, _ = session.collect_shot(session.submit_shot("the knight walks", 1), timeout=60)
                assert len(frames) == 9
        channel = grpc.insecure_channel(secured.target)
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as caught:
            ProtoReflectionDescriptorDatabase(channel).get_services()
        assert caught.value.code() == Code.UNAUTHENTICATED
        channel.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a test certificate")
def test_tls_serves_encrypted_and_refuses_plaintext(ort_engine, own_server, tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem"),
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    cert, key = (tmp_path / "cert.pem").read_bytes(), (tmp_path / "key.pem").read_bytes()
    with running_server(ort_engine, tls_cert=cert, tls_key=key) as secure:
        with StorytellerClient(secure.target, root_certificates=cert) as client:
            assert client.info().preset == "tiny"
        with StorytellerClient(secure.target, timeout=3) as plain:
            with pytest.raises(Exception):
                plain.info()


def test_idle_sessions_expire_but_watched_ones_do_not(ort_engine, own_server):
    with running_server(ort_engine, limits=Limits(idle_timeout_s=0.3)) as quick:
        stub = rpc.StorytellerStub(grpc.insecure_channel(quick.target))
        idle = stub.OpenSession(open_request(), timeout=10).session_id
        with StorytellerClient(quick.target) as client, client.open_session(caption=CAPTION) as watched:
            deadline = time.monotonic() + 10
            while quick.registry.usage().open_sessions > 1:
                assert time.monotonic() < deadline, "the idle session did not expire"
                time.sleep(0.05)
            assert refused(*submit(stub, idle)).code() == Code.NOT_FOUND
            assert watched.submit_shot("the knight walks", 1) == 1  # watched: still open


def test_shutdown_ends_every_stream_with_a_closed_update(ort_engine, own_server):
    server = running_server(ort_engine)
    running = server.__enter__()
    stub = rpc.StorytellerStub(grpc.insecure_channel(running.target))
    opened = stub.OpenSession(open_request(buffer_frames=2), timeout=10)
    stream = stub.WatchFrames(pb.WatchFramesRequest(session_id=opened.session_id), timeout=60)
    stub.SubmitShot(pb.SubmitShotRequest(session_id=opened.session_id,
                                         shots=[pb.ShotSpec(prompt="the knight walks", chunks=7)]), timeout=10)
    next(u for u in stream if u.HasField("frame"))
    stopper = threading.Thread(target=server.__exit__, args=(None, None, None))
    stopper.start()
    rest = list(stream)
    stopper.join(30)
    assert rest[-1].HasField("closed") and rest[-1].closed.reason == pb.CLOSE_REASON_SHUTDOWN
    phases = [u.shot.phase for u in rest if u.HasField("shot")]
    assert phases[-1] == pb.SHOT_PHASE_CANCELLED and not stopper.is_alive()
