"""ONNX export of the graphs, driven by the I/O spec; fingerprinted so a stale file is never reused.

Each graph family is written to `<dir>/<family>.onnx` with a sidecar `<family>.json` holding the fingerprint
(weights sha256, spec hash, the graphs' source, torch version, opset). A file whose sidecar does not match is
exported again.
A family with variants (`dit_chunk.<b>`) is one model whose varying axes are left free (`spec.free_dims`).
Used by the onnxruntime backend at start and by `build/export_onnx.py`; the TensorRT builder reads the files.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from runtime.backends.spec import GraphSpec, families, free_dims, spec_hash

log = logging.getLogger(__name__)
OPSET = 18


def fingerprint(weights_id: str, preset: str, specs: dict[str, GraphSpec], graphs: dict) -> dict:
    """What an exported file is made from: weights, preset, I/O spec and the source of every runtime module
    the graph modules are built of (so a file exported by other code, an older version of the package, is
    never reused even with the same weights and spec)."""
    names = {type(m).__module__ for g in graphs.values() for m in g.modules()}
    code = hashlib.sha256()
    for name in sorted(n for n in names if n.split(".")[0] == "runtime"):
        code.update(inspect.getsource(sys.modules[name]).encode())
    return {"weights": weights_id, "spec": spec_hash(specs), "preset": preset, "code": code.hexdigest()[:16]}


def _example(spec: GraphSpec) -> tuple[torch.Tensor, ...]:
    out = []
    for t in spec.inputs:
        if t.dtype == "int64":
            out.append(torch.ones(t.shape, dtype=torch.int64))
        else:
            out.append(torch.zeros(t.shape, dtype=torch.float32))
    return tuple(out)


def export_graph(module: torch.nn.Module, variants: list[GraphSpec], path: Path) -> None:
    spec = variants[0]
    axes, _ = free_dims(variants)
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(
            module, _example(spec), str(path), dynamo=False, opset_version=OPSET,
            input_names=[t.name for t in spec.inputs], output_names=[t.name for t in spec.outputs],
            dynamic_axes=axes or None, do_constant_folding=True,
        )


def _own_tmp(path: Path) -> Path:
    handle, name = tempfile.mkstemp(prefix=f"{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    os.chmod(name, 0o644)  # as a plain file would be (mkstemp makes it readable by its owner alone)
    return Path(name)


def ensure_onnx(modules: dict, specs: dict[str, GraphSpec], directory: Path, fingerprint: dict,
                force: bool = False) -> dict[str, Path]:
    """Export every graph family whose ONNX file is missing or stale; return the paths by family."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, variants in families(specs).items():
        path, side = directory / f"{name}.onnx", directory / f"{name}.json"
        want = dict(fingerprint, graph=name, torch=torch.__version__, opset=OPSET)
        fresh = path.exists() and side.exists() and json.loads(side.read_text()) == want
        if force or not fresh:
            started = time.perf_counter()
            # Files of this call's own, renamed into place whole: two processes (or threads) exporting into one
            # cache at once never write the same file, and a reader never sees half of one.
            tmp, side_tmp = (_own_tmp(p) for p in (path, side))
            try:
                export_graph(modules[name], variants, tmp)
                side_tmp.write_text(json.dumps(want, indent=1, sort_keys=True))
                tmp.replace(path)
                side_tmp.replace(side)
            finally:
                tmp.unlink(missing_ok=True)
                side_tmp.unlink(missing_ok=True)
            log.info("exported %s to %s in %.1fs", name, path, time.perf_counter() - started)
        paths[name] = path
    return paths
