"""Weight files: safetensors for our presets, the official `shotstream_merged.pt`, strict loading by name.

The official checkpoint is `torch.save({'generator': state_dict})` with every key prefixed `model.`; our
safetensors use the same names for the DiT. Loading is strict: any missing, unexpected or mis-shaped key
raises `WeightsError` listing them all. The embedded default ships with a manifest (sha256 per file, recipe).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from runtime.errors import WeightsError

DIT_PREFIX = "model."


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors or official .pt file (the 'generator' entry when present)."""
    path = Path(path)
    if not path.exists():
        raise WeightsError([], [], [], source=f"{path} (file not found)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    blob = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    if isinstance(blob, dict) and "generator" in blob:
        blob = blob["generator"]
    if not isinstance(blob, dict):
        raise WeightsError([], [], [], source=f"{path} (not a state dict)")
    return blob


def strip_prefix(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def load_strict(module: nn.Module, sd: dict[str, torch.Tensor], source: str = "", prefix: str = "") -> None:
    """Copy `sd` into `module` by name (keys carry `prefix`); every mismatch is reported at once."""
    own = module.state_dict()
    want = {prefix + k: v for k, v in own.items()}
    missing = sorted(k for k in want if k not in sd)
    unexpected = sorted(k for k in sd if k not in want)
    mismatched = sorted(f"{k} {list(sd[k].shape)} != {list(want[k].shape)}"
                        for k in want if k in sd and tuple(sd[k].shape) != tuple(want[k].shape))
    if missing or unexpected or mismatched:
        raise WeightsError(missing, unexpected, mismatched, source=source)
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(sd[prefix + k].to(v.dtype))


def save_module(module: nn.Module, path: str | Path, prefix: str = "", dtype: torch.dtype | None = None) -> str:
    """Write a module's state dict as safetensors (optionally cast); return the file's sha256."""
    from safetensors.torch import save_file

    sd = {}
    for k, v in module.state_dict().items():
        t = v.detach().contiguous()
        sd[prefix + k] = t.to(dtype) if dtype is not None and t.is_floating_point() else t
    save_file(sd, str(path))
    return sha256_file(path)


def read_manifest(directory: Path) -> dict:
    path = directory / "manifest.json"
    if not path.exists():
        raise WeightsError([], [], [], source=f"{path} (no manifest)")
    return json.loads(path.read_text())


def verify_manifest(directory: Path, manifest: dict) -> None:
    """Every file the manifest lists exists with the recorded sha256."""
    for name, entry in manifest["files"].items():
        path = directory / name
        if not path.exists():
            raise WeightsError([], [], [], source=f"{path} (listed in the manifest, missing on disk)")
        digest = sha256_file(path)
        if digest != entry["sha256"]:
            raise WeightsError([], [], [], source=f"{path} (sha256 {digest[:12]} does not match the manifest's {entry['sha256'][:12]})")
