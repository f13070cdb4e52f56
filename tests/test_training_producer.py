"""Data at the GPU's appetite, at a test's size: worker processes render story-world frames while the loop
draws from a bounded resident pool; the chunks are the shards' frames, the pool's ring keeps the newest rows,
and no held-out composition is ever shown."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from distill import shards
from distill.nextshot import NextShot
from distill.producer import FrameProducer, StreamedFrames
from distill.resident import caption_embedder
from runtime.config import get_preset
from runtime.model import load_bundle
from storyworld.sampling import sample_story

SEED = 9


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    """Three chunks (one story each) through the producer, and the same stories written as shards."""
    root = tmp_path_factory.mktemp("stream")
    shards.prepare(root / "frames", kind="frames", seed=SEED, stories=3, shard_stories=1, frames_per_shot=2, workers=1)
    bundle = load_bundle("tiny")
    with FrameProducer(seed=SEED, stories_per_chunk=1, workers=2, ahead=2) as producer:
        yield producer, shards.load(root / "frames"), caption_embedder(bundle.text_encoder.float(), bundle.tokenizer,
                                                                       "cpu")


def test_the_producers_chunks_are_the_shards_frames_in_order(stream):
    import os

    producer, stored, _ = stream
    assert producer.pool.submit(os.nice, 0).result() == min(19, os.nice(0) + 5)  # the training loop comes first
    chunks = [producer.chunk(c) for c in range(3)]
    for key in ("latents", "prompt", "story", "shot", "frame"):
        np.testing.assert_array_equal(np.concatenate([c[key] for c in chunks]), stored[key])


def test_chunks_encoded_in_this_process_are_the_workers_chunks(stream):
    """With a GPU the workers only render and the training process encodes (`encode_here`); the chunks are
    the same frames, encoded the same way."""
    producer, _, _ = stream
    with FrameProducer(seed=SEED, stories_per_chunk=1, workers=1, ahead=0, encode_here=True) as here:
        assert here.encode_here and not producer.encode_here
        ours, theirs = here.chunk(1), producer.chunk(1)
    for key in ("prompt", "story", "shot", "frame"):
        np.testing.assert_array_equal(ours[key], theirs[key])
    np.testing.assert_allclose(ours["latents"].astype(np.float32), theirs["latents"].astype(np.float32), atol=4e-3)


def test_the_pool_is_a_bounded_ring_of_the_newest_frames_drawn_only_where_filled(stream):
    producer, stored, embed = stream
    n0, n1 = np.bincount(stored["story"].astype(np.int64))[:2]
    capacity = int(n0 + n1 - 1)  # the second chunk's last frame wraps around onto the oldest row
    pool = StreamedFrames(producer, capacity, embed, NextShot(get_preset("tiny")), "cpu")
    assert len(pool) == 0
    assert pool.refresh() == n0 and len(pool) == n0
    x0, _, _, _, _ = pool.draw(64, torch.Generator().manual_seed(0))
    first = torch.from_numpy(stored["latents"][:n0]).float()
    assert all(any(torch.equal(x, f) for f in first) for x in x0[:, 0])  # only filled rows are drawn
    pool.fill()
    assert len(pool) == capacity and pool.chunks_taken == 2 and pool.cursor == 1
    latents, prompts = stored["latents"], stored["prompt"]
    ring = np.concatenate([latents[n0 + n1 - 1:n0 + n1], latents[1:n0], latents[n0:n0 + n1 - 1]])
    np.testing.assert_array_equal(pool.latents.numpy(), ring)
    torch.testing.assert_close(pool.table[0], embed([prompts[n0 + n1 - 1]])[0])  # captions travel with frames
    torch.testing.assert_close(pool.table[1], embed([prompts[1]])[0])


def test_no_streamed_frame_shows_a_held_out_composition(stream):
    producer, _, _ = stream
    for c in range(3, 6):
        chunk = producer.chunk(c)
        assert set(chunk["story"]) == {c}
        story = sample_story(SEED, "train", c)
        assert not any(story.shots[int(k)].held_out for k in chunk["shot"])
    assert any(shot.held_out for shot in sample_story(SEED, "heldout", 0).shots)  # what the check would catch


def test_a_streamed_phase_trains_deterministically_and_resumes_to_the_same_weights(tmp_path):
    """The teacher's "stream" data: frames rendered by workers while it trains, refreshed at fixed steps."""
    from safetensors.torch import load_file

    from distill.teacher import Phase, StreamRecipe, TeacherRecipe, train

    torch.set_num_threads(1)
    recipe = TeacherRecipe(seed=3, checkpoint_every=2, measure_peak=False,
                           stream=StreamRecipe(seed=SEED, capacity=20, refresh_every=2, stories_per_chunk=1, workers=2),
                           phases=(Phase("image", "stream", steps=5, batch=4, lr=1e-3, warmup=1),))
    whole = train(recipe, {}, tmp_path / "whole")
    assert train(recipe, {}, tmp_path / "split", max_steps=3)["stream"]["chunks"] < whole["stream"]["chunks"]
    resumed = train(recipe, {}, tmp_path / "split")
    assert whole["complete"] and resumed["complete"]
    a, b = load_file(tmp_path / "whole" / "teacher.safetensors"), load_file(tmp_path / "split" / "teacher.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    streamed = whole["stream"]
    assert streamed["frames"] > streamed["capacity"] and streamed["chunks"] == resumed["stream"]["chunks"]
    assert whole["throughput"]["image"]["samples"] == 5 * 4


def _rows(stored: dict, stories) -> dict:
    keep = np.isin(stored["story"], list(stories))
    return {k: stored[k][keep] for k in ("latents", "prompt", "story", "shot")}


def _wait_until_made(producer: FrameProducer, c: int, seconds: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not producer.ready(c):
        assert time.monotonic() < deadline, f"chunk {c} not made in {seconds} s"
        time.sleep(0.05)


def test_a_seeded_ring_starts_with_the_shards_and_takes_the_stories_after_them_as_they_are_made(stream):
    """`seed` writes frames made before training (the data stage's shards) into the ring, so the first step needs
    no worker; the producer renders the stories after them, and `refresh_ready` takes every chunk already made
    without waiting for one."""
    _, stored, embed = stream
    ns = NextShot(get_preset("tiny"))
    seed = _rows(stored, (0, 1))
    n = len(seed["latents"])
    with FrameProducer(seed=SEED, stories_per_chunk=1, workers=1, ahead=0, first_story=2) as producer:
        pool = StreamedFrames(producer, 64, embed, ns, "cpu")
        assert pool.seed(seed) == n and len(pool) == n == pool.seeded and pool.chunks_taken == 0
        np.testing.assert_array_equal(pool.latents[:n].numpy(), seed["latents"])
        torch.testing.assert_close(pool.table[n - 1], embed([seed["prompt"][-1]])[0])
        _wait_until_made(producer, 0)
        waited = producer.waited_seconds
        third = _rows(stored, (2,))
        assert pool.refresh_ready() == len(third["latents"]) and pool.chunks_taken == 1  # chunk 1 was not asked for
        assert producer.waited_seconds - waited < 0.5
        np.testing.assert_array_equal(pool.latents[n:len(pool)].numpy(), third["latents"])
        assert set(pool.story[:len(pool)]) == {0, 1, 2}
        small = StreamedFrames(producer, 5, embed, ns, "cpu")  # a seed larger than the ring: its newest rows
        assert small.seed(seed) == 5 and small.cursor == 0
        np.testing.assert_array_equal(small.latents.numpy(), seed["latents"][-5:])


def test_a_seeded_stream_phase_starts_from_the_shards_and_never_waits_for_the_workers(stream, tmp_path):
    """`refresh_every = 0`: the loop takes chunks as they are made (none may be, in a phase this short) and the
    manifest counts the seeded frames; a stream seeded from shards of another seed is refused before work."""
    from distill.teacher import Phase, StreamRecipe, TeacherRecipe, train

    _, stored, _ = stream
    torch.set_num_threads(1)
    stream_recipe = StreamRecipe(seed=SEED, capacity=64, refresh_every=0, stories_per_chunk=1, workers=1,
                                 seeded=True)
    recipe = TeacherRecipe(seed=3, checkpoint_every=100, measure_peak=False, stream=stream_recipe,
                           phases=(Phase("image", "stream", steps=4, batch=4, lr=1e-3, warmup=1),))
    entry = train(recipe, {"frames": stored}, tmp_path / "run")
    streamed = entry["stream"]
    assert entry["complete"] and streamed["seeded_frames"] == len(stored["latents"]) and streamed["refresh_every"] == 0
    assert streamed["waited_seconds"] == 0.0
    assert streamed["distinct_frames"] == len(stored["latents"]) + streamed["frames"]
    other = TeacherRecipe(seed=3, measure_peak=False, phases=recipe.phases,
                          stream=StreamRecipe(seed=SEED + 1, capacity=64, refresh_every=0, seeded=True))
    with pytest.raises(ValueError, match="needs their seed"):
        train(other, {"frames": stored}, tmp_path / "other")
    with pytest.raises(ValueError, match="frames shards"):
        train(other, {}, tmp_path / "none")
