"""Build the tiny tokenizer's vocabulary from the story world and pretrain the tiny text encoder.

Run: python build/train_text_encoder.py [--stories 3000] [--steps 1500] [--seed 0]
Writes runtime/assets/tiny/vocab.txt (the world's words, plus `shot` and digits for the official
"shot{i}:" composition) and text_encoder.safetensors, and records held-out label accuracies in the manifest.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import storyworld  # noqa: E402
from distill.text_pretrain import accuracy, pretrain, prompt_pool  # noqa: E402
from runtime.config import get_preset  # noqa: E402
from runtime.model import default_weights_dir  # noqa: E402
from runtime.text import TinyTextEncoder, Tokenizer  # noqa: E402
from runtime.weights import save_module, sha256_file  # noqa: E402


def world_vocabulary() -> list[str]:
    """The world's tokens; "shot3" style prefixes become "shot" + digits, as the runtime tokenizer splits them."""
    words = {w for w in storyworld.vocabulary() if not (w.startswith("shot") and w[4:].isdigit())}
    return sorted(words | {"shot"} | set("0123456789"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stories", type=int, default=3000)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=default_weights_dir("tiny"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.time()
    cfg = get_preset("tiny")
    vocab_path = args.out / "vocab.txt"
    vocab_path.write_text("\n".join(world_vocabulary()) + "\n")
    tokenizer = Tokenizer.from_file(vocab_path, cfg.text.text_len)
    train = prompt_pool(args.seed, "train", args.stories, tokenizer)
    heldout = prompt_pool(args.seed, "heldout", max(200, args.stories // 10), tokenizer)
    encoder = TinyTextEncoder(cfg.text)
    losses, heads = pretrain(encoder, train, args.steps, seed=args.seed)
    acc = {k: round(v, 4) for k, v in accuracy(encoder, heads, heldout).items()}
    path = args.out / "text_encoder.safetensors"
    digest = save_module(encoder, path, dtype=torch.float16)
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["vocab.txt"] = {"sha256": sha256_file(vocab_path), "bytes": vocab_path.stat().st_size,
                                      "words": len(tokenizer.vocab), "recipe": "python build/train_text_encoder.py (storyworld.vocabulary())"}
    manifest["files"][path.name] = {
        "sha256": digest, "bytes": path.stat().st_size, "trained": True,
        "recipe": f"python build/train_text_encoder.py --stories {args.stories} --steps {args.steps} --seed {args.seed}",
        "objective": "predict place, time, framing, camera, subject, action and cast from the full prompt",
        "data_seed": args.seed, "wall_seconds": round(time.time() - started, 1),
        "heldout_label_accuracy": acc, "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(json.dumps({"heldout_label_accuracy": acc, "bytes": path.stat().st_size, "wall_seconds": round(time.time() - started)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
