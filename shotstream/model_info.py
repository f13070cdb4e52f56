"""`shotstream model-info`: a preset's DiT described, built on the meta device (no memory)."""
from __future__ import annotations

import argparse
import json

from runtime.config import PRESETS

HELP = "describe a preset's DiT (built on the meta device)"


def add_arguments(m: argparse.ArgumentParser) -> None:
    m.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="model preset (default tiny)")
    m.add_argument("--state-dict", action="store_true", help="one line per tensor: name<TAB>shape")


def run(args) -> int:
    from runtime.cache import CacheSpec
    from runtime.config import get_preset
    from runtime.model import build_dit
    from runtime.weights import DIT_PREFIX

    cfg = get_preset(args.preset)
    dit = build_dit(cfg, "meta")  # no memory: shapes only
    if args.state_dict:
        for name, t in dit.state_dict().items():
            print(f"{DIT_PREFIX}{name}\t{list(t.shape)}")
        return 0
    params = sum(p.numel() for p in dit.parameters())
    print(json.dumps({
        "preset": cfg.name, "dit_parameters": params, "tensors": len(dit.state_dict()),
        "resolution": [cfg.height, cfg.width], "tokens_per_frame": cfg.tokens_per_frame,
        "tokens_per_chunk": cfg.tokens_per_chunk, "frames_per_shot": cfg.frames_per_shot,
        "global_cache_bytes_fp32": CacheSpec.global_for(cfg).nbytes, "local_cache_bytes_fp32": CacheSpec.local_for(cfg).nbytes,
    }))
    return 0
