"""ShotStream stage 1: the bidirectional next-shot teacher, trained by flow matching on story-world shards.

The model is the runtime's own `CausalDiT` (the tiny preset's shape, so the student's ODE initialisation can
start from these weights) run through `forward_full` with full attention (mask None) over
[6 context latents at t=0 ; the shot's 21 noisy latents], conditioned by `distill.nextshot` exactly as the
runtime conditions the student. Flow matching: x_t = (1 - sigma) x0 + sigma eps, the model predicts
v = eps - x0, t drawn uniformly from the shifted 1000-step table, loss = w(t) * MSE on the shot's frames with
the official bell weighting w(t) = exp(-2 ((t - 500) / 1000)^2), normalised to mean 1 over the table.
10% caption dropout (all the sample's caption embeddings zeroed) and 10% context dropout (zero context
latents and flags: shot 0's look). EMA weights are what is saved and evaluated.

A recipe runs phases in order, each on its own data kind (see `distill.shards`):
- `frames`: single latent frames, each at the first position of a shot with its shot's caption (image-first:
  places, framings and times of day come cheaply from many captions);
- `shots`: whole next-shot sequences, context picked from the story's earlier shots by the runtime's rule.
Checkpoints (model, EMA, optimiser, data position, RNG) are written every `checkpoint_every` steps and on
exit; a run given the same folder resumes where it stopped. Deterministic by seed on one device and thread
count. bf16 autocast where the device has it natively (CUDA; a CPU with AVX-512 or AMX), else fp32.

Long module: the teacher's recipe types, its resident samples and its training loop with checkpoints and
snapshots are one stage's; `train` (about 130 lines) is the part to split next, into phase setup and the step loop.
"""
from __future__ import annotations

import contextlib
import json
import logging
import time
import tomllib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from distill.nextshot import FrameText, NextShot
from distill.resident import CONTEXT_DROPOUT, caption_embedder, resident_pool
from distill.runs import (CallRecord, CompiledForward, LossMeter, StepClock, Throughput, TrainDevice,
                         budget_progress, warmup_cosine)
from runtime.config import ModelConfig, get_preset
from runtime.dit import timestep_frequencies
from runtime.progress import progress
from runtime.scheduler import NUM_TRAIN_STEPS, shifted_sigmas

log = logging.getLogger(__name__)
CAPTION_DROPOUT = 0.1


@dataclass(frozen=True)
class Phase:
    name: str
    data: str  # "frames" or "shots"
    steps: int
    batch: int
    lr: float
    warmup: int = 100
    minutes: float | None = None  # wall-time budget: the phase ends (its learning rate annealed) at steps or here

    def progress(self, step: int, seconds: float) -> float:
        """How far through the phase: the larger of steps done / steps and seconds spent / its budget."""
        return budget_progress(step, self.steps, seconds, self.minutes)


@dataclass(frozen=True)
class StreamRecipe:
    """Frames rendered while training runs (`distill.producer`), for phases whose data is "stream"."""

    seed: int
    capacity: int  # frames resident on the device (a ring)
    refresh_every: int  # steps between chunks written over the oldest frames; 0: each chunk as soon as it is
    # made, so the device never waits for the workers (what a step sees then depends on their speed)
    stories_per_chunk: int = 50
    frames_per_shot: int = 2
    workers: int = 0  # rendering processes; 0: every core but one
    ahead: int | None = None  # chunks in flight (default: two per worker)
    seeded: bool = False  # the ring starts with the data set's frames shards (rendered before training, same
    # seed) and the workers render the stories after them: training starts at once, every streamed frame new

    def __post_init__(self):
        if self.capacity < 1 or self.refresh_every < 0 or self.stories_per_chunk < 1 or self.workers < 0:
            raise ValueError("[teacher.stream]: capacity and stories_per_chunk must be positive, "
                             "refresh_every and workers at least 0")

    def producer(self, device: str, first_story: int = 0):
        import os

        from distill.producer import FrameProducer

        workers = self.workers or max(1, (os.cpu_count() or 2) - 1)
        return FrameProducer(seed=self.seed, stories_per_chunk=self.stories_per_chunk,
                             frames_per_shot=self.frames_per_shot, workers=workers, ahead=self.ahead, device=device,
                             first_story=first_story)


@dataclass(frozen=True)
class TeacherRecipe:
    preset: str = "tiny"
    seed: int = 0
    shift: float | None = None  # None: the preset's
    ema: float = 0.999
    weight_decay: float = 0.01
    clip: float = 1.0
    checkpoint_every: int = 500
    snapshot_every: int = 0  # EMA weights kept every N steps in snapshots/ (for the eval over training time); 0: none
    log_every: int = 10  # steps between loss read-backs (each one a host sync) and rows of loss.jsonl
    bf16: bool | None = None  # bf16 autocast; None: where the device has it natively, else fp32 (`TrainDevice.of`)
    measure_peak: bool = True  # measure the device's matmul peak in the loop's dtype (about a second) for the manifest
    compile: bool = False  # the forward pass through torch.compile (a minute of warm-up per phase on the CPU)
    phases: tuple[Phase, ...] = field(default_factory=tuple)
    stream: StreamRecipe | None = None  # what "stream" phases draw from

    @staticmethod
    def from_toml(path: str | Path) -> "TeacherRecipe":
        data = tomllib.loads(Path(path).read_text())["teacher"]
        phases = tuple(Phase(**p) for p in data.pop("phase", []))
        stream = StreamRecipe(**data.pop("stream")) if "stream" in data else None
        if not phases:
            raise ValueError(f"{path}: [teacher] needs at least one [[teacher.phase]]")
        for p in phases:
            if p.data not in ("frames", "shots", "stream"):
                raise ValueError(f"{path}: phase {p.name!r} has data {p.data!r}; use 'frames', 'shots' or 'stream'")
            if p.data == "stream" and stream is None:
                raise ValueError(f"{path}: phase {p.name!r} streams its data: add a [teacher.stream] table")
        return TeacherRecipe(phases=phases, stream=stream, **data)

    def config(self) -> ModelConfig:
        return get_preset(self.preset)

    def shift_value(self) -> float:
        return self.config().shot.shift if self.shift is None else self.shift


# -- captions ------------------------------------------------------------------------------------------------
class CaptionBank:
    """Every distinct prompt of a data set embedded once by the text encoder (fp16 rows, looked up by id)."""

    def __init__(self, prompts: np.ndarray, text_encoder, tokenizer, batch: int = 256, device: str = "cpu"):
        unique, self.ids = np.unique(prompts, return_inverse=True)
        self.by_prompt = {p: i for i, p in enumerate(unique)}
        rows = []
        embed = caption_embedder(text_encoder, tokenizer, device)
        with progress(len(unique), "embed captions", unit="caption") as bar:
            for i in range(0, len(unique), batch):
                rows.append(embed(unique[i:i + batch]).cpu())
                bar.update(len(unique[i:i + batch]))
        self.table = torch.cat(rows)  # (n_prompts, L, Dt)

    def to(self, device) -> "CaptionBank":
        """Keep the table on `device`: batches then gather their text there (no host copy of per-frame text)."""
        self.table = self.table.to(device)
        return self


# -- samples ---------------------------------------------------------------------------------------------------
class FrameSamples:
    """Single latent frames with their shot's caption."""

    def __init__(self, data: dict, bank: CaptionBank):
        self.latents, self.bank = torch.from_numpy(data["latents"]), bank

    def __len__(self) -> int:
        return len(self.latents)

    def batch(self, idx: np.ndarray, ns: NextShot, gen: torch.Generator, device):
        x0 = self.latents[idx].to(device).float().unsqueeze(1)  # (B, 1, C, h, w)
        text = FrameText.of(self.bank.table, self.bank.ids[idx][:, None]).to(device)  # one caption per sample
        lay = ns.layout([])
        cos, sin = ns.rope(lay.flags)
        first = ns.n_ctx * ns.cfg.tokens_per_frame
        cos, sin = cos[first:first + ns.cfg.tokens_per_frame], sin[first:first + ns.cfg.tokens_per_frame]
        return x0, None, text, cos, sin


class ShotSamples:
    """[context ; shot] samples: shot k of a story with context from its shots 0..k-1 by the runtime's rule."""

    def __init__(self, data: dict, bank: CaptionBank, ns: NextShot):
        self.latents = torch.from_numpy(data["latents"])  # (N, 21, C, h, w) fp16
        self.context = torch.from_numpy(data["context"])  # (N, n_needed, C, h, w) fp16
        self.needed = [int(f) for f in data["context_frames"]]
        self.bank, self.ns = bank, ns
        self.row = {(int(s), int(k)): i for i, (s, k) in enumerate(zip(data["story"], data["shot"]))}
        self.story, self.shot = data["story"], data["shot"]
        self.length = ns.cfg.frames_per_shot
        self._layouts: dict = {}

    def __len__(self) -> int:
        return len(self.latents)

    def batch(self, idx: np.ndarray, ns: NextShot, gen: torch.Generator, device):
        drops = torch.rand(len(idx), generator=gen) < CONTEXT_DROPOUT
        layouts, contexts, prompt_ids = [], [], []
        for i, drop in zip(idx, drops.tolist()):
            s, k = int(self.story[i]), int(self.shot[i])
            lay = self.layout(k, drop)
            picked = None
            if lay.plan:
                picked = self.context[[self.row[(s, j)] for j, _ in lay.plan], [self.needed.index(f) for _, f in lay.plan]]
            contexts.append(ns.context(picked, lay, self.latents[i]))
            prompt_ids.append(self.frame_prompts(s, k, lay))
            layouts.append(lay)
        x0 = self.latents[idx].to(device).float()
        cos, sin = ns.rope_batch(layouts)
        text = FrameText.of(self.bank.table, prompt_ids).to(device)
        return x0, torch.stack(contexts).to(device).float(), text, cos, sin

    def frame_prompts(self, story: int, k: int, layout) -> list[int]:
        """The bank row of the caption each frame of story `story`'s shot k reads under `layout`."""
        story_prompts = [self.bank.ids[self.row[(story, j)]] for j in range(k + 1)]
        return [story_prompts[c] for c in layout.captions]

    def layout(self, k: int, drop: bool):
        """The layout of a story's shot k (all earlier shots whole), computed once per (k, dropped)."""
        key = (k, drop)
        if key not in self._layouts:
            self._layouts[key] = self.ns.layout([self.length] * k, drop_context=drop)
        return self._layouts[key]


# -- the loop --------------------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def sigma_table(shift: float) -> torch.Tensor:
    """The shifted 1000-step sigma table, float32 (computed once per shift, read every step)."""
    return torch.from_numpy(shifted_sigmas(shift)).float()


@lru_cache(maxsize=4)
def loss_weights(shift: float) -> torch.Tensor:
    """Official bell weighting over the 1000-step table, normalised to mean 1."""
    t = shifted_sigmas(shift) * NUM_TRAIN_STEPS
    w = np.exp(-2.0 * ((t - NUM_TRAIN_STEPS / 2) / NUM_TRAIN_STEPS) ** 2)
    return torch.from_numpy(w / w.mean()).float()


@lru_cache(maxsize=8)
def frequency_table(shift: float, freq_dim: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Timestep frequencies of every entry of the shifted table (1000, freq_dim) and of t = 0 (freq_dim,), on
    `device`: a batch's t_freq is a gather, no host work per step."""
    t = (sigma_table(shift) * NUM_TRAIN_STEPS).double().numpy()
    table = torch.from_numpy(timestep_frequencies(t, freq_dim)).to(device)
    return table, torch.from_numpy(timestep_frequencies(np.zeros(1), freq_dim)[0]).to(device)


@lru_cache(maxsize=8)
def _on(table: torch.Tensor, device: str) -> torch.Tensor:
    return table.to(device)


def flow_matching_loss(model, ns: NextShot, x0, context, text, cos, sin, gen: torch.Generator, shift: float,
                       device, autocast: bool) -> torch.Tensor:
    """The weighted flow-matching loss of one batch; the timestep index, noise and caption dropout are drawn
    from `gen` on its own device, and every table the step reads already lives on `device`."""
    b, dev = x0.shape[0], str(torch.device(device))
    i = torch.randint(0, NUM_TRAIN_STEPS, (b,), generator=gen, device=gen.device).to(dev)
    noise = torch.randn(x0.shape, generator=gen, device=gen.device).to(dev)
    keep = (torch.rand(b, generator=gen, device=gen.device) >= CAPTION_DROPOUT).to(dev)
    x0 = x0.to(dev)
    sigma = _on(sigma_table(shift), dev)[i].view(b, 1, 1, 1, 1)
    x_t = (1 - sigma) * x0 + sigma * noise
    text = text.to(dev).dropped(keep)
    frames = x0.shape[1] + (0 if context is None else context.shape[1])
    freq, zero = frequency_table(shift, ns.cfg.dit.freq_dim, dev)
    shot = min(frames, ns.n_target)  # the shot's frames read the sample's t, context frames t = 0
    t_freq = torch.cat([zero.expand(b, frames - shot, -1), freq[i].unsqueeze(1).expand(-1, shot, -1)], 1)
    x = x_t if context is None else torch.cat([context.to(dev), x_t], 1)
    cos, sin = cos.to(dev), sin.to(dev)
    with torch.autocast(device_type=torch.device(dev).type, dtype=torch.bfloat16, enabled=autocast):
        v = model.forward_full(x, t_freq, text.table, cos, sin, None, text.index)
    v = v[:, -x0.shape[1]:].float()
    per_sample = F.mse_loss(v, noise - x0, reduction="none").mean(dim=(1, 2, 3, 4))
    return (per_sample * _on(loss_weights(shift), dev)[i]).mean()


@dataclass
class State:
    phase: int = 0
    step: int = 0  # within the phase
    total: int = 0
    seconds: float = 0.0
    samples: int = 0
    phase_began: float = 0.0  # `seconds` when the current phase began
    init: str | None = None  # the weights the run started from (None: its seeded initialisation)
    init_sha256: str | None = None
    lr: float = 0.0  # the last step's
    stream_chunks: int = 0  # chunks a stream phase's pool has taken (a resumed run takes them again)
    throughput: dict = field(default_factory=dict)  # phase name -> Throughput fields, over every call
    calls: list = field(default_factory=list)  # a line per call (`CallRecord`): where and when each ran


def train(recipe: TeacherRecipe, data: dict[str, dict | Callable[[], dict]], out: str | Path, *, device: str = "cpu",
          text_weights: str | Path | None = None, init: str | Path | None = None,
          max_steps: int | None = None, max_seconds: float | None = None) -> dict:
    """Run (or resume) every phase of `recipe` on `data` ({"frames": shards, "shots": shards}, or a function
    loading them when a phase first needs them); returns the manifest entry written beside the EMA weights.

    The data of a phase is resident on `device` and every batch, noise and dropout is drawn there from the
    run's device generator; losses stay on the device and are read back every `log_every` steps.
    `max_steps` / `max_seconds` end this call early (a checkpoint, and the EMA weights so far with
    `"complete": false`); calling again with the same folder goes on from there."""
    from runtime.dit import init_weights
    from runtime.model import build_dit, load_bundle

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = recipe.config()
    td = TrainDevice.of(device, recipe.bf16)
    torch.manual_seed(recipe.seed)
    bundle = load_bundle(cfg.shares or recipe.preset, text_weights)  # the text side (a DiT-only variant: its sharer's)
    ns = NextShot(cfg)
    pools: dict = {}

    def pool_for(kind: str):
        if kind == "stream":
            return stream_pool()
        if kind not in data:
            raise ValueError(f"a phase needs {kind!r} shards, which were not given")
        if kind not in pools:
            d = data[kind]() if callable(data[kind]) else data[kind]
            bank = CaptionBank(d["prompt"], bundle.text_encoder.float().eval(), bundle.tokenizer, device=device)
            pools[kind] = resident_pool(kind, d, bank, ns, device)
        return pools[kind]
    def stream_pool():
        if "stream" not in pools:
            from distill.producer import StreamedFrames

            stream, seed, first = recipe.stream, None, 0
            if stream.seeded:
                seed = _seed_frames(data, stream)
                first = seed["index"]["stories"]
            producer = exits.enter_context(stream.producer(device, first_story=first))
            embed = caption_embedder(bundle.text_encoder.float(), bundle.tokenizer, device)
            pool = pools["stream"] = StreamedFrames(producer, stream.capacity, embed, ns, device)
            if seed is not None:
                pool.seed(seed)
            while pool.chunks_taken < state.stream_chunks:  # a resumed run: the same chunks, in order, again
                pool.refresh()
            if stream.refresh_every:
                pool.fill()
            elif not len(pool):  # as made: training starts with the first chunk
                pool.refresh()
            state.stream_chunks = pool.chunks_taken
        return pools["stream"]
    exits = contextlib.ExitStack()
    model = init_weights(build_dit(cfg), recipe.seed).to(device)
    if init is not None:
        model.load_state_dict(_read_dit(init))
    ema = build_dit(cfg).to(device)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    state, resumed_opt = State(**_init_fields(init)), None
    ckpt_path = out / "checkpoint.pt"
    gen = td.generator(recipe.seed)
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        ema.load_state_dict(ckpt["ema"])
        state = State(**{**ckpt["state"], **resumed_start(ckpt["state"], state, init, ckpt_path)})
        gen.set_state(ckpt["generator"])
        resumed_opt = ckpt["opt"] if ckpt["opt_phase"] == state.phase else None
        log.info("resuming from %s at phase %d step %d", ckpt_path, state.phase, state.step)
    record = CallRecord(state.calls, td, state.total, state.samples, state.seconds, out)
    peak = td.peak_tflops() if recipe.measure_peak else None
    forward = CompiledForward(model) if recipe.compile else model  # what the loss calls: the same parameters
    log_path = out / "loss.jsonl"
    call_started, call_steps = time.perf_counter(), 0

    def out_of_budget() -> bool:
        return ((max_steps is not None and call_steps >= max_steps)
                or (max_seconds is not None and time.perf_counter() - call_started >= max_seconds))

    def finish(complete: bool) -> dict:
        streamed = None
        if "stream" in pools:
            pool = pools["stream"]
            streamed = {"chunks": pool.chunks_taken, "frames": pool.rows_taken,
                        "stories": pool.chunks_taken * recipe.stream.stories_per_chunk,
                        "seeded_frames": pool.seeded, "distinct_frames": pool.seeded + pool.rows_taken,
                        "capacity": recipe.stream.capacity, "refresh_every": recipe.stream.refresh_every,
                        "waited_seconds": round(pool.producer.waited_seconds, 1)}
        record.update(state.total, state.samples, state.seconds)
        return _finish(recipe, ema, out, state, td, peak, complete, streamed)

    # captions embedded as the loop goes (a stream's refreshes, a resumed run's replay) always under one kernel
    with exits, td.kernels(cfg.text.text_len):
        while state.phase < len(recipe.phases):
            phase = recipe.phases[state.phase]
            pool = pool_for(phase.data)
            opt = td.adamw(model.parameters(), lr=phase.lr, betas=(0.9, 0.99), weight_decay=recipe.weight_decay)
            if resumed_opt is not None:
                opt.load_state_dict(resumed_opt)
                resumed_opt = None
            if state.step == 0:
                state.phase_began = state.seconds
            rates = Throughput(**state.throughput.get(phase.name, {}))
            window = StepClock(td, rates, phase.batch, pool.tokens_per_sample,
                               3.0 * pool.forward_flops_per_sample())  # forward and backward
            losses = LossMeter()
            started = time.perf_counter() - state.seconds

            def checkpoint(opt) -> None:
                window.close()
                state.throughput[phase.name] = asdict(rates)
                record.update(state.total, state.samples, state.seconds)
                _checkpoint(ckpt_path, model, ema, opt, state, gen)
                window.reopen()
            with (td.kernels(pool.tokens_per_sample),  # by the phase's sample length
                  progress(phase.steps, f"teacher {phase.name}", unit="step") as bar, open(log_path, "a") as logf):
                bar.update(state.step)
                while phase.progress(state.step, state.seconds - state.phase_began) < 1.0:
                    if out_of_budget():
                        _log_losses(logf, bar, losses, window, phase, state)
                        checkpoint(opt)
                        return finish(complete=False)
                    every = recipe.stream.refresh_every if phase.data == "stream" else None
                    if every and state.step and state.step % every == 0:
                        window.close()
                        pool.refresh()  # waits when the producers are behind: off the clock, counted apart
                        state.stream_chunks = pool.chunks_taken
                        window.reopen()
                    elif every == 0:  # the chunks made since the last step, on the clock (no wait, no extra sync)
                        pool.refresh_ready()
                        state.stream_chunks = pool.chunks_taken
                    _step(model, forward, ema, opt, pool, ns, gen, recipe, phase, state, td, losses)
                    window.tick()
                    call_steps += 1
                    state.seconds = time.perf_counter() - started
                    bar.update(1)
                    if state.step % recipe.log_every == 0 or state.step == phase.steps:
                        _log_losses(logf, bar, losses, window, phase, state)
                    if state.step % recipe.checkpoint_every == 0:
                        checkpoint(opt)
                    if recipe.snapshot_every and state.total % recipe.snapshot_every == 0:
                        window.close()
                        _snapshot(recipe, ema, out / "snapshots", state)
                        window.reopen()
                _log_losses(logf, bar, losses, window, phase, state)
            state.phase, state.step = state.phase + 1, 0
            checkpoint(None)
    return finish(complete=True)


def _seed_frames(data: dict, stream: StreamRecipe) -> dict:
    """The frames shards a seeded stream starts from: the same seed as the stream's, train split."""
    if "frames" not in data:
        raise ValueError("a seeded stream starts from the frames shards, which were not given")
    seed = data["frames"]() if callable(data["frames"]) else data["frames"]
    index = seed["index"]
    if index["seed"] != stream.seed or index.get("split", "train") != "train":
        raise ValueError(f"a seeded stream renders the stories after its frames shards, so it needs their seed: "
                         f"the shards have seed {index['seed']} ({index.get('split', 'train')} split), "
                         f"[teacher.stream] seed = {stream.seed}")
    return seed


def _step(model, forward, ema, opt, pool, ns: NextShot, gen: torch.Generator, recipe: TeacherRecipe, phase: Phase,
          state: State, td: TrainDevice, losses: LossMeter) -> None:
    """One optimiser step on a batch drawn on the device (`forward`: the model, or its compiled forward); the
    loss is kept there (`losses`)."""
    lr = _lr(phase, state.step, phase.progress(state.step, state.seconds - state.phase_began))
    for g in opt.param_groups:
        g["lr"] = lr
    x0, context, text, cos, sin = pool.draw(phase.batch, gen)
    loss = flow_matching_loss(forward, ns, x0, context, text, cos, sin, gen, recipe.shift_value(), td.device, td.bf16)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.clip, foreach=True)
    opt.step()
    _ema_update(ema, model, min(recipe.ema, (1 + state.total) / (10 + state.total)))
    losses.add(loss=loss)
    state.step, state.total, state.samples = state.step + 1, state.total + 1, state.samples + phase.batch
    state.lr = lr


def _log_losses(logf, bar, losses: LossMeter, window: StepClock, phase: Phase, state: State) -> None:
    """Read the losses kept since the last read (one host sync) and write their mean as one row of the log."""
    means = losses.read()
    window.close()
    if means:
        logf.write(json.dumps({"phase": phase.name, "step": state.step, "total": state.total,
                               "loss": round(means["loss"], 5), "lr": state.lr,
                               "seconds": round(state.seconds, 1), "samples": state.samples}) + "\n")
        logf.flush()
        bar.set_postfix(loss=f"{means['loss']:.4f}")
    window.reopen()


def _lr(phase: Phase, step: int, done: float) -> float:
    """Linear warmup over `warmup` steps, then a cosine to a tenth of the peak over the phase's progress."""
    if not phase.minutes and step >= phase.warmup:  # bounded by steps alone: the cosine spans the steps after warmup
        done = (step - phase.warmup) / max(1, phase.steps - phase.warmup)
    return warmup_cosine(phase.lr, step, phase.warmup, done)


@torch.no_grad()
def _ema_update(ema, model, decay: float) -> None:
    torch._foreach_lerp_(list(ema.parameters()), [p.detach() for p in model.parameters()], 1 - decay)


def _checkpoint(path: Path, model, ema, opt, state: State, gen: torch.Generator) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": None if opt is None else opt.state_dict(),
                "opt_phase": state.phase if opt is not None else None, "state": asdict(state),
                "generator": gen.get_state()}, tmp)
    tmp.replace(path)


def _snapshot(recipe: TeacherRecipe, ema, folder: Path, state: State) -> None:
    """EMA weights at this step, with the manifest the sampler reads (`<name>.json` beside them)."""
    folder.mkdir(exist_ok=True)
    path = folder / f"teacher-{state.total:06d}.safetensors"
    _save_ema(ema, path)
    path.with_suffix(".json").write_text(json.dumps({"preset": recipe.preset, "shift": recipe.shift_value(),
                                                     "steps": state.total, "seconds": round(state.seconds, 1),
                                                     "phase": recipe.phases[state.phase].name}) + "\n")


def _init_fields(path: str | Path | None) -> dict:
    """A manifest's record of the weights a run started from, by path and sha256 (None for both when it started
    from its seeded initialisation)."""
    from runtime.weights import sha256_file

    return {"init": None if path is None else str(path), "init_sha256": None if path is None else sha256_file(path)}


def resumed_start(saved: dict, fresh, init: str | Path | None, ckpt_path: Path) -> dict:
    """The start a resumed run records (`_init_fields`): its checkpoint's (`saved`), where a different `init` is
    refused; this call's (`fresh`, the state `init` gave a new run) for a checkpoint from before runs recorded
    theirs."""
    given = {"init": fresh.init, "init_sha256": fresh.init_sha256}
    if "init_sha256" not in saved:
        return given
    if init is not None and given["init_sha256"] != saved["init_sha256"]:
        raise ValueError(f"{ckpt_path} is a run started from {saved['init'] or 'its default initialisation'}, "
                         f"not from {init}: resume it without --init, or use another folder")
    return {"init": saved["init"], "init_sha256": saved["init_sha256"]}


def _save_ema(ema, path: Path) -> str:
    """The EMA weights as fp16 safetensors with the runtime's DiT key prefix (a CPU copy: training goes on);
    returns the file's sha256."""
    import copy

    from runtime.weights import DIT_PREFIX, save_module

    return save_module(copy.deepcopy(ema).cpu(), path, prefix=DIT_PREFIX, dtype=torch.float16)


def _read_dit(path: str | Path) -> dict:
    from runtime.weights import DIT_PREFIX, read_state_dict

    sd = read_state_dict(path)
    return {k[len(DIT_PREFIX):] if k.startswith(DIT_PREFIX) else k: v.float() for k, v in sd.items()}


def _finish(recipe: TeacherRecipe, ema, out: Path, state: State, td: TrainDevice, peak_tflops: float | None,
            complete: bool, streamed: dict | None = None) -> dict:
    path = out / "teacher.safetensors"
    digest = _save_ema(ema, path)
    entry = {"file": path.name, "sha256": digest, "bytes": path.stat().st_size, "preset": recipe.preset,
             "shift": recipe.shift_value(), "seed": recipe.seed, "steps": state.total, "samples": state.samples,
             "phases": [asdict(p) for p in recipe.phases], "wall_seconds": round(state.seconds, 1),
             "device": td.name(), "torch": torch.__version__, "bf16": td.bf16, "complete": complete,
             "phase_reached": state.phase, "step_in_phase": state.step,
             "throughput": {name: Throughput(**fields).report(peak_tflops, td.dtype)
                            for name, fields in state.throughput.items()},
             "stream": streamed, "init": state.init, "init_sha256": state.init_sha256, "calls": state.calls}
    (out / "manifest.json").write_text(json.dumps(entry, indent=2) + "\n")
    return entry
