"""Scores of generated video against its structured description, read through the probe.

All functions take frames as a sequence of shots, each (T, 64, 64, 3) uint8 (T >= 9; shots of
41 frames or more are read best), and a description as a `Story` or its stored JSON form.
  - prompt_adherence: per attribute, the share of shots whose probe reading matches the labels.
  - inter_shot_consistency: mean cosine similarity of a character's identity embedding between
    the shots it appears in (1 = the same look in every shot).
  - intra_shot_smoothness: mean cosine similarity of probe features of overlapping clips that
    follow each other within a shot (flicker and jumps lower it).
  - frechet_distance / probe_frechet_distance: Frechet distance between probe feature sets.
"""
from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np

from storyworld.probe.clips import CLASS_HEADS, clip_starts, clips_from_frames
from storyworld.probe.weights import Probe
from storyworld.story import Story
from storyworld.world import KIND_NAMES

SHOT_CLIPS = 3  # clips read per shot (evaluate() reads shots the same way)
SMOOTH_STRIDE = 4  # frames between the starts of clips compared for smoothness


def as_story(description: Story | dict) -> Story:
    if isinstance(description, Story):
        return description
    return Story.from_dict(description.get("story", description))


def read_shots(frames: Sequence[np.ndarray], probe: Probe | None = None) -> list[dict[str, np.ndarray]]:
    """Per shot, the probe's outputs averaged over SHOT_CLIPS clips spread over the shot."""
    probe = probe or Probe.load()
    out = []
    for shot in frames:
        read = probe.read(clips_from_frames(np.asarray(shot), clip_starts(len(shot), SHOT_CLIPS)))
        out.append({k: v.mean(axis=0) for k, v in read.items()})
    return out


def prompt_adherence(frames: Sequence[np.ndarray], description: Story | dict,
                     probe: Probe | None = None) -> dict[str, float]:
    """Share of shots whose reading matches the description, per attribute, and their mean."""
    story = as_story(description)
    readings = read_shots(frames, probe)
    hits: dict[str, list[float]] = {name: [] for name in ("characters", "identity", *CLASS_HEADS)}
    for shot, r in zip(story.shots, readings):
        labels = {"place": shot.place, "framing": shot.framing, "camera": shot.camera.move,
                  "action": shot.action, "time": shot.time}
        for name, value in labels.items():
            hits[name].append(float(CLASS_HEADS[name][int(r[name].argmax())] == value))
        kinds = {KIND_NAMES.index(story.cast[a.member].kind): story.cast[a.member].variant for a in shot.actors}
        seen = set(np.flatnonzero(r["characters"] > 0))
        hits["characters"].append(float(seen == set(kinds)))
        hits["identity"] += [float(r["variant"][k].argmax() == v) for k, v in kinds.items()]
    scores = {name: float(np.mean(v)) for name, v in hits.items()}
    scores["mean"] = float(np.mean(list(scores.values())))
    return scores


def inter_shot_consistency(frames: Sequence[np.ndarray], description: Story | dict,
                           probe: Probe | None = None) -> float:
    """Mean over cast members seen in two shots or more of the mean pairwise cosine similarity
    of their identity embeddings; NaN when no member appears twice."""
    story = as_story(description)
    readings = read_shots(frames, probe)
    scores = []
    for member in range(len(story.cast)):
        k = KIND_NAMES.index(story.cast[member].kind)
        embs = [r["embedding"][k] for shot, r in zip(story.shots, readings)
                if any(a.member == member for a in shot.actors)]
        if len(embs) < 2:
            continue
        unit = [e / (np.linalg.norm(e) + 1e-8) for e in embs]
        scores.append(np.mean([float(a @ b) for a, b in combinations(unit, 2)]))
    return float(np.mean(scores)) if scores else float("nan")


def intra_shot_smoothness(frames: Sequence[np.ndarray], probe: Probe | None = None) -> float:
    """Mean cosine similarity of features of clips SMOOTH_STRIDE frames apart, over all shots."""
    probe = probe or Probe.load()
    sims = []
    for shot in frames:
        shot = np.asarray(shot)
        last_start = clip_starts(len(shot), 2)[-1]
        n = max(2, last_start // SMOOTH_STRIDE + 1)
        feats = probe.read(clips_from_frames(shot, clip_starts(len(shot), n)))["features"]
        unit = feats / (np.linalg.norm(feats, axis=1, keepdims=True) + 1e-8)
        sims.append(float(np.mean(np.sum(unit[1:] * unit[:-1], axis=1))))
    return float(np.mean(sims))


def probe_features(frames: Sequence[np.ndarray], probe: Probe | None = None) -> np.ndarray:
    """(shots * SHOT_CLIPS, 128) pooled probe features of a set of shots."""
    probe = probe or Probe.load()
    clips = [clips_from_frames(np.asarray(s), clip_starts(len(s), SHOT_CLIPS)) for s in frames]
    return np.concatenate([probe.read(c)["features"] for c in clips])


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D) and (M, D)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    vals, vecs = np.linalg.eigh(cov_a)
    root_a = (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)  # eigenvalues of (A^1/2 B A^1/2)
    trace_sqrt = float(np.sum(np.sqrt(np.clip(cross, 0.0, None))))
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt)
    return max(value, 0.0)


def probe_frechet_distance(generated: Sequence[np.ndarray], reference: Sequence[np.ndarray],
                           probe: Probe | None = None) -> float:
    probe = probe or Probe.load()
    return frechet_distance(probe_features(generated, probe), probe_features(reference, probe))
