"""Frame payloads: raw RGB8 bytes or an encoded image (PNG, JPEG), and the Frame message around them.

Pillow is imported on first use of an encoded format only.
"""
from __future__ import annotations

import io

import numpy as np

from engine_bridge.wire import pb

FORMATS = (pb.FRAME_FORMAT_RGB8, pb.FRAME_FORMAT_PNG, pb.FRAME_FORMAT_JPEG)
_PIL_FORMAT = {pb.FRAME_FORMAT_PNG: "PNG", pb.FRAME_FORMAT_JPEG: "JPEG"}


def encode(rgb: np.ndarray, raw: bytes, frame_format: int, jpeg_quality: int) -> bytes:
    """`rgb` is one (H, W, 3) uint8 frame and `raw` its bytes; returns the payload in `frame_format`."""
    if frame_format == pb.FRAME_FORMAT_RGB8:
        return raw
    from PIL import Image

    out = io.BytesIO()
    options = {"quality": jpeg_quality} if frame_format == pb.FRAME_FORMAT_JPEG else {"compress_level": 1}
    Image.fromarray(rgb, "RGB").save(out, format=_PIL_FORMAT[frame_format], **options)
    return out.getvalue()


def pts_us(story_frame: int, fps: int) -> int:
    """Presentation time of a story frame, microseconds."""
    return int(story_frame * 1_000_000 // fps)
