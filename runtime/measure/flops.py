"""FLOP counts of one shot's DiT work, and the matmul peak of this machine, so a benchmark can say how far
from the hardware a loop runs.

Counting rule: 2*m*k*n for every (m x k) @ (k x n) product, attention's Q K^T and A V included (summed over
heads: heads * head_dim = dim); elementwise work (norms, modulation, RoPE, softmax, activations) is ignored.
The shot is counted as the runtime does it (the official schedule, spec section 5):
- text: per distinct caption, the text-embedding MLP on text_len tokens and every layer's cross K and V
  projections, once per shot: the new shot's caption plus `context_captions` read by the context frames;
- context fill: the n_ctx context frames at t=0 attending among themselves (no head: its output is unused);
- chunk b (0..chunks-1): 4 denoising calls and 1 clean pass, each over its own frames, with self-attention
  over [n_ctx + fc*b + fc frames] of keys, cross-attention over text_len keys, and the head. The runtime
  runs no clean pass for the last chunk (nothing reads its K/V); `official=True` counts the official
  schedule instead (every chunk's clean pass), the work of `runtime.measure.reference_loop`.
"""
from __future__ import annotations

import math
import os
import time
from collections import Counter
from typing import Callable

import numpy as np

from runtime.config import ModelConfig

OPS = ("text_embed", "cross_kv", "patch_embed", "time", "self_qkvo", "self_attention", "cross_qo",
       "cross_attention", "ffn", "head")
PHASES = ("text", "context_fill", "denoise", "clean_pass")


def _mm(m: int, k: int, n: int) -> int:
    return 2 * m * k * n


def _text_flops(cfg: ModelConfig) -> dict[str, int]:
    """One caption: the text-embedding MLP and every layer's cross K and V projections."""
    d, length = cfg.dit, cfg.text.text_len
    return {"text_embed": _mm(length, d.text_dim, d.dim) + _mm(length, d.dim, d.dim),
            "cross_kv": d.num_layers * 2 * _mm(length, d.dim, d.dim)}


def _call_flops(cfg: ModelConfig, frames: int, key_frames: int, head: bool) -> dict[str, int]:
    """One DiT call on `frames` frames whose self-attention reads `key_frames` frames of keys (its own included)."""
    d, layers = cfg.dit, cfg.dit.num_layers
    t, keys, patch = frames * cfg.tokens_per_frame, key_frames * cfg.tokens_per_frame, math.prod(d.patch)
    return {
        "patch_embed": _mm(t, d.in_channels * patch, d.dim),
        "time": _mm(frames, d.freq_dim, d.dim) + _mm(frames, d.dim, d.dim) + _mm(frames, d.dim, 6 * d.dim),
        "self_qkvo": layers * 4 * _mm(t, d.dim, d.dim),
        "self_attention": layers * (_mm(t, d.dim, keys) + _mm(t, keys, d.dim)),
        "cross_qo": layers * 2 * _mm(t, d.dim, d.dim),
        "cross_attention": layers * (_mm(t, d.dim, cfg.text.text_len) + _mm(t, cfg.text.text_len, d.dim)),
        "ffn": layers * (_mm(t, d.dim, d.ffn_dim) + _mm(t, d.ffn_dim, d.dim)),
        "head": _mm(t, d.dim, d.out_channels * patch) if head else 0,
    }


def _shot_table(cfg: ModelConfig, chunks: int | None, context_captions: int, official: bool = False) -> Counter:
    """(phase, op) -> FLOPs of one shot, on the runtime's schedule or (`official`) the official one."""
    s = cfg.shot
    chunks = s.chunks_per_shot if chunks is None else chunks
    if not 1 <= chunks <= s.chunks_per_shot:
        raise ValueError(f"chunks must be in [1, {s.chunks_per_shot}], got {chunks}")
    if not 0 <= context_captions <= s.context_frames:
        raise ValueError(f"context_captions must be in [0, {s.context_frames}], got {context_captions}")
    table: Counter = Counter()

    def add(phase: str, flops: dict[str, int], times: int = 1) -> None:
        for op, n in flops.items():
            table[phase, op] += times * n

    fc, n_ctx = s.latent_frames_per_chunk, s.context_frames
    add("text", _text_flops(cfg), 1 + context_captions)
    add("context_fill", _call_flops(cfg, n_ctx, n_ctx, head=False))
    for b in range(chunks):
        keys = n_ctx + fc * (b + 1)
        add("denoise", _call_flops(cfg, fc, keys, head=True), s.num_steps)
        if official:
            add("clean_pass", _call_flops(cfg, fc, keys, head=True))
        elif b + 1 < chunks:  # the last chunk's K/V are never read: the runtime does not clean it
            add("clean_pass", _call_flops(cfg, fc, keys, head=True))
    return table


def dit_loop_flops_breakdown(cfg: ModelConfig, chunks: int | None = None, context_captions: int = 1,
                             by: str = "op", official: bool = False) -> dict[str, int]:
    """FLOPs of one shot split by operation (`by="op"`, keys OPS) or by phase (`by="phase"`, keys PHASES).

    `chunks`: the shot's chunks (default: a full shot). `context_captions`: distinct captions the context
    frames read, besides the new shot's own. Default 1, the common case: at shot 0 the context reads the
    shot's own caption, at shot 1 shot 0's; from shot 2 on it can be up to min(k, n_ctx)."""
    if by not in ("op", "phase"):
        raise ValueError(f"by must be 'op' or 'phase', got {by!r}")
    table = _shot_table(cfg, chunks, context_captions, official)
    keys, pick = (OPS, 1) if by == "op" else (PHASES, 0)
    return {key: sum(n for k, n in table.items() if k[pick] == key) for key in keys}


def dit_call_flops(cfg: ModelConfig, frames: int, key_frames: int | None = None, captions: int = 0) -> int:
    """Multiply-add FLOPs of one forward DiT call over `frames` frames whose self-attention reads `key_frames`
    frames of keys (default: the call's own, full attention), head included, plus `captions` captions'
    text-embedding MLP and cross K/V projections (training's `forward_full` projects each caption it reads)."""
    key_frames = frames if key_frames is None else key_frames
    return sum(_call_flops(cfg, frames, key_frames, head=True).values()) + captions * sum(_text_flops(cfg).values())


def dit_loop_flops(cfg: ModelConfig, chunks: int | None = None, context_captions: int = 1,
                   official: bool = False) -> int:
    """Multiply-add FLOPs of one shot's DiT work (see the module docstring for what is counted)."""
    return sum(_shot_table(cfg, chunks, context_captions, official).values())


# -- the machine's matmul peak ----------------------------------------------------------------------
def _torch_matmul(n: int, rng: np.random.Generator, dtype: str = "float32",
                  device: str = "cpu") -> Callable[[], object]:
    import torch

    a, b = (torch.from_numpy(rng.standard_normal((n, n), dtype=np.float32)).to(device, getattr(torch, dtype))
            for _ in range(2))
    out = torch.empty(n, n, dtype=a.dtype, device=a.device)
    return lambda: torch.mm(a, b, out=out)


class _OrtMatmul:
    """A one-node MatMul model built in memory, run with IOBinding on preallocated numpy buffers (held
    here: the binding keeps only their addresses)."""

    def __init__(self, n: int, rng: np.random.Generator, threads: int):
        import onnxruntime as ort
        from onnx import TensorProto, helper

        info = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n]) for name in ("a", "b", "y")]
        graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "matmul", info[:2], info[2:])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8  # readable by every onnxruntime this project supports
        from runtime.backends.ort_backend import shared_pool

        shared_pool(ort, threads)  # the runtime's own pool: the peak is measured on the threads the graphs get
        opts = ort.SessionOptions()
        opts.use_per_session_threads = False
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        self.buffers = {name: rng.standard_normal((n, n), dtype=np.float32) for name in ("a", "b")}
        self.buffers["y"] = np.empty((n, n), np.float32)
        self.io = self.session.io_binding()
        for name, buf in self.buffers.items():
            bind = self.io.bind_output if name == "y" else self.io.bind_input
            bind(name, "cpu", 0, np.float32, [n, n], buf.ctypes.data)

    def __call__(self) -> None:
        self.session.run_with_iobinding(self.io)


def _best_rate(run: Callable[[], object], flops: int, seconds: float,
               sync: Callable[[], object] = lambda: None) -> float:
    """Best GFLOP/s over timed repeats of `run` within `seconds` (at least 3), after a warm-up; a repeat
    calls `run` often enough to last about a millisecond, so the timer's own cost does not count. `sync`
    waits for queued work (an asynchronous device) before the clock is read."""
    started = time.perf_counter()
    for _ in range(3):
        run()
    sync()
    reps = max(1, int(1e-3 / max((time.perf_counter() - started) / 3, 1e-9)))
    best, repeats, deadline = math.inf, 0, time.perf_counter() + seconds
    while repeats < 3 or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        for _ in range(reps):
            run()
        sync()
        best, repeats = min(best, (time.perf_counter() - t0) / reps), repeats + 1
    return flops / best / 1e9


def matmul_peak_gflops(backend: str, n: int = 1024, seconds: float = 1.0, threads: int | None = None, *,
                       dtype: str = "float32", device: str = "cpu") -> float:
    """Best GFLOP/s of (n x n) @ (n x n) measured now: `backend` "torch" (torch.mm at torch's current
    thread count, or `threads` for the measurement; `dtype` "float32" or "bfloat16" on `device`, "cpu" or a
    CUDA device) or "onnxruntime" (fp32 on the CPU provider, `threads` or os.cpu_count() intra-op threads,
    sequential)."""
    if n < 1 or seconds <= 0:
        raise ValueError(f"n must be >= 1 and seconds > 0, got n={n}, seconds={seconds}")
    rng = np.random.default_rng(0)
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {dtype!r}")
    if backend == "onnxruntime":
        if (dtype, device) != ("float32", "cpu"):
            raise ValueError(f"onnxruntime's peak is fp32 on the CPU, not {dtype} on {device}")
        return _best_rate(_OrtMatmul(n, rng, threads or os.cpu_count() or 1), 2 * n**3, seconds)
    if backend != "torch":
        raise ValueError(f"backend must be 'torch' or 'onnxruntime', got {backend!r}")
    import torch

    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    before = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(threads)
        return _best_rate(_torch_matmul(n, rng, dtype, device), 2 * n**3, seconds, sync)
    finally:
        torch.set_num_threads(before)
