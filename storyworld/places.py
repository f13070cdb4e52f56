"""Place backgrounds: each place is painted from shapes in world units onto any camera's canvas.

A place's layout (where its trees, houses, pillars stand) comes from a layout seed, so a story
that cuts back to "the forest" shows the same forest from another framing. Props are spread
along x in [-WORLD_HALF, WORLD_HALF]; characters stand on y = 0. Night darkens everything except
light sources (windows, lava, torches, crystals, stars), which are painted unshaded.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from storyworld.raster import Canvas, lerp_colour
from storyworld.world import PLACES, place_index
from storyworld import places_scenes as scenes

WORLD_HALF = 10.0

# light falling on characters, per (place, time)
_CHARACTER_LIGHT = {"cave": (0.85, 0.82, 0.9), "castle hall": (1.0, 0.93, 0.85)}
_NIGHT_CHARACTER_LIGHT = (0.66, 0.7, 0.9)
_SKY = {  # (horizon, zenith) by day and by night
    "forest": (((175, 220, 245), (90, 160, 230)), ((40, 50, 100), (10, 15, 45))),
    "desert": (((250, 225, 170), (110, 175, 240)), ((70, 55, 115), (15, 15, 50))),
    "beach": (((180, 225, 250), (70, 150, 235)), ((35, 55, 110), (8, 15, 45))),
    "village": (((200, 225, 250), (100, 160, 230)), ((45, 50, 105), (12, 14, 45))),
    "snowy mountains": (((205, 230, 250), (110, 165, 230)), ((45, 60, 110), (10, 18, 50))),
    "volcano": (((230, 140, 90), (120, 90, 100)), ((110, 35, 30), (25, 10, 25))),
}
_PAINTERS: dict[str, Callable[[Canvas, np.random.Generator, bool], None]] = {
    "forest": scenes.forest, "cave": scenes.cave, "castle hall": scenes.castle_hall,
    "desert": scenes.desert, "beach": scenes.beach, "village": scenes.village,
    "snowy mountains": scenes.snowy_mountains, "volcano": scenes.volcano,
}


def character_light(place: str, time: str) -> tuple[float, float, float]:
    """Multiplier applied to character colours in this place at this time of day."""
    if PLACES[place_index(place)].indoor:
        return _CHARACTER_LIGHT[place]
    return _NIGHT_CHARACTER_LIGHT if time == "night" else (1.0, 1.0, 1.0)


def _sky(c: Canvas, place: str, night: bool, rng: np.random.Generator) -> None:
    horizon, zenith = _SKY[place][1 if night else 0]
    c.paint_rows(lambda ys: lerp_colour(horizon, zenith, (ys - 0.3) / 3.2))
    if night:
        r = max(0.02, 0.7 / c.ppu)  # at least one pixel wide at any zoom
        for x, y in zip(rng.uniform(-WORLD_HALF, WORLD_HALF, 320), rng.uniform(0.4, 5.0, 320)):
            c.rect(x - r, y - r, x + r, y + r, (250, 250, 220))
        c.circle(2.2, 2.7, 0.32, (250, 245, 200))
        c.circle(2.34, 2.78, 0.27, tuple(lerp_colour(horizon, zenith, np.array(0.75))))
    else:  # low clouds give every sky texture, so that a pan shows even in a close-up
        if place in ("desert", "beach"):
            c.circle(-2.0, 2.7, 0.36, (255, 245, 190))
        for x, y in zip(rng.uniform(-WORLD_HALF, WORLD_HALF, 36), rng.uniform(0.9, 3.4, 36)):
            c.ellipse(x, y, 0.32, 0.1, tuple(lerp_colour(horizon, (255, 255, 255), np.array(0.6))))
            c.ellipse(x + 0.12, y + 0.06, 0.18, 0.09, tuple(lerp_colour(horizon, (255, 255, 255), np.array(0.75))))


def paint_place(c: Canvas, place: str, time: str, layout_seed: int) -> None:
    """Paint `place` at `time` ("day", "night" or "indoors") over the whole canvas."""
    night = time == "night"
    if not PLACES[place_index(place)].indoor:  # the sky has its own stream: layouts ignore time
        _sky(c, place, night, np.random.default_rng([layout_seed, 1]))
    _PAINTERS[place](c, np.random.default_rng([layout_seed, 0]), night)
