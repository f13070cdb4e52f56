"""A preset's model components, built and loaded: the DiT, the text side and the VAE.

`load_bundle("tiny")` reads the embedded default from `runtime/assets/tiny/` (checked against its manifest);
`load_bundle("shotstream-1.3b", weights=DIR)` loads the official student, Wan2.1 VAE and umT5-XXL
(runtime/official/loader.py). `random_weights=True` gives the preset's geometry with a seeded random DiT (the
official preset: random everything); a tiny-family preset keeps the shipped text encoder, VAE and vocabulary
(of the preset it `shares`, for a DiT-only variant such as `tiny-p1`, which ships no DiT and asks for
`weights` or `random_weights`). `build_dit(cfg, "meta")`
builds a DiT without memory (for `model-info`).
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from runtime.bundle import ModelBundle, build_dit  # noqa: F401  (build_dit: part of this module's API)
from runtime.config import ModelConfig, get_preset
from runtime.dit import CausalDiT, init_weights
from runtime.errors import ComponentUnavailableError
from runtime.text import TinyTextEncoder, Tokenizer
from runtime.vae import TinyVAE
from runtime.weights import DIT_PREFIX, load_strict, read_manifest, read_state_dict, verify_manifest

log = logging.getLogger(__name__)
ASSETS = Path(__file__).parent / "assets"


def default_weights_dir(preset: str) -> Path:
    return ASSETS / preset


def load_tokenizer(preset: str, weights: str | Path | None = None) -> Tokenizer:
    """The preset's tokenizer from its weights directory's vocab.txt (what the text encoder was trained on)."""
    cfg = get_preset(preset)
    if cfg.text.kind != "tiny":
        raise ComponentUnavailableError(f"preset {preset!r} reads prompts with the {cfg.text.kind} text encoder, which "
                                        "brings its own tokenizer; this package does not bundle it")
    directory = Path(weights) if weights is not None else default_weights_dir(preset)
    synonyms = directory / "synonyms.txt"  # optional: the words writers use for what the model draws
    try:
        tokenizer = Tokenizer.from_file(directory / "vocab.txt", cfg.text.text_len,
                                        synonyms if synonyms.exists() else None)
    except ValueError as e:
        raise ComponentUnavailableError(f"{directory}: {e}") from e
    if len(tokenizer.vocab) > cfg.text.vocab_size:
        raise ComponentUnavailableError(f"vocabulary of {len(tokenizer.vocab)} words exceeds vocab_size {cfg.text.vocab_size}")
    return tokenizer


def load_bundle(preset: str | ModelConfig, weights: str | Path | None = None, *, random_weights: bool = False,
                seed: int = 0) -> ModelBundle:
    """A preset (by name, or a config such as a reduced official one) with its weights loaded."""
    cfg = get_preset(preset) if isinstance(preset, str) else preset
    if cfg.text.kind != "tiny" or cfg.vae.kind != "tiny":
        from runtime.official.loader import load_official_bundle, require_extra

        require_extra(cfg)
        return load_official_bundle(cfg, weights, random_weights=random_weights, seed=seed)
    if cfg.shares and weights is None and not random_weights:
        raise ComponentUnavailableError(
            f"preset {cfg.name!r} ships no DiT weights (it reads {cfg.shares!r}'s text encoder and VAE): pass "
            f"--weights DIR holding its trained dit.safetensors, or --random-weights to time its geometry")
    directory = Path(weights) if weights is not None else default_weights_dir(cfg.shares or cfg.name)
    manifest = read_manifest(directory)
    verify_manifest(directory, manifest)
    dit, text_encoder, vae = CausalDiT(cfg.dit), TinyTextEncoder(cfg.text), TinyVAE(cfg.vae)
    parts = [(text_encoder, "text_encoder.safetensors", ""), (vae, "vae.safetensors", "")]
    if random_weights:  # the geometry's speed, not its pictures: a seeded random DiT beside the shipped rest
        init_weights(dit, seed)
    else:
        parts.append((dit, "dit.safetensors", DIT_PREFIX))
    for module, name, prefix in parts:
        load_strict(module, read_state_dict(directory / name), source=str(directory / name), prefix=prefix)
    for m in (dit, text_encoder, vae):
        m.eval().requires_grad_(False)
    tokenizer = load_tokenizer(cfg.shares or cfg.name, directory)
    digest = hashlib.sha256("".join(sorted(e["sha256"] for e in manifest["files"].values())).encode()).hexdigest()
    if random_weights:
        digest = hashlib.sha256(f"random:{seed}:{cfg.dit}:{digest}".encode()).hexdigest()
        manifest = {**manifest, "random_weights": True, "seed": seed}
    log.info("loaded %s weights from %s (%s)%s", cfg.name, directory, digest[:12],
             f", the DiT random (seed {seed})" if random_weights else "")
    return ModelBundle(cfg, dit, text_encoder, vae, tokenizer, digest, manifest)
