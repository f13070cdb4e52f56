"""Shared fixtures: one engine per backend for the whole session, exported into a temporary cache folder."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

# Exported ONNX files go to a folder of this test run, never into the user's cache; it is removed at the end.
OWN_CACHE = None if "SHOTSTREAM_CACHE" in os.environ else tempfile.mkdtemp(prefix="shotstream-test-cache-")
if OWN_CACHE:
    os.environ["SHOTSTREAM_CACHE"] = OWN_CACHE
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

TORCH_THREADS = torch.get_num_threads()  # the default, before any test pins it
CAPTION = "a knight and a dragon, pixel art"


def pytest_sessionfinish(session, exitstatus):
    if OWN_CACHE:
        shutil.rmtree(OWN_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """A test that pins torch's threads (a resumed run compared bit for bit) leaves them as it found them, so
    the tests after it keep the cores."""
    yield
    if torch.get_num_threads() != TORCH_THREADS:
        torch.set_num_threads(TORCH_THREADS)


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


SMOKE_RECIPE = Path(__file__).parent / "data" / "teacher_smoke.toml"


def streamed_smoke_recipe(folder: Path, stream_seed: int = 5) -> Path:
    """The smoke recipe with its image phase on a seeded stream and its ODE stage on the clean-prefix draw, as the
    GPU recipe trains them (the frames shards' seed is 5; another `stream_seed` is the slip the command refuses);
    written into `folder`."""
    text = SMOKE_RECIPE.read_text().replace('data = "frames"', 'data = "stream"').replace(
        "[teacher]\n", f"[teacher]\nstream = {{ seed = {stream_seed}, capacity = 64, refresh_every = 0, "
                       "stories_per_chunk = 1, workers = 1, seeded = true }\n").replace(
        "[student.ode]\n", "[student.ode]\nclean_prefix = 0.5\n")
    path = folder / "teacher_smoke_streamed.toml"
    path.write_text(text)
    return path
