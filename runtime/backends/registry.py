"""Which backends exist and how one is made: `select_backend(name)`, the one place that imports them (each
backend imports the protocol in base.py, so the factory lives beside it, not in it). No fallback: an
unavailable backend raises BackendUnavailableError.
"""
from __future__ import annotations

import logging
import time

from runtime.backends.base import Backend

log = logging.getLogger(__name__)


def select_backend(name: str, device: str = "cpu", text_device: str = "cpu", dtype: str | None = None) -> Backend:
    """Construct the named backend; no fallback: an unavailable backend raises BackendUnavailableError.

    `device` / `text_device` place the torch backend's graphs and `dtype` ("float32", "bfloat16"; default:
    bf16 on CUDA, float32 on the CPU) is its compute type; the other backends choose their own."""
    started = time.perf_counter()
    if ((device, text_device) != ("cpu", "cpu") or dtype) and name != "torch":
        from runtime.errors import BackendUnavailableError

        raise BackendUnavailableError(f"--device {device} / --text-device {text_device} apply to the torch backend; "
                                      f"{name} places its graphs itself")
    if name == "torch":
        from runtime.backends.torch_backend import TorchBackend

        where = "reference implementation" if device == "cpu" else f"on {device}"
        import torch

        backend: Backend = TorchBackend(f"requested: torch ({where})", device=device, text_device=text_device,
                                        dtype=getattr(torch, dtype) if dtype else None)
    elif name == "onnxruntime":
        from runtime.backends.ort_backend import OrtBackend

        backend = OrtBackend("requested: onnxruntime (CPU serving default)")
    elif name == "tensorrt":
        from runtime.backends.trt_backend import TrtBackend

        backend = TrtBackend("requested: tensorrt (GPU)")
    else:
        raise ValueError(f"unknown backend {name!r}; known: onnxruntime, torch, tensorrt")
    log.info("backend %s selected (%s) in %.2fs", backend.name, backend.reason, time.perf_counter() - started)
    return backend
