"""Text side of the model: the tokenizer over the model's vocabulary and the tiny text encoder.

The tokenizer lower-cases and splits a prompt into words `[a-z]+`, single digits and single punctuation
marks; every piece must be in the vocabulary, and the ones that are not are reported back to the caller
(`UnknownWordsError`), never dropped. Prompts longer than the encoder's `text_len` are refused, not truncated.
The encoder gives per-token embeddings (1, text_len, dim); padded positions are zeroed, as in Wan.
The official preset's umT5-XXL is user-supplied and is not part of this package.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from runtime.config import TextConfig
from runtime.errors import InvalidPromptError, UnknownWordsError

PAD, BOS = "<pad>", "<bos>"
_PIECE = re.compile(r"[a-z]+|[0-9]|[^\sa-z0-9]")


def split_words(text: str) -> list[str]:
    return _PIECE.findall(text.lower())


def shot_prompt(global_caption: str, shot_index: int, caption: str) -> str:
    """The official composition: global caption + "shot{i}:" + shot caption (1-based i)."""
    return f"{global_caption.strip()} shot{shot_index + 1}: {caption.strip()}"


class Tokenizer:
    """Word-level tokenizer; id 0 is padding, id 1 begins every prompt."""

    def __init__(self, words: list[str], text_len: int):
        self.vocab = [PAD, BOS] + [w for w in words if w not in (PAD, BOS)]
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.text_len = text_len

    @classmethod
    def from_file(cls, path: str | Path, text_len: int) -> "Tokenizer":
        words = [w.strip() for w in Path(path).read_text().splitlines() if w.strip()]
        return cls(words, text_len)

    def unknown_words(self, text: str) -> list[str]:
        seen: dict[str, None] = {}
        for w in split_words(text):
            if w not in self.index:
                seen.setdefault(w)
        return list(seen)

    def encode(self, text: str, out=None):
        """Token ids, padded to text_len (int64). Raises for empty, unknown or too-long prompts."""
        import numpy as np

        pieces = split_words(text)
        if not pieces:
            raise InvalidPromptError("the prompt is empty")
        unknown = self.unknown_words(text)
        if unknown:
            raise UnknownWordsError(unknown)
        if len(pieces) + 1 > self.text_len:
            raise InvalidPromptError(f"the prompt is {len(pieces) + 1} tokens; the model reads at most {self.text_len}")
        ids = np.zeros((1, self.text_len), np.int64) if out is None else out
        ids.fill(0)
        ids[0, 0] = self.index[BOS]
        ids[0, 1:len(pieces) + 1] = [self.index[w] for w in pieces]
        return ids


class _EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, length, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = x + self.out(y.transpose(1, 2).reshape(b, length, dim))
        return x + self.ffn(self.norm2(x))


class TinyTextEncoder(nn.Module):
    """A small pre-LN transformer over word tokens: (1, L) int64 -> (1, L, dim) float32."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.pos = nn.Parameter(torch.randn(1, cfg.text_len, cfg.dim) * 0.02)
        self.layers = nn.ModuleList(_EncoderLayer(cfg.dim, cfg.num_heads) for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        keep = (ids != 0).unsqueeze(-1).to(self.pos.dtype)  # (B, L, 1)
        bias = ((1.0 - keep.transpose(1, 2)) * -1e9).unsqueeze(1)  # (B, 1, 1, L): padded keys not attended
        x = self.embed(ids) + self.pos
        for layer in self.layers:
            x = layer(x, bias)
        return self.norm(x) * keep
