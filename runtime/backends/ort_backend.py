"""onnxruntime backend (CPU serving default): one InferenceSession per graph, shared by every story;
one IOBinding per story and graph, bound once onto the caller's preallocated buffers (zero-copy)."""
from __future__ import annotations

import os
from pathlib import Path


from runtime.backends.base import Backend, check_buffers
from runtime.backends.export import ensure_onnx
from runtime.backends.spec import GraphSpec
from runtime.errors import BackendUnavailableError


class OrtBackend(Backend):
    name = "onnxruntime"

    def __init__(self, reason: str, threads: int | None = None):
        super().__init__(reason)
        try:
            import onnxruntime
        except ImportError as e:  # pragma: no cover - onnxruntime is a hard dependency
            raise BackendUnavailableError(f"onnxruntime is not installed: {e}") from e
        self.ort = onnxruntime
        self.threads = threads or int(os.environ.get("SHOTSTREAM_THREADS", "0")) or (os.cpu_count() or 1)

    def prepare(self, specs: dict[str, GraphSpec], modules: dict, artifacts: Path, fingerprint: dict) -> None:
        paths = ensure_onnx(modules, specs, artifacts / "onnx", fingerprint)
        opts = self.ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.specs = specs
        self.sessions = {name: self.ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
                         for name, p in paths.items()}

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


