"""Writes the whole game screen to a video file (H.264 through imageio's bundled ffmpeg)."""
from __future__ import annotations

from pathlib import Path

import pygame


class Recorder:
    def __init__(self, path: Path, fps: int):
        import imageio.v2 as imageio

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.frames = 0
        self.fps = fps
        # macro_block_size=1: keep the exact screen size (the layout keeps it even, as yuv420p needs)
        self._writer = imageio.get_writer(self.path, fps=fps, codec="libx264", macro_block_size=1, quality=None,
                                          pixelformat="yuv420p", ffmpeg_params=["-preset", "veryfast", "-crf", "20"])

    def add(self, screen: pygame.Surface) -> None:
        import numpy as np

        width, height = screen.get_size()
        pixels = np.frombuffer(pygame.image.tobytes(screen, "RGB"), np.uint8).reshape(height, width, 3)
        self._writer.append_data(pixels)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    @property
    def seconds(self) -> float:
        return self.frames / self.fps
