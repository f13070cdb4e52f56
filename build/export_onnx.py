"""Export a preset's graphs to ONNX, one file per family (the files the onnxruntime backend and the TensorRT
builder read).

Run: python build/export_onnx.py [--preset tiny] [--weights DIR] [--out artifacts/onnx] [--force]
Reuses a file whose fingerprint sidecar matches (weights sha256, spec hash, the graphs' source, torch, opset);
--force re-exports.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.backends.export import ensure_onnx, fingerprint  # noqa: E402
from runtime.backends.spec import graph_specs  # noqa: E402
from runtime.graphs import build_graphs  # noqa: E402
from runtime.model import load_bundle  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--weights")
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "onnx")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    bundle = load_bundle(args.preset, args.weights)
    specs = graph_specs(bundle.cfg)
    graphs = build_graphs(bundle.dit, bundle.text_encoder, bundle.vae)
    made_of = fingerprint(bundle.weights_id, bundle.cfg.name, specs, graphs)
    paths = ensure_onnx(graphs, specs, args.out, made_of, args.force)
    print(json.dumps({name: {"path": str(p), "bytes": p.stat().st_size} for name, p in paths.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
