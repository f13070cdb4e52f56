"""Write the `tiny` preset's weights into runtime/assets/tiny/ from a seeded random init, with a manifest.

Run: python build/init_tiny_weights.py [--seed 0] [--vocab build/base_vocab.txt] [--only dit,text_encoder,vae]
Untrained weights: the manifest says so (`trained: false`). Training recipes replace single components
and rewrite the manifest entries they own; `--only` leaves the other files as they are.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.config import get_preset  # noqa: E402
from runtime.dit import CausalDiT, init_weights  # noqa: E402
from runtime.model import default_weights_dir  # noqa: E402
from runtime.text import TinyTextEncoder  # noqa: E402
from runtime.vae import TinyVAE  # noqa: E402
from runtime.weights import DIT_PREFIX, save_module, sha256_file  # noqa: E402

COMPONENTS = ("dit", "text_encoder", "vae")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab", type=Path, default=ROOT / "build" / "base_vocab.txt")
    ap.add_argument("--only", default=",".join(COMPONENTS))
    ap.add_argument("--out", type=Path, default=default_weights_dir("tiny"))
    args = ap.parse_args()
    cfg = get_preset("tiny")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"preset": "tiny", "files": {}}
    torch.manual_seed(args.seed)
    builders = {
        "dit": lambda: (init_weights(CausalDiT(cfg.dit), args.seed), DIT_PREFIX),
        "text_encoder": lambda: (TinyTextEncoder(cfg.text), ""),
        "vae": lambda: (TinyVAE(cfg.vae), ""),
    }
    recipe = f"python build/init_tiny_weights.py --seed {args.seed} --only {{name}}"
    for name in args.only.split(","):
        started = time.time()
        module, prefix = builders[name]()
        path = out / f"{name}.safetensors"
        digest = save_module(module, path, prefix=prefix, dtype=torch.bfloat16 if name == "dit" else None)
        manifest["files"][path.name] = {
            "sha256": digest, "bytes": path.stat().st_size, "trained": False,
            "recipe": recipe.format(name=name), "seed": args.seed, "wall_seconds": round(time.time() - started, 2),
        }
    shutil.copyfile(args.vocab, out / "vocab.txt")
    manifest["files"]["vocab.txt"] = {"sha256": sha256_file(out / "vocab.txt"), "bytes": (out / "vocab.txt").stat().st_size,
                                      "recipe": f"copied from {args.vocab.relative_to(ROOT)}"}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(json.dumps({k: v["bytes"] for k, v in manifest["files"].items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
