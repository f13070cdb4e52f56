"""What a loaded model is, for either loader (the tiny preset's in model.py, the official one's in
official/loader.py): the `ModelBundle` of configured modules and tokenizer, and `build_dit` for a config."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from runtime.config import ModelConfig
from runtime.dit import CausalDiT
from runtime.text import Tokenizer
from runtime.vae import TinyVAE


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
