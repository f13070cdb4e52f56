"""The official preset's weights folder, memory estimate and loading (real or random weights).

What this module owns:
- `FILES`: what `--weights DIR` must hold, and what each file is. `check_weights_dir` names every missing
  file and every file whose tensor names or shapes are not the expected ones, all in one error, before any
  weight is copied (the `.pt`/`.pth` files are opened memory-mapped, so checking costs no memory);
- `memory_estimate`: weights, per-session caches and state, and activations, in bytes, for the device the
  graphs run on (bf16 on CUDA, float32 on the CPU) and for the text encoder's device; logged before loading;
- `load_official_bundle`: the DiT (strict, `model.*` names), the Wan2.1 VAE and umT5-XXL (strict, through
  their key maps), the tokenizer from `google/umt5-xxl`; or, with `random_weights`, the same geometry with
  deterministic random weights and a small 2-layer umT5 stand-in with a hashing tokenizer (a speed measurement
  needs the DiT and VAE at full size; the text encoder runs once per prompt and is cached);
- `reduced`: the same preset with fewer layers, a smaller frame or a narrower VAE, for tests and CPU runs.
"""
from __future__ import annotations

import hashlib
import logging
import zlib
from dataclasses import replace
from pathlib import Path

import torch

from runtime.cache import CacheSpec
from runtime.config import ModelConfig
from runtime.errors import CapacityError, WeightsError
from runtime.text import OpenVocabulary
from runtime.weights import DIT_PREFIX, read_state_dict

log = logging.getLogger(__name__)

DIT_FILE, VAE_FILE, T5_FILE, TOKENIZER_DIR = ("shotstream_merged.pt", "Wan2.1_VAE.pth",
                                              "models_t5_umt5-xxl-enc-bf16.pth", "google/umt5-xxl")
FILES = {
    DIT_FILE: "the ShotStream student: torch.save({'generator': state_dict}) with 825 tensors named 'model.*'",
    VAE_FILE: "the Wan2.1 VAE state dict, Wan's key names (from the Wan2.1-T2V-1.3B folder)",
    T5_FILE: "the umT5-XXL encoder state dict, Wan's key names (from the Wan2.1-T2V-1.3B folder)",
    TOKENIZER_DIR: "the umT5-XXL tokenizer folder: tokenizer_config.json and tokenizer.json or spiece.model "
                   "(from the Wan2.1-T2V-1.3B folder)",
}
# The random-weights text stand-in: umT5's output width (4096) on 2 narrow layers and a small vocabulary.
RANDOM_TEXT = {"num_layers": 2, "vocab_size": 4096, "num_heads": 8, "d_kv": 64, "d_ff": 1024}


class WeightsFolderError(WeightsError):
    """A weights folder lacks files or holds files that do not fit the model; `problems` lists each one."""

    def __init__(self, directory: Path, problems: list[str]):
        self.directory, self.problems = directory, problems
        self.missing, self.unexpected, self.mismatched = [], [], []
        lines = "\n".join(f"  - {p}" for p in problems)
        Exception.__init__(self, f"weights folder {directory} cannot serve the official preset:\n{lines}\n"
                                 f"expected in that folder:\n" + "\n".join(f"  {n}: {w}" for n, w in FILES.items()))


def reduced(cfg: ModelConfig, *, layers: int | None = None, height: int | None = None, width: int | None = None,
            vae_channels: int | None = None, text_len: int | None = None) -> ModelConfig:
    """`cfg` with fewer DiT layers, another frame size, a narrower VAE or fewer text tokens (the official
    layout otherwise)."""
    dit = replace(cfg.dit, num_layers=layers) if layers else cfg.dit
    vae = replace(cfg.vae, base_channels=vae_channels) if vae_channels else cfg.vae
    text = replace(cfg.text, text_len=text_len) if text_len else cfg.text
    return replace(cfg, dit=dit, vae=vae, text=text, height=height or cfg.height, width=width or cfg.width)


def require_extra(cfg: ModelConfig) -> None:
    """ComponentUnavailableError naming the packages of the `official` extra that are not installed."""
    import importlib.util

    from runtime.errors import ComponentUnavailableError

    missing = [m for m in ("diffusers", "transformers", "tokenizers") if importlib.util.find_spec(m) is None]
    if missing:
        raise ComponentUnavailableError(
            f"preset {cfg.name!r} needs the {cfg.text.kind} text encoder and the {cfg.vae.kind} VAE, which need "
            f"{', '.join(missing)}: pip install 'shotstream-runtime[official]'")


# -- what each file must hold --------------------------------------------------------------------
def expected_keys(cfg: ModelConfig) -> dict[str, dict[str, tuple[int, ...]]]:
    """File name -> {tensor name: shape}, from the modules built on the meta device (no memory)."""
    from runtime.bundle import build_dit
    from runtime.official.umt5 import UmT5Encoder, wan_t5_keys
    from runtime.official.wan_vae import build_autoencoder, wan_vae_keys

    with torch.device("meta"):
        text = UmT5Encoder(cfg.text)
    return {
        DIT_FILE: {DIT_PREFIX + k: tuple(v.shape) for k, v in build_dit(cfg, "meta").state_dict().items()},
        VAE_FILE: wan_vae_keys(build_autoencoder(cfg.vae, "meta")),
        T5_FILE: wan_t5_keys(text),
    }


def _compare(name: str, got: dict, want: dict[str, tuple[int, ...]]) -> str | None:
    missing = sorted(k for k in want if k not in got)
    unexpected = sorted(k for k in got if k not in want)
    shaped = sorted(f"{k} {list(got[k].shape)} (expected {list(want[k])})"
                    for k in want if k in got and tuple(got[k].shape) != want[k])
    if not (missing or unexpected or shaped):
        return None
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shaped)):
        if items:
            parts.append(f"{len(items)} {label} ({', '.join(items[:4])}{', ...' if len(items) > 4 else ''})")
    return f"{name}: {len(got)} tensors, {'; '.join(parts)}"


def check_weights_dir(directory: str | Path, cfg: ModelConfig) -> dict[str, dict]:
    """Every problem of the folder in one WeightsFolderError; else the (memory-mapped) state dicts by file."""
    directory = Path(directory)
    if not directory.is_dir():
        raise WeightsFolderError(directory, [f"{directory} is not a folder"] +
                                 [f"{name}: missing" for name in FILES])
    problems, found = [], {}
    tok = directory / TOKENIZER_DIR
    if not (tok / "tokenizer_config.json").is_file() or not any((tok / f).is_file() for f in ("tokenizer.json", "spiece.model")):
        problems.append(f"{TOKENIZER_DIR}: missing" if not tok.exists() else f"{TOKENIZER_DIR}: no tokenizer files in it")
    want = expected_keys(cfg)
    for name, keys in want.items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        try:
            sd = read_state_dict(path)
        except Exception as exc:  # any unreadable file is reported with the others, by name
            problems.append(f"{name}: unreadable ({type(exc).__name__}: {exc})")
            continue
        problem = _compare(name, sd, keys)
        if problem:
            problems.append(problem)
        found[name] = sd
    if problems:
        raise WeightsFolderError(directory, problems)
    return found


# -- memory ----------------------------------------------------------------------------------------
def _numel(module_factory) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in module_factory().parameters())


def memory_estimate(cfg: ModelConfig, device: str = "cpu", text_device: str = "cpu",
                    random_weights: bool = False) -> dict[str, int]:
    """Bytes, rounded estimates: weights on the graphs' device, text encoder, one session, activations."""
    from runtime.dit import CausalDiT
    from runtime.official.umt5 import UmT5Encoder
    from runtime.official.wan_vae import build_autoencoder, state_size

    item = 2 if torch.device(device).type == "cuda" else 4
    text_item = 2 if not random_weights else 4
    d, s = cfg.dit, cfg.shot
    tokens_all = (s.context_frames + s.latent_frames_per_shot) * cfg.tokens_per_frame + cfg.tokens_per_chunk
    caches = (CacheSpec.global_for(cfg).nbytes + CacheSpec.local_for(cfg).nbytes) // 4 * item
    chunk_kv = 2 * cfg.tokens_per_chunk * d.num_layers * d.dim * item
    vae_state = 4 * state_size(cfg) * item  # state, state_out, the new state and diffusers' cache during a decode
    # One layer's [global ; local ; chunk] K/V copies, the chunk's FFN and per-token tensors; the VAE's
    # largest step (2 frames of the widest full-resolution features, in and out of a convolution).
    dit_act = 2 * tokens_all * d.dim * item + cfg.tokens_per_chunk * (2 * d.ffn_dim + 12 * d.dim) * item
    vae_act = 8 * 2 * cfg.vae.base_channels * cfg.height * cfg.width * item
    est = {
        "dit_weights": _numel(lambda: CausalDiT(d)) * item,
        "vae_weights": _numel(lambda: build_autoencoder(cfg.vae, "meta")) * item,
        "text_encoder_weights": _numel(lambda: _random_text(cfg) if random_weights else UmT5Encoder(cfg.text)) * text_item,
        "session_caches": caches + chunk_kv + vae_state,
        "activations": max(dit_act, vae_act),
    }
    on_device = est["dit_weights"] + est["vae_weights"] + est["session_caches"] + est["activations"]
    same = torch.device(text_device) == torch.device(device)
    est["device_total"] = on_device + (est["text_encoder_weights"] if same else 0)
    est["text_device_total"] = 0 if same else est["text_encoder_weights"]
    return est


def check_memory(est: dict[str, int], device: str) -> None:
    """Refuse before loading when the estimate cannot fit the CUDA device's memory."""
    gib = 1 << 30
    log.info("memory estimate on %s: %s", device, ", ".join(f"{k} {v / gib:.2f} GiB" for k, v in est.items()))
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        total = torch.cuda.get_device_properties(torch.device(device)).total_memory
        if est["device_total"] > total:
            raise CapacityError(f"the official preset needs about {est['device_total'] / gib:.1f} GiB on {device}, "
                                f"which has {total / gib:.1f} GiB")


# -- loading ---------------------------------------------------------------------------------------
class HashTokenizer(OpenVocabulary):
    """Random-weights stand-in for the umT5 tokenizer: each word hashes to an id; end token 1, padding 0."""

    def __init__(self, vocab_size: int, text_len: int):
        self.vocab_size, self.text_len = vocab_size, text_len

    def encode(self, text: str, out=None, mode: str = "strict"):
        from runtime.errors import InvalidPromptError
        import numpy as np

        words = text.split()
        if not words:
            raise InvalidPromptError("the prompt is empty")
        if len(words) + 1 > self.text_len:
            raise InvalidPromptError(f"the prompt is {len(words) + 1} tokens; the model reads at most {self.text_len}")
        ids = np.zeros((1, self.text_len), np.int64) if out is None else out
        ids.fill(0)
        ids[0, :len(words)] = [2 + zlib.crc32(w.encode()) % (self.vocab_size - 2) for w in words]
        ids[0, len(words)] = 1
        return ids


def _random_text(cfg: ModelConfig):
    from runtime.official.umt5 import UmT5Encoder

    return UmT5Encoder(cfg.text, **RANDOM_TEXT)


def load_official_bundle(cfg: ModelConfig, weights: str | Path | None, *, random_weights: bool = False,
                         seed: int = 0):
    from runtime.dit import init_weights
    from runtime.bundle import ModelBundle, build_dit
    from runtime.official.umt5 import UmT5Tokenizer, load_umt5
    from runtime.official.wan_vae import WanVAE, load_wan_vae
    from runtime.weights import load_strict

    if random_weights:
        torch.manual_seed(seed)
        dit, vae = init_weights(build_dit(cfg), seed), WanVAE(cfg.vae)
        text, tokenizer = _random_text(cfg), HashTokenizer(RANDOM_TEXT["vocab_size"], cfg.text.text_len)
        weights_id = hashlib.sha256(f"random:{seed}:{cfg}".encode()).hexdigest()
        manifest = {"random_weights": True, "seed": seed}
    else:
        if weights is None:
            raise WeightsFolderError(Path("(none given)"), ["no --weights folder given"] +
                                     [f"{name}: missing" for name in FILES])
        directory = Path(weights)
        sds = check_weights_dir(directory, cfg)
        dit = build_dit(cfg)
        load_strict(dit, sds.pop(DIT_FILE), source=str(directory / DIT_FILE), prefix=DIT_PREFIX)
        vae = load_wan_vae(directory / VAE_FILE, cfg.vae)
        text = load_umt5(directory / T5_FILE, cfg.text)
        tokenizer = UmT5Tokenizer.from_dir(directory / TOKENIZER_DIR, cfg.text.text_len)
        # Names and sizes, not contents: hashing the 17 GB of weights would take minutes at every start.
        stamp = "".join(f"{n}:{(directory / n).stat().st_size};" for n in (DIT_FILE, VAE_FILE, T5_FILE))
        weights_id = hashlib.sha256(stamp.encode()).hexdigest()
        manifest = {"files": {n: {"what": w} for n, w in FILES.items()}, "folder": directory.resolve().name}
    for m in (dit, text, vae):
        m.eval().requires_grad_(False)
    log.info("loaded the official preset (%s)", "random weights" if random_weights else weights)
    return ModelBundle(cfg, dit, text, vae, tokenizer, weights_id, manifest)


def describe(cfg: ModelConfig, manifest: dict) -> str:
    """One line naming the model served (GetInfo, bench, render)."""
    d = cfg.dit
    size = f"{d.num_layers} layers x {d.dim}, {cfg.width}x{cfg.height}"
    if cfg.vae.kind != "wan2.1":
        if manifest.get("random_weights"):
            return (f"{cfg.name} (random DiT weights, seed {manifest.get('seed')}, with the shipped "
                    f"{cfg.shares or cfg.name} text encoder and VAE; {size}, {cfg.tokens_per_frame} tokens a frame)")
        if cfg.shares:
            return f"{cfg.name} (trained DiT, {cfg.shares}'s text encoder and VAE; {size}, {cfg.tokens_per_frame} tokens a frame)"
        return f"{cfg.name} (embedded default, {size})"
    if manifest.get("random_weights"):
        return (f"{cfg.name}: ShotStream causal student on Wan2.1-T2V-1.3B and the Wan2.1 VAE, random weights "
                f"(seed {manifest.get('seed')}), a 2-layer umT5 stand-in for the text ({size})")
    return (f"{cfg.name}: ShotStream causal student on Wan2.1-T2V-1.3B, Wan2.1 VAE, umT5-XXL ({size}; "
            f"weights from {manifest.get('folder')})")
