"""Scores of generated video against its structured description, read through the probe.

All functions take frames as a sequence of shots, each (T, 64, 64, 3) uint8 (T >= 9; shots of
41 frames or more are read best), and a description as a `Story` or its stored JSON form.
  - prompt_adherence: per attribute, the share of shots whose probe reading matches the labels.
  - inter_shot_consistency: over every pair of shots the description puts one cast member in, the
    share in which the probe sees that member's kind in both and reads the same colour variant in
    both (1 = recognisably the same character in every shot; see `identity_pairs`).
  - intra_shot_smoothness: mean cosine similarity of probe features of overlapping clips that
    follow each other within a shot (flicker and jumps lower it).
  - frechet_distance / probe_frechet_distance: Frechet distance between probe feature sets.
  - confusion: per class attribute (place, framing, camera, ...), how often each label was read as each class.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import combinations
from statistics import NormalDist

import numpy as np

from storyworld.probe.clips import CLASS_HEADS, clip_starts, clips_from_frames
from storyworld.probe.weights import Probe
from storyworld.story import Shot, Story
from storyworld.world import KIND_NAMES

SHOT_CLIPS = 3  # clips read per shot (evaluate() reads shots the same way)
SMOOTH_STRIDE = 4  # frames between the starts of clips compared for smoothness
ADHERENCE_ATTRIBUTES = ("characters", "identity", *CLASS_HEADS)
BOOTSTRAP_DRAWS = 2000  # resamples of the stories behind every interval (`adherence_intervals`)


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


def shot_hits(story: Story, shot_index: int, reading: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """Whether one shot's reading matches its labels: one 0/1 per attribute, and for `identity` one
    per character kind the shot shows (is its colour variant read right)."""
    shot = story.shots[shot_index]
    hits = {name: [float(CLASS_HEADS[name][int(reading[name].argmax())] == value)]
            for name, value in scene_labels(shot).items()}
    kinds = {KIND_NAMES.index(story.cast[a.member].kind): story.cast[a.member].variant for a in shot.actors}
    hits["characters"] = [float(set(np.flatnonzero(reading["characters"] > 0)) == set(kinds))]
    hits["identity"] = [float(reading["variant"][k].argmax() == v) for k, v in kinds.items()]
    return hits


def confusion(labelled: Sequence[tuple[Shot, dict[str, np.ndarray]]]) -> dict[str, dict]:
    """Per class attribute, counts[i][j]: shots labelled class i that the probe read as class j, over (shot,
    reading) pairs; the diagonal is what `shot_hits` counts as hits."""
    out = {}
    for name, classes in CLASS_HEADS.items():
        counts = np.zeros((len(classes), len(classes)), np.int64)
        for shot, reading in labelled:
            counts[classes.index(scene_labels(shot)[name]), int(reading[name].argmax())] += 1
        out[name] = {"classes": list(classes), "counts": counts.tolist()}
    return out


def adherence_scores(hits: Sequence[dict[str, list[float]]]) -> dict[str, float]:
    """Per attribute, the share of hits pooled over the shots given; and `mean`, the mean of those."""
    scores = {name: float(np.mean([h for shot in hits for h in shot[name]])) for name in ADHERENCE_ATTRIBUTES}
    scores["mean"] = float(np.mean(list(scores.values())))
    return scores


def hit_totals(hits: Sequence[dict[str, list[float]]], attributes: Sequence[str] = ADHERENCE_ATTRIBUTES
               ) -> dict[str, list[float]]:
    """What `adherence_scores` pools from some shots (one story's): per attribute, [hits, readings]."""
    return {a: [float(sum(sum(h[a]) for h in hits)), float(sum(len(h[a]) for h in hits))] for a in attributes}


def expanded_percentiles(stories: int, level: float = 0.95) -> tuple[float, float]:
    """The percentiles (0-100) that bound a `level` interval over `stories` resampled stories: Hesterberg's expanded
    percentile interval. A plain percentile bootstrap covers too little with few stories (about 84% for a nominal
    95% at 6 stories, 88% at 12); reading the percentiles at Phi(-sqrt(n / (n - 1)) * t_{n-1}) instead of at
    (1 - level) / 2 widens it the way a t interval would, and tends to the plain one as stories grow (2.30 and 97.70
    at 96 stories). t's quantile comes from its Cornish-Fisher expansion (Abramowitz and Stegun 26.7.5; within 1%
    from 2 degrees of freedom up). Fewer than 3 stories give the whole resampled range."""
    if stories < 3:
        return 0.0, 100.0
    z, nu = NormalDist().inv_cdf(0.5 + level / 2), stories - 1
    t = (z + (z**3 + z) / (4 * nu) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * nu**2)
         + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * nu**3)
         + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * nu**4))
    tail = 100 * NormalDist().cdf(-((stories / nu) ** 0.5) * t)
    return tail, 100 - tail


def adherence_intervals(totals: dict[str, Sequence[dict[str, list[float]]]], seed: int, base: str | None = None,
                        draws: int = BOOTSTRAP_DRAWS) -> dict[str, dict]:
    """95% bootstrap intervals over stories (expanded percentiles) for rows read on the same stories. `totals[row]`
    holds one `hit_totals` per story, in the same order for every row; each resample draws stories with replacement
    and pools them as `adherence_scores` does (every attribute the totals hold, and their mean). Per row: `ci95`
    {attribute: [lo, hi]}, and when `base` is a row, for every other row `vs` {attribute: {difference, ci95}}, the
    difference from the base row paired story by story (the same resampled stories for both: what a comparison
    needs)."""
    attributes = list(next(iter(next(iter(totals.values())))))
    n = len(next(iter(totals.values())))
    picks = np.random.default_rng([seed, 17]).integers(n, size=(draws, n))
    names = (*attributes, "mean")
    bounds = expanded_percentiles(n)

    def pooled(stories: Sequence[dict], draw: np.ndarray | None) -> np.ndarray:  # (B or 1, attributes + mean)
        t = np.array([[story[a] for a in attributes] for story in stories], np.float64)  # (n, A, 2)
        sums = t[draw].sum(axis=1) if draw is not None else t.sum(axis=0)[None]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = sums[..., 0] / sums[..., 1]
        return np.concatenate([share, share.mean(axis=1, keepdims=True)], axis=1)

    resampled = {row: pooled(stories, picks) for row, stories in totals.items()}
    out = {}
    for row in totals:
        lo, hi = np.nanpercentile(resampled[row], bounds, axis=0)
        out[row] = {"ci95": {a: [float(lo[i]), float(hi[i])] for i, a in enumerate(names)}}
    if base in totals:
        full = {row: pooled(stories, None)[0] for row, stories in totals.items()}
        for row in totals:
            if row == base:
                continue
            lo, hi = np.nanpercentile(resampled[row] - resampled[base], bounds, axis=0)
            out[row]["vs"] = {a: {"difference": float(full[row][i] - full[base][i]),
                                  "ci95": [float(lo[i]), float(hi[i])]} for i, a in enumerate(names)}
    return out


def scene_labels(shot: Shot) -> dict[str, str]:
    """The labels of a shot that one class head of the probe reads."""
    return {"place": shot.place, "framing": shot.framing, "camera": shot.camera.move, "action": shot.action,
            "time": shot.time}


def constant_guess_adherence(stories: Sequence[Story]) -> dict[str, float]:
    """Chance, as `adherence_scores` would score a reader blind to the frames that always answers each
    attribute's most frequent label in these stories (per kind for `identity`): the best constant guess."""
    labels: dict[str, list] = {name: [] for name in ADHERENCE_ATTRIBUTES}
    for story in stories:
        for shot in story.shots:
            for name, value in scene_labels(shot).items():
                labels[name].append(value)
            kinds = {(story.cast[a.member].kind, story.cast[a.member].variant) for a in shot.actors}
            labels["characters"].append(tuple(sorted(k for k, _ in kinds)))
            labels["identity"] += sorted(kinds)
    scores = {}
    for name, values in labels.items():
        if name == "identity":  # the best variant per kind
            per_kind = Counter(values)
            best = {k: max(n for (kk, _), n in per_kind.items() if kk == k) for k, _ in per_kind}
            scores[name] = sum(best.values()) / len(values)
        else:
            scores[name] = Counter(values).most_common(1)[0][1] / len(values)
    scores["mean"] = float(np.mean(list(scores.values())))
    return scores


def prompt_adherence(frames: Sequence[np.ndarray], description: Story | dict,
                     probe: Probe | None = None) -> dict[str, float]:
    """Share of shots whose reading matches the description, per attribute, and their mean."""
    story = as_story(description)
    readings = read_shots(frames, probe)
    return adherence_scores([shot_hits(story, k, r) for k, r in enumerate(readings)])


def identity_pairs(story: Story, readings: Sequence[dict[str, np.ndarray]]) -> list[tuple[int, int, int, float]]:
    """(member, shot i, shot j, agreement) for every pair of shots i < j the description puts one cast
    member in. Agreement is 1 when the probe sees the member's kind in both shots and reads the same
    colour variant in both, else 0.

    A character counts only where the probe sees it: a look repeated shot after shot is consistent only if
    it is a recognisable character. Noise is the same in every shot, so a measure of sameness alone (such
    as the cosine of identity embeddings) rates it above rendered stories, whose poses and framings vary.
    The variant read is compared between shots, not with the labels (that is adherence's `identity`): a
    character drawn in the wrong colour, but in the same wrong colour every time, is consistent."""
    pairs = []
    for member, m in enumerate(story.cast):
        k = KIND_NAMES.index(m.kind)
        shots = [i for i, shot in enumerate(story.shots[:len(readings)]) if any(a.member == member for a in shot.actors)]
        look = {i: (readings[i]["characters"][k] > 0, int(readings[i]["variant"][k].argmax())) for i in shots}
        pairs += [(member, i, j, float(look[i][0] and look[j][0] and look[i][1] == look[j][1]))
                  for i, j in combinations(shots, 2)]
    return pairs


def identity_consistency(pairs: Sequence[tuple[int, int, int, float]]) -> float:
    """Mean over cast members of the mean agreement of their pairs; NaN without pairs."""
    members = sorted({p[0] for p in pairs})
    if not members:
        return float("nan")
    return float(np.mean([np.mean([p[3] for p in pairs if p[0] == m]) for m in members]))


def inter_shot_consistency(frames: Sequence[np.ndarray], description: Story | dict,
                           probe: Probe | None = None) -> float:
    """Identity consistency of a story's cast across its shots (`identity_pairs`), in [0, 1];
    NaN when no member appears in two shots."""
    story = as_story(description)
    return identity_consistency(identity_pairs(story, read_shots(frames, probe)))


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
