"""onnxruntime backend (CPU serving default): one InferenceSession per graph, shared by every story;
one IOBinding per story and graph, bound once onto the caller's preallocated buffers (zero-copy), outputs
included (a chunk's K/V are written by the session straight into the cache slot they are bound to).

The variants of a family (`dit_chunk.<b>`) are sessions of one exported model, each made static by
overriding its free axes (`spec.free_dims`), so every session plans its memory for fixed shapes.

Every session runs on one process-wide intra-op thread pool. With a pool per session, the idle workers of
the session that just ran keep spinning while the next one runs, and on a 2-core machine the 12 sessions
of a shot fight over the cores: measured on the tiny preset, a chunk step took 10 ms with per-session pools
and 4.7 ms with the shared one (`shotstream bench`, same run). onnxruntime allows no per-session pool in a
process once the shared one exists: every session of the process must be made with
`use_per_session_threads = False` (`shared_pool` makes the pool, once).
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from runtime.backends.base import Backend, check_buffers
from runtime.backends.export import ensure_onnx
from runtime.backends.spec import GraphSpec, families, free_dims
from runtime.errors import BackendUnavailableError

log = logging.getLogger(__name__)
_pool_lock = threading.Lock()
_pool_threads: int | None = None  # the process-wide pool's size, once made


def shared_pool(ort, threads: int) -> int:
    """Make the process-wide intra-op pool (once per process; later calls keep the first size)."""
    global _pool_threads
    with _pool_lock:
        if _pool_threads is None:
            ort.set_global_thread_pool_sizes(threads, 1)
            _pool_threads = threads
            log.info("onnxruntime: one shared pool of %d intra-op threads", threads)
        elif _pool_threads != threads:
            log.warning("onnxruntime: the shared pool has %d threads already; %d asked for", _pool_threads, threads)
        return _pool_threads


class OrtBackend(Backend):
    name = "onnxruntime"

    def __init__(self, reason: str, threads: int | None = None):
        super().__init__(reason)
        try:
            import onnxruntime
        except ImportError as e:  # pragma: no cover - onnxruntime is a hard dependency
            raise BackendUnavailableError(f"onnxruntime is not installed: {e}") from e
        self.ort = onnxruntime
        wanted = threads or int(os.environ.get("SHOTSTREAM_THREADS", "0")) or (os.cpu_count() or 1)
        self.threads = shared_pool(onnxruntime, wanted)

    def prepare(self, specs: dict[str, GraphSpec], modules: dict, artifacts: Path, fingerprint: dict) -> None:
        paths = ensure_onnx(modules, specs, artifacts / "onnx", fingerprint)
        self.specs, self.sessions = specs, {}
        for name, variants in families(specs).items():
            _, sizes = free_dims(variants)
            for spec, fixed in zip(variants, sizes):
                opts = self._options()
                for symbol, size in fixed.items():
                    opts.add_free_dimension_override_by_name(symbol, size)
                self.sessions[spec.name] = self.ort.InferenceSession(str(paths[name]), opts,
                                                                     providers=["CPUExecutionProvider"])

    def _options(self):
        opts = self.ort.SessionOptions()
        opts.use_per_session_threads = False  # the shared pool (see the module docstring)
        opts.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return opts

    def bind(self, graph: str, buffers: dict):
        spec = self.specs[graph]
        check_buffers(spec, buffers)
        session = self.sessions[graph]
        io = session.io_binding()
        for t in spec.inputs:
            buf = buffers[t.name]
            io.bind_input(t.name, "cpu", 0, buf.dtype, list(buf.shape), buf.ctypes.data)
        for t in spec.outputs:
            buf = buffers[t.name]
            io.bind_output(t.name, "cpu", 0, buf.dtype, list(buf.shape), buf.ctypes.data)
        return session, io

    def _run(self, binding) -> None:
        session, io = binding
        session.run_with_iobinding(io)
