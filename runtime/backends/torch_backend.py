"""PyTorch backend: the reference. Runs the graph modules on torch views of the caller's numpy buffers."""
from __future__ import annotations

from pathlib import Path

import torch

from runtime.backends.base import Backend, check_buffers
from runtime.backends.spec import GraphSpec


class TorchBackend(Backend):
    name = "torch"

    def prepare(self, specs: dict[str, GraphSpec], modules: dict, artifacts: Path, fingerprint: dict) -> None:
        self.specs, self.modules = specs, modules

    def bind(self, graph: str, buffers: dict):
        spec = self.specs[graph]
        check_buffers(spec, buffers)
        ins = [torch.from_numpy(buffers[t.name]) for t in spec.inputs]
        outs = [torch.from_numpy(buffers[t.name]) for t in spec.outputs]
        return self.modules[graph], ins, outs

    def _run(self, binding) -> None:
        module, ins, outs = binding
        with torch.inference_mode():
            results = module(*ins)
            for dst, src in zip(outs, results):
                dst.copy_(src)
