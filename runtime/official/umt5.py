"""The official preset's text side: umT5-XXL's encoder (transformers' `UMT5EncoderModel`) and its tokenizer.

What this module owns, and its invariants:
- the key map from Wan's `models_t5_umt5-xxl-enc-bf16.pth` names (`token_embedding`, `blocks.N.attn.q`, ...)
  to transformers' names; loading is strict, every missing, unexpected or mis-shaped key is listed;
- `UmT5Tokenizer`: the tokenizer from the Wan folder (`google/umt5-xxl`), prompts cleaned as Wan cleans them
  (HTML entities, runs of white space), ids padded to exactly `text_len` (512) with the pad id 0 and an end
  token. A prompt longer than `text_len` tokens is refused (the runtime never drops words), where Wan truncates;
- `UmT5Encoder`: ids (1, L) -> embeddings (1, L, 4096) float32 with the padded positions zeroed, as the
  official wrapper does; cross-attention then reads all L tokens (no key mask).
It runs where the backend puts the `text_encode` graph: on the CPU in bf16 by default (about 11 GB of host
memory for the full model), even when the DiT is on a GPU, because an encoding is cached per prompt.
transformers (and the tokenizer's backends) are the optional `official` extra, imported lazily.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

import torch
from torch import nn

from runtime.config import TextConfig
from runtime.errors import InvalidPromptError
from runtime.text import OpenVocabulary

PAD_ID = 0  # umT5's pad id; the encoder zeroes these positions

# umT5-XXL's geometry (the Wan text encoder); TextConfig carries text_len and dim.
UMT5_XXL = {"vocab_size": 256384, "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64}


def umt5_config(cfg: TextConfig, **overrides):
    """transformers' UMT5Config for this text config (umT5-XXL unless `cfg` or `overrides` make it smaller)."""
    from transformers import UMT5Config

    geometry = dict(UMT5_XXL, d_model=cfg.dim)
    if cfg.vocab_size:
        geometry["vocab_size"] = cfg.vocab_size
    if cfg.num_layers:
        geometry["num_layers"] = cfg.num_layers
    if cfg.num_heads:
        geometry["num_heads"] = cfg.num_heads
        geometry["d_kv"] = cfg.dim // cfg.num_heads
    geometry.update(overrides)
    return UMT5Config(feed_forward_proj="gated-gelu", relative_attention_num_buckets=32,
                      relative_attention_max_distance=128, layer_norm_epsilon=1e-6, dropout_rate=0.0,
                      pad_token_id=PAD_ID, eos_token_id=1, **geometry)


class UmT5Encoder(nn.Module):
    """ids (B, L) int64 -> (B, L, dim) float32; padded positions (id 0) are masked as keys and zeroed."""

    def __init__(self, cfg: TextConfig, **overrides):
        super().__init__()
        from transformers import UMT5EncoderModel

        self.model = UMT5EncoderModel(umt5_config(cfg, **overrides))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        keep = ids != PAD_ID  # (B, L)
        hidden = self.model(input_ids=ids, attention_mask=keep.long()).last_hidden_state
        return hidden.float() * keep.unsqueeze(-1).float()


# -- weights -------------------------------------------------------------------------------------
_BLOCK = {
    "norm1.weight": "layer.0.layer_norm.weight",
    "attn.q.weight": "layer.0.SelfAttention.q.weight",
    "attn.k.weight": "layer.0.SelfAttention.k.weight",
    "attn.v.weight": "layer.0.SelfAttention.v.weight",
    "attn.o.weight": "layer.0.SelfAttention.o.weight",
    "pos_embedding.embedding.weight": "layer.0.SelfAttention.relative_attention_bias.weight",
    "norm2.weight": "layer.1.layer_norm.weight",
    "ffn.gate.0.weight": "layer.1.DenseReluDense.wi_0.weight",  # gelu(gate(x)) * fc1(x)
    "ffn.fc1.weight": "layer.1.DenseReluDense.wi_1.weight",
    "ffn.fc2.weight": "layer.1.DenseReluDense.wo.weight",
}


def convert_wan_t5_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Wan's T5 encoder names -> `UMT5EncoderModel` names (the token embedding is tied: two names).

    Keys the map does not know pass through unchanged, so a strict load reports them as unexpected."""
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        m = re.fullmatch(r"blocks\.(\d+)\.(.+)", key)
        if key == "token_embedding.weight":
            out["shared.weight"] = out["encoder.embed_tokens.weight"] = value
        elif key == "norm.weight":
            out["encoder.final_layer_norm.weight"] = value
        elif m and m.group(2) in _BLOCK:
            out[f"encoder.block.{m.group(1)}.{_BLOCK[m.group(2)]}"] = value
        else:
            out[key] = value
    return out


def wan_t5_keys(encoder: UmT5Encoder) -> dict[str, tuple[int, ...]]:
    """Names and shapes the Wan encoder file holds for this encoder (the key map inverted)."""
    inverse = {v: k for k, v in _BLOCK.items()}
    out = {}
    for key, value in encoder.model.state_dict().items():
        m = re.fullmatch(r"encoder\.block\.(\d+)\.(.+)", key)
        if key in ("shared.weight", "encoder.embed_tokens.weight"):
            out["token_embedding.weight"] = tuple(value.shape)
        elif key == "encoder.final_layer_norm.weight":
            out["norm.weight"] = tuple(value.shape)
        elif m:
            out[f"blocks.{m.group(1)}.{inverse[m.group(2)]}"] = tuple(value.shape)
    return out


def load_umt5(path, cfg: TextConfig, dtype: torch.dtype = torch.bfloat16, **overrides) -> UmT5Encoder:
    """Read the Wan encoder file, map its names, load strictly; the encoder is kept in `dtype`."""
    from runtime.weights import load_strict, read_state_dict

    with torch.device("meta"):
        encoder = UmT5Encoder(cfg, **overrides).to(dtype)
    encoder = encoder.to_empty(device="cpu")  # memory only in `dtype` (umT5-XXL: ~11 GB in bf16, not 22 + 11)
    load_strict(encoder.model, convert_wan_t5_keys(read_state_dict(path)), source=str(path))
    return encoder


# -- tokenizer -----------------------------------------------------------------------------------
def clean_prompt(text: str) -> str:
    """Wan's 'whitespace' cleaning: HTML entities resolved, runs of white space collapsed (ftfy if present)."""
    try:
        import ftfy

        text = ftfy.fix_text(text)
    except ImportError:
        pass
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


class UmT5Tokenizer(OpenVocabulary):
    """The runtime's tokenizer interface (`encode`, `check`) over the Wan folder's umT5 tokenizer."""

    def __init__(self, tokenizer, text_len: int):
        self.tok, self.text_len = tokenizer, text_len
        if tokenizer.pad_token_id != PAD_ID:
            raise ValueError(f"the tokenizer's pad id is {tokenizer.pad_token_id}; umT5's is {PAD_ID}")

    @classmethod
    def from_dir(cls, path: str | Path, text_len: int) -> "UmT5Tokenizer":
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(str(path)), text_len)

    def encode(self, text: str, out=None, mode: str = "strict"):
        """Token ids (1, text_len) int64, end token then padding. Raises for empty or too-long prompts."""
        import numpy as np

        text = clean_prompt(text)
        if not text:
            raise InvalidPromptError("the prompt is empty")
        ids = self.tok(text, add_special_tokens=True)["input_ids"]
        if len(ids) > self.text_len:
            raise InvalidPromptError(f"the prompt is {len(ids)} tokens; the model reads at most {self.text_len}")
        dst = np.zeros((1, self.text_len), np.int64) if out is None else out
        dst.fill(PAD_ID)
        dst[0, :len(ids)] = ids
        return dst
