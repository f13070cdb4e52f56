"""PyTorch backend: the reference on the CPU, and the CUDA path for the official preset.

On the CPU (the default) the graph modules run on torch views of the caller's numpy buffers, in float32
(a chunk step's K/V are copied by the backend into the cache slot its output is bound to).
On a CUDA device (`device="cuda"`):
- the graphs run in `dtype` (bf16 by default);
- tensors that live for the whole story (`RESIDENT`: caches, the chunk's K/V, the VAE's causal state) are
  allocated once on the device as `DeviceTensor`s, in `dtype`; the cache writes of a chunk are in-place
  device copies (`dst[...] = src`), never a reallocation;
- every other tensor is a host numpy array with a device mirror made once at bind time, uploaded before and
  downloaded after a call; shapes are static, so addresses never change;
- the chunk step of position b (`dit_chunk.<b>`) reads the cache rows valid before it and writes its K/V
  into its slot: both are views of the story's joint cache (runtime/cache.py), so the write is an in-place
  device copy;
- each chunk step binding (one per chunk position and story; 34 calls per shot) is captured as a CUDA graph
  at its second call and replayed from then on (every captured graph shares one memory pool); the other
  graphs run eagerly (context fill: once per shot; VAE decode: branches on the shot's first chunk and is dominated by
  large convolutions).
The `text_encode` graph may live on another device (`text_device`, the CPU by default) in its own dtype, so
umT5-XXL (cached per prompt) does not take GPU memory from the DiT. NOT VERIFIED on a GPU by this project:
the CUDA branches are written for one and the CPU parts of the same code are tested here.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from runtime.backends.base import RESIDENT, Backend, check_buffers
from runtime.backends.spec import GraphSpec, TensorSpec, family

log = logging.getLogger(__name__)
CAPTURED = frozenset({"dit_chunk"})  # graph families replayed as CUDA graphs on a CUDA device


class DeviceTensor:
    """A device tensor (or first-axis slice) with the numpy surface the caches and the story use.

    `dtype` is the spec's (interface) dtype; the storage is the backend's compute dtype."""

    def __init__(self, tensor: torch.Tensor, dtype):
        self.tensor, self.dtype = tensor, np.dtype(dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.tensor.shape)

    @property
    def ptr(self) -> int:
        return self.tensor.data_ptr()

    def __getitem__(self, index: slice | int) -> "DeviceTensor":
        if not isinstance(index, int) and (not isinstance(index, slice) or index.step not in (None, 1)):
            raise TypeError("device tensors support first-axis indices and contiguous first-axis slices only")
        return DeviceTensor(self.tensor[index], self.dtype)

    def __setitem__(self, index, src) -> None:
        if index is not Ellipsis:
            raise TypeError("device tensors are written whole: dst[...] = src")
        self.tensor.copy_(src.tensor if isinstance(src, DeviceTensor) else torch.as_tensor(src))

    def fill(self, value: float) -> None:
        self.tensor.fill_(value)


@dataclass
class _Binding:
    graph: str
    module: torch.nn.Module
    ins: list[torch.Tensor]
    outs: list[torch.Tensor]
    uploads: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # (device mirror, host)
    downloads: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # (host, device mirror)
    cuda_graph: object = None  # the captured CUDA graph, once warmed
    warmed: bool = False  # run once eagerly, to be captured at the next call


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, reason: str, device: str = "cpu", dtype: torch.dtype | None = None,
                 text_device: str = "cpu", cuda_graphs: bool | None = None, resident: bool | None = None):
        """`resident` (default: on a device other than the CPU) keeps RESIDENT tensors as DeviceTensors;
        tests set it on the CPU to run the device path's bookkeeping here."""
        super().__init__(reason)
        self.device, self.text_device = torch.device(device), torch.device(text_device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            from runtime.errors import BackendUnavailableError

            raise BackendUnavailableError("device cuda requested, but torch sees no CUDA GPU "
                                          f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})")
        self.dtype = dtype or (torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        self.cuda_graphs = self.device.type == "cuda" if cuda_graphs is None else cuda_graphs
        self.on_device = self.device.type != "cpu" if resident is None else resident
        self._pool = None  # one CUDA graph memory pool for every captured binding

    def device_for(self, graph: str) -> torch.device:
        return self.text_device if graph == "text_encode" else self.device

    def prepare(self, specs: dict[str, GraphSpec], modules: dict, artifacts: Path, fingerprint: dict) -> None:
        self.specs, self.modules = specs, modules
        for graph, module in modules.items():
            if graph == "text_encode":
                module.to(self.text_device)  # keeps its own dtype (umT5 in bf16 on the CPU)
            elif self.device.type != "cpu" or self.dtype != torch.float32:
                module.to(self.device, self.dtype)
        log.info("torch backend: graphs on %s in %s, text encoder on %s, CUDA graphs %s", self.device,
                 str(self.dtype).replace("torch.", ""), self.text_device, "on" if self.cuda_graphs else "off")

    def alloc(self, spec: TensorSpec):
        if self.on_device and (spec.name in RESIDENT or spec.name == "cache"):
            return DeviceTensor(torch.zeros(spec.shape, dtype=self.dtype, device=self.device), spec.dtype)
        return np.zeros(spec.shape, dtype=np.dtype(spec.dtype))

    def _tensor_dtype(self, graph: str, t: TensorSpec) -> torch.dtype:
        if t.dtype == "int64":
            return torch.int64
        if graph == "text_encode":
            return torch.float32
        return self.dtype

    def bind(self, graph: str, buffers: dict) -> _Binding:
        spec = self.specs[graph]
        check_buffers(spec, buffers)
        b = _Binding(graph, self.modules[spec.family], [], [])
        tensors = [(t, "in") for t in spec.inputs] + [(t, "out") for t in spec.outputs]
        return self.bind_tensors(b, tensors, buffers)

    def bind_tensors(self, b: _Binding, tensors, buffers: dict) -> _Binding:
        """Add each (spec tensor, "in"/"out") to the binding: device tensors as they are, host buffers
        directly on the CPU in float32, else through a device mirror made here once."""
        device = self.device_for(b.graph)
        for t, role in tensors:
            buf = buffers[t.name]
            if isinstance(buf, DeviceTensor):
                tensor = buf.tensor
            elif device.type == "cpu" and self._tensor_dtype(b.graph, t) in (torch.float32, torch.int64):
                tensor = torch.from_numpy(buf)  # the caller's memory itself
            else:
                tensor = torch.zeros(t.shape, dtype=self._tensor_dtype(b.graph, t), device=device)
                host = torch.from_numpy(buf)
                (b.uploads.append((tensor, host)) if role == "in" else b.downloads.append((host, tensor)))
            (b.ins if role == "in" else b.outs).append(tensor)
        return b

    def _forward(self, b: _Binding) -> None:
        for dst, src in zip(b.outs, b.module(*b.ins)):
            dst.copy_(src)

    def _run(self, b: _Binding) -> None:
        with torch.inference_mode():
            for mirror, host in b.uploads:
                mirror.copy_(host)
            if self.cuda_graphs and family(b.graph) in CAPTURED:
                self._replay(b)
            else:
                self._forward(b)
            for host, mirror in b.downloads:
                host.copy_(mirror)

    def _replay(self, b: _Binding) -> None:
        """One eager warm-up call on a side stream, capture at the next, then replay.

        The captured graphs share one memory pool: they never run at once (one turn at a time), and every
        output is copied into the binding's own buffers inside the graph, so no graph reads another's
        scratch memory."""
        if b.cuda_graph is None and not b.warmed:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                self._forward(b)
            torch.cuda.current_stream().wait_stream(stream)
            b.warmed = True
            return
        if b.cuda_graph is None:
            graph = torch.cuda.CUDAGraph()
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
            with torch.cuda.graph(graph, pool=self._pool):
                self._forward(b)
            b.cuda_graph = graph
            log.info("captured %s as a CUDA graph", b.graph)
        b.cuda_graph.replay()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
