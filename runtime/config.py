"""Model, cache and stream configuration: frozen dataclasses and the named presets.

Owns every geometry number of the runtime. Derived values (tokens per frame, cache sizes, frames per
chunk) are computed here from the primary fields and never written as literals elsewhere.
Besides the two shipped presets, `tiny-p1`, `tiny-p2` and `tiny-wide` are geometries of the tiny family
(docs/training.md, "Grid and model size"): they ship no DiT weights and read the tiny preset's text encoder,
VAE and vocabulary (`ModelConfig.shares`). `tiny-p1` is the shipped `tiny` geometry under the name its training
runs record; `tiny-p2` is the patch-2 grid the first students shipped in (its teacher and student are kept in
distill/weights/), and the faster geometry the student stages' tests train.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class DiTConfig:
    """The causal student transformer (Wan2.1 layout)."""

    dim: int
    num_layers: int
    num_heads: int
    ffn_dim: int
    freq_dim: int
    text_dim: int
    in_channels: int = 16
    out_channels: int = 16
    patch: tuple[int, int, int] = (1, 2, 2)
    eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        if self.head_dim % 2:
            raise ValueError(f"head_dim {self.head_dim} must be even (RoPE works on pairs)")

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def rope_pairs(self) -> tuple[int, int, int]:
        """Complex pairs per axis (temporal, height, width), Wan's split of the head dim."""
        hw = self.head_dim // 6
        return (self.head_dim // 2 - 2 * hw, hw, hw)


@dataclass(frozen=True)
class TextConfig:
    """Text encoder: per-token embeddings consumed by cross-attention."""

    kind: str  # "tiny" (our word-level transformer) or "umt5-xxl" (user-supplied)
    text_len: int
    dim: int
    vocab_size: int = 0
    num_layers: int = 0
    num_heads: int = 0


@dataclass(frozen=True)
class VAEConfig:
    """Causal video VAE: the first frame alone, then groups of `temporal_stride` frames per latent."""

    kind: str  # "tiny" or "wan2.1" (user-supplied)
    z_dim: int = 16
    temporal_stride: int = 4
    spatial_stride: int = 8
    base_channels: int = 32
    decoder_blocks: int = 1  # residual blocks per decoder resolution (tiny VAE)


@dataclass(frozen=True)
class ShotConfig:
    """Streaming geometry shared by both presets (the official ShotStream values)."""

    fps: int = 16
    latent_frames_per_shot: int = 21
    latent_frames_per_chunk: int = 3
    num_steps: int = 4
    shift: float = 8.0
    context_frames: int = 6
    shot_phase: float = 1.0 / 6.0  # RoPE discontinuity indicator: phase added per shot id

    def __post_init__(self) -> None:
        if self.latent_frames_per_shot % self.latent_frames_per_chunk:
            raise ValueError("a shot must be a whole number of chunks")

    @property
    def chunks_per_shot(self) -> int:
        return self.latent_frames_per_shot // self.latent_frames_per_chunk


@dataclass(frozen=True)
class ModelConfig:
    """One preset: the DiT, text encoder, VAE, resolution and stream geometry together."""

    name: str
    height: int
    width: int
    dit: DiTConfig
    text: TextConfig
    vae: VAEConfig
    shot: ShotConfig = field(default_factory=ShotConfig)
    # A DiT-only variant: the preset whose shipped text encoder, VAE and vocabulary it reads. It ships no DiT
    # weights of its own: a run passes trained ones (--weights) or asks for random ones (--random-weights).
    shares: str | None = None

    def __post_init__(self) -> None:
        cell = self.vae.spatial_stride * self.dit.patch[1]
        if self.height % cell or self.width % cell:
            raise ValueError(f"{self.height}x{self.width} is not a multiple of {cell} (VAE stride x patch)")
        if self.dit.in_channels != self.vae.z_dim:
            raise ValueError("the DiT's input channels must equal the VAE's latent channels")

    # -- latent geometry -------------------------------------------------------------------------
    @property
    def latent_height(self) -> int:
        return self.height // self.vae.spatial_stride

    @property
    def latent_width(self) -> int:
        return self.width // self.vae.spatial_stride

    @property
    def token_grid(self) -> tuple[int, int]:
        return (self.latent_height // self.dit.patch[1], self.latent_width // self.dit.patch[2])

    @property
    def tokens_per_frame(self) -> int:
        h, w = self.token_grid
        return h * w

    @property
    def tokens_per_chunk(self) -> int:
        return self.tokens_per_frame * self.shot.latent_frames_per_chunk

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """One latent frame: (channels, height, width)."""
        return (self.vae.z_dim, self.latent_height, self.latent_width)

    # -- pixel geometry --------------------------------------------------------------------------
    def pixel_frames(self, latent_frames: int) -> int:
        """Frames decoded from `latent_frames` latents starting at a shot's first latent."""
        if latent_frames <= 0:
            return 0
        return 1 + self.vae.temporal_stride * (latent_frames - 1)

    @property
    def frames_per_shot(self) -> int:
        return self.pixel_frames(self.shot.latent_frames_per_shot)

    def chunk_pixel_frames(self, chunk_index: int) -> int:
        """Pixel frames produced by chunk `chunk_index` of a shot (the first chunk is shorter)."""
        n = self.shot.latent_frames_per_chunk
        return self.pixel_frames(n * (chunk_index + 1)) - self.pixel_frames(n * chunk_index)

    def shot_pixel_frames(self, chunks: int) -> int:
        return self.pixel_frames(chunks * self.shot.latent_frames_per_chunk)


_TINY = ModelConfig(
    name="tiny",
    height=64,
    width=64,
    # 32 latent channels (Wan has 16): same 4x8x8 strides, half the compression, so the small VAE
    # reaches >= 30 dB on the story world within a CPU training budget.
    # Patch 1: 64 tokens per 8x8 latent frame, so a character spans several tokens (patch 2's 16 tokens drew
    # places but not the cast at the samples we could afford; docs/training.md, "Grid and model size").
    dit=DiTConfig(dim=256, num_layers=4, num_heads=4, ffn_dim=768, freq_dim=128, text_dim=128,
                  in_channels=32, out_channels=32, patch=(1, 1, 1)),
    text=TextConfig(kind="tiny", text_len=80, dim=128, vocab_size=512, num_layers=2, num_heads=4),
    vae=VAEConfig(kind="tiny", z_dim=32, base_channels=32),
    # 64 tokens per frame, not Wan's 1,560: a lower shift spends more of training and sampling at low
    # noise, where detail is made (measured on the story world, image-first teacher: shift 2 beat 8 on
    # place and framing accuracy and on held-out loss at low noise).
    shot=ShotConfig(shift=2.0),
)

PRESETS: dict[str, ModelConfig] = {
    # Our embedded default: real-time on 2 CPU cores, trained on the story world.
    "tiny": _TINY,
    # The tiny family's geometries (distill/grid_compare.py): the same text encoder, VAE, resolution and stream,
    # another DiT. tiny-p1 is tiny's own geometry, the name its training runs and their manifests record.
    "tiny-p1": replace(_TINY, name="tiny-p1", shares="tiny"),
    # Patch 2: 16 tokens per frame, the first students' grid, 5.6x fewer DiT FLOPs a shot (`shotstream bench`).
    "tiny-p2": replace(_TINY, name="tiny-p2", dit=replace(_TINY.dit, patch=(1, 2, 2)), shares="tiny"),
    # Wider and deeper at patch 2: 384 wide (6 heads of 64), 6 layers, about 2.8x the patch-2 DiT's parameters.
    "tiny-wide": replace(_TINY, name="tiny-wide", dit=replace(_TINY.dit, dim=384, num_layers=6, num_heads=6,
                                                              ffn_dim=1152, patch=(1, 2, 2)), shares="tiny"),
    # The official Wan2.1-T2V-1.3B based student; weights supplied by the user.
    "shotstream-1.3b": ModelConfig(
        name="shotstream-1.3b",
        height=480,
        width=832,
        dit=DiTConfig(dim=1536, num_layers=30, num_heads=12, ffn_dim=8960, freq_dim=256, text_dim=4096),
        text=TextConfig(kind="umt5-xxl", text_len=512, dim=4096),
        vae=VAEConfig(kind="wan2.1", z_dim=16, base_channels=96),
    ),
}


def get_preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None


def with_overrides(cfg: ModelConfig, **kw) -> ModelConfig:
    """A copy of `cfg` with top-level fields replaced (used by tests for smaller variants)."""
    return replace(cfg, **kw)
