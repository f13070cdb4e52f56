"""Writing frames to a video file (mp4 through imageio-ffmpeg, gif, or a folder of PNGs), upscaled by an
integer factor with nearest-neighbour so small presets stay crisp."""
from __future__ import annotations

from pathlib import Path

import numpy as np


class VideoWriter:
    def __init__(self, path: str | Path, fps: int, scale: int = 1):
        if scale < 1:
            raise ValueError("scale must be >= 1")
        self.path, self.fps, self.scale = Path(path), fps, scale
        self.path.parent.mkdir(parents=True, exist_ok=True)
        suffix = self.path.suffix.lower()
        self._pngs = suffix == ""
        self._count = 0
        if self._pngs:
            self.path.mkdir(parents=True, exist_ok=True)
            self._writer = None
        else:
            import imageio.v2 as imageio

            kw = {"fps": fps}
            if suffix in (".mp4", ".mkv", ".mov", ".webm"):
                kw.update(codec="libx264", quality=8, macro_block_size=1, pixelformat="yuv420p")
            elif suffix == ".gif":
                kw = {"duration": 1.0 / fps, "loop": 0}
            self._writer = imageio.get_writer(str(self.path), **kw)

    def write(self, frames: np.ndarray) -> None:
        """frames: (n, H, W, 3) uint8."""
        if self.scale > 1:
            frames = frames.repeat(self.scale, axis=1).repeat(self.scale, axis=2)
        for frame in frames:
            if self._pngs:
                from PIL import Image

                Image.fromarray(frame).save(self.path / f"{self._count:06d}.png")
            else:
                self._writer.append_data(frame)
            self._count += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
