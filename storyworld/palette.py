"""Palette slots shared by every sprite, and the colour lookup table of one character variant.

Sprites are drawn as maps of slot indices (0 = transparent) so that a pose is drawn once per kind
and coloured per variant. Slots from `FX` on belong to effects (sparkles, fire, speed lines): they
are left out of the dark outline that keeps silhouettes readable at small sizes.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from storyworld.world import KINDS, kind_index

# body slots
MAIN, MAIN_DARK, MAIN_LIGHT, ACCENT = 1, 2, 3, 4
SKIN, DARK, WHITE, METAL, METAL_DARK, GOLD, WOOD, BLADE = 5, 6, 7, 8, 9, 10, 11, 12
GLOW, PINK, HAIR, CREAM, RED, CAT_EYE, BEAK, CYAN, BONE = 13, 14, 15, 16, 17, 18, 19, 20, 21
# effect slots
FX = 24
FIRE, FIRE_CORE, SPARK_A, SPARK_B, SPARK_C, SPEED, SLASH = 24, 25, 26, 27, 28, 29, 30
N_SLOTS = 32

OUTLINE = (28, 22, 38)

_FIXED = {
    SKIN: (245, 200, 160), DARK: (30, 28, 40), WHITE: (250, 250, 250), METAL: (165, 170, 185),
    METAL_DARK: (95, 100, 115), GOLD: (250, 200, 40), WOOD: (120, 75, 35), BLADE: (225, 235, 245),
    GLOW: (255, 250, 150), PINK: (250, 140, 160), HAIR: (250, 215, 90), CREAM: (245, 230, 190),
    RED: (230, 40, 40), CAT_EYE: (120, 230, 80), BEAK: (250, 160, 30), CYAN: (70, 230, 255),
    BONE: (240, 235, 215), FIRE: (250, 110, 20), FIRE_CORE: (255, 230, 80), SPARK_A: (120, 255, 255),
    SPARK_B: (255, 120, 255), SPARK_C: (255, 255, 170), SPEED: (235, 240, 255), SLASH: (255, 255, 235),
}


def _scaled(rgb: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(int(min(255, round(c * f))) for c in rgb)


@lru_cache(maxsize=None)
def lookup_table(kind: str, variant: int) -> np.ndarray:
    """(N_SLOTS, 3) float32 RGB of every slot for this character variant."""
    v = KINDS[kind_index(kind)].variants[variant]
    lut = np.zeros((N_SLOTS, 3), np.float32)
    for slot, rgb in _FIXED.items():
        lut[slot] = rgb
    lut[MAIN] = v.main
    lut[MAIN_DARK] = _scaled(v.main, 0.68)
    lut[MAIN_LIGHT] = tuple(int(c + (255 - c) * 0.45) for c in v.main)
    lut[ACCENT] = v.accent
    return lut
