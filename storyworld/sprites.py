"""Character sprites: drawn once per (kind, pose) at a fine scale, coloured and resized on demand.

`base_sprite` rasterises a kind's drawing plus its action effect as a palette-index map at
one of `BASE_PPUS` pixels per unit (cached: about 800 small maps per level). `sprite` colours one variant,
box-filters it to the pixels-per-unit a camera needs (so thin swords and eyes blend instead of
vanishing) and adds a one-pixel dark outline around the body. Sprites face right; the renderer
mirrors them. A sprite's `origin` is the pixel corner where the feet touch the ground.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from storyworld import palette as P
from storyworld.poses import Pose, pose
from storyworld.raster import Canvas, Point
from storyworld.sprites_creatures import draw_cat, draw_dragon, draw_ghost, draw_owl
from storyworld.sprites_people import draw_knight, draw_princess, draw_robot, draw_wizard

BASE_PPUS = (32, 64, 128)  # fine rasters (a mip chain): the smallest at least 2x the target is used

_DRAW: dict[str, Callable[[Canvas, Pose], Point]] = {
    "knight": draw_knight, "wizard": draw_wizard, "princess": draw_princess, "robot": draw_robot,
    "ghost": draw_ghost, "dragon": draw_dragon, "cat": draw_cat, "owl": draw_owl,
}
# drawing extent (x0, y0, x1, y1) in units, wide enough for every pose and effect
_EXTENT = {"dragon": (-1.35, -0.1, 1.75, 2.0), "cat": (-0.8, -0.1, 1.0, 1.05),
           "owl": (-0.7, -0.1, 0.85, 1.15), "ghost": (-0.75, -0.1, 1.0, 1.3)}
_PERSON_EXTENT = (-0.8, -0.1, 1.05, 1.6)


@dataclass(frozen=True)
class BaseSprite:
    index: np.ndarray  # (h, w) uint8 palette slots, 0 = transparent
    left: float  # world x of column 0's left edge
    top: float  # world y of row 0's top edge
    ppu: int


@dataclass(frozen=True)
class Sprite:
    colour: np.ndarray  # (h, w, 3) float32, premultiplied by alpha
    alpha: np.ndarray  # (h, w) float32 in [0, 1]
    origin: tuple[int, int]  # (col, row) of the feet point


def _effect(c: Canvas, p: Pose, at: Point) -> None:
    x, y = at
    if p.effect == "sparkle":
        c.circle(x + 0.1, y + 0.05, 0.085, P.SPARK_C)
        for k, slot in enumerate((P.SPARK_A, P.SPARK_B, P.SPARK_C, P.SPARK_A, P.SPARK_B)):
            a = 2 * math.pi * (k / 5 + p.effect_phase / 12)
            c.star(x + 0.1 + 0.25 * math.cos(a), y + 0.05 + 0.25 * math.sin(a), 0.1, slot)
    elif p.effect == "speed":
        for k, yy in enumerate((0.2, 0.45, 0.7)):
            x0 = -0.75 + 0.08 * ((k + p.effect_phase) % 3)
            c.capsule((x0, yy), (x0 + 0.3, yy), 0.02, P.SPEED)
    elif p.effect == "slash":
        cx, cy = x - 0.1, y

        def crescent(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
            inside = (X - cx) ** 2 + (Y - cy) ** 2 <= 0.16
            return inside & ((X - cx + 0.08) ** 2 + (Y - cy) ** 2 > 0.15) & (X > cx + 0.05)

        c.paint(crescent, (cx, cy - 0.4, cx + 0.4, cy + 0.4), P.SLASH)


def _fire(c: Canvas, p: Pose, mouth: Point) -> None:
    x, y = mouth
    reach = 0.45 + 0.12 * (p.effect_phase % 3)
    c.polygon([(x, y + 0.02), (x + reach, y + 0.2), (x + reach + 0.1, y - 0.05), (x + reach, y - 0.25)], P.FIRE)
    c.polygon([(x, y), (x + 0.7 * reach, y + 0.08), (x + 0.7 * reach, y - 0.12)], P.FIRE_CORE)


@lru_cache(maxsize=None)
def base_sprite(kind: str, action: str, phase_index: int, base_ppu: int) -> BaseSprite:
    p = pose(action, phase_index)
    x0, y0, x1, y1 = _EXTENT.get(kind, _PERSON_EXTENT)
    c = Canvas(x0, y0, x1, y1, base_ppu, channels=0)
    at = _DRAW[kind](c, p)
    if kind == "dragon" and p.effect == "slash":
        _fire(c, p, at)
    else:
        _effect(c, p, at)
    rows = np.flatnonzero(c.data.any(axis=1))
    cols = np.flatnonzero(c.data.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return BaseSprite(c.data[r0:r1, c0:c1].copy(), x0 + c0 / base_ppu, y1 - r0 / base_ppu, base_ppu)


def _edges(n_in: int, start: float, base_ppu: int, ppu: int) -> tuple[np.ndarray, int]:
    """Edges of the output cells (a ppu grid aligned to 0) covering `n_in` base cells that start
    at `start`, in base-cell units clipped to [0, n_in]; and the index of the first output cell."""
    k0 = int(np.floor(start * ppu))
    k1 = int(np.ceil((start + n_in / base_ppu) * ppu))
    edges = (np.arange(k0, k1 + 1) / ppu - start) * base_ppu
    return np.clip(edges, 0.0, n_in), k0


def _area_resample(x: np.ndarray, edges: np.ndarray, axis: int) -> np.ndarray:
    """Box-filter `x` along `axis` onto cells with the given fractional edges (input-cell units).

    Exact area averaging via a cumulative sum, so no BLAS call (whose threads cost more than
    the arithmetic at these sizes)."""
    x = np.moveaxis(x, axis, 0)
    cum = np.concatenate([np.zeros_like(x[:1]), np.cumsum(x, axis=0)])
    i = np.minimum(np.floor(edges).astype(int), x.shape[0] - 1)
    f = (edges - i).reshape((-1,) + (1,) * (x.ndim - 1)).astype(x.dtype)
    at = cum[i] + f * (cum[i + 1] - cum[i])
    return np.moveaxis(at[1:] - at[:-1], 0, axis)


def _outline(alpha_body: np.ndarray, alpha_fx: np.ndarray) -> np.ndarray:
    solid = alpha_body >= 0.5
    pad = np.pad(solid, 1)
    near = pad[:-2, 1:-1] | pad[2:, 1:-1] | pad[1:-1, :-2] | pad[1:-1, 2:]
    return near & ~solid & (alpha_fx < 0.5)


@lru_cache(maxsize=4096)
def sprite(kind: str, variant: int, action: str, phase_index: int, ppu: int) -> Sprite:
    """The coloured, outlined sprite of one character variant at `ppu` pixels per unit."""
    b = base_sprite(kind, action, phase_index, next((q for q in BASE_PPUS if q >= 2 * ppu), BASE_PPUS[-1]))
    h, w = b.index.shape
    ey, oy = _edges(h, -b.top, b.ppu, ppu)  # rows run down: coordinate -y
    ex, ox = _edges(w, b.left, b.ppu, ppu)
    layers = np.empty((h, w, 5), np.float32)  # body alpha, effect alpha, premultiplied RGB
    layers[..., 0] = (b.index > 0) & (b.index < P.FX)
    layers[..., 1] = b.index >= P.FX
    layers[..., 2:] = np.take(P.lookup_table(kind, variant), b.index, axis=0)  # slot 0 is black
    small = _area_resample(_area_resample(layers, ey, 0), ex, 1) * (ppu / b.ppu) ** 2
    small = np.pad(small, ((1, 1), (1, 1), (0, 0)))  # a spare pixel each side for the outline
    a_body, a_fx, col = small[..., 0], small[..., 1], small[..., 2:]
    ring = _outline(a_body, a_fx)
    col[ring] = P.OUTLINE
    alpha = np.clip(a_body + a_fx, 0.0, 1.0)
    alpha[ring] = 1.0
    return Sprite(np.ascontiguousarray(col), alpha, (1 - ox, 1 - oy))
