"""`shotstream eval --suite story`: held-out stories generated shot by shot by each model row, read by the probe.

The set: stories 0..N-1 of the story world's held-out split (compositions training never shows) for a data seed.
Each row makes every shot of every story (7 chunks, 81 frames) from the story's global caption and its shot
captions, shot after shot, context from the story's own earlier shots. Rows (`--model`, repeatable):
  truth          the stories as rendered;
  truth-vae      the rendered shots through the shipped VAE: encoded as the runtime encodes (first frame alone,
                 then groups of 4), decoded chunk by chunk with the causal state;
  runtime        the embedded default model through `runtime.Engine` / `Story`, exactly as a game drives it;
  teacher:PATH   a bidirectional next-shot teacher checkpoint sampled by distill/sampling.py;
  runtime-no-context, runtime-no-indicator
                 the runtime's ablations at inference: every shot's context latents zeroed (what the global cache
                 holds is then empty), or the RoPE shot indicator's phase set to 0 (cuts no longer marked);
  student:PATH   a causal student's DiT weights (safetensors) run by the runtime exactly as `runtime` is, in the
                 preset its stage manifest beside them names (`tiny` where none is beside them);
  noise          uniform random frames: the floor of every figure;
  truth-swapped  the truth with the cast in other colours from mid-story on: the floor of consistency alone.
Figures per row, all through the probe (storyworld/probe/metrics.py): prompt adherence per attribute and their
mean, pooled over all shots; identity consistency (mean over stories whose cast recurs); intra-shot smoothness;
the probe Frechet distance to the rendered shots; drift (adherence and consistency at shot 1 and at shots 6-8,
and per shot index); and generation frames per second (frames made / seconds spent making them). `chance` is the
adherence of the best constant guess on the same stories. Read smoothness beside adherence: uniform noise looks
alike from clip to clip and scores as smooth as the truth.
How far to trust a figure: each row has a 95% bootstrap interval over stories (expanded percentile, so that it
covers as it says with few stories too) of every adherence figure (`adherence_ci95`) and, when the `runtime` row
(the shipped model) is there, each other row's difference from it paired story by story (`vs_runtime`; `--against
ROW` compares with another row, e.g. a new teacher with the committed one), as a ship decision needs it;
`story_totals` keeps each story's hits so that rows of separate runs on the same stories and seed can be compared
the same way: `--stored EVAL.json:ROW` takes a row from an earlier result (same stories, same seed) instead of
making it again, e.g. the shipped model's committed row beside a new student's (marked `stored_from`; it is the
row a run would give only while the code and weights that made it are unchanged: each row made records the
sha256 of the DiT it ran, `dit_sha256`, and a stored runtime row read on a DiT that no longer ships is refused);
with stored rows and no `--model`, the stored rows alone are paired again. On 24 stories a difference in mean
adherence of about 0.02 is inside the interval; the shipped student read 0.39 on 24 stories and 0.42 on 96.
Long module: the set, the rows, their scoring and the stored rows are one suite and are read together.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.progress import progress
from storyworld.captions import story_captions
from storyworld.probe import Probe, frechet_distance, intra_shot_smoothness, probe_features, read_shots
from storyworld.probe.metrics import (adherence_intervals, adherence_scores, confusion, constant_guess_adherence,
                                      hit_totals, identity_consistency, identity_pairs, shot_hits)
from storyworld.render import render_shot
from storyworld.sampling import sample_story
from storyworld.story import Story

DEFAULT_ROWS = ("truth", "truth-vae", "runtime")
NAMED_ROWS = ("truth", "truth-vae", "runtime", "runtime-no-context", "runtime-no-indicator", "noise", "truth-swapped")
TEACHER = "teacher:"
STUDENT = "student:"
LATE_SHOTS = (5, 6, 7)  # shot indices of "shots 6-8"
BASE_ROW = "runtime"  # the row every other row is compared with, story by story, when it is there


@dataclass(frozen=True)
class EvalStory:
    index: int
    story: Story
    captions: dict[str, str]  # the official JSON form: global_caption, shot1..shotN
    seed: int  # generation seed of this story (runtime story seed, teacher noise)
    truth: list[np.ndarray]  # rendered shots, (81, 64, 64, 3) uint8 each; empty where nothing is made (`render`)

    @property
    def shot_captions(self) -> list[str]:
        return [self.captions[f"shot{k + 1}"] for k in range(len(self.story.shots))]


def heldout_set(stories: int, seed: int, render: bool = True) -> list[EvalStory]:
    """The held-out stories of `seed`; `render` False leaves their truth unrendered (a run that only pairs stored
    rows scores no frames)."""
    out = []
    with progress(stories, "render held-out stories" if render else "held-out stories", unit="story") as bar:
        for i in range(stories):
            story = sample_story(seed, "heldout", i)
            gen_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
            out.append(EvalStory(i, story, story_captions(story), gen_seed,
                                 [render_shot(story, k)[0] for k in range(len(story.shots))] if render else []))
            bar.update(1)
    return out


def check_rows(rows: list[str]) -> None:
    for row in rows:
        prefixes = (TEACHER, STUDENT)
        if row not in NAMED_ROWS and not any(row.startswith(p) and len(row) > len(p) for p in prefixes):
            raise SystemExit(f"unknown --model {row!r}; known: {', '.join(NAMED_ROWS)}, "
                             + ", ".join(f"{p}PATH" for p in prefixes))


def stored_rows(specs: list[str], stories: int, seed: int) -> dict[str, dict]:
    """Rows of earlier story eval results, one per `EVAL.json:ROW` in `specs`, with their own figures and story
    totals (intervals and comparisons dropped: they are drawn again beside the rows of this run); refused unless
    the result was made on the same `stories` and `seed`."""
    out = {}
    for spec in specs:
        path, sep, name = spec.partition(".json:")
        if not sep or not name:
            raise SystemExit(f"--stored takes EVAL.json:ROW, e.g. docs/eval.json:runtime; got {spec!r}")
        path += ".json"
        try:
            result = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise SystemExit(f"--stored {spec!r}: cannot read {path}: {err}") from None
        if result.get("suite") != "story" or (result.get("stories"), result.get("seed")) != (stories, seed):
            raise SystemExit(f"--stored {spec!r}: {path} is a {result.get('suite')} result on {result.get('stories')} "
                             f"stories of seed {result.get('seed')}; this run reads {stories} stories of seed {seed}")
        row = result.get("rows", {}).get(name)
        if row is None or "story_totals" not in row:
            raise SystemExit(f"--stored {spec!r}: {path} has no row {name!r} with story totals; its rows: "
                             f"{', '.join(result.get('rows', {}))}")
        if name in out:
            raise SystemExit(f"--stored names row {name!r} twice")
        if name.startswith("runtime"):  # it stands for today's runtime only if the same DiT still ships
            now, then = row_weights(name), row.get("dit_sha256")
            if then is None:
                print(f"--stored {spec!r}: {path} does not say which DiT its {name} row was read on (written before "
                      f"rows recorded it): it is today's only if no other DiT has shipped since", file=sys.stderr)
            elif then != now:
                raise SystemExit(f"--stored {spec!r}: {path} read {name} on DiT {then[:8]}; the runtime ships "
                                 f"{now[:8]} now: read the runtime row again (--model {name})")
        out[name] = {k: v for k, v in row.items() if k != "adherence_ci95" and not k.startswith("vs_")}
        out[name]["stored_from"] = path
    return out


def row_weights(row: str) -> str | None:
    """The sha256 of the DiT weights a row runs: the shipped DiT's for the runtime's rows, the file's for a
    teacher's or a student's; None for the rows no model makes."""
    from runtime.model import default_weights_dir
    from runtime.weights import read_manifest, sha256_file

    if row.startswith("runtime"):
        return read_manifest(default_weights_dir("tiny"))["files"]["dit.safetensors"]["sha256"]
    for prefix in (TEACHER, STUDENT):
        if row.startswith(prefix) and Path(row[len(prefix):]).exists():
            return sha256_file(row[len(prefix):])
    return None


# ---------------------------------------------------------------------------------------------------------
# Rows: each is a function EvalStory -> its shots' frames


def row_maker(row: str, eval_seed: int, *, backend: str = "onnxruntime", steps: int | None = None,
              guidance: float | None = None):
    """The function that makes one story's shots for `row` (models are loaded once, here); a teacher row needs
    its Euler `steps` and `guidance`."""
    if row == "truth":
        return lambda s: [render_shot(s.story, k)[0] for k in range(len(s.story.shots))]
    if row == "truth-swapped":
        def swapped(s: EvalStory) -> list[np.ndarray]:
            half, other = (len(s.truth) + 1) // 2, s.story.recoloured()
            return s.truth[:half] + [render_shot(other, k)[0] for k in range(half, len(s.truth))]
        return swapped
    if row == "noise":
        def noise(s: EvalStory) -> list[np.ndarray]:
            rng = np.random.default_rng([eval_seed, s.index, 1])
            return [rng.integers(0, 256, f.shape, dtype=np.uint8) for f in s.truth]
        return noise
    from runtime.model import load_bundle

    bundle = load_bundle("tiny")
    if row == "truth-vae":
        from distill.autoencoder import decode_shot

        return lambda s: [decode_shot(bundle.vae, f, bundle.cfg.shot.latent_frames_per_chunk) for f in s.truth]
    if row.startswith("runtime"):
        return _runtime_maker(backend, ablation=row[len("runtime-"):] or None)
    if row.startswith(STUDENT):
        return _runtime_maker(backend, row[len(STUDENT):])
    from distill.sampling import TeacherStory, load_teacher

    teacher = load_teacher(row[len(TEACHER):])

    def teacher_story(s: EvalStory) -> list[np.ndarray]:
        story = TeacherStory(teacher, bundle, s.captions["global_caption"], s.seed, steps=steps, guidance=guidance)
        return [story.shot(c) for c in s.shot_captions]
    return teacher_story


def _runtime_maker(backend: str, dit: str | None = None, ablation: str | None = None):
    """The runtime as a game drives it, on the shipped weights or with the DiT weights `dit`; `ablation`
    "no-context" zeroes the context latents every shot reads, "no-indicator" sets the RoPE shot phase to 0."""
    import dataclasses

    from distill.sampling import weights_preset
    from runtime import Engine
    from runtime.config import get_preset

    cfg = get_preset("tiny" if dit is None else weights_preset(dit)[0])
    if ablation == "no-indicator":
        cfg = dataclasses.replace(cfg, shot=dataclasses.replace(cfg.shot, shot_phase=0.0))
    engine = Engine.load(cfg, backend, None if dit is None else student_weights_dir(dit))
    chunks = engine.cfg.shot.chunks_per_shot

    def runtime(s: EvalStory) -> list[np.ndarray]:
        story = engine.open_story(s.seed % 2**63, s.captions["global_caption"])
        if ablation == "no-context":
            story._latent = lambda record, idx: np.zeros(engine.cfg.latent_shape, np.float32)
        try:
            return [np.concatenate([c.frames.copy() for c in story.generate_shot(caption, chunks)])
                    for caption in s.shot_captions]
        finally:
            story.close()
    return runtime


def student_weights_dir(dit: str | Path) -> Path:
    """A weights folder holding the shipped VAE, text encoder and vocabulary with `dit` as its DiT (cached by the
    file's sha256 under the system temp folder), for Engine.load."""
    import json
    import shutil
    import tempfile

    from runtime.model import default_weights_dir
    from runtime.weights import read_manifest, sha256_file

    dit = Path(dit)
    if not dit.exists():
        raise SystemExit(f"no student weights at {dit}")
    digest = sha256_file(dit)
    folder = Path(tempfile.gettempdir()) / f"shotstream-student-{digest[:16]}"
    if not (folder / "manifest.json").exists():
        # Made in a folder of this call's own and renamed into place whole: two evals of one student at once never
        # write into the same folder, and the one that renames second keeps the first one's (the same files).
        shipped, own = default_weights_dir("tiny"), Path(tempfile.mkdtemp(prefix=f"{folder.name}.", dir=folder.parent))
        try:
            tmp = own / "weights"
            shutil.copytree(shipped, tmp)
            shutil.copyfile(dit, tmp / "dit.safetensors")
            manifest = read_manifest(shipped)
            manifest["files"]["dit.safetensors"] = {"sha256": digest, "bytes": dit.stat().st_size, "source": str(dit)}
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            try:
                tmp.rename(folder)
            except OSError:
                if not (folder / "manifest.json").exists():
                    raise
        finally:
            shutil.rmtree(own, ignore_errors=True)
    return folder


def generate_row(row: str, stories: list[EvalStory], make) -> tuple[list[list[np.ndarray]], float]:
    """Every story's shots for one row, and the seconds spent making them (loading excluded)."""
    shots, seconds, frames = [], 0.0, 0
    with progress(len(stories), f"row {row}", unit="story") as bar:
        for s in stories:
            started = time.perf_counter()
            shots.append(make(s))
            seconds += time.perf_counter() - started
            frames += sum(len(f) for f in shots[-1])
            bar.set_postfix(fps=f"{frames / max(seconds, 1e-9):.1f}")
            bar.update(1)
    return shots, seconds


# ---------------------------------------------------------------------------------------------------------
# Scores


def _nan_mean(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def score_row(stories: list[EvalStory], shots: list[list[np.ndarray]], truth_features: np.ndarray,
              probe: Probe) -> dict:
    hits, pairs, consistency = [], [], []  # hits: (shot index, hits); pairs: (i, j, agreement)
    totals, labelled = [], []  # per story and attribute: [hits, readings]; (shot, reading) pairs
    for s, frames in zip(stories, shots):
        readings = read_shots(frames, probe)
        labelled += list(zip(s.story.shots, readings))
        story_hits = [shot_hits(s.story, k, r) for k, r in enumerate(readings)]
        hits += list(enumerate(story_hits))
        totals.append(hit_totals(story_hits))
        story_pairs = identity_pairs(s.story, readings)
        pairs += [p[1:] for p in story_pairs]
        consistency.append(identity_consistency(story_pairs))
    flat = [f for story_shots in shots for f in story_shots]

    def at(indices) -> dict:
        group = [h for k, h in hits if k in indices]
        agree = [a for i, j, a in pairs if i in indices or j in indices]
        return {"shots": len(group), "adherence": adherence_scores(group)["mean"] if group else float("nan"),
                "consistency": float(np.mean(agree)) if agree else float("nan"), "pairs": len(agree)}

    first, late = at({0}), at(set(LATE_SHOTS))
    return {
        "adherence": adherence_scores([h for _, h in hits]),
        "consistency": _nan_mean(consistency),
        "smoothness": intra_shot_smoothness(flat, probe),
        "frechet": frechet_distance(probe_features(flat, probe), truth_features),
        "drift": {"shot_1": first, "shots_6_8": late,
                  "adherence_ratio": late["adherence"] / first["adherence"] if first["adherence"] else float("nan")},
        "per_shot": [{"shot": k + 1, **at({k})} for k in range(max(len(s.truth) for s in stories))],
        "confusion": confusion(labelled),
        "story_totals": totals,
    }


def story_intervals(rows: dict[str, dict], seed: int, base: str = BASE_ROW) -> None:
    """Add to each row of a story eval (all on the same stories) a 95% bootstrap interval over stories of every
    adherence figure (`adherence_ci95`) and, when `base` is a row, each other row's difference from it, paired
    story by story (`vs_<base>`: difference and its interval). A difference whose interval holds 0 is one these
    stories cannot tell from none."""
    intervals = adherence_intervals({name: row["story_totals"] for name, row in rows.items()}, seed, base)
    for name, row in rows.items():
        row["adherence_ci95"] = intervals[name]["ci95"]
        if "vs" in intervals[name]:
            row[f"vs_{base}"] = intervals[name]["vs"]


def rounded(value, digits: int = 4):
    """JSON-ready: floats rounded, NaN as None, through dicts and lists."""
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else round(float(value), digits)
    return value


def story_eval(stories: int, seed: int, rows: list[str], *, backend: str = "onnxruntime", steps: int | None = None,
               guidance: float | None = None, sheet: str | None = None, against: str = BASE_ROW,
               stored: dict[str, dict] | None = None) -> dict:
    """The suite's result (see the module docstring); `sheet` also draws a contact sheet of every row made; every
    other row is compared with row `against`, story by story, when it is one; `stored` rows (`stored_rows`)
    come first, from earlier results on the same stories and seed; with stored rows, `rows` may be empty (the
    stored rows paired again, nothing made)."""
    check_rows(rows)
    kept = stored or {}
    if clash := set(kept) & set(rows):
        raise SystemExit(f"row {sorted(clash)[0]!r} is both --stored and --model")
    if sheet and not rows:
        raise SystemExit("--sheet draws the rows a run makes; stored rows keep no frames")
    data = heldout_set(stories, seed, render=bool(rows))
    if rows:  # stored rows alone are paired again: nothing to render or read
        probe = Probe.load()
        truth_features = probe_features([f for s in data for f in s.truth], probe)
    lengths = [len(s.story.shots) for s in data]
    result = {"stories": stories, "seed": seed, "shots": sum(lengths),
              "stories_reaching_shot_6": sum(n > min(LATE_SHOTS) for n in lengths),
              "shots_6_8": sum(max(0, min(n, max(LATE_SHOTS) + 1) - min(LATE_SHOTS)) for n in lengths),
              "chance": constant_guess_adherence([s.story for s in data]), "rows": dict(kept)}
    made = {}
    for row in rows:
        make = row_maker(row, seed, backend=backend, steps=steps, guidance=guidance)
        shots, seconds = generate_row(row, data, make)
        frames = sum(len(f) for story_shots in shots for f in story_shots)
        result["rows"][row] = {**score_row(data, shots, truth_features, probe), "frames": frames,
                               "gen_seconds": seconds, "fps": frames / max(seconds, 1e-9),
                               **({"dit_sha256": d} if (d := row_weights(row)) else {})}
        made[row] = shots
    story_intervals(result["rows"], seed, base=against)
    if sheet:
        from distill.story_sheet import write_story_sheet

        write_story_sheet(sheet, data, made)
        result["sheet"] = sheet
    return rounded(result)
