"""The probe network: a small CNN over a 5-frame clip that reads a shot's labels.

Input (B, 32, 64, 64): the clip's 5 RGB frames and the 4 differences between consecutive ones,
stacked on channels (27), zero-padded to 32.
A strided stem and five conv blocks give a (B, HIGH, 8, 8) feature map, and, joined with the
16x16 map before it, a (B, LOCAL, 16, 16) local map for the small characters of wide shots:
  - pooled 8x8 features (B, HIGH) -> one linear head per scene attribute (place, framing, ...);
  - one presence map per character kind (B, 8, 16, 16): its peak plus a linear read of the pooled
    features is the kind's presence logit, and its spatial softmax pools the feature map into
    that kind's identity embedding
    (B, 8, EMBED), which a per-kind linear layer reads as the colour variant; the pooled per-kind
    features also give what each kind is doing, and the shot's action is that of the visible
    kind least likely to be idle.
About 0.43 M parameters (~1.7 MB in float32).
"""
from __future__ import annotations

import torch
from torch import nn

from storyworld.probe.clips import CLASS_HEADS, CLIP_OFFSETS, N_KINDS
from storyworld.world import ACTIONS, KINDS

EMBED = 32
LOW, HIGH = 96, 160  # channels of the 16x16 and 8x8 feature maps
LOCAL = LOW + HIGH  # channels of the 16x16 map the per-character heads pool from
N_VARIANTS = max(len(k.variants) for k in KINDS)
CLIP_CHANNELS = 3 * (2 * len(CLIP_OFFSETS) - 1)  # frames, then differences of consecutive frames
IN_CHANNELS = 32  # zero-padded: oneDNN's bf16 convolutions take a slow path at 27 input channels
GLOBAL_HEADS = tuple(name for name in CLASS_HEADS if name != "action")
assert ACTIONS[0] == "idle"


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class ProbeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.low = nn.Sequential(
            nn.Conv2d(IN_CHANNELS, 32, 2, 2, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),  # 32x32
            _block(32, 48),
            _block(48, 80, 2),  # 16x16
            _block(80, LOW),
        )
        self.high = nn.Sequential(_block(LOW, 128, 2), _block(128, HIGH))  # 8x8
        self.heads = nn.ModuleDict({name: nn.Linear(HIGH, len(CLASS_HEADS[name])) for name in GLOBAL_HEADS})
        self.presence = nn.Linear(LOCAL, N_KINDS)
        self.presence_global = nn.Linear(HIGH, N_KINDS)
        self.embed = nn.Linear(LOCAL, EMBED)
        self.kind_action = nn.Linear(LOCAL, len(ACTIONS))
        self.variant = nn.Parameter(torch.zeros(N_KINDS, N_VARIANTS, EMBED))
        self.variant_bias = nn.Parameter(torch.zeros(N_KINDS, N_VARIANTS))
        nn.init.normal_(self.variant, std=EMBED ** -0.5)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        low = self.low(x)  # (B, LOW, 16, 16)
        high = self.high(low)  # (B, HIGH, 8, 8)
        pooled = high.mean(dim=(2, 3))  # (B, HIGH)
        out = {name: head(pooled) for name, head in self.heads.items()}
        up = high.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # (B, HIGH, 16, 16)
        local = torch.cat([low, up], 1).flatten(2).transpose(1, 2)  # (B, 256, LOCAL)
        maps = self.presence(local).transpose(1, 2)  # (B, K, 256)
        out["characters"] = self.presence_global(pooled) + maps.amax(dim=2)
        per_kind = torch.softmax(maps, dim=2) @ local  # (B, K, LOCAL)
        emb = self.embed(per_kind)  # (B, K, EMBED)
        out["embedding"] = emb
        out["variant"] = torch.einsum("bke,kve->bkv", emb, self.variant) + self.variant_bias  # (B, K, V)
        out["kind_action"] = self.kind_action(per_kind)  # (B, K, A): what each kind is doing
        out["action"] = _shot_action(out["kind_action"], out["characters"])
        out["features"] = pooled
        return out


def _shot_action(kind_action: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
    """The shot's action logits: those of the visible kind least likely to be idle (the subject)."""
    activity = 1.0 - kind_action.detach().float().softmax(-1)[..., 0]  # (B, K)
    activity = torch.where(presence > 0, activity, activity - 2.0)  # visible kinds rank first
    pick = activity.argmax(1)
    return kind_action[torch.arange(kind_action.shape[0]), pick]


def to_input(clips) -> torch.Tensor:
    """uint8 clips (B, 5, H, W, 3) (numpy or torch) -> float (B, 32, H, W): the frames in [-1, 1],
    the differences of consecutive frames (motion, in [-2, 2]), then zero padding."""
    t = torch.as_tensor(clips)
    b, n, h, w, c = t.shape
    x = t.permute(0, 1, 4, 2, 3).float().div_(127.5).sub_(1.0)  # (B, 5, 3, H, W)
    pad = x.new_zeros(b, IN_CHANNELS - CLIP_CHANNELS, h, w)
    return torch.cat([torch.cat([x, x[:, 1:] - x[:, :-1]], dim=1).reshape(b, CLIP_CHANNELS, h, w), pad], 1)
