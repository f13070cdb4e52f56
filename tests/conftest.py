"""Shared fixtures: one engine per backend for the whole session, exported into a temporary cache folder."""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest

# Exported ONNX files go to a folder of this test run, never into the user's cache; it is removed at the end.
OWN_CACHE = None if "SHOTSTREAM_CACHE" in os.environ else tempfile.mkdtemp(prefix="shotstream-test-cache-")
if OWN_CACHE:
    os.environ["SHOTSTREAM_CACHE"] = OWN_CACHE
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

CAPTION = "a knight and a dragon, pixel art"


def pytest_sessionfinish(session, exitstatus):
    if OWN_CACHE:
        shutil.rmtree(OWN_CACHE, ignore_errors=True)


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
