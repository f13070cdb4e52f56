"""Writes the whole game screen to a video file (H.264 through the ffmpeg that imageio-ffmpeg ships).

The encoder is a child process fed raw RGB frames on its stdin. It is started without a `preexec_fn` (so Python
spawns it with vfork, which runs no fork handlers) and in a process group of its own (so a Ctrl+C in the
terminal reaches the game, which then closes the file properly, and not the encoder). imageio's writer starts
ffmpeg with `preexec_fn=os.setpgrp`, which forces a full fork(): gRPC's fork handlers then ran in the child
while the client's threads were inside gRPC ("skipping fork() handlers"), and the encoder's pipe broke.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pygame


class RecordingError(RuntimeError):
    """The encoder stopped before the recording was closed; its last log lines are in the message."""


class Recorder:
    def __init__(self, path: Path, fps: int):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.frames = 0
        self.fps = fps
        self._process: subprocess.Popen | None = None
        self._size: tuple[int, int] | None = None

    def _start(self, width: int, height: int) -> None:
        from imageio_ffmpeg import get_ffmpeg_exe

        command = [get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                   "-s", f"{width}x{height}", "-r", str(self.fps), "-i", "-", "-an", "-c:v", "libx264",
                   "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", str(self.path)]
        self._log = open(self.path.with_suffix(self.path.suffix + ".log"), "w+b")
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=self._log, process_group=0)
        self._size = (width, height)

    def add(self, screen: pygame.Surface) -> None:
        """Appends the screen as the next frame (the layout keeps its size even, as yuv420p needs)."""
        size = screen.get_size()
        if self._process is None:
            self._start(*size)
        elif size != self._size:
            raise RecordingError(f"the screen changed size from {self._size} to {size} during the recording")
        try:
            self._process.stdin.write(pygame.image.tobytes(screen, "RGB"))
        except BrokenPipeError:
            raise RecordingError(f"ffmpeg stopped while recording {self.path}: {self._close()}") from None
        self.frames += 1

    def _close(self) -> str:
        """Ends the encoder; returns what went wrong ("" when it finished cleanly)."""
        process, self._process = self._process, None
        try:
            process.stdin.close()
        except BrokenPipeError:
            pass
        code = process.wait(timeout=60)
        self._log.seek(0)
        log = self._log.read().decode(errors="replace").strip()
        self._log.close()
        Path(self._log.name).unlink()
        return f"exit status {code}: {log}" if code else ""

    def close(self) -> None:
        if self._process is not None:
            problem = self._close()
            if problem:
                raise RecordingError(f"ffmpeg could not finish {self.path}: {problem}")

    @property
    def seconds(self) -> float:
        return self.frames / self.fps
