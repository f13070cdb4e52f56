"""The cutscene player: a bounded playout buffer of frames, played at the story's fps, and what the HUD shows.

It takes what `Feed.poll()` returns. Frames become small surfaces (64x64 for the tiny model) kept in
arrival order; `update(dt)` shows the next one every 1/fps seconds of game time and holds the last
one when the buffer runs dry. A cut or an interrupting event makes every frame of the shots it
replaced stale: they are dropped from the buffer and ignored when they still arrive.
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
        self._clock = 0.0
        self._shown_at: deque[float] = deque(maxlen=17)
        self._time = 0.0

    @property
    def room(self) -> int:
        return BUFFER_FRAMES - len(self.buffer)

    @property
    def idle(self) -> bool:
        """Nothing playing, nothing buffered, nothing on its way."""
        return not self.buffer and not self.pending

    @property
    def playback_fps(self) -> float:
        """Frames shown per second of game time over the last second or so."""
        if len(self._shown_at) < 2 or self._time - self._shown_at[-1] > 2.0 / self.fps:
            return 0.0
        return (len(self._shown_at) - 1) / max(1e-6, self._shown_at[-1] - self._shown_at[0])

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
        self.chunk_gen_s = frame.chunk_gen_us / 1e6

    # -- playback -------------------------------------------------------------------------------------
    def update(self, dt: float) -> None:
        self._time += dt
        self._clock += dt
        period = 1.0 / self.fps
        while self._clock >= period and self.buffer:
            self._clock -= period
            shot_id, self.frame_index, self.image = self.buffer.popleft()
            self.showing = self.shots.get(shot_id) or self.shots.setdefault(shot_id, Shot(shot_id))
            self.frames_shown += 1
            self._shown_at.append(self._time)
            if self.thumbnails and self.thumbnails[-1][0] == shot_id:
                self.thumbnails[-1] = (shot_id, self.image)
            else:
                self.thumbnails.append((shot_id, self.image))
        if not self.buffer:
            self._clock = min(self._clock, period)  # a dry buffer does not bank time

    @property
    def progress(self) -> float:
        """How far the shot on screen is, 0..1."""
        if self.showing is None or not self.showing.chunks:
            return 0.0
        return min(1.0, (self.frame_index + 1) / shot_frames(self.showing.chunks, self.chunk_frames))
