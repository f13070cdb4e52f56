"""Autoplay: a scripted tour that plays the game the way a person would, for headless runs and videos.

The pilot only produces input (a walking direction and SPACE presses, and a typed line posted as the
keyboard's own pygame events: T, the characters, ENTER); it reads back the cutscene player's state to let
each cutscene play before moving on.
"""
from __future__ import annotations

import math

import pygame

from demo_game import world

HUB = world.START
# (what, argument): "walk" to a point, "press" SPACE, "wait" up to N seconds for the cutscene to finish,
# "pause" N seconds, "type" a line of what happens next (words the model does not know are left out).
LINE = "The red knight and his loyal horse ride to the castle at night!"
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
    ("type", LINE),          # the player says what happens next
    ("wait", 9.0),
)
ARRIVED = 2.0  # world pixels
TYPE_S = 0.05  # seconds per typed character


class Pilot:
    def __init__(self, route: tuple[tuple[str, object], ...] = ROUTE):
        self.route = route
        self.step = 0
        self.elapsed = 0.0
        self.last_pos: tuple[float, float] | None = None
        self.stuck_for = 0.0
        self.typed = -1  # characters of a "type" step posted so far; -1: the line is not open yet

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
        if what == "type":
            self._type(arg)
            return 0.0, 0.0, False
        if (what == "wait" and cutscene_idle and self.elapsed > 0.5) or self.elapsed >= arg:
            self._next()
        return 0.0, 0.0, False

    def _type(self, text: str) -> None:
        """T opens the line, then one character every TYPE_S seconds, then ENTER."""
        if self.typed < 0:
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_t, mod=0, unicode="t"))
            self.typed, self.elapsed = 0, 0.0
            return
        while self.typed < min(len(text), int(self.elapsed / TYPE_S)):
            pygame.event.post(pygame.event.Event(pygame.TEXTINPUT, text=text[self.typed]))
            self.typed += 1
        if self.typed == len(text) and self.elapsed >= (len(text) + 10) * TYPE_S:  # a moment to read it
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN, mod=0, unicode="\r"))
            self._next()

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
        self.typed = -1
