"""A preset's model components, built and loaded: the DiT, the text side and the VAE.

`load_bundle("tiny")` reads the embedded default from `runtime/assets/tiny/` (checked against its manifest);
`load_bundle("shotstream-1.3b", weights=...)` loads the official student strictly. `build_dit(cfg, "meta")`
builds a DiT without memory (for `model-info`).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from runtime.config import ModelConfig, get_preset
from runtime.dit import CausalDiT
from runtime.errors import ComponentUnavailableError
from runtime.text import TinyTextEncoder, Tokenizer
from runtime.vae import TinyVAE
from runtime.weights import DIT_PREFIX, load_strict, read_manifest, read_state_dict, verify_manifest

log = logging.getLogger(__name__)
ASSETS = Path(__file__).parent / "assets"


@dataclass
class ModelBundle:
    cfg: ModelConfig
    dit: CausalDiT
    text_encoder: nn.Module
    vae: TinyVAE
    tokenizer: Tokenizer
    weights_id: str  # sha256 over the weight files, names the exported artefacts
    manifest: dict


def build_dit(cfg: ModelConfig, device: str = "cpu") -> CausalDiT:
    with torch.device(device):
        return CausalDiT(cfg.dit)


def default_weights_dir(preset: str) -> Path:
    return ASSETS / preset


def load_tokenizer(preset: str, weights: str | Path | None = None) -> Tokenizer:
    """The preset's tokenizer from its weights directory's vocab.txt (what the text encoder was trained on)."""
    cfg = get_preset(preset)
    if cfg.text.kind != "tiny":
        raise ComponentUnavailableError(f"preset {preset!r} reads prompts with the {cfg.text.kind} text encoder, which "
                                        "brings its own tokenizer; this package does not bundle it")
    directory = Path(weights) if weights is not None else default_weights_dir(preset)
    tokenizer = Tokenizer.from_file(directory / "vocab.txt", cfg.text.text_len)
    if len(tokenizer.vocab) > cfg.text.vocab_size:
        raise ComponentUnavailableError(f"vocabulary of {len(tokenizer.vocab)} words exceeds vocab_size {cfg.text.vocab_size}")
    return tokenizer


def load_bundle(preset: str, weights: str | Path | None = None) -> ModelBundle:
    cfg = get_preset(preset)
    if cfg.text.kind != "tiny" or cfg.vae.kind != "tiny":
        if weights is not None:
            load_strict(build_dit(cfg), read_state_dict(weights), source=str(weights), prefix=DIT_PREFIX)
        raise ComponentUnavailableError(
            f"preset {preset!r} needs the {cfg.text.kind} text encoder and the {cfg.vae.kind} VAE; this package "
            "bundles neither and has no loader for them yet. The DiT itself loads strictly (see `shotstream "
            "model-info`); generation with this preset is not available."
        )
    directory = Path(weights) if weights is not None else default_weights_dir(preset)
    manifest = read_manifest(directory)
    verify_manifest(directory, manifest)
    dit, text_encoder, vae = CausalDiT(cfg.dit), TinyTextEncoder(cfg.text), TinyVAE(cfg.vae)
    for module, name, prefix in ((dit, "dit.safetensors", DIT_PREFIX), (text_encoder, "text_encoder.safetensors", ""),
                                 (vae, "vae.safetensors", "")):
        load_strict(module, read_state_dict(directory / name), source=str(directory / name), prefix=prefix)
    for m in (dit, text_encoder, vae):
        m.eval().requires_grad_(False)
    tokenizer = load_tokenizer(preset, directory)
    digest = hashlib.sha256("".join(sorted(e["sha256"] for e in manifest["files"].values())).encode()).hexdigest()
    log.info("loaded %s weights from %s (%s)", preset, directory, digest[:12])
    return ModelBundle(cfg, dit, text_encoder, vae, tokenizer, digest, manifest)
