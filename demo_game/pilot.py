"""Autoplay: a scripted tour that plays the game the way a person would, for headless runs and videos.

The pilot only produces input (a walking direction and SPACE presses), through the same path as the
keyboard; it reads back the cutscene player's state to let each cutscene play before moving on.
"""
from __future__ import annotations

import math

from demo_game import world

HUB = world.START
# (what, argument): "walk" to a point, "press" SPACE, "wait" up to N seconds for the cutscene to finish,
# "pause" N seconds.
ROUTE: tuple[tuple[str, object], ...] = (
    ("pause", 0.8),
    ("walk", (72, 166)),     # into the village
    ("walk", (74, 176)),     # next to the wizard
    ("wait", 6.0),
    ("press", None),         # talk
    ("wait", 7.0),
    ("walk", HUB),
    ("walk", (184, 74)),     # into the cave, in front of the dragon
    ("pause", 1.2),
    ("press", None),         # attack: interrupts the cave's cutscene
    ("wait", 7.0),
    ("walk", HUB),
    ("walk", (196, 172)),    # to the castle gate
    ("wait", 7.0),
)
ARRIVED = 2.0  # world pixels


class Pilot:
    def __init__(self, route: tuple[tuple[str, object], ...] = ROUTE):
        self.route = route
        self.step = 0
        self.elapsed = 0.0
        self.last_pos: tuple[float, float] | None = None
        self.stuck_for = 0.0

    @property
    def done(self) -> bool:
        return self.step >= len(self.route)

    def control(self, hero: world.Hero, cutscene_idle: bool, dt: float) -> tuple[float, float, bool]:
        """This frame's (dx, dy, press_space)."""
        if self.done:
            return 0.0, 0.0, False
        what, arg = self.route[self.step]
        self.elapsed += dt
        if what == "walk":
            dx, dy = arg[0] - hero.x, arg[1] - hero.y
            if math.hypot(dx, dy) <= ARRIVED or self._stuck(hero, dt):
                self._next()
                return 0.0, 0.0, False
            return dx, dy, False
        if what == "press":
            self._next()
            return 0.0, 0.0, True
        if (what == "wait" and cutscene_idle and self.elapsed > 0.5) or self.elapsed >= arg:
            self._next()
        return 0.0, 0.0, False

    def _stuck(self, hero: world.Hero, dt: float) -> bool:
        """A walk that makes no progress for a second is given up (a wall in the way)."""
        pos = (hero.x, hero.y)
        self.stuck_for = self.stuck_for + dt if pos == self.last_pos else 0.0
        self.last_pos = pos
        return self.stuck_for > 1.0

    def _next(self) -> None:
        self.step += 1
        self.elapsed = 0.0
        self.stuck_for = 0.0
        self.last_pos = None
