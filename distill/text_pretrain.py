"""Pretraining the tiny text encoder on story-world captions.

Why pretrain (and not only train with the teacher): no teacher exists yet, and a caption's meaning in this
world is fully known: who is in the cast, where the shot is, what the subject does, how it is framed and
filmed, day or night. Heads on the mean-pooled token embeddings predict those labels from the full runtime
prompt (global caption + "shot{i}:" + shot caption), across the generators' paraphrases, so the embeddings
the DiT will read already separate what matters and ignore wording. The heads are thrown away; the encoder
can be fine-tuned with the teacher later.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from runtime.progress import progress
from runtime.text import TinyTextEncoder, Tokenizer, shot_prompt
from storyworld.captions import story_captions
from storyworld.sampling import sample_story
from storyworld.world import ACTIONS, CAMERA_MOVES, FRAMINGS, KIND_NAMES, PLACE_NAMES, TIMES

HEADS = {"place": len(PLACE_NAMES), "time": len(TIMES), "framing": len(FRAMINGS), "camera": len(CAMERA_MOVES),
         "subject": len(KIND_NAMES), "action": len(ACTIONS)}


def prompt_pool(seed: int, split: str, stories: int, tokenizer: Tokenizer) -> tuple[np.ndarray, dict, np.ndarray]:
    """Token ids (N, L), single-label targets per head (N,), and cast multi-hot (N, kinds) for every shot."""
    ids, labels, cast = [], {k: [] for k in HEADS}, []
    with progress(stories, f"captions ({split})", unit="story") as bar:
        for i in range(stories):
            story = sample_story(seed, split, i)
            caps = story_captions(story)
            kinds = np.zeros(len(KIND_NAMES), np.float32)
            kinds[[KIND_NAMES.index(m.kind) for m in story.cast]] = 1.0
            for k, shot in enumerate(story.shots):
                ids.append(tokenizer.encode(shot_prompt(caps["global_caption"], k, caps[f"shot{k + 1}"]))[0])
                labels["place"].append(PLACE_NAMES.index(shot.place))
                labels["time"].append(TIMES.index(shot.time))
                labels["framing"].append(FRAMINGS.index(shot.framing))
                labels["camera"].append(CAMERA_MOVES.index(shot.camera.move))
                labels["subject"].append(KIND_NAMES.index(story.cast[shot.actors[0].member].kind))
                labels["action"].append(ACTIONS.index(shot.action))
                cast.append(kinds)
            bar.update(1)
    return np.stack(ids), {k: np.asarray(v) for k, v in labels.items()}, np.stack(cast)


class LabelHeads(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.heads = nn.ModuleDict({k: nn.Linear(dim, n) for k, n in HEADS.items()})
        self.cast = nn.Linear(dim, len(KIND_NAMES))

    def forward(self, emb: torch.Tensor, ids: torch.Tensor) -> tuple[dict, torch.Tensor]:
        keep = (ids != 0).unsqueeze(-1).float()
        pooled = (emb * keep).sum(1) / keep.sum(1)
        return {k: h(pooled) for k, h in self.heads.items()}, self.cast(pooled)


def pretrain(encoder: TinyTextEncoder, pool, steps: int, batch: int = 64, lr: float = 1e-3,
             seed: int = 0) -> tuple[list[float], LabelHeads]:
    """Train encoder + label heads; returns the loss curve and the heads (for evaluation only)."""
    ids, labels, cast = pool
    heads = LabelHeads(encoder.norm.normalized_shape[0])
    params = list(encoder.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / max(steps, 1))))
    gen = torch.Generator().manual_seed(seed)
    ce, bce = nn.CrossEntropyLoss(), nn.BCEWithLogitsLoss()
    losses = []
    encoder.train()
    with progress(steps, "pretrain text encoder", unit="step") as bar:
        for _ in range(steps):
            idx = torch.randint(len(ids), (batch,), generator=gen).numpy()
            x = torch.from_numpy(ids[idx])
            logits, cast_logits = heads(encoder(x), x)
            loss = sum(ce(logits[k], torch.from_numpy(labels[k][idx])) for k in HEADS)
            loss = loss + bce(cast_logits, torch.from_numpy(cast[idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.update(1)
    encoder.eval()
    heads.eval()
    return losses, heads


@torch.no_grad()
def accuracy(encoder: TinyTextEncoder, heads: LabelHeads, pool) -> dict[str, float]:
    ids, labels, cast = pool
    x = torch.from_numpy(ids)
    logits, cast_logits = heads(encoder(x), x)
    out = {k: float((logits[k].argmax(-1).numpy() == labels[k]).mean()) for k in HEADS}
    out["cast"] = float(((cast_logits > 0).numpy() == (cast > 0.5)).all(1).mean())
    return out
