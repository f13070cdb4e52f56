"""A story: one session's dual KV cache, buffers, RNG, captions and shot history, and the shot generator.

`Story.generate_shot` is an iterator: per shot it projects the shot's caption for cross-attention once
(`cross_kv`), picks context frames from the history, fills the global cache (one pass at t=0, its captions
projected once each), then per chunk b runs the 4 denoising steps of `dit_chunk.<b>` (each writes the
chunk's K/V into its local slot, in place), decodes the chunk with the VAE's causal state carried over, and
yields its frames at once. Chunk b's clean pass at t=0 (its K/V are the ones kept, then committed) runs when
chunk b+1 starts; the last chunk's, which nothing would read, never runs. `stop` ends the shot at the next chunk
boundary. Every buffer is allocated in `__init__` and bound once; a chunk allocates nothing.

Once a story has a shot, the next shot's context (frames, flags, and the captions they read) does not
depend on the next prompt, so `prepare_next` can fill the global cache while the story is idle; the next
shot then starts with its caption only, and its first frame comes one chunk after the request.

Long module: one class, `Story`, whose methods share its caches, buffers and bindings (the shot loop, the context
fill, the clean pass, the decode and the checkpoint a cluster rebuilds it from); split, they would pass them all.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import ContextManager, Iterator, Protocol

import numpy as np

from runtime.backends.base import Backend
from runtime.backends.spec import chunk_graph
from runtime.cache import CACHE_TENSORS, DualKVCache
from runtime.config import ModelConfig
from runtime.context import caption_index, context_plan, flags_for_shot, frames_ever_needed
from runtime.errors import InvalidRequestError, SessionClosedError
from runtime.rope import RopeTable
from runtime.text import PROMPT_MODES, PromptCheck, shot_prompt
from runtime.vae import FIRST_KEEP



class StoryEngine(Protocol):
    """What a story uses of its engine (`runtime.engine.Engine` is one; the story does not import it): the
    model's config, the backend and RoPE table its graphs run on, the engine's FIFO turn, prompt checking and
    the cached text encoder."""

    cfg: ModelConfig
    backend: Backend
    rope: RopeTable

    def turn(self) -> ContextManager[None]: ...

    def check_prompt(self, text: str, mode: str = "strict") -> PromptCheck: ...

    def encode_text(self, text: str) -> np.ndarray: ...


@dataclass(frozen=True)
class FrameChunk:
    frames: np.ndarray  # (n, H, W, 3) uint8, read-only view; valid until this story's next shot starts
    shot_index: int
    chunk_index: int
    first_frame: int  # index of frames[0] within the shot
    story_frame: int  # index of frames[0] within the story
    is_last: bool
    gen_seconds: float  # this chunk's own model time
    setup_seconds: float = 0.0  # chunk 0 only: model time before it (caption, and the context fill if not prepared)


@dataclass(frozen=True)
class StoryCheckpoint:
    """What a story is between shots, small and picklable: its history (prompts, lengths, the kept frames a
    later context may pick) and its RNG. `Story.restore` on a fresh story of the same engine, seed and
    caption continues with frames identical to the original's."""

    shots: tuple[tuple[str, int, tuple[str, ...], int, dict[int, np.ndarray]], ...]  # ShotRecord fields
    rng_state: dict
    frames_done: int


@dataclass
class ShotRecord:
    prompt: str
    chunks: int
    dropped: tuple[str, ...]  # words of the prompt left out (lenient mode); () in strict mode
    length: int  # pixel frames produced
    kept: dict[int, np.ndarray]  # frame index -> frame, only the indices a later context plan may pick
    latents: dict[int, np.ndarray] = field(default_factory=dict)  # frame index -> its VAE latent, once encoded


class Story:
    def __init__(self, engine: StoryEngine, seed: int, global_caption: str, prompt_mode: str = "strict"):
        if not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise InvalidRequestError(f"seed must be an integer in [0, 2^63), got {seed!r}")
        if prompt_mode not in PROMPT_MODES:
            raise InvalidRequestError(f"prompt mode must be one of {', '.join(PROMPT_MODES)}, got {prompt_mode!r}")
        self.engine, self.cfg, self.prompt_mode = engine, engine.cfg, prompt_mode
        if not isinstance(global_caption, str):
            raise InvalidRequestError("the global caption must be text")
        self.global_caption, self._caption_text = global_caption, ""  # as given; as the encoder reads it
        self.caption_dropped: tuple[str, ...] = ()  # words of the caption left out (lenient mode)
        if global_caption.strip():
            check = engine.check_prompt(global_caption, prompt_mode)
            self._caption_text, self.caption_dropped = check.text, check.dropped
        self.seed = seed
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.history: list[ShotRecord] = []
        self._captions: list[np.ndarray] = []  # text embeddings (L, Dt) of shots 0..k, shared read-only
        self._frames_done = 0
        self._prepared: tuple[int, int] | None = None  # (shots in history, new flag) the global cache was filled for
        self._closed = False
        self._lock = threading.Lock()  # one driver at a time
        self._allocate()

    # -- buffers ---------------------------------------------------------------------------------
    def _allocate(self) -> None:
        eng, cfg = self.engine, self.cfg
        specs, alloc, bind = eng.specs, eng.backend.alloc, eng.backend.bind
        self.cache = DualKVCache(cfg=cfg, alloc=lambda shape, dtype: alloc(_spec(shape, dtype)))
        # Cache tensors are views of the cache's own storage, bound per graph; the rest is allocated here once.
        # The chunk variants share every other buffer (they differ only in the cache rows they see).
        b: dict[str, dict] = {}
        for graph, spec in (("context_fill", "context_fill"), ("dit_chunk", chunk_graph(0)),
                            ("vae_decode_chunk", "vae_decode_chunk"), ("vae_encode_frame", "vae_encode_frame")):
            b[graph] = {t.name: alloc(t) for t in specs[spec].inputs + specs[spec].outputs
                        if t.name not in CACHE_TENSORS}
        b["cross_kv"] = {"text": alloc(specs["cross_kv"].tensor("text"))}
        self.buffers = b
        chunk, fill = b["dit_chunk"], b["context_fill"]
        self.bindings = {
            "context_fill": bind("context_fill", fill | self.cache.fill_tensors()),
            **{g: bind(g, b[g]) for g in ("vae_decode_chunk", "vae_encode_frame")},
            **{chunk_graph(k): bind(chunk_graph(k), chunk | self.cache.chunk_tensors(k))
               for k in range(cfg.shot.chunks_per_shot)},
            # The shot's caption lands in the chunk graphs' cross K/V; context captions in the fill's table rows.
            "cross_kv": bind("cross_kv", {"text": b["cross_kv"]["text"], "cross_k": chunk["cross_k"],
                                          "cross_v": chunk["cross_v"]}),
        }
        self._table_bindings = [bind("cross_kv", {"text": b["cross_kv"]["text"], "cross_k": fill["cross_k"][j],
                                                  "cross_v": fill["cross_v"][j]})
                                for j in range(cfg.shot.context_frames)]
        n_chunk_tokens = cfg.tokens_per_chunk
        self._rope_scratch = {
            "context_fill": np.zeros((2, cfg.shot.context_frames * cfg.tokens_per_frame, sum(cfg.dit.rope_pairs))),
            "dit_chunk": np.zeros((2, n_chunk_tokens, sum(cfg.dit.rope_pairs))),
        }
        self._x0 = np.zeros_like(b["dit_chunk"]["x"])
        self._noise = np.zeros_like(b["dit_chunk"]["x"])
        self._shot_frames = np.zeros((cfg.frames_per_shot, cfg.height, cfg.width, 3), np.uint8)

    def buffer_addresses(self) -> list[int]:
        """Data pointers of every preallocated buffer (tests check they never change)."""
        from runtime.backends.base import address

        seen = [address(buf) for bufs in self.buffers.values() for buf in bufs.values()]
        return seen + [address(x) for x in (self._x0, self._noise, self._shot_frames)]

    # -- public API ------------------------------------------------------------------------------
    @property
    def shots_done(self) -> int:
        return len(self.history)

    def check_prompt(self, prompt: str, shot_index: int | None = None) -> PromptCheck:
        """What this story's encoder would read for `prompt` as shot `shot_index` (default: the next shot):
        the composed prompt (global caption + "shot{k}:" + prompt), checked in the story's mode; `dropped`
        lists the prompt's own words left out. Raises InvalidPromptError / UnknownWordsError."""
        own = self.engine.check_prompt(prompt, self.prompt_mode)
        index = len(self.history) if shot_index is None else shot_index
        full = self.engine.check_prompt(shot_prompt(self._caption_text, index, own.text), "strict")
        return PromptCheck(full.tokens, full.text, own.dropped, own.read_as)

    def prepare_next(self) -> bool:
        """Fills the global cache for the next shot now, off its first frame's path (see the module
        docstring). False when there is nothing to do: no shot yet (the first shot's context reads its own
        caption), already prepared, closed, or a shot is running. Frames are the same either way."""
        if not self.history or self._prepared is not None or not self._lock.acquire(blocking=False):
            return False
        try:
            if self._closed:
                return False
            with self.engine.turn():
                self._prepared = (len(self.history), self._fill_context(len(self._captions) + 1))
            return True
        finally:
            self._lock.release()

    def checkpoint(self) -> StoryCheckpoint:
        """The story between shots (see StoryCheckpoint). Call when no shot runs."""
        with self._lock:
            shots = tuple((r.prompt, r.chunks, r.dropped, r.length, r.kept) for r in self.history)
            return StoryCheckpoint(shots, self.rng.bit_generator.state, self._frames_done)

    def restore(self, checkpoint: StoryCheckpoint) -> None:
        """Makes a story that has no shot yet continue from `checkpoint`: its history, its captions (encoded
        again), its RNG. The next shot's context is filled when it starts."""
        with self._lock:
            if self.history:
                raise InvalidRequestError("only a story without shots can be restored")
            for index, (prompt, chunks, dropped, length, kept) in enumerate(checkpoint.shots):
                text = self.check_prompt(prompt, shot_index=index).text
                with self.engine.turn():
                    self._captions.append(self.engine.encode_text(text))
                self.history.append(ShotRecord(prompt, chunks, dropped, length, dict(kept)))
            self.rng.bit_generator.state = checkpoint.rng_state
            self._frames_done = checkpoint.frames_done

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.buffers = self.bindings = {}
            self._table_bindings = []
            self.cache = None

    def generate_shot(self, prompt: str, chunks: int | None = None,
                      stop: threading.Event | None = None) -> Iterator[FrameChunk]:
        """Validate, then return the iterator of this shot's chunks (nothing runs until it is consumed)."""
        if self._closed:
            raise SessionClosedError("the story is closed")
        max_chunks = self.cfg.shot.chunks_per_shot
        chunks = max_chunks if chunks is None else chunks
        if isinstance(chunks, bool) or not isinstance(chunks, int) or not 1 <= chunks <= max_chunks:
            raise InvalidRequestError(f"chunks must be an integer in [1, {max_chunks}], got {chunks!r}")
        check = self.check_prompt(prompt)  # raises before anything is generated
        return self._run_shot(prompt, check, chunks, stop or threading.Event())

    # -- the generator ---------------------------------------------------------------------------
    def _run_shot(self, prompt: str, check: PromptCheck, chunks: int, stop: threading.Event) -> Iterator[FrameChunk]:
        if not self._lock.acquire(blocking=False):
            raise InvalidRequestError("this story is already generating a shot")
        try:
            if self._closed:
                raise SessionClosedError("the story is closed")
            check = self.check_prompt(prompt)  # composed again: shots may have ended since validation
            yield from self._shot_chunks(prompt, check, chunks, stop)
        finally:
            self._lock.release()

    def _shot_chunks(self, prompt: str, check: PromptCheck, chunks: int, stop: threading.Event) -> Iterator[FrameChunk]:
        k, produced, done = len(self.history), 0, 0
        if stop.is_set():
            return
        try:
            started = time.perf_counter()
            with self.engine.turn():
                new_flag = self._begin_shot(check.text)
            setup = time.perf_counter() - started
            for b in range(chunks):
                if b > 0 and stop.is_set():
                    break
                started = time.perf_counter()
                with self.engine.turn():
                    frames = self._chunk(b, new_flag)
                produced, done = produced + len(frames), b + 1
                last = done == chunks or stop.is_set()
                chunk = FrameChunk(frames, k, b, produced - len(frames), self._frames_done, last,
                                   time.perf_counter() - started, setup if b == 0 else 0.0)
                self._frames_done += len(frames)
                yield chunk
                if last:
                    break
        finally:
            # Whatever was generated stays in the story, even if the consumer walked away mid-shot.
            if done:
                self._end_shot(prompt, check.dropped, done, produced)
            elif len(self._captions) > len(self.history):
                self._captions.pop()  # the shot began but produced nothing: forget its caption

    def _begin_shot(self, full_text: str) -> int:
        """Caption, then the global cache fill unless `prepare_next` did it. Returns the new frames' flag."""
        self._captions.append(self.engine.encode_text(full_text))
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared[0] == len(self.history):
            new_flag = prepared[1]
        else:
            new_flag = self._fill_context(len(self._captions))
        self._project_caption(caption_index(new_flag, len(self._captions)), self.bindings["cross_kv"])
        self.buffers["vae_decode_chunk"]["state"].fill(0.0)
        return new_flag

    def _fill_context(self, n_cap: int) -> int:
        """Context selection and the global cache fill, with `n_cap` captions (the new shot's included).
        Returns the new frames' shot flag."""
        cfg, eng, bufs = self.cfg, self.engine, self.buffers["context_fill"]
        n_ctx = cfg.shot.context_frames
        plan = context_plan([r.length for r in self.history], n_ctx)
        flags, new_flag = flags_for_shot(plan, n_ctx)
        x = bufs["x"]
        x.fill(0.0)
        for i, (shot, idx) in enumerate(plan):
            x[0, i] = self._latent(self.history[shot], idx)
        # One cross K/V entry per distinct caption the context frames read, and each frame's entry.
        captions = [caption_index(flag, n_cap) for flag in flags]
        distinct = sorted(set(captions))
        for j, c in enumerate(distinct):
            self._project_caption(c, self._table_bindings[j])
        bufs["cross_index"][:] = [distinct.index(c) for c in captions]
        eng.rope.fill(range(n_ctx), flags, bufs["rope_cos"], bufs["rope_sin"], self._rope_scratch["context_fill"])
        np.copyto(bufs["t_freq"], eng.t_freq_zero(n_ctx))
        self.cache.start_shot()
        eng.backend.run("context_fill", self.bindings["context_fill"])
        return new_flag

    def _project_caption(self, index: int, binding) -> None:
        """Cross-attention K/V of caption `index` into the buffers `binding` writes (a `cross_kv` binding)."""
        np.copyto(self.buffers["cross_kv"]["text"][0], self._captions[index])
        self.engine.backend.run("cross_kv", binding)

    def _latent(self, record: ShotRecord, idx: int) -> np.ndarray:
        """The VAE latent of a kept frame, encoded the first time a plan picks it (plans pick frame 0 of
        every shot again and again)."""
        if idx not in record.latents:
            enc = self.buffers["vae_encode_frame"]
            np.copyto(enc["frame"][0], record.kept[idx], casting="unsafe")
            self.engine.backend.run("vae_encode_frame", self.bindings["vae_encode_frame"])
            record.latents[idx] = enc["latent"][0].copy()
        return record.latents[idx]

    def _chunk(self, b: int, flag: int) -> np.ndarray:
        """Clean chunk b-1, denoise chunk b, decode it. Returns a read-only view of its frames.

        A chunk's clean pass (its x0 at t=0, whose K/V later chunks attend to) runs when the next chunk
        starts, not before its own frames are decoded: the frames come one call sooner, and the shot's last
        chunk, whose K/V nothing reads (the next shot's context comes from frames), is never cleaned."""
        eng, bufs = self.engine, self.buffers["dit_chunk"]
        x, v, x0, noise = bufs["x"], bufs["velocity"], self._x0, self._noise
        if b > 0:
            self._clean(b - 1, flag)  # x0 still holds chunk b-1's result
        self._chunk_rope(b, flag)
        self.rng.standard_normal(dtype=np.float32, out=x)
        sched, sigmas = eng.scheduler, eng.step_sigmas
        for i, sigma in enumerate(sigmas):
            np.copyto(bufs["t_freq"], eng.t_freq_steps[i])
            eng.backend.run(chunk_graph(b), self.bindings[chunk_graph(b)])  # its K/V land in the chunk's slot
            sched.x0_from_velocity(x, v, sigma, out=x0)
            if i + 1 < len(sigmas):
                self.rng.standard_normal(dtype=np.float32, out=noise)
                sched.add_noise(x0, noise, sigmas[i + 1], out=x)
        return self._decode(b, x0)

    def _clean(self, b: int, flag: int) -> None:
        """Clean pass of chunk b (its x0 at t=0): writes the K/V later chunks attend to, then commits them."""
        eng, bufs = self.engine, self.buffers["dit_chunk"]
        fc = self.cfg.shot.latent_frames_per_chunk
        self._chunk_rope(b, flag)
        np.copyto(bufs["x"], self._x0)
        np.copyto(bufs["t_freq"], eng.t_freq_zero(fc))
        eng.backend.run(chunk_graph(b), self.bindings[chunk_graph(b)])
        self.cache.local.commit(fc * (b + 1))

    def _chunk_rope(self, b: int, flag: int) -> None:
        """RoPE tables of chunk b's frames (positions after the context, the shot's flag) into the chunk buffers."""
        bufs, fc = self.buffers["dit_chunk"], self.cfg.shot.latent_frames_per_chunk
        first = self.cfg.shot.context_frames + fc * b
        self.engine.rope.fill(range(first, first + fc), [flag] * fc, bufs["rope_cos"], bufs["rope_sin"],
                              self._rope_scratch["dit_chunk"])

    def _decode(self, b: int, x0: np.ndarray) -> np.ndarray:
        dec, binding = self.buffers["vae_decode_chunk"], self.bindings["vae_decode_chunk"]
        np.copyto(dec["latents"], x0[0])
        self.engine.backend.run("vae_decode_chunk", binding)
        dec["state"][...] = dec["state_out"]
        pixels = dec["frames"][FIRST_KEEP:] if b == 0 else dec["frames"]
        start = self.cfg.shot_pixel_frames(b)
        out = self._shot_frames[start:start + len(pixels)]
        np.copyto(out, pixels, casting="unsafe")
        view = out.view()
        view.flags.writeable = False
        return view

    def _end_shot(self, prompt: str, dropped: tuple[str, ...], chunks: int, length: int) -> None:
        kept = {i: self._shot_frames[i].copy() for i in frames_ever_needed(length, self.cfg.shot.context_frames)}
        self.history.append(ShotRecord(prompt, chunks, dropped, length, kept))


def _spec(shape, dtype):
    from runtime.backends.spec import TensorSpec

    return TensorSpec("cache", tuple(shape), np.dtype(dtype).name)
