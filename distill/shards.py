"""Training data for the teacher, prepared once: story-world stories rendered and encoded into shards.

Two kinds, both deterministic by (seed, story index) and written as `shard-NNNNN.npz` beside an `index.json`:
- `shots`: every shot of every story, encoded as the runtime encodes a shot (first frame alone, then groups
  of 4: 21 latents), plus the single-frame encodings of every frame a later shot's context plan may pick
  (`runtime.context.frames_ever_needed`), as the runtime re-encodes the frames it keeps. The teacher's
  [context ; shot] samples are assembled from these with the runtime's rule.
- `frames`: a few random frames of every shot, each encoded alone (one render and one encode each: cheap),
  for the image-first phase of the teacher.
Each shot carries its full runtime prompt (global caption + "shot{k}:" + caption, `runtime.text.shot_prompt`);
captions are embedded when training starts, with the text encoder the trainer is given, so shards stay valid
when the text encoder is retrained. Shards are written atomically and skipped when present (resumable);
rendering and encoding run in `workers` processes, one torch thread each.
"""
from __future__ import annotations

import json
import os
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.progress import progress

KINDS = ("shots", "frames")
FORMAT = 1
SHOT_BATCH = 16  # whole shots a device encodes in one call (81 frames each; on the CPU one at a time is faster)


@dataclass(frozen=True)
class ShardPlan:
    out: Path
    kind: str
    seed: int
    stories: int
    shard_stories: int
    frames_per_shot: int  # frames kind only
    weights: str | None  # directory of the VAE's weights (None: the embedded default)
    split: str = "train"  # the story world's split ("heldout": compositions training never shows, for evals)
    first_story: int = 0  # story i of the plan is story first_story + i of its seed and split

    @property
    def shards(self) -> int:
        return -(-self.stories // self.shard_stories)

    def path(self, i: int) -> Path:
        return self.out / f"shard-{i:05d}.npz"


def prepare(out: str | Path, *, kind: str = "shots", seed: int = 0, stories: int = 1000, shard_stories: int = 50,
            frames_per_shot: int = 4, workers: int = 2, weights: str | Path | None = None,
            device: str = "cpu", max_seconds: float | None = None) -> dict:
    """Write the shards that are missing, then `index.json`; returns the index.

    On the CPU each worker renders and encodes its shards; with a CUDA `device` the workers only render and
    this process encodes on the device. With `max_seconds`, no shard starts after that much wall time once
    the first is written (the ones in flight, at most two per worker, are finished and written): the index
    then covers the written shards 0..k-1 (`stories` fewer than planned, `"complete": false`), and a later
    call goes on from there."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if stories < 1 or shard_stories < 1 or workers < 1 or frames_per_shot < 1:
        raise ValueError("stories, shard_stories, frames_per_shot and workers must be positive")
    plan = ShardPlan(Path(out), kind, seed, stories, shard_stories, frames_per_shot,
                     None if weights is None else str(weights))
    plan.out.mkdir(parents=True, exist_ok=True)
    _check_index(plan)
    todo = [i for i in range(plan.shards) if not plan.path(i).exists()]
    started = time.perf_counter()

    def time_is_up() -> bool:
        return (max_seconds is not None and time.perf_counter() - started >= max_seconds
                and plan.path(0).exists())
    with progress(plan.shards, f"prepare {kind} shards", unit="shard") as bar:
        bar.update(plan.shards - len(todo))
        if device != "cpu":
            vae = load_vae(plan.weights).to(device)
            with ProcessPoolExecutor(workers, initializer=one_thread) as pool:
                for i, rows in _in_order(pool, render_shard, plan, todo, 2 * workers, time_is_up):
                    _encode_shard(plan, i, rows, vae, device)
                    bar.update(1)
        elif workers == 1:
            for i in todo:
                if time_is_up():
                    break
                _write_shard(plan, i)
                bar.update(1)
        else:
            with ProcessPoolExecutor(workers, initializer=one_thread) as pool:
                for _ in _in_order(pool, _write_shard, plan, todo, 2 * workers, time_is_up):
                    bar.update(1)
    shards = next((i for i in range(plan.shards) if not plan.path(i).exists()), plan.shards)  # the written prefix
    index = {"format": FORMAT, "kind": kind, "seed": seed, "split": "train",
             "stories": min(stories, shards * shard_stories), "complete": shards == plan.shards,
             "stories_planned": stories, "shard_stories": shard_stories, "shards": shards,
             "frames_per_shot": frames_per_shot, "vae_sha256": _vae_sha(plan.weights), "samples": 0, "bytes": 0,
             "wall_seconds_this_run": round(time.perf_counter() - started, 1),
             "written_shards_this_run": sum(plan.path(i).exists() for i in todo)}
    for i in range(shards):
        with np.load(plan.path(i)) as z:
            index["samples"] += int(z["latents"].shape[0])
        index["bytes"] += plan.path(i).stat().st_size
    (plan.out / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    return index


def _in_order(pool: ProcessPoolExecutor, fn, plan: ShardPlan, todo: list[int], ahead: int, time_is_up):
    """(i, fn(plan, i)) for the shards `todo`, in order, with at most `ahead` in flight; once `time_is_up()`
    none is submitted, and those in flight are still handed over (their work is not thrown away)."""
    pending: deque = deque()
    rest = iter(todo)

    def submit() -> None:
        while len(pending) < ahead and not time_is_up():
            i = next(rest, None)
            if i is None:
                return
            pending.append((i, pool.submit(fn, plan, i)))
    submit()
    while pending:
        i, future = pending.popleft()
        yield i, future.result()
        submit()


def _check_index(plan: ShardPlan) -> None:
    """Refuse to mix shards of another recipe into a folder."""
    path = plan.out / "index.json"
    if not path.exists():
        return
    old = json.loads(path.read_text())
    for key in ("kind", "seed", "shard_stories", "frames_per_shot"):
        if old.get(key) != getattr(plan, key):
            raise ValueError(f"{plan.out} holds {old.get('kind')} shards with {key}={old.get(key)!r}; "
                             f"asked for {getattr(plan, key)!r}: use another folder")


def one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _vae_sha(weights: str | None) -> str:
    from runtime.model import default_weights_dir
    from runtime.weights import read_manifest

    directory = Path(weights) if weights else default_weights_dir("tiny")
    return read_manifest(directory)["files"]["vae.safetensors"]["sha256"]


def load_vae(weights: str | None):
    from runtime.config import get_preset
    from runtime.model import default_weights_dir
    from runtime.vae import TinyVAE
    from runtime.weights import load_strict, read_state_dict

    directory = Path(weights) if weights else default_weights_dir("tiny")
    vae = TinyVAE(get_preset("tiny").vae)
    load_strict(vae, read_state_dict(directory / "vae.safetensors"), source="vae.safetensors")
    return vae.eval()


def render_shard(plan: ShardPlan, i: int) -> dict:
    """Frames (uint8) and bookkeeping of shard i: whole shots, or a few random frames of each shot."""
    from runtime.context import frames_ever_needed
    from runtime.text import shot_prompt
    from storyworld.captions import story_captions
    from storyworld.constants import FRAMES_PER_SHOT
    from storyworld.render import render_shot
    from storyworld.sampling import sample_story

    rows: dict[str, list] = {"frames": [], "story": [], "shot": [], "frame": [], "prompt": []}
    first, last = i * plan.shard_stories, min(plan.stories, (i + 1) * plan.shard_stories)
    for s in range(plan.first_story + first, plan.first_story + last):
        story = sample_story(plan.seed, plan.split, s)
        caps = story_captions(story)
        rng = np.random.default_rng([plan.seed, s, 11])
        for k in range(len(story.shots)):
            if plan.kind == "shots":
                picked = [0]
                rows["frames"].append(render_shot(story, k)[0])
            else:
                picked = sorted(int(f) for f in rng.choice(FRAMES_PER_SHOT, plan.frames_per_shot, replace=False))
                rows["frames"].extend(render_shot(story, k, picked)[0])
            for f in picked:
                rows["story"].append(s)
                rows["shot"].append(k)
                rows["frame"].append(f)
                rows["prompt"].append(shot_prompt(caps["global_caption"], k, caps[f"shot{k + 1}"]))
    rows["needed"] = frames_ever_needed(FRAMES_PER_SHOT, 6)
    return rows


def encode_rows(plan: ShardPlan, rows: dict, vae, device: str = "cpu",
                shot_batch: int | None = None) -> dict[str, np.ndarray]:
    """Rendered frames (`render_shard`) encoded as the runtime encodes them: one shard's arrays. Whole shots
    go `shot_batch` a call (default: SHOT_BATCH on a GPU, where one shot a call leaves it waiting on launches;
    1 on the CPU, where batches measured slower)."""
    import torch

    from distill.autoencoder import encode_clips
    from distill.data import to_unit

    needed = rows["needed"]
    out = {"story": np.asarray(rows["story"], np.int32), "shot": np.asarray(rows["shot"], np.int16),
           "frame": np.asarray(rows["frame"], np.int16), "prompt": np.asarray(rows["prompt"])}
    with torch.no_grad():
        if plan.kind == "shots":
            step = shot_batch or (1 if torch.device(device).type == "cpu" else SHOT_BATCH)
            latents, context = [], []
            for j in range(0, len(rows["frames"]), step):
                shots = np.stack(rows["frames"][j:j + step])  # (b, T, H, W, 3)
                latents.append(encode_clips(vae, to_unit(shots, device)).half().cpu().numpy())
                kept = to_unit(shots[:, needed].reshape(-1, *shots.shape[2:]), device)
                context.append(vae.encode_frames(kept).unflatten(0, (len(shots), len(needed))).half().cpu().numpy())
            out["latents"], out["context"] = np.concatenate(latents), np.concatenate(context)
            out["context_frames"] = np.asarray(needed, np.int16)
        else:
            frames = np.stack(rows["frames"])
            out["latents"] = np.concatenate([vae.encode_frames(to_unit(frames[j:j + 256], device)).half().cpu().numpy()
                                             for j in range(0, len(frames), 256)])
    return out


def _encode_shard(plan: ShardPlan, i: int, rows: dict, vae, device: str = "cpu") -> None:
    """Encode rendered frames as the runtime does and write shard i atomically."""
    tmp = plan.path(i).with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, **encode_rows(plan, rows, vae, device))
    tmp.replace(plan.path(i))


def _write_shard(plan: ShardPlan, i: int) -> None:
    """Render and encode shard i on the CPU (one worker's job)."""
    _encode_shard(plan, i, render_shard(plan, i), load_vae(plan.weights))


def load(folder: str | Path) -> dict[str, np.ndarray]:
    """Every shard of a folder, concatenated (the data sets here fit in memory)."""
    folder = Path(folder)
    index_path = folder / "index.json"
    if not index_path.exists():
        raise FileNotFoundError(f"{folder} has no index.json: prepare it with `shotstream train data`")
    index = json.loads(index_path.read_text())
    parts = []
    for i in range(index["shards"]):
        with np.load(folder / f"shard-{i:05d}.npz") as z:
            parts.append({k: z[k] for k in z.files})
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k != "context_frames"}
    if "context_frames" in parts[0]:
        out["context_frames"] = parts[0]["context_frames"]
    out["index"] = index
    return out
