"""The engine bridge's Session, as a cluster runs it: it writes its journal and can start from a resume.

`JournaledSession` is `engine_bridge.session.Session` (same queue, cut and event order, same worker) with
three additions:
- every change of its queue, every shot start and every shot end is recorded through `record(seq, fields)`
  (the actor sends these to the directory; see `journal`);
- its worker starts a shot only once everything before it has left the playout buffer, so what a client
  has received is always inside the running shot or at the end of the previous one (what the journal can
  give back); the next shot's context is filled meanwhile, so the cost is its first chunk, no more;
- built with a `Resume`, it queues the journal's shots first and `ResumeOutbox` leaves out what the client
  already has (the running shot's first frames, its STARTED event), stamping frames from where it stopped.
Nothing here imports Ray.
"""
from __future__ import annotations

import itertools
import threading
from typing import Callable

from engine_bridge.cluster.journal import Entry, Resume
from engine_bridge.outbox import Outbox
from engine_bridge.session import Session, _Shot
from engine_bridge.wire import TERMINAL_PHASES, pb

Record = Callable[[int, dict], None]  # (sequence number, fields)


class ResumeOutbox(Outbox):
    """An Outbox that skips what a resumed client has, keeps the last shot's end events for the journal,
    and lets the worker wait until it is empty."""

    def __init__(self, *, resume: Resume | None, **kwargs):
        super().__init__(**kwargs)
        self._skip = (resume.skip_shot, resume.skip_frames, resume.started_sent) if resume else (0, 0, False)
        self._timeline_frames = resume.story_frames if resume else 0
        self.end_updates: list[bytes] = []  # this shot's terminal event and the DROPPED events after it

    @property
    def stamped(self) -> int:
        """Frames sent or dropped so far (the next frame's story_frame)."""
        with self._cond:
            return self._timeline_frames

    def put_frame(self, update: pb.StoryUpdate, shot_id: int, abandoned) -> bool:
        skip_shot, skip_frames, _ = self._skip
        if shot_id == skip_shot and update.frame.frame_index < skip_frames:
            return True  # the client has it
        return super().put_frame(update, shot_id, abandoned)

    def put_event(self, update: pb.StoryUpdate, shot_id: int = 0) -> None:
        shot = update.shot if update.WhichOneof("update") == "shot" else None
        if shot is not None and shot.phase == pb.SHOT_PHASE_STARTED and shot_id == self._skip[0] and self._skip[2]:
            return  # the client has it
        if shot is not None and shot.phase in TERMINAL_PHASES:
            self.end_updates.append(update.SerializeToString())
        super().put_event(update, shot_id)

    def get(self, timeout: float, stream: int | None = None):
        item = super().get(timeout, stream)
        with self._cond:
            self._cond.notify_all()  # a worker in wait_empty looks again
        return item

    def wait_empty(self, stop: Callable[[], bool]) -> None:
        """Blocks until nothing waits to be sent, or `stop()`."""
        with self._cond:
            while (self._replies or self._timeline) and not stop():
                self._cond.wait(0.5)


class JournaledSession(Session):
    def __init__(self, *, record: Record, resume: Resume | None = None, **kwargs):
        self._record, self._resume = record, resume
        self._seq = itertools.count()
        self._ready = threading.Event()  # the worker waits until the outbox and queue below are in place
        super().__init__(**kwargs)
        s = self.settings
        self.outbox = ResumeOutbox(resume=resume, capacity=s.buffer_frames,
                                   real_time=s.pacing == pb.PACING_REAL_TIME, fps=self.fps, clock=self._clock)
        if resume is not None:
            for data in resume.replay:
                update = pb.StoryUpdate.FromString(data)
                self.outbox.put_event(update, update.shot.shot_id)
            with self._cond:
                self._queue.extend(_Shot(e.shot_id, e.request) for e in resume.queue)
                self._next_id = resume.next_id
        self._ready.set()

    def holds(self, ticket: int) -> bool:
        """True while the stream `ticket` is the attached one."""
        with self._cond:
            return self._attached and self._ticket == ticket

    # -- journal ------------------------------------------------------------------------------------
    def _send(self, **fields) -> None:
        self._record(next(self._seq), fields)

    def _journal_queue(self) -> None:
        """Under the lock."""
        self._send(queue=tuple(Entry(s.id, s.request) for s in self._queue), next_id=self._next_id)

    def _enqueue(self, shots, cut):
        queued = super()._enqueue(shots, cut)
        self._journal_queue()
        return queued

    def _stop_all(self, phase: int) -> None:
        super()._stop_all(phase)
        self._journal_queue()

    # -- the worker ---------------------------------------------------------------------------------
    def _next_shot(self) -> _Shot | None:
        self._ready.wait()
        outbox = self.outbox
        if outbox.end_updates:  # a shot ended: the story as it stands now, and that shot's end events
            ended = pb.StoryUpdate.FromString(outbox.end_updates[0]).shot.shot_id
            self._send(checkpoint=self._story.checkpoint(), running=None,
                       last_end=(ended, tuple(outbox.end_updates)), chunks_generated=self.chunks_generated,
                       frames_generated=self.frames_generated)
            outbox.end_updates = []
        self._story.prepare_next()  # the next context, while the previous shot plays out
        outbox.wait_empty(lambda: self._closed)
        shot = super()._next_shot()
        if shot is not None:
            with self._cond:
                self._send(running=Entry(shot.id, shot.request), frames_at_start=outbox.stamped)
                self._journal_queue()
        return shot
