"""A session's journal and its resume, without Ray: a JournaledSession recorded into a Journal, "lost"
mid-shot, and rebuilt from `plan_resume` sends the rest of the shot, nothing twice, with the frames of an
uninterrupted run."""
from __future__ import annotations

import hashlib

import pytest
from conftest import CAPTION

from engine_bridge.cluster.journal import Entry, Journal, ResumePoint, plan_resume
from engine_bridge.cluster.journaled import JournaledSession
from engine_bridge.director import Director
from engine_bridge.errors import UnavailableError
from engine_bridge.session import SessionSettings, ShotRequest
from engine_bridge.wire import TERMINAL_PHASES, pb

SETTINGS = SessionSettings(seed=30, global_caption=CAPTION, frame_format=pb.FRAME_FORMAT_RGB8, jpeg_quality=90,
                           pacing=pb.PACING_AS_FAST_AS_POSSIBLE, buffer_frames=4)
SHOTS = [("the knight walks", 2), ("the dragon flies", 7)]


def session(engine, records: list, resume=None) -> JournaledSession:
    story = engine.open_story(seed=SETTINGS.seed, global_caption=CAPTION)
    if resume is not None and resume.checkpoint is not None:
        story.restore(resume.checkpoint)
    return JournaledSession(record=lambda seq, fields: records.append((seq, fields)), resume=resume,
                            session_id="s", story=story, settings=SETTINGS, fps=16, director=Director([]),
                            max_queued=8)


def updates_until(s: JournaledSession, ticket: int, done) -> list[pb.StoryUpdate]:
    out = []
    while not out or not done(out[-1]):
        item = s.outbox.get(30, ticket)
        assert item is not None, "no update within 30 s"
        out.append(item)
    return out


def ended(shot_id: int):
    return lambda u: u.HasField("shot") and u.shot.shot_id == shot_id and u.shot.phase in TERMINAL_PHASES


def test_a_session_rebuilt_from_its_journal_mid_shot_sends_the_rest_and_nothing_twice(ort_engine):
    records: list = []
    first = session(ort_engine, records)
    ticket = first.attach()
    a = first.submit([ShotRequest(*SHOTS[0])], cut=False).shot_ids[0]
    before = updates_until(first, ticket, ended(a))
    b = first.submit([ShotRequest(*SHOTS[1])], cut=False).shot_ids[0]
    before += updates_until(first, ticket, lambda u: u.HasField("frame") and u.frame.frame_index == 19)
    journal = Journal(SETTINGS, "")
    for seq, fields in list(records):  # what reached the directory before the node went
        journal.apply(seq, fields)
    first.close(pb.CLOSE_REASON_SHUTDOWN, 10)

    last = before[-1].frame
    point = ResumePoint(b, 20, False, last.story_frame + 1)
    resume = plan_resume(journal, point)
    assert (resume.skip_shot, resume.skip_frames, resume.started_sent) == (b, 20, True)
    again = session(ort_engine, [], resume)
    after = updates_until(again, again.attach(), ended(b))
    again.close(pb.CLOSE_REASON_SHUTDOWN, 10)

    assert not any(u.HasField("shot") and u.shot.phase == pb.SHOT_PHASE_STARTED for u in after)
    frames = [u.frame for u in before + after if u.HasField("frame") and u.frame.shot_id == b]
    assert [f.frame_index for f in frames] == list(range(81))
    story_frames = [u.frame.story_frame for u in before + after if u.HasField("frame")]
    assert story_frames == list(range(len(story_frames)))
    story = ort_engine.open_story(seed=SETTINGS.seed, global_caption=CAPTION)
    for prompt, chunks in SHOTS:  # the uninterrupted run; `want` ends as the second shot's hash
        want = hashlib.sha256()
        for chunk in story.generate_shot(prompt, chunks):
            for rgb in chunk.frames:
                want.update(rgb.tobytes())
    assert hashlib.sha256(b"".join(f.data for f in frames)).hexdigest() == want.hexdigest() \
        == after[-1].shot.frames_sha256


def test_a_journal_keeps_the_newest_value_of_each_field_whatever_order_records_arrive_in():
    journal = Journal(SETTINGS, "")
    journal.apply(3, {"next_id": 4, "queue": ()})
    journal.apply(2, {"next_id": 3, "running": Entry(2, ShotRequest("the knight walks", 1))})
    assert journal.next_id == 4 and journal.running.shot_id == 2


def test_a_client_at_the_end_of_the_last_shot_gets_its_end_events_again_then_the_next_shot_whole():
    journal = Journal(SETTINGS, "", running=Entry(3, ShotRequest("the knight walks", 1)), next_id=4,
                      frames_at_start=30, last_end=(2, (b"end",)))
    resume = plan_resume(journal, ResumePoint(2, 12, False, 30))
    assert resume.replay == (b"end",) and [e.shot_id for e in resume.queue] == [3]
    assert (resume.skip_frames, resume.started_sent, resume.story_frames) == (0, False, 30)
    assert plan_resume(journal, ResumePoint(2, 12, True, 30)).replay == ()


def test_a_client_behind_by_more_than_a_shot_is_refused_with_unavailable():
    journal = Journal(SETTINGS, "", running=Entry(3, ShotRequest("the knight walks", 1)), last_end=(2, ()))
    with pytest.raises(UnavailableError, match="behind by more than a shot"):
        plan_resume(journal, ResumePoint(1, 5, False, 5))


def test_a_resumed_stream_leaves_out_what_its_client_had_when_another_front_door_rebuilt_the_session():
    from engine_bridge.cluster.frontdoor import _already_sent

    point = ResumePoint(shot_id=2, frames=20, ended=False, next_story_frame=40)

    def frame(shot_id, index):
        return pb.StoryUpdate(frame=pb.Frame(shot_id=shot_id, frame_index=index))

    started = pb.StoryUpdate(shot=pb.ShotEvent(shot_id=2, phase=pb.SHOT_PHASE_STARTED))
    completed = pb.StoryUpdate(shot=pb.ShotEvent(shot_id=2, phase=pb.SHOT_PHASE_COMPLETED))
    assert [_already_sent(u, point) for u in (started, frame(2, 0), frame(2, 19), frame(2, 20), completed,
                                              frame(3, 0), None)] == [True, True, True, False, False, False, False]
