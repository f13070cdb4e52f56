"""The client SDK (blocking and asyncio) against a real server, the `shotstream serve` command, and the
contract's own checks: fresh stubs, every rpc and field commented, no torch in the client."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import CAPTION
from google.protobuf import descriptor_pb2

from engine_bridge import protogen
from engine_bridge.client import (AsyncStorytellerClient, FailedPrecondition, InvalidArgument, NotFound, Session,
                                  StorytellerClient, frames_sha256, pb, to_array)
from engine_bridge.testing import running_server
from engine_bridge.wire import TERMINAL_PHASES

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_SCRIPT = ROOT / "engine_bridge" / "scripts" / "example_director.toml"


@pytest.fixture(scope="module")
def server(ort_engine):
    with running_server(ort_engine) as server:
        yield server


def test_the_client_sdk_loads_neither_torch_nor_the_runtime():
    code = ("import sys, engine_bridge.client; "
            "print(sorted(m for m in ('torch', 'runtime', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_blocking_client_plays_a_story(server):
    script = EXAMPLE_SCRIPT.read_text()
    with StorytellerClient(server.target, timeout=30) as client:
        with client.open_session(seed=40, caption=CAPTION, pacing="asap", script=script) as session:
            shot = session.submit_shot("the knight walks", 2)
            frames, end = session.collect_shot(shot)
            assert end.phase == pb.SHOT_PHASE_COMPLETED and frames_sha256(frames) == end.frames_sha256
            assert to_array(frames[0]).shape == (64, 64, 3)
            triggered = session.trigger("enter_village", hero="knight")
            assert len(triggered.shot_ids) == 2 and not triggered.suppressed
            session.cancel()
            for _ in session.updates(timeout=30):
                if all(session.shot_events.get(i, pb.ShotEvent()).phase in TERMINAL_PHASES for i in triggered.shot_ids):
                    break
            assert session.shot_events[triggered.shot_ids[-1]].phase in (pb.SHOT_PHASE_DROPPED,
                                                                         pb.SHOT_PHASE_CANCELLED)
            with pytest.raises(InvalidArgument) as caught:
                session.submit_shot("the knight watches a zorblax")
            assert caught.value.unknown_words == ("zorblax",)
            with pytest.raises(TimeoutError):
                next(session.frames(timeout=0.2))  # nothing queued: the iterator says so in time
            session_id = session.id
        with pytest.raises(NotFound):  # the context manager closed it on the server
            client.call(client.stub.SubmitShot, pb.SubmitShotRequest(session_id=session_id))
    assert server.registry.usage().open_sessions == 0


def test_a_second_watcher_is_a_typed_error_and_ends_the_stream(server):
    with StorytellerClient(server.target, timeout=30) as client:
        with client.open_session(seed=41, caption=CAPTION) as session:
            state, deadline = server.registry.get(session.id), time.monotonic() + 10
            while not state.attached:  # the SDK's own stream starts in the background
                assert time.monotonic() < deadline, "the session's stream never attached"
                time.sleep(0.01)
            intruder = Session(client, session.opened, queue_frames=4)  # watches the same session
            with pytest.raises(FailedPrecondition):
                list(intruder.updates(timeout=10))
            intruder.close()


def test_the_asyncio_client_plays_a_story(server, ort_engine):
    async def play() -> tuple[str, str, bool]:
        async with AsyncStorytellerClient(server.target, timeout=30) as client:
            info = await client.info()
            session = await client.open_session(seed=42, caption=CAPTION, pacing="asap", queue_frames=4)
            try:
                frames, end = await session.collect_shot(await session.submit_shot("the knight walks", 2))
                try:
                    await session.trigger("missing")
                    refused = False
                except FailedPrecondition:  # no director script in this session
                    refused = True
                return frames_sha256(frames), end.frames_sha256, refused and info.preset == "tiny"
            finally:
                await session.close()

    received, reported, refused = asyncio.run(play())
    story = ort_engine.open_story(seed=42, global_caption=CAPTION)
    want = frames_sha256(pb.Frame(data=c.frames.tobytes()) for c in story.generate_shot("the knight walks", 2))
    story.close()
    assert received == reported == want and refused


def test_shotstream_serve_starts_serves_and_stops_gracefully(ort_engine, tmp_path):
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine_bridge.serve_cli", "--port", "0", "--max-sessions", "2",
         "--script", str(EXAMPLE_SCRIPT), "--token-file", str(token), "--log-format", "json"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # printed once the port is bound
        assert line.startswith("shotstream serving on 127.0.0.1:"), proc.stderr.read()
        with StorytellerClient(line.split()[-1], token="t0ken", timeout=30) as client:
            info = client.info()
            assert info.limits.max_sessions == 2 and "boss_appears" in info.server_events and info.auth_required
            with client.open_session(caption=CAPTION, pacing="asap") as session:
                shot = session.trigger("boss_appears", hero="knight").shot_ids[0]
                assert session.collect_shot(shot)[1].phase == pb.SHOT_PHASE_COMPLETED
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        logs = [json.loads(entry) for entry in proc.stderr.read().splitlines() if entry.startswith("{")]
        messages = [entry["msg"] for entry in logs]
        assert "serving" in messages and "stopped" in messages
        assert any(entry.get("session") for entry in logs)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_shotstream_serve_refuses_a_bad_script_naming_the_line(ort_engine, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("version = 1\n[events.a]\nshots = [{ prompt = 'the knight walks', chunks = 12 }]\n")
    out = subprocess.run([sys.executable, "-m", "engine_bridge.serve_cli", "--port", "0", "--script", str(bad),
                          "--log-format", "text"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "line 3: events.a.shots[0].chunks" in out.stderr


def test_the_shotstream_command_dispatches_serve_here(capsys):
    from shotstream.cli import main

    with pytest.raises(SystemExit) as done:
        main(["serve", "--help"])
    assert done.value.code == 0 and "--cache-budget" in capsys.readouterr().out


def test_the_committed_stubs_match_the_proto(tmp_path):
    protogen.generate(tmp_path)
    fresh = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_bytes() for p in protogen.GEN_DIR.iterdir() if p.is_file()}
    assert fresh == committed, "stale stubs: run python -m engine_bridge.protogen"


def test_every_rpc_field_and_enum_value_of_the_contract_is_commented():
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        assert protoc.main(["protoc", f"-I{protogen.PROTO_ROOT}", "--include_source_info",
                            f"--descriptor_set_out={out}", *(str(protogen.PROTO_ROOT / f) for f in protogen.PROTO_FILES)]) == 0
        (proto,) = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    commented = {tuple(loc.path) for loc in proto.source_code_info.location
                 if (loc.leading_comments + loc.trailing_comments).strip()}
    missing = [f"rpc {m.name}" for j, m in enumerate(proto.service[0].method) if (6, 0, 2, j) not in commented]
    missing += [f"{msg.name}.{f.name}" for i, msg in enumerate(proto.message_type)
                for j, f in enumerate(msg.field) if (4, i, 2, j) not in commented]
    missing += [f"{e.name}.{v.name}" for i, e in enumerate(proto.enum_type)
                for j, v in enumerate(e.value) if (5, i, 2, j) not in commented]
    assert missing == []
    assert len(proto.service[0].method) == 7
