"""TensorRT backend (GPU): engines built from the same ONNX files, run on preallocated CUDA buffers.

Kept thin on purpose: the I/O spec, exporter, caches, generator and host tables are the ones the CPU path
uses and tests. What is specific here:
- caches and causal state (`RESIDENT` tensors) live only on the device as `DeviceArray`s; every other
  tensor is a host numpy array with a device mirror, uploaded before and downloaded after each call;
- each story binds every tensor address once (`set_tensor_address`) and runs `execute_async_v3` on one stream;
- a chunk's K/V outputs are bound to its cache slot, which no input of the call overlaps (the graph reads
  only the rows before the slot), so they land there with no copy;
- one engine per graph family; a family with variants (`dit_chunk.<b>`) gets one exact optimisation
  profile per variant, and each binding's context selects its variant's profile and shapes;
- engines are disk caches with a fingerprint sidecar (ONNX sha256, TensorRT version, GPU, precision).
TensorRT and pycuda are imported lazily, here only; they are the optional `[gpu]` extra. NOT VERIFIED on this
project's machines (no GPU, TensorRT not installable there); its test skips with that reason.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from runtime.backends.base import RESIDENT, Backend, check_buffers
from runtime.backends.export import ensure_onnx
from runtime.backends.spec import GraphSpec, TensorSpec, families, free_dims
from runtime.errors import BackendUnavailableError
from runtime.weights import sha256_file

log = logging.getLogger(__name__)


class DeviceArray:
    """A device buffer (or a first-axis slice of one) with the little numpy surface the caches use."""

    def __init__(self, backend: "TrtBackend", shape, dtype, ptr: int | None = None, owner=None):
        self._b, self.shape, self.dtype = backend, tuple(shape), np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
        if ptr is None:
            owner = backend.cuda.mem_alloc(max(self.nbytes, 1))
            ptr = int(owner)
        self.ptr, self._owner = ptr, owner

    def __getitem__(self, index: slice | int) -> "DeviceArray":
        row = self.nbytes // self.shape[0]
        if isinstance(index, int):
            if not 0 <= index < self.shape[0]:
                raise IndexError(f"index {index} outside [0, {self.shape[0]})")
            return DeviceArray(self._b, self.shape[1:], self.dtype, self.ptr + index * row, self._owner)
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("device arrays support first-axis indices and contiguous first-axis slices only")
        start, stop, _ = index.indices(self.shape[0])
        return DeviceArray(self._b, (stop - start,) + self.shape[1:], self.dtype, self.ptr + start * row, self._owner)

    def __setitem__(self, index, src: "DeviceArray") -> None:
        if index is not Ellipsis or not isinstance(src, DeviceArray) or src.nbytes != self.nbytes:
            raise TypeError("device arrays are written whole, from a device array of the same size")
        self._b.cuda.memcpy_dtod_async(self.ptr, src.ptr, self.nbytes, self._b.stream)

    def fill(self, value: float) -> None:
        if value != 0:
            raise ValueError("device arrays can only be zero-filled")
        self._b.cuda.memset_d8_async(self.ptr, 0, self.nbytes, self._b.stream)


class TrtBackend(Backend):
    name = "tensorrt"

    def __init__(self, reason: str, fp16: bool = True):
        super().__init__(reason)
        try:
            import pycuda.autoinit  # noqa: F401  (creates the context on device 0)
            import pycuda.driver as cuda
            import tensorrt as trt
        except Exception as e:  # ImportError, or a driver error raised by pycuda.autoinit
            raise BackendUnavailableError(
                f"the tensorrt backend needs TensorRT, pycuda and an NVIDIA GPU (pip install '.[gpu]'): {e}") from e
        self.trt, self.cuda, self.fp16 = trt, cuda, fp16
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.stream = cuda.Stream()
        self._mirrors: dict[int, object] = {}  # host buffer address -> device allocation

    # -- engines ---------------------------------------------------------------------------------
    def prepare(self, specs: dict[str, GraphSpec], modules: dict, artifacts: Path, fingerprint: dict) -> None:
        onnx = ensure_onnx(modules, specs, artifacts / "onnx", fingerprint)
        runtime = self.trt.Runtime(self.logger)
        self.specs, self.engines, self.profiles = specs, {}, {}
        for name, variants in families(specs).items():
            path = onnx[name]
            for i, spec in enumerate(variants):
                self.profiles[spec.name] = i
            plan = artifacts / "trt" / f"{name}.plan"
            want = {"onnx_sha256": sha256_file(path), "tensorrt": self.trt.__version__, "fp16": self.fp16,
                    "gpu": self.cuda.Device(0).name(), "profiles": free_dims(variants)[1]}
            side = plan.with_suffix(".json")
            if not (plan.exists() and side.exists() and json.loads(side.read_text()) == want):
                plan.parent.mkdir(parents=True, exist_ok=True)
                plan.write_bytes(self._build(path, variants))
                side.write_text(json.dumps(want, indent=1, sort_keys=True))
                log.info("built TensorRT engine %s", plan)
            self.engines[name] = runtime.deserialize_cuda_engine(plan.read_bytes())

    def _build(self, onnx_path: Path, variants: list[GraphSpec]) -> bytes:
        trt = self.trt
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendUnavailableError(f"TensorRT could not parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        axes, _ = free_dims(variants)
        if axes:  # one exact profile per variant, in order (a binding selects its variant's index)
            for spec in variants:
                profile = builder.create_optimization_profile()
                for t in spec.inputs:
                    if t.name in axes:
                        profile.set_shape(t.name, t.shape, t.shape, t.shape)
                config.add_optimization_profile(profile)
        if self.fp16:
            config.set_flag(trt.BuilderFlag.FP16)
        blob = builder.build_serialized_network(network, config)
        if blob is None:
            raise BackendUnavailableError(f"TensorRT failed to build an engine from {onnx_path}")
        return bytes(blob)

    # -- buffers and calls -----------------------------------------------------------------------
    def alloc(self, spec: TensorSpec):
        if spec.name in RESIDENT or spec.name == "cache":
            return DeviceArray(self, spec.shape, spec.dtype)
        return self.cuda.pagelocked_zeros(spec.shape, np.dtype(spec.dtype))

    def _device_of(self, buf) -> int:
        if isinstance(buf, DeviceArray):
            return buf.ptr
        key = buf.ctypes.data
        if key not in self._mirrors:  # once per buffer, at bind time
            self._mirrors[key] = self.cuda.mem_alloc(max(buf.nbytes, 1))
        return int(self._mirrors[key])

    def bind(self, graph: str, buffers: dict):
        spec = self.specs[graph]
        check_buffers(spec, buffers)
        context = self.engines[spec.family].create_execution_context()
        if self.engines[spec.family].num_optimization_profiles > 1:
            context.set_optimization_profile_async(self.profiles[graph], self.stream.handle)
            for t in spec.inputs:
                context.set_input_shape(t.name, t.shape)
        uploads, downloads = [], []
        for t in spec.inputs + spec.outputs:
            buf = buffers[t.name]
            addr = self._device_of(buf)
            context.set_tensor_address(t.name, addr)
            if isinstance(buf, np.ndarray):
                (uploads if t in spec.inputs else downloads).append((buf, addr))
        return context, uploads, downloads

    def _run(self, binding) -> None:
        context, uploads, downloads = binding
        for host, dev in uploads:
            self.cuda.memcpy_htod_async(dev, host, self.stream)
        if not context.execute_async_v3(self.stream.handle):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        for host, dev in downloads:
            self.cuda.memcpy_dtoh_async(host, dev, self.stream)
        self.stream.synchronize()
