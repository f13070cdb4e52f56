"""The engine: one loaded model on one backend, shared fairly by every story of the process.

Boot order: load weights (checked against the manifest) -> build the graph modules -> select the backend
(once, logged with its reason; no fallback) -> prepare it (export/load ONNX, build engines) -> precompute
the host tables (RoPE, timestep embeddings, sigmas). Stories then allocate their own buffers and take
turns: every chunk holds the engine's FIFO turn lock, so concurrent stories interleave chunk by chunk.
"""
from __future__ import annotations

import collections
import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.backends.registry import select_backend
from runtime.backends.export import fingerprint
from runtime.backends.spec import chunk_graph, graph_specs
from runtime.cache import CACHE_TENSORS, CacheSpec
from runtime.config import ModelConfig, get_preset
from runtime.dit import timestep_frequencies
from runtime.errors import BackendUnavailableError, InvalidPromptError
from runtime.graphs import build_graphs
from runtime.model import ModelBundle, load_bundle
from runtime.official.loader import describe
from runtime.rope import RopeTable
from runtime.scheduler import FlowMatchScheduler
from runtime.text import PromptCheck

log = logging.getLogger(__name__)
MAX_PROMPT_CHARS = 1000
TEXT_CACHE_ENTRIES = 256


def artifacts_dir() -> Path:
    return Path(os.environ.get("SHOTSTREAM_CACHE", Path.home() / ".cache" / "shotstream"))


@dataclass(frozen=True)
class EngineInfo:
    preset: str
    backend: str
    backend_reason: str
    width: int
    height: int
    fps: int
    max_chunks_per_shot: int
    chunk_frames: tuple[int, ...]
    frames_per_shot: int
    session_cache_bytes: int
    max_prompt_chars: int
    text_len: int
    weights_id: str
    model: str = ""  # which model is served, in words (preset, architecture, weights source)
    vocabulary: tuple[str, ...] = ()  # the words and marks a prompt may use (the shipped tokenizer's)


class FairTurn:
    """A FIFO lock: threads get the turn in the order they asked for it."""

    def __init__(self):
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    @contextmanager
    def __call__(self):
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._serving += 1
                self._cond.notify_all()


class Engine:
    def __init__(self, bundle: ModelBundle, backend_name: str, artifacts: Path | None = None,
                 device: str = "cpu", text_device: str = "cpu", dtype: str | None = None):
        self.bundle, self.cfg = bundle, bundle.cfg
        self.specs = graph_specs(self.cfg)
        self.backend = select_backend(backend_name, device, text_device, dtype)
        graphs = build_graphs(bundle.dit, bundle.text_encoder, bundle.vae)
        made_of = fingerprint(bundle.weights_id, self.cfg.name, self.specs, graphs)
        root = (artifacts or artifacts_dir()) / f"{self.cfg.name}-{bundle.weights_id[:12]}-{made_of['spec']}"
        self.backend.prepare(self.specs, graphs, root, made_of)
        self.turn = FairTurn()
        self._tables()
        self._text_lock = threading.Lock()
        self._text_cache: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        t = self.specs["text_encode"]
        self._text_buffers = {s.name: self.backend.alloc(s) for s in t.inputs + t.outputs}
        self._text_binding = self.backend.bind("text_encode", self._text_buffers)

    @classmethod
    def load(cls, preset: str | ModelConfig = "tiny", backend: str = "onnxruntime", weights: str | Path | None = None,
             artifacts: Path | None = None, *, device: str = "cpu", text_device: str = "cpu",
             random_weights: bool = False, seed: int = 0, dtype: str | None = None) -> "Engine":
        """Load a preset (a name, or a config such as a reduced official one) onto a backend.

        The official preset runs on the torch backend (`device` cpu or cuda; its text encoder on
        `text_device`, the CPU by default); its memory estimate is logged, and checked against a CUDA
        device's memory, before any weight is read."""
        cfg = get_preset(preset) if isinstance(preset, str) else preset
        if cfg.vae.kind != "tiny":
            from runtime.official.loader import check_memory, memory_estimate, require_extra

            if backend != "torch":
                raise BackendUnavailableError(f"preset {cfg.name!r} runs on the torch backend (--backend torch, "
                                              f"--device cpu or cuda); {backend} is not supported for it yet")
            require_extra(cfg)
            check_memory(memory_estimate(cfg, device, text_device, random_weights), device)
        bundle = load_bundle(cfg, weights, random_weights=random_weights, seed=seed)
        return cls(bundle, backend, artifacts, device, text_device, dtype)

    def _tables(self) -> None:
        cfg = self.cfg
        self.scheduler = FlowMatchScheduler(cfg.shot.shift)
        steps = self.scheduler.warped_steps()[: cfg.shot.num_steps]
        self.step_sigmas = [self.scheduler.sigma_at(t) for t in steps]
        fc = cfg.shot.latent_frames_per_chunk
        self.t_freq_steps = [timestep_frequencies(np.full((1, fc), t), cfg.dit.freq_dim) for t in steps]
        self._t_zero = {n: timestep_frequencies(np.zeros((1, n)), cfg.dit.freq_dim)
                        for n in (fc, cfg.shot.context_frames)}
        self.rope = RopeTable(cfg, cfg.shot.context_frames + cfg.shot.latent_frames_per_shot)

    def t_freq_zero(self, frames: int) -> np.ndarray:
        return self._t_zero[frames]

    @property
    def info(self) -> EngineInfo:
        cfg = self.cfg
        return EngineInfo(
            preset=cfg.name, backend=self.backend.name, backend_reason=self.backend.reason,
            width=cfg.width, height=cfg.height, fps=cfg.shot.fps, max_chunks_per_shot=cfg.shot.chunks_per_shot,
            chunk_frames=tuple(cfg.chunk_pixel_frames(i) for i in range(cfg.shot.chunks_per_shot)),
            frames_per_shot=cfg.frames_per_shot, session_cache_bytes=self.session_bytes(),
            max_prompt_chars=MAX_PROMPT_CHARS, text_len=cfg.text.text_len, weights_id=self.bundle.weights_id,
            model=describe(cfg, self.bundle.manifest),
            vocabulary=self.bundle.tokenizer.words,
        )

    def session_bytes(self) -> int:
        """Bytes one open story holds: both caches, every bound buffer, the shot's frames."""
        cfg = self.cfg
        caches = CacheSpec.global_for(cfg).nbytes + CacheSpec.local_for(cfg).nbytes
        io = sum(t.nbytes for g in ("context_fill", chunk_graph(0), "vae_decode_chunk", "vae_encode_frame")
                 for t in self.specs[g].inputs + self.specs[g].outputs
                 if t.name not in CACHE_TENSORS) + self.specs["cross_kv"].tensor("text").nbytes
        frames = cfg.frames_per_shot * cfg.height * cfg.width * 3
        return caches + io + frames + 2 * self.specs[chunk_graph(0)].tensor("x").nbytes

    # -- text ------------------------------------------------------------------------------------
    def check_prompt(self, text: str, mode: str = "strict") -> PromptCheck:
        """What the encoder would read of `text` in `mode` ("strict" or "lenient"). Raises InvalidPromptError
        (not text, empty, too long, nothing known left) or UnknownWordsError (strict, listing the words)."""
        if not isinstance(text, str):
            raise InvalidPromptError(f"a prompt must be text, got {type(text).__name__}")
        if len(text) > MAX_PROMPT_CHARS:
            raise InvalidPromptError(f"the prompt is {len(text)} characters; at most {MAX_PROMPT_CHARS}")
        return self.bundle.tokenizer.check(text, mode)

    def encode_text(self, text: str) -> np.ndarray:
        """(text_len, text_dim) embeddings of a full prompt (strict: pass `PromptCheck.text` for a lenient
        one), cached per prompt. Call inside a turn."""
        with self._text_lock:
            hit = self._text_cache.get(text)
            if hit is not None:
                self._text_cache.move_to_end(text)
                return hit
            self.bundle.tokenizer.encode(text, out=self._text_buffers["ids"])
            self.backend.run("text_encode", self._text_binding)
            emb = self._text_buffers["text"][0].copy()
            emb.flags.writeable = False
            self._text_cache[text] = emb
            if len(self._text_cache) > TEXT_CACHE_ENTRIES:
                self._text_cache.popitem(last=False)
            return emb

    # -- stories ---------------------------------------------------------------------------------
    def open_story(self, seed: int, global_caption: str, prompt_mode: str = "strict"):
        """A new story. `prompt_mode` applies to its caption and every shot prompt: "strict" refuses unknown
        words, "lenient" drops them and reports them (see runtime.text)."""
        from runtime.story import Story

        return Story(self, seed, global_caption, prompt_mode)
