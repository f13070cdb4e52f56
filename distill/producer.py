"""Story-world frames made by worker processes while training runs, into a bounded pool on the device.

`FrameProducer` renders chunks of train-split stories in worker processes (spawned: safe beside CUDA and
torch's threads), chunk c holding stories [first + c * n, first + (c + 1) * n) of its seed. On the CPU a
worker also encodes; with a CUDA device the workers only render and the training process encodes on the
device, as `distill.shards.prepare` does. The train split never lets a subject perform a held-out (kind, place, action)
composition (`storyworld.sampling`), so nothing the producer makes shows one. Chunks are handed over in
order, with `ahead` of them in flight.

`StreamedFrames` is a `ResidentFrames` whose rows are a ring of `capacity` frames: `refresh()` writes the next
chunk over the oldest rows and embeds its captions (one embedding row per frame); `seed(data)` first writes
frames already made (the data stage's shards), so training starts at once and the workers render the stories
after them. The training loop refreshes either at fixed steps, so what a step sees depends only on the seed
and the step, never on the workers' speed (when they are behind, the loop waits, and the wait is counted:
`waited_seconds`), or as each chunk is made (`refresh_ready()`), so the device never waits and the batches
depend on the workers' speed. Either way a resumed run replays the same chunks in order.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from distill.nextshot import NextShot
from distill.resident import ResidentFrames
from distill.shards import ShardPlan, encode_rows, load_vae, one_thread, render_shard

log = logging.getLogger(__name__)
WORKER_NICENESS = 5  # added to the workers' niceness
SEED_ROWS = 4096  # seed frames written a call (their captions embedded together)


def _worker_start() -> None:
    """One torch thread, and a lower priority than the training loop, whose thread keeps the device fed."""
    one_thread()
    os.nice(WORKER_NICENESS)


def _make_chunk(plan: ShardPlan, c: int, encode: bool) -> dict:
    """Chunk c: rendered frames, encoded here when `encode` (a CPU worker's whole job)."""
    rows = render_shard(plan, c)
    return encode_rows(plan, rows, load_vae(plan.weights)) if encode else rows


class FrameProducer:
    """Chunks of single frames of train-split stories, made by `workers` processes, handed over in order."""

    def __init__(self, *, seed: int, stories_per_chunk: int, frames_per_shot: int = 2, workers: int = 2,
                 ahead: int | None = None, device: str = "cpu", weights: str | Path | None = None,
                 first_story: int = 0, encode_here: bool | None = None):
        """`encode_here`: this process encodes what the workers render (default: when `device` is not the CPU,
        as a GPU encodes faster than the workers could)."""
        if stories_per_chunk < 1 or workers < 1 or frames_per_shot < 1 or first_story < 0:
            raise ValueError("stories_per_chunk, frames_per_shot and workers must be positive, first_story >= 0")
        self.plan = ShardPlan(Path("."), "frames", seed, 2**31 - 1, stories_per_chunk, frames_per_shot,
                              None if weights is None else str(weights), first_story=first_story)
        self.device, self.ahead = device, 2 * workers if ahead is None else ahead
        self.encode_here = torch.device(device).type != "cpu" if encode_here is None else encode_here
        self.vae = load_vae(self.plan.weights).to(device) if self.encode_here else None
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_worker_start)
        self.futures: dict[int, Future] = {}
        self.next_submit = 0
        self.waited_seconds = 0.0

    def chunk(self, c: int) -> dict[str, np.ndarray]:
        """Chunk c's arrays (latents (n, C, h, w) fp16, prompt, story, shot, frame); waits when not yet made.
        Asking again for a chunk handed over before (a resumed run's replay) makes it again."""
        self._submit_through(c)
        future = self.futures.pop(c, None) or self.pool.submit(_make_chunk, self.plan, c, not self.encode_here)
        started = time.perf_counter()
        out = future.result()
        self.waited_seconds += time.perf_counter() - started
        for old in [k for k in self.futures if k < c]:  # chunks skipped over (a resumed run): not needed
            self.futures.pop(old).cancel()
        return encode_rows(self.plan, out, self.vae, self.device) if self.encode_here else out

    def ready(self, c: int) -> bool:
        """Whether chunk c is made (asking keeps `ahead` chunks in flight from c on); never waits."""
        self._submit_through(c)
        future = self.futures.get(c)
        return future is not None and future.done()

    def _submit_through(self, c: int) -> None:
        self.next_submit = max(self.next_submit, c)
        while self.next_submit <= c + self.ahead:
            self.futures[self.next_submit] = self.pool.submit(_make_chunk, self.plan, self.next_submit,
                                                              not self.encode_here)
            self.next_submit += 1

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "FrameProducer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StreamedFrames(ResidentFrames):
    """A bounded ring of `capacity` frames on the device, refreshed chunk by chunk from a `FrameProducer`;
    batches are drawn from the rows filled so far (`ResidentFrames.draw`)."""

    def __init__(self, producer: FrameProducer, capacity: int, embed, ns: NextShot, device):
        """`embed(prompts) -> (n, L, Dt)` caption embeddings (the text encoder the run trains with)."""
        if capacity < 1:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.producer, self.embed, self.capacity = producer, embed, capacity
        self.device, self.ns = torch.device(device), ns
        cfg = ns.cfg
        self.latents = torch.zeros((capacity, *cfg.latent_shape), dtype=torch.float16, device=self.device)
        self.table = torch.zeros((capacity, cfg.text.text_len, cfg.text.dim), dtype=torch.float16, device=self.device)
        self.caption = torch.arange(capacity, device=self.device)  # row i reads its own caption row
        self.story = np.full(capacity, -1, np.int64)  # where each row came from (host bookkeeping)
        self.shot = np.full(capacity, -1, np.int64)
        cos, sin = ns.rope(ns.layout([]).flags)
        rows = slice(ns.n_ctx * cfg.tokens_per_frame, (ns.n_ctx + 1) * cfg.tokens_per_frame)
        self.cos, self.sin = cos[rows].to(self.device), sin[rows].to(self.device)
        self.frames, self.filled, self.cursor, self.chunks_taken, self.rows_taken = 1, 0, 0, 0, 0
        self.seeded = 0  # rows written by `seed` (frames made before training)

    def __len__(self) -> int:
        return self.filled

    def seed(self, data: dict) -> int:
        """Write frames made before training (a frames shard set: latents, prompt, story, shot) into the ring,
        in order; only the newest `capacity` of them are written; returns how many were."""
        n = len(data["latents"])
        first = max(0, n - self.capacity)
        for i in range(first, n, SEED_ROWS):
            self._write({k: data[k][i:i + SEED_ROWS] for k in ("latents", "prompt", "story", "shot")})
        self.seeded += n - first
        return n - first

    def refresh(self) -> int:
        """Write the next chunk over the oldest rows; returns how many rows it brought."""
        n = self._write(self.producer.chunk(self.chunks_taken))
        self.chunks_taken, self.rows_taken = self.chunks_taken + 1, self.rows_taken + n
        return n

    def refresh_ready(self) -> int:
        """Write every chunk the workers have made since the last refresh, waiting for none; returns the rows."""
        rows = 0
        while self.producer.ready(self.chunks_taken):
            rows += self.refresh()
        return rows

    def _write(self, chunk: dict) -> int:
        n = min(len(chunk["latents"]), self.capacity)
        at = (self.cursor + np.arange(n)) % self.capacity
        where = torch.from_numpy(at).to(self.device)
        self.latents[where] = torch.from_numpy(chunk["latents"][:n]).to(self.device)
        self.table[where] = self.embed(list(chunk["prompt"][:n])).to(self.device, torch.float16)
        self.story[at], self.shot[at] = chunk["story"][:n], chunk["shot"][:n]
        self.cursor, self.filled = int((self.cursor + n) % self.capacity), min(self.capacity, self.filled + n)
        return n

    def fill(self) -> None:
        """Refresh until every row holds a frame."""
        while self.filled < self.capacity:
            self.refresh()
