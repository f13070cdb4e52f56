"""Shared fixtures: one engine per backend for the whole session, exported into a temporary cache folder."""
from __future__ import annotations

import os
import tempfile

import pytest

# Exported ONNX files go to a folder of this test run, never into the user's cache.
os.environ.setdefault("SHOTSTREAM_CACHE", tempfile.mkdtemp(prefix="shotstream-test-cache-"))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

CAPTION = "a knight and a dragon, pixel art"


@pytest.fixture(scope="session")
def ort_engine():
    from runtime import Engine

    return Engine.load("tiny", "onnxruntime")


@pytest.fixture(scope="session")
def torch_engine():
    from runtime import Engine

    return Engine.load("tiny", "torch")


def collect(iterator):
    """Frames of a shot iterator, copied (the yielded views are reused)."""
    import numpy as np

    return np.concatenate([c.frames.copy() for c in iterator])
