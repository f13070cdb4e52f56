"""What every training loop in distill/ shares: how far a run is through a budget of steps and wall time, the
warmup-then-cosine learning rate, noise drawn on the training device, and the device itself (`TrainDevice`:
bf16 where the device computes it natively, attention kernels, the fused optimiser, the run's device generator),
losses kept on the device between reads (`LossMeter`), the throughput a manifest records (`Throughput`) and
the line each call of a resumable run adds to its history (`CallRecord`)."""
from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from runtime.measure.bench import significant

log = logging.getLogger(__name__)


def budget_progress(step: int, steps: int, seconds: float, minutes: float | None) -> float:
    """How far through a run bounded by `steps` and, when given, `minutes`: the larger fraction, at most 1."""
    done = step / max(steps, 1)
    if minutes:
        done = max(done, seconds / (60 * minutes))
    return min(done, 1.0)


def warmup_cosine(peak: float, step: int, warmup: int, done: float) -> float:
    """Linear warmup over `warmup` steps, then a cosine from `peak` to a tenth of it over `done` in [0, 1]."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done)))


def device_noise(shape, gen: torch.Generator, device) -> torch.Tensor:
    """Standard normal noise drawn from `gen` on the generator's own device (the run's device generator: no
    host work), then on `device`: deterministic per device, resumable with the generator's state."""
    return torch.randn(shape, generator=gen, device=gen.device).to(device)


# -- the device a loop trains on --------------------------------------------------------------------------
FLASH_FROM_TOKENS = 256  # a sample this long or longer runs the CPU's flash attention kernel (`TrainDevice.kernels`)


def native_bf16(device: str) -> bool:
    """Whether `device` multiplies bf16 matrices natively: a CUDA device with bf16, or a CPU for which torch's
    oneDNN has bf16 kernels (AVX-512 or AMX). On an AVX2-only CPU bf16 is emulated: on a 2-core AVX2 EPYC a bf16
    matmul ran at 0.9 GFLOP/s against fp32's 85, and a teacher step took 7x as long (docs/training.md)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # torch's own test for oneDNN's bf16 path


def chosen_bf16(device: str, bf16: bool | None) -> bool:
    """Whether a loop on `device` trains in bf16 autocast: None where the device has it natively, else fp32;
    True is refused where bf16 would be emulated (never a silent slowdown); False is fp32."""
    native = native_bf16(device)
    if bf16 and not native:
        raise ValueError(f"{device} has no native bf16 (a CPU needs AVX-512 or AMX for it): leave bf16 unset "
                         "in the recipe to train in fp32 here, or set bf16 = false")
    return native if bf16 is None else bf16


@dataclass(frozen=True)
class TrainDevice:
    """Where a loop trains and how, decided once per run and logged: bf16 autocast where the device has it,
    the attention kernel by sequence length (`kernels`), and the optimiser (fused AdamW; capturable on CUDA,
    so its step count stays on the device)."""

    device: str
    bf16: bool

    @staticmethod
    def of(device: str, bf16: bool | None = None) -> "TrainDevice":
        """`bf16`: None trains in bf16 autocast where the device has it natively (`native_bf16`), else in fp32;
        True asks for bf16 and is refused where it would be emulated; False trains in fp32."""
        kind = torch.device(device).type
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"training runs on cpu or cuda, not {device!r}")
        chosen = TrainDevice(device, chosen_bf16(device, bf16))
        why = "" if chosen.bf16 else " (the recipe's choice: fp32)" if bf16 is False else " (not native here: fp32)"
        log.info("training on %s: bf16 autocast %s%s, attention %s, fused AdamW%s", device, chosen.bf16, why,
                 f"math below {FLASH_FROM_TOKENS} tokens, else flash" if kind == "cpu" else "torch's choice",
                 " (capturable)" if kind == "cuda" else "")
        return chosen

    @property
    def kind(self) -> str:
        return torch.device(self.device).type

    def autocast(self):
        return torch.autocast(device_type=self.kind, dtype=torch.bfloat16, enabled=self.bf16)

    def kernels(self, tokens: int):
        """The attention kernels a loop's forward and backward passes run under, for samples of `tokens` tokens.
        CUDA: torch's choice. The CPU (1 thread, bf16, forward and backward, measured): the math kernel is
        about 1.1x the flash one on single frames (16 or 64 tokens), the flash one 1.2x the math one on a
        patch-2 shot (336 tokens) and 2.1x on a patch-1 shot (1,344)."""
        from torch.nn.attention import SDPBackend, sdpa_kernel

        if self.kind != "cpu":
            return contextlib.nullcontext()
        short = tokens < FLASH_FROM_TOKENS
        return sdpa_kernel([SDPBackend.MATH] if short else [SDPBackend.FLASH_ATTENTION, SDPBackend.MATH])

    def adamw(self, params, *, lr: float, betas: tuple[float, float], weight_decay: float) -> torch.optim.AdamW:
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=True,
                                 capturable=self.kind == "cuda")

    def generator(self, seed: int) -> torch.Generator:
        """The run's generator on the training device: batch indices, noise and dropout are drawn there."""
        return torch.Generator(device=self.device).manual_seed(seed)

    def sync(self) -> None:
        if self.kind == "cuda":
            torch.cuda.synchronize(self.device)

    def name(self) -> str:
        if self.kind == "cuda":
            return torch.cuda.get_device_name(torch.device(self.device))
        import platform

        return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"

    @property
    def dtype(self) -> str:
        """The dtype the loop's matmuls run in (autocast's), the one its peak is measured in."""
        return "bfloat16" if self.bf16 else "float32"

    def peak_tflops(self, seconds: float = 0.5) -> float:
        """The device's matrix-multiply peak in the loop's dtype, measured now
        (`runtime.measure.flops.matmul_peak_gflops`)."""
        from runtime.measure.flops import matmul_peak_gflops

        n = 1024 if self.kind == "cpu" else 8192
        return matmul_peak_gflops("torch", n=n, seconds=seconds, dtype=self.dtype, device=self.device) / 1e3


class CompiledForward:
    """A model's `forward_full` through `torch.compile` (static shapes: a phase's batches all have one shape),
    on the model's own parameters. On this CPU it halves a teacher step after about a minute of compiling
    (docs/training.md); it pays only in runs longer than a few minutes."""

    def __init__(self, model: torch.nn.Module):
        self.forward_full = torch.compile(model.forward_full, dynamic=False)


class LossMeter:
    """Losses summed on the device as the steps go, read back (one host sync) only when asked."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, **losses: torch.Tensor) -> None:
        for key, value in losses.items():
            value = value.detach().float()
            self.sums[key] = self.sums[key] + value if key in self.sums else value.clone()
        self.count += 1

    def read(self) -> dict[str, float]:
        """The mean of each loss since the last read (empty when nothing was added), and a reset."""
        if not self.count:
            return {}
        keys = list(self.sums)
        means = (torch.stack([self.sums[k] for k in keys]) / self.count).tolist()
        self.sums, self.count = {}, 0
        return dict(zip(keys, means))


@dataclass
class Throughput:
    """Samples, tokens and seconds of training steps (clock read at host syncs only), and the rates they give."""

    steps: int = 0
    samples: int = 0
    tokens: int = 0
    flops: float = 0.0
    seconds: float = 0.0

    def add(self, steps: int, samples: int, tokens: int, flops: float, seconds: float) -> None:
        self.steps, self.samples, self.tokens = self.steps + steps, self.samples + samples, self.tokens + tokens
        self.flops, self.seconds = self.flops + flops, self.seconds + seconds

    def report(self, peak_tflops: float | None, peak_dtype: str) -> dict:
        secs = max(self.seconds, 1e-9)
        achieved = self.flops / secs / 1e12
        # significant figures, not fixed decimals: a slow or busy machine's small rates keep their precision
        return {"steps": self.steps, "samples": self.samples, "seconds": round(self.seconds, 3),
                "samples_per_s": significant(self.samples / secs), "tokens_per_s": significant(self.tokens / secs),
                "model_tflops": significant(achieved),
                "peak_tflops": None if peak_tflops is None else significant(peak_tflops), "peak_dtype": peak_dtype,
                "of_peak": None if not peak_tflops else significant(achieved / peak_tflops)}


class StepClock:
    """Times training steps between host syncs: `close()` waits for the device, then books the steps since
    the last close (their samples, tokens and FLOPs) into `rates`; `reopen()` starts the next window after
    work that is not training (logging, checkpoints)."""

    def __init__(self, td: TrainDevice, rates: Throughput, batch: int, tokens_per_sample: int,
                 flops_per_sample: float):
        self.td, self.rates, self.batch = td, rates, batch
        self.tokens, self.flops = tokens_per_sample, flops_per_sample
        self.steps, self.opened = 0, time.perf_counter()

    def tick(self) -> None:
        self.steps += 1

    def close(self) -> None:
        self.td.sync()
        n = self.steps * self.batch
        self.rates.add(self.steps, n, n * self.tokens, n * self.flops, time.perf_counter() - self.opened)
        self.steps = 0

    def reopen(self) -> None:
        self.opened = time.perf_counter()


class CallRecord:
    """This call's line in a resumable run's history (`calls`: a list kept in the run's checkpoint state and
    written to its manifest). A run resumed call after call may move between machines (a CPU without native
    bf16, then one with it, then a GPU); the manifest's top-level `device` and `bf16` are the last call's, and
    each line says where its own steps ran: device, torch, bf16, when the call began, the steps it took
    ([first, last] of the run's step count), their samples and training seconds. `update` books the steps so far
    (call it before each checkpoint and at the end). A checkpoint from before runs kept this history gets one
    line for all its earlier calls, with the device, torch and bf16 of the folder's manifest where that
    manifest was written at the checkpoint's step (else null)."""

    def __init__(self, calls: list[dict], td: TrainDevice, step: int, samples: int, seconds: float, out: Path):
        if not calls and step > 0:
            calls.append(_earlier_calls(Path(out) / "manifest.json", step, samples, seconds))
        self._start = (step, samples, seconds)
        self.entry = {"began": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": td.name(),
                      "torch": torch.__version__, "bf16": td.bf16, "steps": [step, step], "samples": 0,
                      "seconds": 0.0}
        calls.append(self.entry)

    def update(self, step: int, samples: int, seconds: float) -> None:
        step0, samples0, seconds0 = self._start
        self.entry.update(steps=[step0, step], samples=samples - samples0, seconds=round(seconds - seconds0, 1))


def _earlier_calls(manifest: Path, step: int, samples: int, seconds: float) -> dict:
    written = json.loads(manifest.read_text()) if manifest.exists() else {}
    known = written.get("steps") == step
    return {"began": None, **{k: written.get(k) if known else None for k in ("device", "torch", "bf16")},
            "steps": [0, step], "samples": samples, "seconds": round(seconds, 1),
            "note": "every call before the run kept a line per call"}
