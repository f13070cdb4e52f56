"""Geometry of the story world: the one place its frame size, frame rate and shot length live.

The numbers match the runtime's `tiny` preset (64x64 pixels, 16 fps, 81-frame shots made of 1..7
chunks of 3 latent frames with 4x temporal compression). They are copied here on purpose:
`storyworld` must not import `runtime`, so a change of the preset has to be mirrored by hand.
"""
from __future__ import annotations

FRAME_SIZE = 64  # pixels, square frames
FPS = 16  # frames per second
TEMPORAL_STRIDE = 4  # pixel frames per latent frame after the first
LATENT_FRAMES_PER_CHUNK = 3
MAX_CHUNKS = 7


def shot_frames(chunks: int = MAX_CHUNKS) -> int:
    """Pixel frames of a shot made of `chunks` chunks: 1 + 4 * (3 * chunks - 1)."""
    if not 1 <= chunks <= MAX_CHUNKS:
        raise ValueError(f"chunks must be in 1..{MAX_CHUNKS}, got {chunks}")
    return 1 + TEMPORAL_STRIDE * (LATENT_FRAMES_PER_CHUNK * chunks - 1)


FRAMES_PER_SHOT = shot_frames(MAX_CHUNKS)  # 81
MIN_SHOTS = 2
MAX_SHOTS = 8
