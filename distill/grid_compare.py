"""`shotstream train compare`: the DiT's grid and size chosen by measurement, on the image phase.

Owns the comparison of tiny-family geometries (runtime presets such as `tiny-p2`, `tiny-p1`, `tiny-wide`; they
differ only in their DiT), and of the image phase's settings on one geometry: a variant is a preset, optionally
with the recipe's flow-matching shift or peak learning rate changed (`tiny-p1+lr=3e-3`, `tiny-p1+shift=1`).
Each variant is trained by the teacher's own loop (`distill.teacher.train`) on the recipe's `frames` phase alone,
at equal samples: the same steps x batch, seed, learning-rate schedule (unless the variant changes its peak) and
frames shards for every variant (a run folder holding another count is refused, not mixed in). Then every variant is
read on the same held-out frames (one frame of every shot of held-out stories: compositions training never
shows), encoded by the shipped VAE:
- the flow-matching loss per noise level: MSE of the predicted velocity against eps - x0 at fixed sigmas,
  unweighted, no caption dropout, the same noise draws for every variant (low noise is where detail is made);
- frames drawn back from their prompts (Euler, `euler_steps`, at each scale of `guidance` (1: none, the default;
  a row per further scale), the variant's shift, the same starting noise for every variant), decoded by the
  shipped VAE and read by the probe as a still clip: characters, identity, place, framing and time (camera and
  action mean nothing on a still frame).
Beside them: the ceiling (the truth through the VAE), a floor (the first variant as initialised, untrained)
and chance (the best constant guess on the same shots). With `init` every variant goes on from trained weights
instead (more samples for a geometry already trained: its samples are then added to theirs), and those weights
are the floor, read at every guidance scale and paired scale by scale with the first variant (`vs_start`).
Writes `report.json`, `report.md` and `sheet.png` under the output folder, and one run folder per variant
(the teacher's checkpoint, weights, manifest and loss log; a rerun resumes or reuses it).

Long module: one comparison from training to report (the variants' runs, the held-out frames and their reading,
the pairing of rows, the table and the sheet) shares its row names and held-out data throughout; split, each part
would need the others' conventions.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from distill.nextshot import NextShot
from distill.resident import ResidentFrames
from distill.sampling import euler_sigmas, guide
from distill.teacher import CaptionBank, TeacherRecipe
from runtime.config import ModelConfig, get_preset
from runtime.dit import CausalDiT, timestep_frequencies
from runtime.progress import progress
from runtime.scheduler import NUM_TRAIN_STEPS

log = logging.getLogger(__name__)
SIGMAS = (0.1, 0.25, 0.5, 0.75, 0.9)
ATTRIBUTES = ("characters", "identity", "place", "framing", "time")  # what a still frame can show
HELDOUT_SEED = 20_261_121  # the story eval's default data seed
SETTINGS = {"shift": "the flow-matching shift, in training and drawing", "lr": "the image phase's peak learning rate"}
EVAL_BATCH = 64


@dataclass(frozen=True)
class Comparison:
    """What is compared and how; every variant gets the same of everything but its geometry and the settings
    its name changes."""

    variants: tuple[str, ...]
    samples: int  # per variant: steps x batch
    batch: int
    heldout_stories: int = 24
    heldout_seed: int = HELDOUT_SEED
    sigmas: tuple[float, ...] = SIGMAS
    euler_steps: int = 20
    guidance: tuple[float, ...] = (1.0,)  # classifier-free guidance scales drawing the frames (1: none); a row each
    ema: float = 0.0  # EMA decay of the weights read (0: the raw weights; a short run's EMA lags its training)
    noise_seed: int = 0  # the held-out noise draws, shared by every variant
    sheet_frames: int = 8
    init: str | None = None  # weights every variant starts from (their preset's), instead of its seeded init

    def __post_init__(self) -> None:
        if not self.variants or len(set(self.variants)) != len(self.variants):
            raise ValueError(f"name each variant once, got {self.variants}")
        if not self.guidance or min(self.guidance) < 0 or len(set(self.guidance)) != len(self.guidance):
            raise ValueError(f"guidance: one or more distinct scales of at least 0 (1: none), got {self.guidance}")
        if self.batch < 1 or self.samples < self.batch or self.samples % self.batch:
            raise ValueError(f"equal samples need whole steps: samples {self.samples} is not a positive multiple "
                             f"of the batch {self.batch}")
        cfgs = [get_preset(split_variant(v)[0]) for v in self.variants]
        for cfg in cfgs:
            if cfg.vae.kind != "tiny" or cfg.text.kind != "tiny":
                raise ValueError(f"{cfg.name} is not a tiny-family preset: the comparison reads the shipped VAE")
            if (cfg.latent_shape, cfg.dit.text_dim) != (cfgs[0].latent_shape, cfgs[0].dit.text_dim):
                raise ValueError(f"{cfg.name} reads other latents or text than {cfgs[0].name}: not the same data")

    @property
    def steps(self) -> int:
        return self.samples // self.batch

    def recipe_for(self, base: TeacherRecipe, variant: str) -> TeacherRecipe:
        """`base` reduced to its frames phase, sized to this comparison, for one variant (its preset, and its
        settings where it changes them)."""
        frames = [p for p in base.phases if p.data == "frames"]
        if not frames:
            raise ValueError("the recipe has no phase on 'frames' data: the comparison trains the image phase")
        preset, changed = split_variant(variant)
        phase = replace(frames[0], steps=self.steps, batch=self.batch, minutes=None,
                        warmup=min(frames[0].warmup, max(1, self.steps // 10)), lr=changed.get("lr", frames[0].lr))
        return replace(base, preset=preset, shift=changed.get("shift", base.shift), ema=self.ema, phases=(phase,),
                       snapshot_every=0, stream=None, measure_peak=False)


def split_variant(variant: str) -> tuple[str, dict[str, float]]:
    """(preset, {setting: value}) of a variant written `preset[+setting=value]...`, settings from `SETTINGS`."""
    preset, *settings = variant.split("+")
    changed: dict[str, float] = {}
    for item in settings:
        key, sep, text = item.partition("=")
        if key not in SETTINGS or not sep or key in changed:
            raise ValueError(f"variant {variant!r}: write preset+setting=value, each setting once, settings "
                             f"{', '.join(f'{k} ({v})' for k, v in SETTINGS.items())}")
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not 0 < value < float("inf"):
            raise ValueError(f"variant {variant!r}: {key} must be a positive number, got {text!r}")
        changed[key] = value
    return preset, changed


# -- held-out frames --------------------------------------------------------------------------------------
@dataclass
class HeldOut:
    """One rendered frame of every shot of the held-out stories, encoded; and the noise every variant reads."""

    stories: list  # storyworld Story per held-out story
    story: np.ndarray  # (N,) story of each frame
    shot: np.ndarray  # (N,) its shot
    frames: np.ndarray  # (N, H, W, 3) uint8, as rendered
    data: dict  # `ResidentFrames` input: latents (N, C, h, w) fp16, prompt (N,)
    loss_noise: torch.Tensor  # (len(sigmas), N, 1, C, h, w)
    sample_noise: torch.Tensor  # (N, 1, C, h, w)


def heldout_frames(cmp: Comparison, vae) -> HeldOut:
    from distill.shards import ShardPlan, encode_rows, render_shard
    from storyworld.sampling import sample_story

    plan = ShardPlan(Path("."), "frames", cmp.heldout_seed, cmp.heldout_stories, cmp.heldout_stories, 1, None,
                     split="heldout")
    rows = render_shard(plan, 0)
    data = encode_rows(plan, rows, vae)
    latents = torch.from_numpy(data["latents"]).float().unsqueeze(1)  # (N, 1, C, h, w)
    gen = torch.Generator().manual_seed(cmp.noise_seed)
    loss_noise = torch.randn((len(cmp.sigmas), *latents.shape), generator=gen)
    sample_noise = torch.randn(latents.shape, generator=gen)
    stories = [sample_story(cmp.heldout_seed, "heldout", i) for i in range(cmp.heldout_stories)]
    return HeldOut(stories, data["story"], data["shot"], np.stack(rows["frames"]), data, loss_noise, sample_noise)


# -- reading one DiT ------------------------------------------------------------------------------------------
def _t_freq(sigma: float, b: int, cfg: ModelConfig, device) -> torch.Tensor:
    return torch.from_numpy(timestep_frequencies(np.full((b, 1), NUM_TRAIN_STEPS * sigma), cfg.dit.freq_dim)).to(device)


@torch.no_grad()
def heldout_losses(dit: CausalDiT, pool: ResidentFrames, held: HeldOut, sigmas, device) -> dict[str, float]:
    """{sigma: mean over the held-out frames of the velocity MSE at that sigma}, the same noise for every DiT."""
    n, sums = len(pool), np.zeros(len(sigmas))
    for a in range(0, n, EVAL_BATCH):
        idx = torch.arange(a, min(n, a + EVAL_BATCH), device=pool.device)
        x0, _, text, cos, sin = pool.batch(idx)
        for j, sigma in enumerate(sigmas):
            noise = held.loss_noise[j, a:a + len(idx)].to(device)
            x_t = (1 - sigma) * x0 + sigma * noise
            v = dit.forward_full(x_t, _t_freq(sigma, len(idx), pool.ns.cfg, device), text.table, cos, sin, None,
                                 text.index)
            sums[j] += float(((v.float() - (noise - x0)) ** 2).mean(dim=(1, 2, 3, 4)).sum())
    return {f"{s:g}": round(float(v / n), 5) for s, v in zip(sigmas, sums)}


@torch.no_grad()
def draw_frames(dit: CausalDiT, pool: ResidentFrames, held: HeldOut, steps: int, shift: float, device,
                guidance: float = 1.0) -> torch.Tensor:
    """(N, C, h, w) latents drawn from each held-out frame's prompt: Euler from the shared noise, with
    classifier-free guidance against the empty caption unless `guidance` is 1."""
    sigmas, out, guided = euler_sigmas(steps, shift), [], guidance != 1.0
    for a in range(0, len(pool), EVAL_BATCH):
        idx = torch.arange(a, min(len(pool), a + EVAL_BATCH), device=pool.device)
        _, _, text, cos, sin = pool.batch(idx)
        text = text.with_unconditional() if guided else text
        x = held.sample_noise[a:a + len(idx)].to(device)
        for i in range(steps):
            seq = torch.cat([x, x]) if guided else x
            v = dit.forward_full(seq, _t_freq(float(sigmas[i]), len(seq), pool.ns.cfg, device), text.table, cos, sin,
                                 None, text.index).float()
            x = x + float(sigmas[i + 1] - sigmas[i]) * (guide(v, guidance) if guided else v)
        out.append(x[:, 0].cpu())
    return torch.cat(out)


def decode(vae, latents: torch.Tensor) -> np.ndarray:
    """(N, H, W, 3) uint8: each latent decoded alone, as a shot's first frame is."""
    from distill.autoencoder import decode_first_frames

    with torch.no_grad():
        return decode_first_frames(vae, latents.float())


def probe_scores(frames: np.ndarray, held: HeldOut, probe) -> tuple[dict[str, float], list[dict]]:
    """Adherence per attribute a still frame shows, and their mean: each frame read as a still clip; and what
    each held-out story's frames pooled (`hit_totals`), for the intervals."""
    from storyworld.probe.clips import CLIP_SPAN
    from storyworld.probe.metrics import adherence_scores, hit_totals, read_shots, shot_hits

    readings = read_shots([np.repeat(f[None], CLIP_SPAN + 1, 0) for f in frames], probe)
    hits = [shot_hits(held.stories[s], int(k), r) for s, k, r in zip(held.story, held.shot, readings)]
    per_story = [hit_totals([h for h, s in zip(hits, held.story) if s == story], ATTRIBUTES)
                 for story in sorted(set(held.story.tolist()))]
    return _attributes(adherence_scores(hits)), per_story


def _intervals(rows: dict[str, dict], totals: dict[str, list[dict]], base: str, seed: int) -> None:
    """Each row's 95% interval over the held-out stories (`probe_ci95`) and every other row's difference from
    `base`, paired story by story (`vs_<base>`): differences whose interval holds 0 are not ones these frames show."""
    from storyworld.probe.metrics import adherence_intervals

    for name, got in adherence_intervals(totals, seed, base).items():
        rows[name]["probe_ci95"] = {a: [round(v, 4) for v in ci] for a, ci in got["ci95"].items()}
        if "vs" in got:
            rows[name][f"vs_{base}"] = {a: {"difference": round(d["difference"], 4),
                                            "ci95": [round(v, 4) for v in d["ci95"]]} for a, d in got["vs"].items()}


def _attributes(scores: dict[str, float]) -> dict[str, float]:
    kept = {a: round(scores[a], 4) for a in ATTRIBUTES}
    return {**kept, "mean": round(float(np.mean(list(kept.values()))), 4)}


# -- the comparison ------------------------------------------------------------------------------------------
def compare(cmp: Comparison, recipe: TeacherRecipe, frames, out: str | Path, *, device: str = "cpu") -> dict:
    """Train every variant (resuming its run folder), read each on the held-out frames, write the report;
    `frames` is the frames shards' data (or a function loading it). Returns the report."""
    from distill.sampling import load_teacher
    from distill.shards import load_vae
    from distill.teacher import train
    from runtime.dit import init_weights
    from runtime.model import load_bundle
    from storyworld.probe import Probe
    from storyworld.probe.metrics import constant_guess_adherence

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = None if cmp.init is None else _start(cmp)
    frames = frames() if callable(frames) else frames
    runs = {}
    for variant in cmp.variants:
        entry = train(cmp.recipe_for(recipe, variant), {"frames": frames}, out / variant, device=device,
                      init=cmp.init)
        if entry["samples"] != cmp.samples or not entry["complete"]:
            raise RuntimeError(f"{out / variant} holds a run of {entry['samples']} samples, not {cmp.samples}: "
                               "equal samples or no comparison (use another --out)")
        runs[variant] = entry
    vae, probe = load_vae(None), Probe.load()
    held = heldout_frames(cmp, vae)
    base = get_preset(split_variant(cmp.variants[0])[0])
    bundle = load_bundle(base.shares or base.name)
    bank = CaptionBank(held.data["prompt"], bundle.text_encoder.float().eval(), bundle.tokenizer, device=device)
    chance = _attributes(constant_guess_adherence(held.stories))
    report = {"comparison": {**{k: getattr(cmp, k) for k in cmp.__dataclass_fields__}, "steps": cmp.steps},
              "recipe_phase": asdict(cmp.recipe_for(recipe, base.name).phases[0]),
              "device": device, "train_frames": len(frames["latents"]),
              "train_stories": len(np.unique(frames["story"])), "heldout_frames": len(held.frames), "chance": chance,
              "rows": {}}
    rows, pictures, totals = report["rows"], {}, {}
    pictures["truth through the VAE"] = decode(vae, torch.from_numpy(held.data["latents"]))
    scores, totals["truth through the VAE"] = probe_scores(pictures["truth through the VAE"], held, probe)
    rows["truth through the VAE"] = {"probe": scores}
    if start is None:
        floor = f"untrained {base.name}"
        dits = {floor: (init_weights(CausalDiT(base.dit), recipe.seed), base, base.shot.shift, None)}
    else:
        floor, teacher = f"start: {Path(cmp.init).stem}", load_teacher(cmp.init)
        dits = {floor: (teacher.dit, teacher.cfg, teacher.shift, start)}
        report["start"] = start
    for variant in cmp.variants:
        teacher = load_teacher(out / variant / "teacher.safetensors")
        dits[variant] = (teacher.dit, teacher.cfg, teacher.shift, runs[variant])
    with progress(len(dits), "read variants", unit="variant") as bar:
        for name, (dit, cfg, shift, entry) in dits.items():
            started = time.perf_counter()
            dit = dit.float().eval().to(device)
            pool = ResidentFrames(held.data, bank, NextShot(cfg), device)
            row = {"preset": cfg.name, "params": sum(p.numel() for p in dit.parameters()),
                   "tokens_per_frame": cfg.tokens_per_frame,
                   **({"samples": start["samples"]} if start is not None and entry is start
                      else _training(entry, out / name)),
                   "heldout_loss": heldout_losses(dit, pool, held, cmp.sigmas, device)}
            for g in cmp.guidance if entry else cmp.guidance[:1]:  # the untrained floor at the first scale only
                label = _label(name, g, cmp)
                pictures[label] = decode(vae, draw_frames(dit, pool, held, cmp.euler_steps, shift, device, g))
                probe_row, totals[label] = probe_scores(pictures[label], held, probe)
                rows[label] = {**row, "guidance": g, "probe": probe_row,
                               "eval_seconds": round(time.perf_counter() - started, 1)}
                started = time.perf_counter()
            bar.update(1)
    _intervals(rows, totals, cmp.variants[0], cmp.noise_seed)
    if start is not None:
        _against_start(rows, totals, floor, cmp)
    report["compared_with"] = cmp.variants[0]
    write_sheet(out / "sheet.png", pictures, cmp.sheet_frames)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(markdown(report) + "\n")
    return report


def _label(name: str, guidance: float, cmp: Comparison) -> str:
    """A reading's row name: the weights' name, and the guidance scale where it is not the first."""
    return name if guidance == cmp.guidance[0] else f"{name}, guidance {guidance:g}"


def _start(cmp: Comparison) -> dict:
    """The weights `cmp.init` names, checked against every variant's geometry: file, digest, preset and the
    samples their manifest says they were trained on."""
    from distill.sampling import weights_preset
    from runtime.weights import sha256_file

    preset, manifest = weights_preset(cmp.init, default=None)
    for variant in cmp.variants:
        if get_preset(split_variant(variant)[0]).dit != get_preset(preset).dit:
            raise ValueError(f"{cmp.init} holds {preset} weights: variant {variant} is another geometry")
    return {"file": str(cmp.init), "sha256": sha256_file(cmp.init), "preset": preset,
            "samples": manifest.get("samples")}


def _against_start(rows: dict[str, dict], totals: dict[str, list[dict]], floor: str, cmp: Comparison) -> None:
    """Each variant's rows paired story by story with the starting weights read at the same guidance scale."""
    from storyworld.probe.metrics import adherence_intervals

    for variant in cmp.variants:
        for g in cmp.guidance:
            start, row = _label(floor, g, cmp), _label(variant, g, cmp)
            d = adherence_intervals({start: totals[start], row: totals[row]}, cmp.noise_seed, start)[row]["vs"]
            rows[row]["vs_start"] = {a: {"difference": round(v["difference"], 4),
                                         "ci95": [round(x, 4) for x in v["ci95"]]} for a, v in d.items()}


def _training(entry: dict | None, folder: Path) -> dict:
    """What a variant's training cost and where its loss ended (nothing for the untrained floor)."""
    if entry is None:
        return {"samples": 0}
    rate = next(iter(entry["throughput"].values()), {})
    losses = [json.loads(line) for line in (folder / "loss.jsonl").read_text().splitlines() if line.strip()]
    return {"shift": entry["shift"], "lr": entry["phases"][0]["lr"],
            "samples": entry["samples"], "steps": entry["steps"], "wall_seconds": entry["wall_seconds"],
            "samples_per_s": rate.get("samples_per_s"), "final_train_loss": losses[-1]["loss"] if losses else None,
            "train_device": entry["device"]}


def markdown(report: dict) -> str:
    """The report as one table: a row per reading, the loss per sigma and the probe's figures."""
    sigmas = [f"{s:g}" for s in report["comparison"]["sigmas"]]
    base = report.get("compared_with")
    head = (["row", "params", "tokens/frame", "samples", "wall s", "samples/s"] + [f"loss @{s}" for s in sigmas]
            + list(ATTRIBUTES) + ["mean", "mean 95%", f"mean vs {base} (95%)"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(v) -> str:
        return "" if v is None else (f"{v:,}" if isinstance(v, int) else v if isinstance(v, str) else f"{v:g}")
    for name, row in {**report["rows"], "chance (best constant guess)": {"probe": report["chance"]}}.items():
        loss = row.get("heldout_loss", {})
        samples = row.get("samples")
        if report.get("start") and "steps" in row and report["start"]["samples"]:  # went on from the start's
            samples = f"{report['start']['samples']:,} + {samples:,}"
        values = ([row.get("params"), row.get("tokens_per_frame"), samples, row.get("wall_seconds"),
                   row.get("samples_per_s")] + [loss.get(s) for s in sigmas]
                  + [row["probe"][a] for a in (*ATTRIBUTES, "mean")])
        ci = row.get("probe_ci95", {}).get("mean")
        vs = row.get(f"vs_{base}", {}).get("mean")
        extra = [f"[{ci[0]:g}, {ci[1]:g}]" if ci else "",
                 f"{vs['difference']:+g} [{vs['ci95'][0]:+g}, {vs['ci95'][1]:+g}]" if vs else ""]
        lines.append("| " + " | ".join([name] + [cell(v) for v in values] + extra) + " |")
    return "\n".join(lines)


def write_sheet(path: Path, pictures: dict[str, np.ndarray], count: int, scale: int = 2) -> None:
    """One labelled row per reading (the truth through the VAE first), the first `count` held-out frames each."""
    from PIL import Image, ImageDraw

    from storyworld.contact_sheet import label_font

    gap, font = 4, label_font(12)
    label_w = max(150, gap * 3 + max(int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(name, font=font))
                                     for name in pictures))  # every label whole
    size = next(iter(pictures.values())).shape[1] * scale
    count = min(count, len(next(iter(pictures.values()))))
    sheet = Image.new("RGB", (label_w + count * (size + gap), len(pictures) * (size + gap) + gap), (24, 24, 30))
    draw = ImageDraw.Draw(sheet)
    for r, (name, frames) in enumerate(pictures.items()):
        y = gap + r * (size + gap)
        draw.text((gap, y + size // 2 - 6), name, fill=(235, 235, 235), font=font)
        for c in range(count):
            sheet.paste(Image.fromarray(frames[c]).resize((size, size), Image.NEAREST), (label_w + c * (size + gap), y))
    sheet.save(path, optimize=True)
