"""Prompt modes through a real server on 127.0.0.1: GetInfo's vocabulary, strict refusals, lenient shots that
play what is left and report the dropped words (answers, shot events, the SDKs), director scripts checked
strictly whatever the mode, and a server whose default is lenient."""
from __future__ import annotations

import asyncio

import grpc
import pytest
from conftest import CAPTION

from engine_bridge.client import AsyncStorytellerClient, InvalidArgument, StorytellerClient, frames_sha256
from engine_bridge.testing import running_server
from engine_bridge.wire import pb, rpc

SCRIPT = """\
version = 1
[events.arrive]
params = ["hero"]
shots = [{ prompt = "the {hero} walks in the cave", chunks = 1 }]
"""


@pytest.fixture(scope="module")
def server(ort_engine):
    with running_server(ort_engine) as server:
        yield server


@pytest.fixture
def client(server):
    with StorytellerClient(server.target, timeout=30) as client:
        yield client


def test_get_info_lists_the_vocabulary_the_text_length_and_the_default_mode(client, ort_engine):
    info = client.info()
    assert tuple(info.vocabulary) == ort_engine.info.vocabulary and {",", ".", ":", "knight"} <= set(info.vocabulary)
    assert info.text_len == ort_engine.info.text_len
    assert info.default_prompt_mode == pb.PROMPT_MODE_STRICT


def test_strict_is_the_default_and_refuses_with_the_unknown_words(client):
    with client.open_session(seed=1, caption=CAPTION, pacing="asap") as session:
        assert session.opened.prompt_mode == pb.PROMPT_MODE_STRICT
        with pytest.raises(InvalidArgument) as caught:
            session.submit_shot("The Knight zorblaxes in the cave!", 1)
        assert caught.value.unknown_words == ("zorblaxes",)


def test_a_lenient_session_plays_what_is_left_and_reports_the_dropped_words(client):
    with client.open_session(seed=2, caption="a zorblax knight, pixel art", pacing="asap",
                             prompt_mode="lenient") as lenient:
        assert lenient.opened.prompt_mode == pb.PROMPT_MODE_LENIENT
        assert list(lenient.opened.caption_dropped_words) == ["zorblax"]
        shot = lenient.submit_shot("The Knight zorblaxes in the cave -- quux!", 1)
        assert lenient.dropped_words[shot] == ("zorblaxes", "quux")
        frames, end = lenient.collect_shot(shot)
        with pytest.raises(InvalidArgument, match="no word"):
            lenient.submit_shot("zorblax quux", 1)  # nothing known left: still refused
    assert end.phase == pb.SHOT_PHASE_COMPLETED and list(end.dropped_words) == ["zorblaxes", "quux"]
    assert end.prompt == "The Knight zorblaxes in the cave -- quux!"  # the prompt as given
    with client.open_session(seed=2, caption="a knight, pixel art", pacing="asap", prompt_mode="strict") as strict:
        same_frames, _ = strict.collect_shot(strict.submit_shot("the knight in the cave.", 1))
    assert frames_sha256(frames) == frames_sha256(same_frames) == end.frames_sha256


def test_every_shot_event_of_a_lenient_shot_carries_its_dropped_words(server):
    with grpc.insecure_channel(server.target) as channel:
        stub = rpc.StorytellerStub(channel)
        updates = list(stub.Play(iter([
            pb.PlayRequest(open=pb.OpenSessionRequest(seed=3, global_caption=CAPTION, director_script=SCRIPT,
                                                      pacing=pb.PACING_AS_FAST_AS_POSSIBLE,
                                                      prompt_mode=pb.PROMPT_MODE_LENIENT)),
            pb.PlayRequest(request_id=1, trigger=pb.EventTrigger(event="arrive", params={"hero": "zorblax knight"})),
        ]), timeout=60))
    answer = next(u.command for u in updates if u.HasField("command"))
    assert answer.code == 0 and [list(d.words) for d in answer.dropped] == [["zorblax"]]
    events = [u.shot for u in updates if u.HasField("shot")]
    assert [e.phase for e in events] == [pb.SHOT_PHASE_STARTED, pb.SHOT_PHASE_COMPLETED]
    assert all(list(e.dropped_words) == ["zorblax"] for e in events)


def test_scripts_are_checked_strictly_with_line_numbers_even_in_lenient_sessions(client):
    bad = SCRIPT.replace("walks in the cave", "zorblaxes in the cave")
    with pytest.raises(InvalidArgument, match="line 4") as caught:
        client.open_session(seed=4, caption=CAPTION, script=bad, prompt_mode="lenient")
    assert "zorblaxes" in str(caught.value)


def test_a_trigger_in_a_lenient_session_reports_what_its_parameters_lost(client):
    with client.open_session(seed=5, caption=CAPTION, pacing="asap", script=SCRIPT, prompt_mode="lenient") as s:
        fired = s.trigger("arrive", hero="Zorblax-knight")
        assert fired.dropped == (("zorblax",),) and s.dropped_words == {fired.shot_ids[0]: ("zorblax",)}


def test_the_async_client_takes_the_mode_too(server):
    async def run():
        async with AsyncStorytellerClient(server.target) as client:
            async with await client.open_session(seed=6, caption=CAPTION, pacing="asap",
                                                 prompt_mode="lenient") as session:
                shot = await session.submit_shot("the knight zorblaxes", 1)
                _, end = await session.collect_shot(shot)
                return session.dropped_words, end
    dropped, end = asyncio.run(run())
    assert dropped == {1: ("zorblaxes",)} and end.phase == pb.SHOT_PHASE_COMPLETED


def test_a_server_whose_default_is_lenient(ort_engine):
    with running_server(ort_engine, default_prompt_mode="lenient") as server:
        with StorytellerClient(server.target, timeout=30) as client:
            assert client.info().default_prompt_mode == pb.PROMPT_MODE_LENIENT
            with client.open_session(seed=7, caption=CAPTION) as session:
                assert session.opened.prompt_mode == pb.PROMPT_MODE_LENIENT
                session.submit_shot("the knight zorblaxes", 1)
            with client.open_session(seed=7, caption=CAPTION, prompt_mode="strict") as session:
                with pytest.raises(InvalidArgument):
                    session.submit_shot("the knight zorblaxes", 1)
