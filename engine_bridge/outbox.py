"""A session's playout buffer between its shot worker and its one frame stream; the slow-consumer policy.

Two lanes. `replies` (Play command answers, stream failures) leave first, unpaced, never dropped. The
`timeline` holds frames and shot events in story order. Invariants: at most `capacity` frames are held;
only frames are ever dropped or discarded; a shot's terminal event leaves after every frame of that shot
has left, been dropped or been discarded, and is stamped with those counts as it leaves. A frame's
`story_frame` and `pts_us` are stamped as it leaves too: its place on the timeline of frames sent or
dropped, so frames a cut discarded leave no gap.

Pacing, with the playout clock running only while a stream is attached:
- real time: frame i may leave at due_i = max(due_{i-1} + 1/fps, when it was queued or the stream
  attached). When the buffer is full and its oldest frame is more than one frame period past due, that
  frame is dropped and counted; otherwise the worker waits for room. The stream stays live and its
  latency stays under `capacity / fps` plus one period, whatever the consumer does.
- as fast as possible: frames leave at once; a full buffer makes the worker wait (backpressure, nothing
  dropped). A paused worker holds no model time, so other sessions go faster meanwhile.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from engine_bridge.frames import pts_us
from engine_bridge.wire import TERMINAL_PHASES, pb

CLOSED = object()  # `get` returns this once the outbox is closed and drained
_SAFETY_WAIT_S = 0.5  # upper bound on any wait, so a missed wake-up can only cost this much
_U32 = 2**32 - 1


@dataclass
class _Item:
    update: pb.StoryUpdate
    shot_id: int
    is_frame: bool
    queued: float
    due: float | None = None


class Outbox:
    def __init__(self, *, capacity: int, real_time: bool, fps: float,
                 clock: Callable[[], float] = time.monotonic):
        if capacity < 1:
            raise ValueError("an outbox holds at least one frame")
        self.capacity, self.real_time, self.fps, self.period = capacity, real_time, fps, 1.0 / fps
        self._clock = clock
        self._cond = threading.Condition()
        self._replies: deque = deque()
        self._timeline: deque[_Item] = deque()
        self._frames = 0
        self._attached = self._closed = False
        self._stream = 0  # ticket of the latest attached stream
        self._last_due = self._released_due = float("-inf")
        self._dropped_since_sent = 0
        self._per_shot: dict[int, list[int]] = {}  # shot id -> [dropped, discarded]
        self.sent = self.dropped = 0
        self._timeline_frames = 0  # frames sent or dropped so far: the next frame's story_frame

    # -- the stream side ----------------------------------------------------------------------------
    def attach(self) -> int:
        """A stream attached: start the playout clock at now for every frame already waiting. Returns the
        stream's ticket for `get`."""
        with self._cond:
            self._attached = True
            self._stream += 1
            self._last_due = float("-inf")
            now = self._clock()
            for item in self._timeline:
                if item.is_frame and self._paced:
                    item.due = self._next_due(now)
            self._cond.notify_all()
            return self._stream

    def detach(self) -> None:
        with self._cond:
            self._attached = False
            for item in self._timeline:
                item.due = None
            self._cond.notify_all()

    def get(self, timeout: float, stream: int | None = None):
        """The next update to send, None after `timeout` seconds without one, or CLOSED. With `stream` (a
        ticket from `attach`), None at once when that stream is no longer the attached one: a stream that
        ended takes nothing meant for the next."""
        deadline = self._clock() + timeout
        with self._cond:
            while True:
                now = self._clock()
                if stream is not None and (stream != self._stream or not self._attached):
                    return None
                if self._replies:
                    return self._replies.popleft()
                head = self._timeline[0] if self._timeline else None
                if head is not None and not (head.is_frame and head.due is not None and now < head.due):
                    self._timeline.popleft()
                    return self._release(head, now)
                if head is None and self._closed:
                    return CLOSED
                if now >= deadline:
                    return None
                until = deadline if head is None else min(deadline, head.due)
                self._cond.wait(min(until - now, _SAFETY_WAIT_S))

    def _release(self, item: _Item, now: float) -> pb.StoryUpdate:
        if item.is_frame:
            self._frames -= 1
            self.sent += 1
            frame = item.update.frame
            frame.buffered_us = min(_U32, int((now - item.queued) * 1e6))
            frame.dropped_before, self._dropped_since_sent = self._dropped_since_sent, 0
            frame.story_frame, frame.pts_us = self._timeline_frames, pts_us(self._timeline_frames, self.fps)
            self._timeline_frames += 1
            if item.due is not None:
                self._released_due = item.due
            self._cond.notify_all()
        elif item.update.WhichOneof("update") == "shot" and item.update.shot.phase in TERMINAL_PHASES:
            dropped, discarded = self._per_shot.pop(item.shot_id, (0, 0))
            item.update.shot.frames_dropped += dropped
            item.update.shot.frames_discarded += discarded
        return item.update

    # -- the worker side ----------------------------------------------------------------------------
    def put_frame(self, update: pb.StoryUpdate, shot_id: int, abandoned: Callable[[], bool]) -> bool:
        """Queues a frame, waiting for room as the pacing says. False: closed or `abandoned()` (not queued)."""
        with self._cond:
            while True:
                if self._closed or abandoned():
                    return False
                if self._frames < self.capacity:
                    break
                now = self._clock()
                if not self._drop_late(now):
                    self._cond.wait(self._room_wait(now))
            now = self._clock()
            due = self._next_due(now) if self._paced else None
            self._timeline.append(_Item(update, shot_id, True, now, due))
            self._frames += 1
            self._cond.notify_all()
            return True

    def put_event(self, update: pb.StoryUpdate, shot_id: int = 0) -> None:
        with self._cond:
            if not self._closed:
                self._timeline.append(_Item(update, shot_id, False, self._clock()))
                self._cond.notify_all()

    def put_reply(self, reply) -> None:
        """A Play answer, or an exception the stream should end with; ahead of the timeline."""
        with self._cond:
            self._replies.append(reply)
            self._cond.notify_all()

    def discard_shot(self, shot_id: int) -> int:
        """Removes the shot's frames not yet sent (a cut or cancel overtook them); returns how many."""
        with self._cond:
            removed = self._remove_frames(lambda item: item.shot_id == shot_id)
            dues = [item.due for item in self._timeline if item.is_frame and item.due is not None]
            self._last_due = max(dues, default=self._released_due)
            return removed

    def close(self, final: pb.StoryUpdate) -> None:
        """Discards waiting frames, queues `final` after the events still waiting; later puts are refused."""
        with self._cond:
            if self._closed:
                return
            self._remove_frames(lambda item: True)
            self._timeline.append(_Item(final, 0, False, self._clock()))
            self._closed = True
            self._cond.notify_all()

    def wake(self) -> None:
        """Makes a waiting worker look at its `abandoned` callable again."""
        with self._cond:
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._replies) + len(self._timeline)

    # -- policy -------------------------------------------------------------------------------------
    @property
    def _paced(self) -> bool:
        """The playout clock runs: real-time pacing with a stream attached."""
        return self.real_time and self._attached

    def _next_due(self, now: float) -> float:
        self._last_due = max(self._last_due + self.period, now)
        return self._last_due

    def _drop_late(self, now: float) -> bool:
        """Real time only: drops the oldest frame if it is more than one period late."""
        if not self._paced:
            return False
        for index, item in enumerate(self._timeline):
            if item.is_frame:
                if item.due is None or now <= item.due + self.period:
                    return False
                del self._timeline[index]
                self._frames -= 1
                self.dropped += 1
                self._dropped_since_sent += 1
                self._timeline_frames += 1
                self._per_shot.setdefault(item.shot_id, [0, 0])[0] += 1
                return True
        return False

    def _room_wait(self, now: float) -> float:
        if self._paced:
            oldest = next(item for item in self._timeline if item.is_frame)
            if oldest.due is not None:
                return min(_SAFETY_WAIT_S, max(1e-3, oldest.due + self.period - now))
        return _SAFETY_WAIT_S

    def _remove_frames(self, which: Callable[[_Item], bool]) -> int:
        kept: deque[_Item] = deque()
        removed = 0
        for item in self._timeline:
            if item.is_frame and which(item):
                removed += 1
                self._per_shot.setdefault(item.shot_id, [0, 0])[1] += 1
            else:
                kept.append(item)
        self._timeline = kept
        self._frames -= removed
        self._cond.notify_all()
        return removed
