"""umT5 text side of the official preset at reduced size: key map, shapes, padding, tokenizer from a folder."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("transformers", reason="the official preset's text encoder needs the `official` extra")

from runtime.config import TextConfig  # noqa: E402
from runtime.errors import InvalidPromptError, WeightsError  # noqa: E402
from runtime.official.umt5 import UmT5Encoder, UmT5Tokenizer, convert_wan_t5_keys, load_umt5, wan_t5_keys  # noqa: E402

SMALL = TextConfig(kind="umt5-xxl", text_len=16, dim=32, vocab_size=40, num_layers=2, num_heads=4)
WORDS = "a knight walks in the forest shot1 : and wizard casts spell cave".split()


def tiny_tokenizer_dir(path):
    """A word-level tokenizer saved the way the Wan folder's google/umt5-xxl is read (AutoTokenizer)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(str(path))
    return path


def test_tokenizer_pads_to_text_len_with_an_end_token_and_refuses_long_prompts(tmp_path):
    tok = UmT5Tokenizer.from_dir(tiny_tokenizer_dir(tmp_path / "umt5"), SMALL.text_len)
    ids = tok.encode("a  knight walks &amp; in the forest")
    assert ids.shape == (1, 16) and ids.dtype == np.int64
    n = int((ids != 0).sum())
    assert ids[0, n - 1] == 1 and (ids[0, n:] == 0).all() and n == 8  # '&' is one (unknown) word
    with pytest.raises(InvalidPromptError, match="at most 16"):
        tok.encode(" ".join(["knight"] * 16))
    with pytest.raises(InvalidPromptError, match="empty"):
        tok.encode("   ")


def test_encoder_shapes_and_zeroed_padding():
    torch.manual_seed(0)
    enc = UmT5Encoder(SMALL).eval()
    ids = torch.zeros(1, 16, dtype=torch.long)
    ids[0, :5] = torch.tensor([3, 4, 5, 6, 1])
    with torch.no_grad():
        out = enc(ids)
        longer = ids.clone()
        longer[0, 5:7] = torch.tensor([7, 8])
        other = enc(longer)
    assert out.shape == (1, 16, 32) and out.dtype == torch.float32
    assert torch.count_nonzero(out[0, 5:]) == 0 and bool((out[0, :5].abs().sum(-1) > 0).all())
    assert not torch.allclose(out[0, :5], other[0, :5])  # valid tokens attend each other, not the padding


class _WanT5Block(nn.Module):
    """Wan's own T5 block (names as in its encoder file), written out to check the key map's meaning."""

    def __init__(self, dim, ffn, heads):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.Parameter(torch.rand(dim) + 0.5), nn.Parameter(torch.rand(dim) + 0.5)
        self.attn = nn.ModuleDict({n: nn.Linear(dim, dim, bias=False) for n in "qkvo"})
        self.ffn = nn.ModuleDict({"gate": nn.Sequential(nn.Linear(dim, ffn, bias=False)),
                                  "fc1": nn.Linear(dim, ffn, bias=False), "fc2": nn.Linear(ffn, dim, bias=False)})
        self.pos_embedding = nn.ModuleDict({"embedding": nn.Embedding(32, heads)})

    @staticmethod
    def rms(x, w):
        return w * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)

    def bias(self, length):
        rel = torch.arange(length)[None] - torch.arange(length)[:, None]  # key - query
        buckets = (rel > 0).long() * 16
        rel = rel.abs()
        large = 8 + (torch.log(rel.float() / 8) / math.log(128 / 8) * 8).long()
        buckets += torch.where(rel < 8, rel, large.clamp(max=15))
        return self.pos_embedding["embedding"](buckets).permute(2, 0, 1)[None]  # (1, n, L, L)

    def forward(self, x, keep):
        b, length, dim = x.shape
        h = self.rms(x, self.norm1)
        q, k, v = (self.attn[n](h).view(b, length, self.heads, -1) for n in "qkv")
        att = torch.einsum("binc,bjnc->bnij", q, k) + self.bias(length)
        att = att.masked_fill(~keep[:, None, None, :], torch.finfo(att.dtype).min).softmax(-1)
        x = x + self.attn["o"](torch.einsum("bnij,bjnc->binc", att, v).reshape(b, length, dim))
        h = self.rms(x, self.norm2)
        return x + self.ffn["fc2"](self.ffn["fc1"](h) * nn.functional.gelu(self.ffn["gate"][0](h), approximate="tanh"))


def wan_state_dict_and_reference(seed=0):
    torch.manual_seed(seed)
    emb = nn.Embedding(SMALL.vocab_size, SMALL.dim)
    blocks = nn.ModuleList(_WanT5Block(SMALL.dim, 48, SMALL.num_heads) for _ in range(SMALL.num_layers))
    norm = torch.rand(SMALL.dim) + 0.5
    sd = {"token_embedding.weight": emb.weight.detach(), "norm.weight": norm}
    for i, blk in enumerate(blocks):
        for k, v in blk.state_dict().items():
            sd[f"blocks.{i}.{k}".replace("norm1", "norm1.weight").replace("norm2", "norm2.weight")] = v

    def reference(ids):
        keep = ids != 0
        x = emb(ids)
        for blk in blocks:
            x = blk(x, keep)
        return _WanT5Block.rms(x, norm) * keep[..., None]

    return sd, reference


def test_wan_named_encoder_file_loads_strictly_and_matches_wans_encoder(tmp_path):
    sd, reference = wan_state_dict_and_reference()
    enc = UmT5Encoder(SMALL, d_ff=48)
    assert set(wan_t5_keys(enc)) == set(sd)
    torch.save(sd, tmp_path / "models_t5_umt5-xxl-enc-bf16.pth")
    loaded = load_umt5(tmp_path / "models_t5_umt5-xxl-enc-bf16.pth", SMALL, dtype=torch.float32, d_ff=48)
    ids = torch.tensor([[3, 4, 5, 6, 7, 1] + [0] * 10])
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(ids), reference(ids), atol=1e-5, rtol=1e-4)
    del sd["blocks.1.ffn.fc1.weight"]
    sd["blocks.0.attn.q.weight"] = torch.zeros(3, 3)
    from runtime.weights import load_strict

    with pytest.raises(WeightsError) as err:
        load_strict(UmT5Encoder(SMALL, d_ff=48).model, convert_wan_t5_keys(sd))
    assert err.value.missing == ["encoder.block.1.layer.1.DenseReluDense.wi_1.weight"]
    assert err.value.mismatched[0].startswith("encoder.block.0.layer.0.SelfAttention.q.weight [3, 3]")
