"""Build TensorRT engines for a preset (GPU machines with the `[gpu]` extra installed).

Run: python build/build_trt_engines.py [--preset tiny] [--weights DIR]
Engines land in the runtime's artefact cache (SHOTSTREAM_CACHE, default ~/.cache/shotstream) beside the
ONNX files they come from, each with a fingerprint sidecar; `shotstream serve --backend tensorrt` reuses them.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime import Engine  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--weights")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    engine = Engine.load(args.preset, "tensorrt", args.weights)
    print(engine.info)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
