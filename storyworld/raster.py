"""Vectorised drawing of simple shapes onto a raster that covers a rectangle of world units.

A `Canvas` maps a world rectangle (y up) onto a pixel grid at `ppu` pixels per unit. Shapes are
painted in order (painter's algorithm); each shape is evaluated with numpy only inside its own
bounding box, so many small shapes on a large canvas stay cheap. The canvas holds either RGB
colours (`channels=3`, backgrounds) or palette indices (`channels=0`, sprites: 0 = transparent).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

Mask = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (X (1,w), Y (h,1)) -> bool (h,w)
Point = tuple[float, float]


class Canvas:
    """A pixel grid over the world rectangle [x0, x1] x [y0, y1]; row 0 is the top (y1)."""

    def __init__(self, x0: float, y0: float, x1: float, y1: float, ppu: float, channels: int = 3):
        self.x0, self.y1, self.ppu = x0, y1, ppu
        self.w = max(1, int(round((x1 - x0) * ppu)))
        self.h = max(1, int(round((y1 - y0) * ppu)))
        self.xs = x0 + (np.arange(self.w) + 0.5) / ppu  # pixel centres, world x
        self.ys = y1 - (np.arange(self.h) + 0.5) / ppu  # pixel centres, world y
        shape = (self.h, self.w, channels) if channels else (self.h, self.w)
        self.data = np.zeros(shape, np.uint8)

    # -- core ------------------------------------------------------------------------------------
    def _window(self, bx0: float, by0: float, bx1: float, by1: float) -> tuple[slice, slice] | None:
        # math's floor and ceil: numpy's cost a microsecond a call, and most shapes of a scene fall outside a
        # shot's canvas, so this test is most of their cost
        c0 = max(0, math.floor((bx0 - self.x0) * self.ppu))
        c1 = min(self.w, math.ceil((bx1 - self.x0) * self.ppu) + 1)
        r0 = max(0, math.floor((self.y1 - by1) * self.ppu))
        r1 = min(self.h, math.ceil((self.y1 - by0) * self.ppu) + 1)
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def paint(self, mask: Mask, bbox: Sequence[float], value) -> None:
        """Set every pixel inside `mask` (and inside `bbox` = x0, y0, x1, y1) to `value`."""
        win = self._window(*bbox)
        if win is None:
            return
        rows, cols = win
        m = mask(self.xs[cols][None, :], self.ys[rows][:, None])
        self.data[rows, cols][m] = value

    def paint_rows(self, colour_of_y: Callable[[np.ndarray], np.ndarray]) -> None:
        """Fill the whole canvas with a colour per row: `colour_of_y(ys) -> (h, 3)` uint8."""
        self.data[:] = colour_of_y(self.ys)[:, None, :]

    # -- primitives ------------------------------------------------------------------------------
    def rect(self, x0: float, y0: float, x1: float, y1: float, value) -> None:
        self.paint(lambda X, Y: (X >= x0) & (X < x1) & (Y >= y0) & (Y < y1), (x0, y0, x1, y1), value)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, value) -> None:
        self.paint(lambda X, Y: ((X - cx) / rx) ** 2 + ((Y - cy) / ry) ** 2 <= 1.0,
                   (cx - rx, cy - ry, cx + rx, cy + ry), value)

    def circle(self, cx: float, cy: float, r: float, value) -> None:
        self.ellipse(cx, cy, r, r, value)

    def capsule(self, p: Point, q: Point, r: float, value) -> None:
        """A thick line segment from p to q with round ends of radius r (limbs, staffs, swords)."""
        (px, py), (qx, qy) = p, q
        dx, dy = qx - px, qy - py
        den = dx * dx + dy * dy or 1e-12

        def mask(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
            t = np.clip(((X - px) * dx + (Y - py) * dy) / den, 0.0, 1.0)
            return (X - px - t * dx) ** 2 + (Y - py - t * dy) ** 2 <= r * r

        self.paint(mask, (min(px, qx) - r, min(py, qy) - r, max(px, qx) + r, max(py, qy) + r), value)

    def polygon(self, points: Sequence[Point], value) -> None:
        """A convex polygon (either winding)."""
        xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
        bbox = (min(xs), min(ys), max(xs), max(ys))
        if self._window(*bbox) is None:  # off the canvas: no arrays built
            return
        pts = np.asarray(points, dtype=np.float64)
        nxt = np.roll(pts, -1, axis=0)
        area = np.sum(pts[:, 0] * nxt[:, 1] - nxt[:, 0] * pts[:, 1])
        sign = 1.0 if area >= 0 else -1.0

        def mask(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
            inside = np.ones(np.broadcast_shapes(X.shape, Y.shape), bool)
            for (ax, ay), (bx, by) in zip(pts, nxt):
                inside &= sign * ((bx - ax) * (Y - ay) - (by - ay) * (X - ax)) >= 0
            return inside

        self.paint(mask, bbox, value)

    def star(self, cx: float, cy: float, r: float, value) -> None:
        """A four-pointed sparkle: two thin crossed diamonds."""
        t = r * 0.3
        self.polygon([(cx - r, cy), (cx, cy - t), (cx + r, cy), (cx, cy + t)], value)
        self.polygon([(cx, cy - r), (cx + t, cy), (cx, cy + r), (cx - t, cy)], value)


def rotate(p: Point, angle: float, length: float) -> Point:
    """The point `length` away from p in direction `angle` (0 = straight down, +pi/2 = forward)."""
    return (p[0] + length * np.sin(angle), p[1] - length * np.cos(angle))


def lerp_colour(a: Sequence[int], b: Sequence[int], t: np.ndarray) -> np.ndarray:
    """Per-element blend of two RGB colours; t in [0, 1] of any shape -> (..., 3) uint8."""
    t = np.clip(t, 0.0, 1.0)[..., None]
    out = np.asarray(a, np.float64) * (1.0 - t) + np.asarray(b, np.float64) * t
    return np.round(out).astype(np.uint8)
