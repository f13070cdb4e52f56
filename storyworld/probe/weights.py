"""The shipped probe: where its weights live, loading and saving them, and reading clips with it.

Weights are a safetensors file in `storyworld/assets/` with a JSON manifest beside it (sha256 of
the weights, the recipe and command that made them, the data seeds, wall time and the measured
held-out accuracies). Loading checks the sha256 against the manifest.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from storyworld.probe.model import ProbeNet
from storyworld.probe.train import predict

ASSETS = Path(__file__).resolve().parents[1] / "assets"
WEIGHTS_PATH = ASSETS / "probe.safetensors"
MANIFEST_PATH = ASSETS / "probe.manifest.json"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Probe:
    """A trained `ProbeNet` in eval mode, read with numpy in and numpy out."""

    def __init__(self, net: ProbeNet) -> None:
        self.net = net.eval()

    @staticmethod
    def load(path: str | Path | None = None) -> Probe:
        """The probe at `path` (default: the shipped one, cached after the first load)."""
        return _load(str(Path(path) if path else WEIGHTS_PATH))

    def read(self, clips: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs for uint8 clips (N, 5, 64, 64, 3): class logits per head, `characters`
        presence logits (N, 8), `variant` logits (N, 8, 3), `embedding` (N, 8, 32), `features`."""
        with torch.inference_mode():
            return predict(self.net, clips)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, str(path))
        path.chmod(0o644)


@lru_cache(maxsize=4)
def _load(path: str) -> Probe:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no probe weights at {p}; train them with `python build/train_probe.py`")
    if p == WEIGHTS_PATH and MANIFEST_PATH.exists():
        expected = json.loads(MANIFEST_PATH.read_text())["sha256"]
        if sha256(p) != expected:
            raise ValueError(f"{p} does not match the sha256 in {MANIFEST_PATH.name}")
    net = ProbeNet()
    net.load_state_dict(load_file(str(p)), strict=True)
    return Probe(net)
