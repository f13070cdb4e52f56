"""The eight place painters: ground, far scenery and props of each place, in world units.

Each painter takes (canvas, layout rng, night) and paints on top of the sky that `places` laid
down (indoor places paint their own walls). Every painter draws the same random numbers whatever
the canvas shows, so one layout seed gives one layout at every framing. Props are dense enough
that even a close-up (about one unit of world in view) shows something that names the place.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from storyworld.raster import Canvas

RGB = tuple[int, int, int]
_NIGHT = (0.45, 0.5, 0.72)
_FAR = -12.0, 12.0  # x range of props (a little past the camera's reach)


def shader(night: bool) -> Callable[[RGB], RGB]:
    """Colours of lit surfaces: unchanged by day, darkened and blued at night."""
    if not night:
        return lambda rgb: rgb
    return lambda rgb: tuple(int(round(v * f)) for v, f in zip(rgb, _NIGHT))


def _spots(rng: np.random.Generator, step: float, jitter: float) -> np.ndarray:
    """Prop positions along x: a regular row with random jitter (no clumps, no big gaps)."""
    xs = np.arange(_FAR[0], _FAR[1], step)
    return xs + rng.uniform(-jitter, jitter, xs.size)


def _ground(c: Canvas, colour: RGB, top: float = 0.0) -> None:
    c.rect(-100.0, -100.0, 100.0, top, colour)


def _specks(c: Canvas, rng: np.random.Generator, n: int, colour: RGB, y0: float, y1: float,
            r: tuple[float, float]) -> None:
    for x, y, rr in zip(rng.uniform(*_FAR, n), rng.uniform(y0, y1, n), rng.uniform(*r, n)):
        c.ellipse(x, y, rr * 1.6, rr, colour)


def _tree(c: Canvas, x: float, h: float, s: Callable[[RGB], RGB], dark: float) -> None:
    f = 1.0 - dark
    c.rect(x - 0.1, -0.05, x + 0.1, h, s((int(105 * f), int(68 * f), int(38 * f))))
    for dx, dy, r, g in ((-0.3, 0.0, 0.45, 120), (0.32, 0.08, 0.42, 135), (0.0, 0.38, 0.5, 150)):
        c.circle(x + dx, h + dy, r, s((int(40 * f), int(g * f), int(50 * f))))


def forest(c: Canvas, rng: np.random.Generator, night: bool) -> None:
    s = shader(night)
    for x in _spots(rng, 2.6, 0.8):
        c.ellipse(x, 0.2, 1.8, 1.3 + rng.uniform(0, 0.6), s((60, 120, 75)))
    for x in _spots(rng, 1.3, 0.4):
        _tree(c, x, rng.uniform(1.6, 2.3), s, dark=0.25)
    for x in _spots(rng, 1.9, 0.5):
        _tree(c, x, rng.uniform(1.2, 1.7), s, dark=0.0)
    _ground(c, s((85, 160, 60)))
    c.rect(-100.0, -0.55, 100.0, -0.3, s((150, 120, 80)))  # dirt path
    for x in _spots(rng, 0.9, 0.3):
        c.ellipse(x, 0.12, 0.35, 0.22, s((40, 115, 45)))  # bushes
    for x, y in zip(rng.uniform(*_FAR, 120), rng.uniform(-1.4, -0.02, 120)):
        c.polygon([(x - 0.06, y), (x + 0.06, y), (x, y + 0.14)], s((55, 125, 45)))


def cave(c: Canvas, rng: np.random.Generator, night: bool) -> None:
    c.data[:] = (78, 64, 60)
    _specks(c, rng, 260, (95, 78, 70), -1.5, 5.0, (0.15, 0.45))
    _specks(c, rng, 200, (62, 50, 47), -1.5, 5.0, (0.1, 0.3))
    for x in _spots(rng, 0.7, 0.25):
        tip = rng.uniform(2.2, 2.9)
        c.polygon([(x - 0.22, 3.6), (x + 0.22, 3.6), (x, tip)], (70, 57, 52))
    for x in _spots(rng, 1.4, 0.5):  # glowing crystals, light sources
        y, colour = rng.uniform(0.15, 1.6), ((80, 230, 220), (200, 110, 255))[int(rng.integers(2))]
        for dx, h in ((-0.09, 0.22), (0.0, 0.34), (0.1, 0.18)):
            c.polygon([(x + dx - 0.06, y), (x + dx + 0.06, y), (x + dx + 0.02, y + h), (x + dx - 0.02, y + h)],
                      colour)
    _ground(c, (55, 45, 43))
    for x in _spots(rng, 1.1, 0.4):
        c.polygon([(x - 0.2, -0.02), (x + 0.2, -0.02), (x, rng.uniform(0.25, 0.55))], (92, 76, 66))
    _specks(c, rng, 120, (80, 66, 58), -1.5, -0.05, (0.03, 0.08))


def _bricks(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    row = np.floor(Y / 0.22)
    u = (X + 0.225 * (row % 2)) / 0.45
    return (np.mod(Y / 0.22, 1.0) < 0.13) | (np.mod(u, 1.0) < 0.07)


def castle_hall(c: Canvas, rng: np.random.Generator, night: bool) -> None:
    c.data[:] = (128, 126, 136)
    c.paint(_bricks, (-100.0, 0.0, 100.0, 100.0), (92, 90, 102))
    for x in _spots(rng, 2.4, 0.0):
        gap = x + 1.2
        if rng.random() < 0.5:  # window
            c.rect(gap - 0.22, 1.3, gap + 0.22, 2.4, (160, 205, 250))
            c.circle(gap, 2.4, 0.22, (160, 205, 250))
            c.rect(gap - 0.02, 1.3, gap + 0.02, 2.6, (70, 70, 80))
        else:  # banner
            colour = ((180, 30, 40), (40, 60, 170))[int(rng.integers(2))]
            c.rect(gap - 0.24, 1.35, gap + 0.24, 2.6, colour)
            c.polygon([(gap - 0.24, 1.36), (gap + 0.24, 1.36), (gap, 1.05)], colour)
            c.circle(gap, 2.05, 0.11, (240, 200, 60))
        c.rect(x - 0.22, 0.0, x + 0.22, 4.0, (175, 170, 165))  # pillar
        c.rect(x - 0.22, 0.0, x - 0.14, 4.0, (140, 136, 134))
        c.rect(x - 0.3, 3.0, x + 0.3, 3.15, (150, 146, 144))
        c.rect(x - 0.04, 1.05, x + 0.04, 1.35, (95, 60, 30))  # torch
        c.ellipse(x, 1.45, 0.07, 0.12, (255, 160, 40))
        c.ellipse(x, 1.42, 0.035, 0.06, (255, 240, 160))
    c.rect(-100.0, 0.0, 100.0, 0.14, (85, 80, 88))
    _ground(c, (100, 92, 88))
    c.rect(-100.0, -0.6, 100.0, -0.08, (225, 185, 60))
    c.rect(-100.0, -0.55, 100.0, -0.13, (170, 30, 45))  # red carpet


def desert(c: Canvas, rng: np.random.Generator, night: bool) -> None:
    s = shader(night)
    for x in _spots(rng, 4.5, 1.2):
        w, h = rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.3)
        c.polygon([(x - w, 0.2), (x, 0.2 + h), (x + w, 0.2)], s((225, 185, 110)))
        c.polygon([(x, 0.2), (x, 0.2 + h), (x + w, 0.2)], s((190, 150, 90)))
    for x in _spots(rng, 2.2, 0.6):
        c.ellipse(x, -0.25, rng.uniform(1.4, 2.0), rng.uniform(0.65, 0.9), s((232, 196, 118)))
    _ground(c, s((242, 212, 135)))
    for x in _spots(rng, 1.7, 0.5):  # cacti
        h = rng.uniform(0.7, 1.15)
        green = s((70, 150, 70))
        c.capsule((x, 0.0), (x, h), 0.09, green)
        c.capsule((x - 0.22, 0.35), (x - 0.22, 0.65), 0.06, green)
        c.capsule((x - 0.22, 0.35), (x, 0.35), 0.06, green)
        c.capsule((x + 0.2, 0.5), (x + 0.2, 0.8), 0.06, green)
        c.capsule((x + 0.2, 0.5), (x, 0.5), 0.06, green)
    for x, y in zip(rng.uniform(*_FAR, 100), rng.uniform(-1.4, -0.05, 100)):
        c.capsule((x - 0.18, y), (x + 0.18, y), 0.015, s((212, 178, 105)))


def beach(c: Canvas, rng: np.random.Generator, night: bool) -> None:
    s = shader(night)
    for x, y in zip(rng.uniform(*_FAR, 14), rng.uniform(2.0, 3.4, 14)):
        for dx, r in ((-0.3, 0.22), (0.0, 0.3), (0.3, 0.22)):
            c.circle(x + dx, y, r, s((250, 250, 250)))
    c.rect(-100.0, 0.0, 100.0, 0.78, s((40, 120, 200)))  # the sea
    for x, y in zip(rng.uniform(*_FAR, 90), rng.uniform(0.12, 0.72, 90)):
        c.capsule((x - 0.12, y), (x + 0.12, y), 0.018, s((130, 195, 240)))
    if night:
        for y in np.arange(0.15, 0.75, 0.09):  # moonlight on the water
            c.capsule((2.05, y), (2.35, y), 0.02, (200, 200, 170))
    _ground(c, s((242, 222, 165)), 0.05)
    for x in _spots(rng, 0.5, 0.1):
        c.circle(x, 0.05, 0.08, s((240, 246, 252)))  # foam
    for x in _spots(rng, 2.8, 0.7):  # palm trees
        lean = rng.uniform(-0.35, 0.35)
        top = (x + lean, 1.9)
        c.capsule((x, 0.0), ((x + top[0]) / 2 + 0.05, 1.0), 0.09, s((150, 110, 60)))
        c.capsule(((x + top[0]) / 2 + 0.05, 1.0), top, 0.08, s((150, 110, 60)))
        for dx, dy in ((-0.55, -0.2), (0.55, -0.2), (-0.3, 0.15), (0.35, 0.12), (0.0, 0.25)):
            c.polygon([top, (top[0] + dx, top[1] + dy + 0.08), (top[0] + dx * 1.1, top[1] + dy - 0.08)],
                      s((50, 160, 70)))
        c.circle(top[0], top[1] - 0.08, 0.07, s((120, 80, 40)))
    for x, y in zip(rng.uniform(*_FAR, 30), rng.uniform(-1.4, -0.1, 30)):
        c.star(x, y, 0.08, s((245, 130, 110)))


def village(c: Canvas, rng: np.random.Generator, night: bool) -> None:
    s = shader(night)
    walls = ((236, 222, 182), (222, 190, 150), (205, 172, 140), (232, 212, 205))
    roofs = ((185, 60, 50), (125, 82, 60), (80, 92, 135))
    glass = (255, 215, 100) if night else s((150, 200, 230))
    for x in _spots(rng, 2.0, 0.25):
        w, h = rng.uniform(0.6, 0.8), rng.uniform(1.1, 1.5)
        c.rect(x + 0.3, h, x + 0.5, h + 0.7, s((120, 80, 70)))  # chimney
        c.rect(x - w, 0.0, x + w, h, s(walls[int(rng.integers(4))]))
        c.polygon([(x - w - 0.15, h), (x + w + 0.15, h), (x, h + 0.75)], s(roofs[int(rng.integers(3))]))
        c.rect(x - 0.15, 0.0, x + 0.15, 0.6, s((110, 70, 40)))  # door
        for wx in (x - w * 0.6, x + w * 0.6):
            c.rect(wx - 0.16, h * 0.55, wx + 0.16, h * 0.55 + 0.3, s((90, 60, 40)))
            c.rect(wx - 0.12, h * 0.55 + 0.04, wx + 0.12, h * 0.55 + 0.26, glass)
        lamp = x + 1.0
        c.rect(lamp - 0.03, 0.0, lamp + 0.03, 1.2, s((50, 50, 55)))
        c.circle(lamp, 1.25, 0.09, (255, 230, 130) if night else s((230, 230, 200)))
    _ground(c, s((150, 140, 130)))
    for x, y in zip(rng.uniform(*_FAR, 220), rng.uniform(-1.5, -0.05, 220)):
        c.ellipse(x, y, 0.13, 0.07, s((125, 116, 108)))


def snowy_mountains(c: Canvas, rng: np.random.Generator, night: bool) -> None:
    s = shader(night)
    for x in _spots(rng, 3.6, 1.0):
        w, h = rng.uniform(2.0, 2.8), rng.uniform(2.2, 3.4)
        c.polygon([(x - w, 0.0), (x, h), (x + w, 0.0)], s((125, 135, 158)))
        c.polygon([(x - w * 0.3, h * 0.7), (x, h), (x + w * 0.3, h * 0.7)], s((248, 250, 255)))
    for x in _spots(rng, 1.2, 0.35):  # pines
        base, h = rng.uniform(-0.05, 0.1), rng.uniform(1.0, 1.5)
        c.rect(x - 0.05, base, x + 0.05, base + 0.3, s((90, 60, 40)))
        for k in range(3):
            y0 = base + 0.2 + k * h * 0.25
            w = 0.38 - 0.09 * k
            c.polygon([(x - w, y0), (x + w, y0), (x, y0 + h * 0.38)], s((30, 92, 62)))
            c.polygon([(x - 0.08, y0 + h * 0.29), (x + 0.08, y0 + h * 0.29), (x, y0 + h * 0.38)],
                      s((245, 248, 255)))
    _ground(c, s((238, 244, 252)))
    _specks(c, rng, 60, s((205, 218, 238)), -1.5, -0.1, (0.06, 0.16))


def volcano(c: Canvas, rng: np.random.Generator, night: bool) -> None:
    s = shader(night)
    for x in _spots(rng, 7.0, 1.5):
        for k in range(5):
            c.circle(x + 0.2 * k + rng.uniform(-0.2, 0.2), 3.0 + 0.3 * k, 0.35 + 0.08 * k, s((120, 110, 112)))
        c.polygon([(x - 3.2, 0.0), (x - 0.5, 2.8), (x + 0.5, 2.8), (x + 3.2, 0.0)], s((82, 60, 56)))
        c.ellipse(x, 2.8, 0.5, 0.1, (255, 120, 30))
        for dx in (-0.3, 0.1, 0.35):  # lava streams
            c.capsule((x + dx, 2.75), (x + dx * 4.0 + rng.uniform(-0.4, 0.4), 0.3), 0.05, (250, 110, 25))
    for x in _spots(rng, 1.3, 0.4):  # jagged rocks
        h = rng.uniform(0.35, 1.4)
        c.polygon([(x - 0.35, -0.02), (x - 0.12, h), (x + 0.1, h * 0.7), (x + 0.35, -0.02)], s((62, 50, 50)))
    _ground(c, s((58, 46, 46)))
    for x, y in zip(rng.uniform(*_FAR, 40), rng.uniform(-1.4, -0.1, 40)):
        c.capsule((x - 0.25, y), (x + 0.2, y - 0.06), 0.02, (245, 110, 20))  # glowing cracks
    for x in _spots(rng, 3.5, 1.0):
        c.ellipse(x, -0.55, 0.5, 0.12, (255, 140, 30))
