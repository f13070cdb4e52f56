"""The evaluation probe: a small CNN that reads story-world video, and the metrics built on it.

The probe reads a 5-frame clip of a shot: which characters are visible (multi-label) and in which
colour variant (through a per-character identity embedding), the place, framing, camera move,
action and time of day. It is trained on rendered frames by `python build/train_probe.py` and
shipped in `storyworld/assets/probe.safetensors`.

    from storyworld.probe import evaluate, prompt_adherence, inter_shot_consistency
    evaluate()                                   # held-out accuracies and "min_accuracy"
    prompt_adherence(generated_shots, story)     # per-attribute agreement with the captions' labels
"""
from __future__ import annotations

from storyworld.probe.data import clip_set
from storyworld.probe.metrics import (SHOT_CLIPS, frechet_distance, inter_shot_consistency, intra_shot_smoothness,
                                      probe_features, probe_frechet_distance, prompt_adherence, read_shots)
from storyworld.probe.train import ATTRIBUTES, accuracies
from storyworld.probe.weights import MANIFEST_PATH, WEIGHTS_PATH, Probe

HELDOUT_EVAL_SEED = 20_261_121  # data seed of held-out sets scored by `evaluate` (never trained on)


def evaluate(probe: Probe | None = None, *, stories: int = 120, seed: int = HELDOUT_EVAL_SEED,
             clips_per_shot: int = SHOT_CLIPS, workers: int = 1) -> dict[str, float]:
    """Accuracy of the probe on a freshly rendered held-out set, per attribute, with
    `min_accuracy` (the lowest of them), and how many `shots` and `clips` were scored. Each
    shot is read from `clips_per_shot` clips (their logits averaged), as `read_shots` does.

    The held-out split holds (character, place, action) compositions the training split never
    shows. Attributes: characters (exact set of visible kinds), identity (colour variant of each
    visible character), place, framing, camera, action, time."""
    probe = probe or Probe.load()
    data = clip_set(seed, "heldout", stories, clips_per_shot, workers)
    result = accuracies(probe.net, data, clips_per_shot)
    result["shots"] = len(data) // clips_per_shot
    result["clips"] = len(data)
    return result


__all__ = [
    "ATTRIBUTES", "HELDOUT_EVAL_SEED", "MANIFEST_PATH", "WEIGHTS_PATH", "Probe", "accuracies", "clip_set",
    "evaluate", "frechet_distance", "inter_shot_consistency", "intra_shot_smoothness", "probe_features",
    "probe_frechet_distance", "prompt_adherence", "read_shots",
]
