"""One session: a story, its shot queue, its worker thread and its playout buffer.

The worker is the only thread that drives the story: it takes the next shot from the queue and iterates
`story.generate_shot(prompt, chunks, stop)`, turning chunks into Frame updates in the outbox; when the
queue runs empty it first prepares the next shot's context (`story.prepare_next`), so a shot submitted to
an idle session waits for its first chunk only. Commands
arrive from gRPC threads and only touch the queue and the current shot's stop event:
- every prompt is checked as the story will read it (caption + "shot{k}:" + prompt, in the session's prompt
  mode) before anything is queued, with k the highest index the shot can get (no queued shot is skipped);
- queue: append; cut: drop the queued shots, stop the current one at its next chunk boundary and discard
  its unsent frames, then queue the new shots first; cancel: a cut with no new shots. Story order: the
  stopped shot's CUT / CANCELLED event leaves before the DROPPED events of the shots that were queued
  behind it (the worker sends them right after it);
- a frame stream that goes away (disconnect, cancel, deadline) cancels the same way;
- close: cancel, wait for the worker to leave the story, close the story.
Lock order: the session's lock may be held while taking the outbox's lock, never the reverse.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from engine_bridge import frames
from engine_bridge.director import Cue, Director
from engine_bridge.errors import BadRequestError, CloseTimeoutError, PreconditionError, QueueFullError
from engine_bridge.outbox import Outbox
from engine_bridge.status import classify
from engine_bridge.wire import pb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionSettings:
    seed: int
    global_caption: str
    frame_format: int  # pb.FrameFormat, never UNSPECIFIED
    jpeg_quality: int  # 1..100
    pacing: int  # pb.Pacing, never UNSPECIFIED
    buffer_frames: int
    prompt_mode: str = "strict"  # "strict" or "lenient" (runtime.text)


@dataclass(frozen=True)
class ShotRequest:
    prompt: str
    chunks: int  # 1..max_chunks_per_shot
    event: str = ""  # the director event that produced it
    dropped: tuple[str, ...] = ()  # the prompt's words left out (lenient), set when it is queued


@dataclass(frozen=True)
class Queued:
    """The answer to a submit, trigger or cancel."""

    shot_ids: tuple[int, ...] = ()
    queued_shots: int = 0
    dropped: tuple[tuple[str, ...], ...] = ()  # per queued shot: its prompt's words left out (lenient)
    suppressed: bool = False
    cooldown_remaining_s: float = 0.0
    interrupt: bool = False


@dataclass
class _Shot:
    id: int
    request: ShotRequest
    stop: threading.Event = field(default_factory=threading.Event)
    early_end: int = pb.SHOT_PHASE_CANCELLED  # the phase it ends with if stopped early
    dropped_after: list["_Shot"] = field(default_factory=list)  # queued shots dropped while it ran


class Session:
    def __init__(self, *, session_id: str, story, settings: SessionSettings, fps: int, director: Director,
                 max_queued: int, clock: Callable[[], float] = time.monotonic):
        self.id, self.settings, self.fps, self.director = session_id, settings, fps, director
        self._story, self._max_queued, self._clock = story, max_queued, clock
        self.outbox = Outbox(capacity=settings.buffer_frames, real_time=settings.pacing == pb.PACING_REAL_TIME,
                             fps=fps, clock=clock)
        self._cond = threading.Condition()
        self._queue: deque[_Shot] = deque()
        self._current: _Shot | None = None
        self._next_id = 1
        self._closed = self._attached = False
        self._ticket = 0
        self._failure: str | None = None
        self.last_active = clock()
        self.chunks_generated = self.frames_generated = 0
        self.chunks_at_last_stop: int | None = None  # chunks_generated when a running shot was last stopped
        self._worker = threading.Thread(target=self._run, name=f"session-{session_id[:8]}", daemon=True)
        self._worker.start()

    # -- commands (gRPC threads) --------------------------------------------------------------------
    def submit(self, shots: Sequence[ShotRequest], *, cut: bool) -> Queued:
        if not shots and not cut:
            raise BadRequestError("no shots given; an empty request is only valid as a cut (= cancel)")
        with self._cond:
            return self._enqueue(self._checked(shots, cut), cut)

    def cancel(self) -> Queued:
        return self.submit([], cut=True)

    def trigger(self, event: str, params: Mapping[str, str]) -> Queued:
        cue: Cue = self.director.expand(event, params)
        shots = [ShotRequest(prompt, chunks, event) for prompt, chunks in cue.shots]
        with self._cond:  # the check, the cool-down check and the queueing are one step
            shots = self._checked(shots, cue.interrupt)
            remaining = self.director.cooldown_remaining(cue)
            if remaining > 0:
                self._usable()
                self.last_active = self._clock()
                return Queued((), len(self._queue), suppressed=True, cooldown_remaining_s=remaining,
                              interrupt=cue.interrupt)
            queued = self._enqueue(shots, cue.interrupt)
            self.director.fired(cue)
            return Queued(queued.shot_ids, queued.queued_shots, queued.dropped, interrupt=cue.interrupt)

    def attach(self) -> int:
        """A frame stream starts; only one at a time. Returns its ticket (for `outbox.get`, `detach`)."""
        with self._cond:
            self._usable()
            if self._attached:
                raise PreconditionError(f"session {self.id} already has a frame stream attached")
            self._attached = True
            self.last_active = self._clock()
            self._ticket = self.outbox.attach()
            return self._ticket

    def detach(self, ticket: int) -> None:
        """The frame stream `ticket` ended (disconnect, cancel, deadline): stop this session's work."""
        with self._cond:
            if not self._attached or ticket != self._ticket:
                return
            self._attached = False
            self.last_active = self._clock()
            self.outbox.detach()
            if not self._closed:
                self._stop_all(pb.SHOT_PHASE_CANCELLED)
                log.info("frame stream gone: work stopped",
                         extra={"session": self.id, "chunks_generated": self.chunks_generated})

    def close(self, reason: int, timeout: float) -> tuple[int, int]:
        """Stops the work, waits up to `timeout` s for the worker, ends the stream. Returns (shots, frames)."""
        with self._cond:
            if not self._closed:
                self._closed = True
                self._stop_all(pb.SHOT_PHASE_CANCELLED)
                self._cond.notify_all()
        self._worker.join(timeout)
        self.outbox.close(pb.StoryUpdate(closed=pb.SessionClosed(session_id=self.id, reason=reason)))
        if self._worker.is_alive():
            raise CloseTimeoutError(f"session {self.id} is closed, but its worker did not stop within {timeout:.1f} s")
        return self._story.shots_done, self.frames_generated

    # -- state --------------------------------------------------------------------------------------
    @property
    def caption_dropped(self) -> tuple[str, ...]:
        """Words of the global caption the story left out (lenient mode)."""
        return self._story.caption_dropped

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._current is not None or bool(self._queue)

    @property
    def attached(self) -> bool:
        with self._cond:
            return self._attached

    def idle_for(self, now: float) -> float:
        """Seconds since the last call, or 0 while a stream is attached."""
        with self._cond:
            return 0.0 if self._attached else now - self.last_active

    def touch(self) -> None:
        with self._cond:
            self.last_active = self._clock()

    def _usable(self) -> None:
        if self._closed:
            raise PreconditionError(f"session {self.id} is closing")
        if self._failure:
            raise PreconditionError(f"session {self.id} failed earlier and takes no more work: {self._failure}")

    def _checked(self, shots: Sequence[ShotRequest], cut: bool) -> list[ShotRequest]:
        """Under the lock: each prompt checked as the story will read it, with the dropped words filled in.
        The shot index used is the highest it can get (every shot ahead of it played), since "shot{k}:"
        grows with k; a cut only lowers it."""
        ahead = self._story.shots_done + (self._current is not None) + (0 if cut else len(self._queue))
        return [ShotRequest(shot.prompt, shot.chunks, shot.event,
                            self._story.check_prompt(shot.prompt, shot_index=ahead + i).dropped)
                for i, shot in enumerate(shots)]

    def _enqueue(self, shots: Sequence[ShotRequest], cut: bool) -> Queued:
        """Under the lock: queue `shots` (prompts already checked), after a cut if `cut`."""
        self._usable()
        waiting = 0 if cut else len(self._queue)
        if waiting + len(shots) > self._max_queued:
            raise QueueFullError(f"the shot queue holds {len(self._queue)} of {self._max_queued} shots; "
                                 f"{len(shots)} more do not fit")
        if cut:
            self._stop_all(pb.SHOT_PHASE_CUT if shots else pb.SHOT_PHASE_CANCELLED)
        ids = tuple(range(self._next_id, self._next_id + len(shots)))
        self._queue.extend(_Shot(shot_id, request) for shot_id, request in zip(ids, shots))
        self._next_id += len(shots)
        self.last_active = self._clock()
        self._cond.notify_all()
        return Queued(ids, len(self._queue), tuple(shot.dropped for shot in shots))

    def _stop_all(self, phase: int) -> None:
        """Under the lock: drop the queue, stop the current shot and discard its unsent frames. The DROPPED
        events follow the current shot's own end (the worker sends them), or leave now when none runs."""
        current = self._current
        if current is not None:
            current.dropped_after.extend(self._queue)
        else:
            for shot in self._queue:
                self.outbox.put_event(self._shot_event(shot, pb.SHOT_PHASE_DROPPED), shot.id)
        self._queue.clear()
        if current is not None and not current.stop.is_set():
            current.early_end = phase
            current.stop.set()
            self.chunks_at_last_stop = self.chunks_generated
            self.outbox.discard_shot(current.id)
            self.outbox.wake()

    # -- the worker ---------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while (shot := self._next_shot()) is not None:
                end = self._play(shot)
                with self._cond:  # in one step, so a cut cannot leave DROPPED events with a shot already ended
                    self.outbox.put_event(end, shot.id)
                    for dropped in shot.dropped_after:
                        self.outbox.put_event(self._shot_event(dropped, pb.SHOT_PHASE_DROPPED), dropped.id)
                    self._current = None
        finally:
            self._story.close()

    def _next_shot(self) -> _Shot | None:
        with self._cond:
            idle = not self._queue and not self._closed
        if idle:  # fill the next shot's context now, so its first frame waits for one chunk only
            self._story.prepare_next()
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            self._current = self._queue.popleft()
            return self._current

    def _play(self, shot: _Shot) -> pb.StoryUpdate:
        """Generates one shot into the outbox; returns its one terminal event (the caller queues it)."""
        done = generated = discarded = 0
        hasher, gen_seconds = hashlib.sha256(), 0.0
        index = self._story.shots_done
        self.outbox.put_event(self._shot_event(shot, pb.SHOT_PHASE_STARTED, shot_index=index), shot.id)
        error = None
        try:
            for chunk in self._story.generate_shot(shot.request.prompt, shot.request.chunks, shot.stop):
                done, generated = done + 1, generated + len(chunk.frames)
                gen_seconds += chunk.setup_seconds + chunk.gen_seconds
                self.chunks_generated += 1
                self.frames_generated += len(chunk.frames)
                for i, rgb in enumerate(chunk.frames):
                    raw = rgb.tobytes()
                    hasher.update(raw)
                    if shot.stop.is_set() or not self.outbox.put_frame(
                            self._frame(shot, chunk, i, rgb, raw), shot.id, shot.stop.is_set):
                        discarded += 1
        except Exception as exc:  # mapped through the one table; the session stays usable if typed
            error = classify(exc)
            if not error.expected:  # a bug, not a refused request: the story's state is in doubt
                with self._cond:
                    self._failure = error.message
            log.warning("shot failed", extra={"session": self.id, "shot": shot.id, "code": error.code.name})
        if error is not None:
            phase = pb.SHOT_PHASE_FAILED
        else:
            phase = pb.SHOT_PHASE_COMPLETED if done == shot.request.chunks else shot.early_end
        end = self._shot_event(shot, phase, shot_index=index, chunks_done=done, frames_generated=generated,
                               frames_discarded=discarded, frames_sha256=hasher.hexdigest(),
                               gen_us=int(gen_seconds * 1e6))
        if error is not None:
            end.shot.error_code, end.shot.error_message = error.number, error.message
        log.info("shot ended", extra={"session": self.id, "shot": shot.id, "phase": pb.ShotPhase.Name(phase),
                                      "chunks": done, "frames": generated, "gen_s": round(gen_seconds, 3)})
        return end

    def _frame(self, shot: _Shot, chunk, i: int, rgb, raw: bytes) -> pb.StoryUpdate:
        s = self.settings  # story_frame and pts_us are stamped by the outbox as the frame leaves
        return pb.StoryUpdate(frame=pb.Frame(
            session_id=self.id, shot_id=shot.id, shot_index=chunk.shot_index, chunk_index=chunk.chunk_index,
            frame_index=chunk.first_frame + i, format=s.frame_format, width=rgb.shape[1], height=rgb.shape[0],
            data=frames.encode(rgb, raw, s.frame_format, s.jpeg_quality),
            chunk_gen_us=min(2**32 - 1, int(chunk.gen_seconds * 1e6)),
            setup_us=min(2**32 - 1, int(chunk.setup_seconds * 1e6))))

    def _shot_event(self, shot: _Shot, phase: int, **fields) -> pb.StoryUpdate:
        r = shot.request
        return pb.StoryUpdate(shot=pb.ShotEvent(session_id=self.id, shot_id=shot.id, phase=phase, prompt=r.prompt,
                                                event=r.event, chunks_requested=r.chunks,
                                                dropped_words=r.dropped, **fields))
