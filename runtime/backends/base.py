"""The backend protocol: run a graph on buffers the caller owns, writing its outputs in place.

A backend is chosen once per engine. `alloc` gives the storage of one tensor: host numpy arrays for the
CPU backends; for the GPU backend, tensors that stay on the device (caches, causal state) come back as
device arrays. Bindings are made once per story and reused for every call, so a call allocates nothing.
Buffers support `buf[...] = other` (copy in place), `buf.fill(0)` and slicing on the first axis.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from runtime.backends.spec import GraphSpec, TensorSpec, family


# Tensors that live on the device for the whole story (never copied to the host on the hot path).
RESIDENT = frozenset({"global_k", "global_v", "past_k", "past_v", "chunk_k", "chunk_v", "cross_k", "cross_v",
                      "state", "state_out"})


def address(buf) -> int:
    """Data pointer of a buffer (numpy or device array); tests use it to prove buffers are never reallocated."""
    return buf.ctypes.data if isinstance(buf, np.ndarray) else int(buf.ptr)


class Backend(ABC):
    name: str = "abstract"

    def __init__(self, reason: str):
        self.reason = reason  # why this backend was chosen, logged once at start
        self.calls: dict[str, int] = {}  # per graph family (the variants of `dit_chunk` count together)
        self.seconds: dict[str, float] | None = None  # per-family wall time, when a bench asks (`seconds = {}`)

    @abstractmethod
    def prepare(self, specs: dict[str, GraphSpec], modules: dict, artifacts: Path, fingerprint: dict) -> None:
        """Load or build whatever the graphs need (ONNX sessions, TRT engines) once, before any story."""

    def alloc(self, spec: TensorSpec) -> np.ndarray:
        return np.zeros(spec.shape, dtype=np.dtype(spec.dtype))

    @abstractmethod
    def bind(self, graph: str, buffers: dict) -> object:
        """Bind a graph's inputs and outputs to these buffers (every name of the graph's spec)."""

    @abstractmethod
    def _run(self, binding) -> None:
        ...

    def run(self, graph: str, binding) -> None:
        name = family(graph)
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.seconds is None:
            self._run(binding)
            return
        started = time.perf_counter()
        self._run(binding)
        self.synchronize()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def synchronize(self) -> None:
        """Wait for the device's queued work (timing only; every call already ends with its outputs on the host)."""


def check_buffers(spec: GraphSpec, buffers: dict) -> None:
    """Refuse a binding that does not match the spec (name, shape, dtype, contiguity)."""
    for t in spec.inputs + spec.outputs:
        if t.name not in buffers:
            raise ValueError(f"{spec.name}: no buffer for {t.name!r}")
        buf = buffers[t.name]
        if tuple(buf.shape) != t.shape or np.dtype(buf.dtype) != np.dtype(t.dtype):
            raise ValueError(f"{spec.name}.{t.name}: buffer {tuple(buf.shape)} {buf.dtype}, spec wants {t.shape} {t.dtype}")
        if isinstance(buf, np.ndarray) and not buf.flags.c_contiguous:
            raise ValueError(f"{spec.name}.{t.name}: buffer is not C-contiguous (a bound copy would lose writes)")
