"""ONNX export of the graphs, driven by the I/O spec; fingerprinted so a stale file is never reused.

Each graph is written to `<dir>/<graph>.onnx` with a sidecar `<graph>.json` holding the fingerprint
(weights sha256, spec hash, torch version, opset). A file whose sidecar does not match is exported again.
Used by the onnxruntime backend at start and by `build/export_onnx.py`; the TensorRT builder reads the files.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch

from runtime.backends.spec import GraphSpec

log = logging.getLogger(__name__)
OPSET = 18


def _example(spec: GraphSpec) -> tuple[torch.Tensor, ...]:
    out = []
    for t in spec.inputs:
        if t.dtype == "int64":
            out.append(torch.ones(t.shape, dtype=torch.int64))
        else:
            out.append(torch.zeros(t.shape, dtype=torch.float32))
    return tuple(out)


def export_graph(module: torch.nn.Module, spec: GraphSpec, path: Path) -> None:
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(
            module, _example(spec), str(path), dynamo=False, opset_version=OPSET,
            input_names=[t.name for t in spec.inputs], output_names=[t.name for t in spec.outputs],
            do_constant_folding=True,
        )


def ensure_onnx(modules: dict, specs: dict[str, GraphSpec], directory: Path, fingerprint: dict,
                force: bool = False) -> dict[str, Path]:
    """Export every graph whose ONNX file is missing or stale; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, spec in specs.items():
        path, side = directory / f"{name}.onnx", directory / f"{name}.json"
        want = dict(fingerprint, graph=name, torch=torch.__version__, opset=OPSET)
        fresh = path.exists() and side.exists() and json.loads(side.read_text()) == want
        if force or not fresh:
            started = time.perf_counter()
            tmp = path.with_suffix(".onnx.tmp")
            export_graph(modules[name], spec, tmp)
            tmp.replace(path)
            side.write_text(json.dumps(want, indent=1, sort_keys=True))
            log.info("exported %s to %s in %.1fs", name, path, time.perf_counter() - started)
        paths[name] = path
    return paths
