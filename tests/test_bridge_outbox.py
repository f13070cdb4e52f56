"""The playout buffer and its slow-consumer policy: backpressure (as fast as possible), oldest-dropped
(real time), discards on cut, terminal events stamped with the counts, replies ahead of the timeline."""
from __future__ import annotations

import threading
import time

import pytest

from engine_bridge.outbox import CLOSED, Outbox
from engine_bridge.wire import pb

FPS = 50  # a 20 ms period keeps these tests short; bounds below are many periods wide


def frame(shot: int, i: int) -> pb.StoryUpdate:
    return pb.StoryUpdate(frame=pb.Frame(shot_id=shot, frame_index=i))


def shot_event(shot: int, phase: int) -> pb.StoryUpdate:
    return pb.StoryUpdate(shot=pb.ShotEvent(shot_id=shot, phase=phase))


def never() -> bool:
    return False


def drain(box: Outbox, timeout: float = 0.05) -> list[pb.StoryUpdate]:
    out = []
    while (item := box.get(timeout)) not in (None, CLOSED):
        out.append(item)
    return out


def test_as_fast_as_possible_pauses_the_producer_and_drops_nothing():
    box = Outbox(capacity=3, real_time=False, fps=FPS)
    box.attach()
    for i in range(3):
        assert box.put_frame(frame(1, i), 1, never)
    blocked = threading.Event()

    def produce():
        box.put_frame(frame(1, 3), 1, never)
        blocked.set()

    worker = threading.Thread(target=produce)
    worker.start()
    assert not blocked.wait(0.3)  # full: the fourth frame waits for the consumer
    assert box.get(1.0).frame.frame_index == 0
    assert blocked.wait(5.0)
    worker.join()
    assert [u.frame.frame_index for u in drain(box)] == [1, 2, 3]
    assert (box.sent, box.dropped) == (4, 0)


def test_real_time_drops_the_oldest_late_frame_and_counts_it():
    box = Outbox(capacity=2, real_time=True, fps=FPS)
    box.attach()
    for i in range(2):
        box.put_frame(frame(1, i), 1, never)
    time.sleep(5 / FPS)  # the consumer is away: both frames are now several periods late
    assert box.put_frame(frame(1, 2), 1, never)  # room is made by dropping frame 0
    box.put_event(shot_event(1, pb.SHOT_PHASE_COMPLETED), 1)
    out = drain(box, 0.5)
    assert [u.frame.frame_index for u in out[:2]] == [1, 2]
    assert out[0].frame.dropped_before == 1 and out[1].frame.dropped_before == 0
    assert out[2].shot.frames_dropped == 1
    assert (box.sent, box.dropped) == (2, 1)


def test_real_time_releases_frames_at_the_story_fps():
    box = Outbox(capacity=8, real_time=True, fps=FPS)
    box.attach()
    for i in range(6):
        box.put_frame(frame(1, i), 1, never)
    started = time.monotonic()
    assert len(drain(box, 1.0)) == 6
    assert time.monotonic() - started >= 5 / FPS * 0.9  # 6 frames span 5 periods; never faster


def test_the_clock_waits_for_a_stream_and_nothing_is_dropped_before_one_attaches():
    box = Outbox(capacity=2, real_time=True, fps=FPS)
    for i in range(2):
        box.put_frame(frame(1, i), 1, never)
    done = threading.Event()
    threading.Thread(target=lambda: (box.put_frame(frame(1, 2), 1, never), done.set())).start()
    assert not done.wait(5 / FPS)  # not attached: backpressure, no drops
    box.attach()
    assert [u.frame.frame_index for u in drain(box, 1.0)] == [0, 1, 2]
    assert done.is_set() and box.dropped == 0


def test_discard_and_abandon_remove_a_stopped_shots_frames():
    box = Outbox(capacity=4, real_time=False, fps=FPS)
    box.attach()
    stop = threading.Event()
    for i in range(4):
        box.put_frame(frame(1, i), 1, stop.is_set)
    box.put_event(shot_event(1, pb.SHOT_PHASE_CUT), 1)
    stop.set()
    assert box.discard_shot(1) == 4
    assert not box.put_frame(frame(1, 4), 1, stop.is_set)  # abandoned: refused without waiting
    box.put_frame(frame(2, 0), 2, never)
    out = drain(box)
    assert out[0].shot.phase == pb.SHOT_PHASE_CUT and out[0].shot.frames_discarded == 4
    assert out[1].frame.shot_id == 2


def test_a_waiting_producer_wakes_when_its_shot_is_abandoned():
    box = Outbox(capacity=1, real_time=False, fps=FPS)
    stop = threading.Event()
    box.put_frame(frame(1, 0), 1, stop.is_set)
    result = []
    worker = threading.Thread(target=lambda: result.append(box.put_frame(frame(1, 1), 1, stop.is_set)))
    worker.start()
    time.sleep(0.05)
    stop.set()
    box.wake()
    worker.join(2.0)
    assert result == [False]


def test_replies_go_first_and_close_ends_after_the_events():
    box = Outbox(capacity=4, real_time=True, fps=FPS)
    box.attach()
    box.put_frame(frame(1, 0), 1, never)
    box.put_event(shot_event(1, pb.SHOT_PHASE_CANCELLED), 1)
    box.put_reply(pb.StoryUpdate(command=pb.CommandResult(request_id=7)))
    box.close(pb.StoryUpdate(closed=pb.SessionClosed(reason=pb.CLOSE_REASON_CLIENT)))
    kinds = [u.WhichOneof("update") for u in drain(box)]
    assert kinds == ["command", "shot", "closed"]
    assert box.get(0.01) is CLOSED
    assert not box.put_frame(frame(1, 1), 1, never)


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        Outbox(capacity=0, real_time=False, fps=FPS)
