"""The cutscene player: a bounded playout buffer of frames, played at the story's fps, and what the HUD shows.

It takes what `Feed.poll()` returns. Frames become small surfaces (64x64 for the tiny model) kept in
arrival order; `update(dt)` shows the next one every 1/fps seconds of game time and holds the last
one when the buffer runs dry. A cut or an interrupting event makes every frame of the shots it
replaced stale: they are dropped from the buffer and ignored when they still arrive.

A frame due while the buffer is dry and more frames are on their way is a stall (`buffering`): the time
it waits is counted, exactly, and the next frame shows as soon as it arrives, one period after it the one
after. So each shot's figures (`ShotPlayback`: frames shown, game seconds from its first frame to its last,
stalls and their seconds) say whether it played at the story's fps while it had frames: frames - 1 over the
seconds less the stalls. The HUD's fps is the same figure over the last second of frames shown.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import pygame

from engine_bridge.client import pb

BUFFER_FRAMES = 32  # frames the game holds ahead of playback (2 s at 16 fps)
THUMBNAILS = 6  # recent shots remembered for the "story so far" strip
TERMINAL = {pb.SHOT_PHASE_COMPLETED: "completed", pb.SHOT_PHASE_CUT: "cut", pb.SHOT_PHASE_CANCELLED: "cancelled",
            pb.SHOT_PHASE_DROPPED: "dropped", pb.SHOT_PHASE_FAILED: "failed"}


def shot_frames(chunks: int, chunk_frames: tuple[int, ...] = (9, 12)) -> int:
    """Frames of a shot of `chunks` chunks: the first chunk's, then the later chunks'."""
    return chunk_frames[0] + chunk_frames[1] * (chunks - 1) if chunks > 0 else 0


@dataclass
class ShotPlayback:
    """How one shot played, in game time: `frames` shown between `first_at` and `last_at`, and the `stalls`
    (frames due while the buffer was dry) with the `stall_s` they waited. `waited_s` is the time before its
    first frame while the screen waited for it (a new shot's first chunk)."""

    shot_id: int
    first_at: float
    last_at: float
    frames: int = 1
    stalls: int = 0
    stall_s: float = 0.0
    waited_s: float = 0.0

    @property
    def playing_fps(self) -> float | None:
        """Frames per second of game time while the shot had frames (None for a single frame)."""
        span = self.last_at - self.first_at - self.stall_s
        return (self.frames - 1) / span if self.frames > 1 and span > 0 else None

    def line(self) -> str:
        fps = self.playing_fps
        return (f"shot {self.shot_id}: {self.frames} frames in {self.last_at - self.first_at:.2f} s of game time, "
                f"{'%.1f' % fps if fps else '-'} fps while buffered, {self.stalls} stalls ({self.stall_s:.2f} s), "
                f"first frame waited {self.waited_s:.2f} s")


@dataclass
class Shot:
    shot_id: int
    prompt: str = ""
    event: str = ""
    chunks: int = 0
    dropped: tuple[str, ...] = ()  # words of the prompt the model did not know (left out)
    ended: str = ""  # "" while it can still produce frames, else a TERMINAL value


class Cutscene:
    def __init__(self, fps: int = 16):
        self.fps = fps
        self.buffer: deque[tuple[int, int, pygame.Surface]] = deque()  # (shot_id, frame_index, image)
        self.shots: dict[int, Shot] = {}
        self.pending: set[int] = set()   # shot ids issued or started, not yet ended
        self.floor = 0                    # frames of shots with a smaller id are stale (cut or cancelled)
        self.chunk_frames: tuple[int, ...] = (9, 12)
        self.image: pygame.Surface | None = None
        self.thumbnails: deque[tuple[int, pygame.Surface]] = deque(maxlen=THUMBNAILS)  # last frame of recent shots
        self.showing: Shot | None = None
        self.frame_index = 0
        self.frames_shown = 0
        self.chunk_gen_s = 0.0
        self.playback: dict[int, ShotPlayback] = {}  # per shot shown, in the order shown
        self.stall_s = 0.0  # game seconds frames were due with none to show, while more were on their way
        self.buffering = False  # a frame is due, none is here, more are coming
        self._clock = 0.0
        self._shown_at: deque[tuple[float, float]] = deque(maxlen=17)  # (game time, stall_s) of frames shown
        self._time = 0.0
        self._last: ShotPlayback | None = None
        self._last_stall = 0.0
        self._idle_since_shown = False  # the buffer ran dry with nothing coming since the last frame shown
        self.most_buffered = 0

    @property
    def room(self) -> int:
        return BUFFER_FRAMES - len(self.buffer)

    @property
    def idle(self) -> bool:
        """Nothing playing, nothing buffered, nothing on its way."""
        return not self.buffer and not self.pending

    @property
    def playback_fps(self) -> float:
        """Frames shown per second of game time over the last second or so of frames, stalls left out (the
        HUD says `buffering` while one lasts); 0 when nothing is playing."""
        if len(self._shown_at) < 2 or self.buffering or self._time - self._shown_at[-1][0] > 2.0 / self.fps:
            return 0.0
        (t0, s0), (t1, s1) = self._shown_at[0], self._shown_at[-1]
        return (len(self._shown_at) - 1) / max(1e-6, (t1 - t0) - (s1 - s0))

    # -- what arrives -----------------------------------------------------------------------------------
    def issued(self, shot_ids: tuple[int, ...], interrupt: bool) -> None:
        """The server accepted these shots; an interrupt makes every earlier shot stale."""
        if interrupt and shot_ids:
            self.drop_before(min(shot_ids))
        self.pending.update(shot_ids)

    def cancelled(self, shot_ids: tuple[int, ...]) -> None:
        if shot_ids:
            self.drop_before(max(shot_ids) + 1)

    def drop_before(self, shot_id: int) -> None:
        """Shot ids increase in issue order, so "replaced" means "smaller id"."""
        self.floor = max(self.floor, shot_id)
        self.pending = {s for s in self.pending if s >= self.floor}
        self.buffer = deque(item for item in self.buffer if item[0] >= self.floor)

    def accept_event(self, event: pb.ShotEvent) -> None:
        shot = self.shots.setdefault(event.shot_id, Shot(event.shot_id))
        if event.prompt:
            shot.prompt, shot.event, shot.chunks = event.prompt, event.event, event.chunks_requested
            shot.dropped = tuple(event.dropped_words)
        if event.phase in TERMINAL:
            shot.ended = TERMINAL[event.phase]
            self.pending.discard(event.shot_id)
        elif event.shot_id >= self.floor:
            self.pending.add(event.shot_id)

    def accept_frame(self, frame: pb.Frame) -> None:
        if frame.shot_id < self.floor:
            return
        image = pygame.image.frombytes(frame.data, (frame.width, frame.height), "RGB")
        self.buffer.append((frame.shot_id, frame.frame_index, image))
        self.most_buffered = max(self.most_buffered, len(self.buffer))
        self.chunk_gen_s = frame.chunk_gen_us / 1e6

    # -- playback -------------------------------------------------------------------------------------
    def update(self, dt: float) -> None:
        """Advances playback by `dt` seconds of game time. Frame k of a run without stalls shows at
        first + k / fps exactly (the game's own step, here 1/30 s, only decides when the screen changes)."""
        period = 1.0 / self.fps
        self._clock += dt
        while self._clock >= period and self.buffer:
            self._clock -= period
            self._show(self._time + dt - self._clock)  # the game time the frame was due
        if not self.buffer and self._clock > period:  # due, and none to show: a dry buffer does not bank time
            late = self._clock - period
            self._clock = period
            self.buffering = bool(self.pending)
            if self.buffering:
                self.stall_s += late
            else:
                self._idle_since_shown = True
        else:
            self.buffering = False
        self._time += dt

    def _show(self, at: float) -> None:
        shot_id, self.frame_index, self.image = self.buffer.popleft()
        self.showing = self.shots.get(shot_id) or self.shots.setdefault(shot_id, Shot(shot_id))
        self.frames_shown += 1
        if self._idle_since_shown:  # the fps window starts again after an idle gap (it is not playback time)
            self._shown_at.clear()
            self._idle_since_shown = False
        self._shown_at.append((at, self.stall_s))
        waited, self._last_stall = self.stall_s - self._last_stall, self.stall_s
        record = self.playback.get(shot_id)
        if record is None:
            record = self.playback[shot_id] = ShotPlayback(shot_id, at, at, waited_s=waited)
        elif record is self._last:
            record.frames, record.last_at = record.frames + 1, at
            if waited > 0:
                record.stalls, record.stall_s = record.stalls + 1, record.stall_s + waited
        self._last = record
        if self.thumbnails and self.thumbnails[-1][0] == shot_id:
            self.thumbnails[-1] = (shot_id, self.image)
        else:
            self.thumbnails.append((shot_id, self.image))

    @property
    def progress(self) -> float:
        """How far the shot on screen is, 0..1."""
        if self.showing is None or not self.showing.chunks:
            return 0.0
        return min(1.0, (self.frame_index + 1) / shot_frames(self.showing.chunks, self.chunk_frames))
