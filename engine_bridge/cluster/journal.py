"""A session's journal (kept off its node, in the directory) and the plan that resumes a lost session.

Between shots a session is small: its story's checkpoint (history with the kept frames, RNG), its shot
queue, the shot it runs, its next shot id, and where its timeline stands. The runtime is deterministic for a
seed and these, so a session rebuilt from its journal on another node replays its running shot from the
start with the same frames. The session starts a shot only once the previous one has left its playout
buffer, so the client is always inside the running shot, or just past the end of the last one (whose end
events the journal keeps). Nothing here imports Ray.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine_bridge.errors import UnavailableError
from engine_bridge.session import SessionSettings, ShotRequest
from runtime.story import StoryCheckpoint


@dataclass(frozen=True)
class Entry:
    """A shot the session accepted: its id and request."""

    shot_id: int
    request: ShotRequest


@dataclass
class Journal:
    """The directory's copy of one session, updated by the session actor as it goes."""

    settings: SessionSettings
    script_text: str
    checkpoint: StoryCheckpoint | None = None  # after the last shot that ended; None: no shot yet
    running: Entry | None = None  # the shot being generated
    queue: tuple[Entry, ...] = ()
    next_id: int = 1
    frames_at_start: int = 0  # story frames stamped before the running shot (or the next one)
    last_end: tuple[int, tuple[bytes, ...]] | None = None  # last ended shot's id, its end and DROPPED events
    chunks_generated: int = 0
    frames_generated: int = 0
    seqs: dict[str, int] = field(default_factory=dict)  # per field: the record number that last set it

    def apply(self, seq: int, fields: dict) -> None:
        """A record from the session actor. Records may arrive out of order (the directory runs calls on
        several threads), so a field keeps the value of the newest record that set it."""
        for name, value in fields.items():
            if seq > self.seqs.get(name, -1):
                self.seqs[name] = seq
                setattr(self, name, value)


@dataclass(frozen=True)
class ResumePoint:
    """What the client of the stream that saw the node go has received."""

    shot_id: int = 0  # the shot of the last shot update or frame delivered (0: none)
    frames: int = 0  # frames of that shot delivered
    ended: bool = False  # its terminal event delivered
    next_story_frame: int | None = None  # the story_frame the next frame must carry (None: none delivered)


@dataclass(frozen=True)
class Resume:
    """How a rebuilt session starts: story, updates to send first, shots to run (the first one skipping
    what the client has), and its counters."""

    checkpoint: StoryCheckpoint | None
    replay: tuple[bytes, ...]  # serialized StoryUpdates to queue before anything else
    queue: tuple[Entry, ...]
    skip_shot: int  # the shot whose first `skip_frames` frames (and STARTED event, if `started_sent`) are not sent
    skip_frames: int
    started_sent: bool
    next_id: int
    story_frames: int  # stamp of the next frame sent


def plan_resume(journal: Journal, point: ResumePoint | None) -> Resume:
    """The resume of `journal` for a client at `point` (None: no stream was attached: the client has what
    was stamped before the running shot). Raises UnavailableError when the client lacks more than the
    journal can give back."""
    running, queue = journal.running, journal.queue
    shots = ((running,) if running else ()) + queue
    start = journal.frames_at_start
    replay, skip, frames, started = (), 0, 0, False
    if point is not None and point.shot_id:
        at = point.next_story_frame if point.next_story_frame is not None else start
        if running is not None and point.shot_id == running.shot_id:
            skip, frames, started, start = running.shot_id, point.frames, True, at
        elif journal.last_end is not None and point.shot_id == journal.last_end[0]:
            replay = () if point.ended else journal.last_end[1]
            start = at
        elif not point.ended:
            raise UnavailableError(
                f"the session lost its node while its client was behind by more than a shot (shot "
                f"{point.shot_id}); its journal cannot replay it")
        else:
            start = at
    return Resume(journal.checkpoint, replay, shots, skip, frames, started, journal.next_id, start)
