"""PyTorch backend: the reference on the CPU, and the CUDA path for the official preset.

On the CPU (the default) the graph modules run on torch views of the caller's numpy buffers, in float32
(the chunk step on the joint cache, as below).
On a CUDA device (`device="cuda"`):
- the graphs run in `dtype` (bf16 by default);
- tensors that live for the whole story (`RESIDENT`: caches, the chunk's K/V, the VAE's causal state) are
  allocated once on the device as `DeviceTensor`s, in `dtype`; the cache writes of a chunk are in-place
  device copies (`dst[...] = src`), never a reallocation;
- every other tensor is a host numpy array with a device mirror made once at bind time, uploaded before and
  downloaded after a call; shapes are static, so addresses never change;
- the chunk step attends to the story's joint [global ; local] cache (runtime/cache.py) and writes its own
  K/V into its slot in place (`CausalDiT.chunk_step_joint`): no per-layer concatenation of the caches; it
  still returns the chunk's K/V as the spec's outputs, which the story copies into the same slot;
- the chunk step reads only the cache rows that are valid at its chunk position (known on the host before
  the call), so attention skips the empty rows and needs no mask; its shapes are static per position;
- the chunk step (`dit_chunk`, 5 calls per chunk, 35 per shot) is captured as a CUDA graph per chunk
  position (7 per shot geometry, sharing one memory pool) at its second call, and replayed from then on;
  the other graphs run eagerly (context fill: once per shot; VAE decode: branches on the shot's first
  chunk and is dominated by large convolutions).
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
from runtime.backends.spec import GraphSpec, TensorSpec

log = logging.getLogger(__name__)
CAPTURED = frozenset({"dit_chunk"})  # graphs replayed as CUDA graphs on a CUDA device


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

    def __getitem__(self, index: slice) -> "DeviceTensor":
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("device tensors support contiguous first-axis slices only")
        return DeviceTensor(self.tensor[index], self.dtype)

    def __setitem__(self, index, src) -> None:
        if index is not Ellipsis:
            raise TypeError("device tensors are written whole: dst[...] = src")
        self.tensor.copy_(src.tensor if isinstance(src, DeviceTensor) else torch.as_tensor(src))

    def fill(self, value: float) -> None:
        self.tensor.fill_(value)


def _joint(first, second):
    """The buffer whose consecutive first-axis views `first` and `second` are, or None."""
    if isinstance(first, DeviceTensor) and isinstance(second, DeviceTensor):
        base, a, b = first.tensor._base, first.tensor, second.tensor
        if base is None or b._base is not base:
            return None
        ptr, nbytes, joint = (lambda x: x.data_ptr()), (lambda x: x.numel() * x.element_size()), DeviceTensor(base, first.dtype)
    elif isinstance(first, np.ndarray) and isinstance(second, np.ndarray):
        base, a, b = first.base, first, second
        if not isinstance(base, np.ndarray) or b.base is not base:
            return None
        ptr, nbytes, joint = (lambda x: x.ctypes.data), (lambda x: x.nbytes), base
    else:
        return None
    if base.shape[0] != a.shape[0] + b.shape[0] or ptr(a) != ptr(base) or ptr(b) != ptr(a) + nbytes(a):
        return None
    return joint


@dataclass
class _Binding:
    graph: str
    module: torch.nn.Module
    ins: list[torch.Tensor]
    outs: list[torch.Tensor]
    uploads: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # (device mirror, host)
    downloads: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # (host, device mirror)
    cuda_graphs: dict = field(default_factory=dict)  # chunk position (valid rows) -> captured CUDA graph
    warmed: set = field(default_factory=set)  # positions run once eagerly, to be captured at the next call
    valid_rows: object = None  # joint chunk step: host int64 (1,) local_len and the rows before/after it
    rows_around: tuple[int, int] = (0, 0)


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
        self.joint_cache = True  # the chunk step attends to the joint cache in place (tests turn it off)
        self.exact_keys = True  # ... reading only its valid rows (else all rows, masked: one shape for all)

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
        b = _Binding(graph, self.modules[graph], [], [])
        tensors = [(t, "in") for t in spec.inputs] + [(t, "out") for t in spec.outputs]
        if graph == "dit_chunk" and self.joint_cache:
            joint = _joint(buffers["global_k"], buffers["local_k"]), _joint(buffers["global_v"], buffers["local_v"])
            if joint[0] is not None and joint[1] is not None:
                return self._bind_joint(b, tensors, buffers, joint)
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

    def _bind_joint(self, b: _Binding, tensors, buffers: dict, joint) -> _Binding:
        """The chunk step on the joint [global ; local] cache: the four cache inputs become its K and V."""
        from runtime.graphs import DitChunkJointGraph

        n_global = buffers["global_k"].shape[0]
        b.module = DitChunkJointGraph(self.modules["dit_chunk"].dit, n_global)
        kept = [(t, role) for t, role in tensors if t.name not in ("global_k", "global_v", "local_k", "local_v")]
        sub = self.bind_tensors(b, kept, buffers)
        sub.ins[5:5] = [j.tensor if isinstance(j, DeviceTensor) else torch.from_numpy(j) for j in joint]
        if self.exact_keys and isinstance(buffers["local_len"], np.ndarray):
            # The valid rows are known on the host before the call: read exactly those, one shape per position.
            sub.valid_rows, sub.rows_around = buffers["local_len"], (n_global, buffers["chunk_k"].shape[0])
        log.debug("dit_chunk bound to the joint cache (%d global rows)", n_global)
        return sub

    def _position(self, b: _Binding) -> int | None:
        """Rows of the joint cache the chunk step reads (global + valid local + the chunk), or None: all, masked."""
        if b.valid_rows is None:
            return None
        return b.rows_around[0] + int(b.valid_rows[0]) + b.rows_around[1]

    def _forward(self, b: _Binding, position: int | None = None) -> None:
        results = b.module(*b.ins) if position is None else b.module(*b.ins, n_valid=position)
        for dst, src in zip(b.outs, results):
            dst.copy_(src)

    def _run(self, b: _Binding) -> None:
        with torch.inference_mode():
            for mirror, host in b.uploads:
                mirror.copy_(host)
            if self.cuda_graphs and b.graph in CAPTURED:
                self._replay(b, self._position(b))
            else:
                self._forward(b, self._position(b))
            for host, mirror in b.downloads:
                host.copy_(mirror)

    def _replay(self, b: _Binding, position: int | None) -> None:
        """Per chunk position: one eager warm-up call on a side stream, capture at the next, then replay.

        The graphs of one binding share one memory pool: they never run at once, and every output is copied
        into the binding's own buffers inside the graph, so no graph reads another's scratch memory."""
        graph = b.cuda_graphs.get(position)
        if graph is None and position not in b.warmed:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                self._forward(b, position)
            torch.cuda.current_stream().wait_stream(stream)
            b.warmed.add(position)
            return
        if graph is None:
            graph = torch.cuda.CUDAGraph()
            pool = next(iter(b.cuda_graphs.values())).pool() if b.cuda_graphs else None
            with torch.cuda.graph(graph, pool=pool):
                self._forward(b, position)
            b.cuda_graphs[position] = graph
            log.info("captured %s at %s rows as a CUDA graph", b.graph, position if position is not None else "all")
        graph.replay()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
