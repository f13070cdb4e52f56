"""The overworld: a small top-down map with five places, the hero who walks it, and the people met there.

The map is painted once at world-pixel resolution (`MAP_W` x `MAP_H`) from pygame primitives and a
seeded RNG (same seed, same map); water shimmer, flags and sprites are drawn on top every frame.
Places are rectangles: walking into one is what the game reports as `enter_place`. `solid` rectangles
(houses, walls, rock, deep water) block the hero, tested per axis so he slides along walls.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pygame

from demo_game import art

MAP_W, MAP_H = 240, 240  # world pixels
HERO_SPEED = 64.0  # world pixels per second
TALK_RANGE = 26  # world pixels between hero and someone for SPACE to reach them
START = (120.0, 112.0)

GRASS, GRASS_DARK, GRASS_LIGHT = (92, 168, 72), (70, 140, 58), (126, 196, 92)
PATH, PATH_DARK = (196, 160, 104), (164, 128, 80)
STONE, STONE_DARK, STONE_LIGHT = (150, 150, 164), (104, 104, 122), (190, 190, 204)
ROCK, ROCK_DARK, ROCK_LIGHT = (122, 106, 100), (84, 70, 70), (160, 144, 132)
WATER, WATER_DEEP, SAND = (64, 136, 220), (44, 96, 190), (236, 214, 150)
ROOF_COLOURS = ((178, 62, 48), (70, 96, 170), (160, 110, 50))


@dataclass(frozen=True)
class Place:
    key: str        # the story world's name for it
    label: str      # shown on the map
    where: str      # the phrase prompts use, with the time of day outdoors: the `where` parameter
    area: pygame.Rect
    sign: tuple[int, int]  # where the label sits, world pixels


PLACES: tuple[Place, ...] = (
    Place("forest", "Whispering Forest", "in the forest by day", pygame.Rect(0, 0, 100, 86), (50, 8)),
    Place("cave", "Dragon Cave", "in the cave", pygame.Rect(148, 0, 92, 84), (200, 8)),
    Place("village", "Oakvale Village", "in the village by day", pygame.Rect(0, 128, 96, 76), (44, 120)),
    Place("castle hall", "Castle", "inside the castle", pygame.Rect(150, 102, 90, 96), (202, 92)),
    Place("beach", "Sunny Beach", "on the beach by day", pygame.Rect(58, 204, 124, 36), (120, 232)),
)

SOLIDS: tuple[pygame.Rect, ...] = (
    pygame.Rect(10, 138, 24, 18), pygame.Rect(52, 134, 26, 20), pygame.Rect(16, 176, 24, 18),  # houses
    pygame.Rect(166, 0, 74, 28), pygame.Rect(216, 28, 24, 30),                                # rock
    pygame.Rect(172, 112, 60, 44),                                                            # castle keep
    pygame.Rect(72, 222, 96, 18),                                                             # deep water
)


def place_at(x: float, y: float) -> Place | None:
    for place in PLACES:
        if place.area.collidepoint(x, y):
            return place
    return None


def nearest_place(x: float, y: float) -> Place:
    """The place whose area is closest (for things that happen between places)."""
    def gap(place: Place) -> float:
        area = place.area
        return math.dist((x, y), (min(max(x, area.left), area.right), min(max(y, area.top), area.bottom)))

    return min(PLACES, key=gap)


# ---------------------------------------------------------------------------------------------------
# Painting the map

def paint_map(seed: int) -> pygame.Surface:
    """The static background: grass, paths, and every place's scenery."""
    rng = random.Random(seed)
    surface = pygame.Surface((MAP_W, MAP_H))
    surface.fill(GRASS)
    for _ in range(700):  # grass texture
        x, y = rng.randrange(MAP_W), rng.randrange(MAP_H)
        surface.set_at((x, y), rng.choice((GRASS_DARK, GRASS_LIGHT, GRASS_DARK)))
    _paths(surface, rng)
    _beach(surface, rng)
    _village(surface, rng)
    _cave(surface, rng)
    _castle(surface)
    _forest(surface, rng)  # last: canopies overlap the path edges
    return surface


def _paths(s: pygame.Surface, rng: random.Random) -> None:
    hub = (120, 116)
    for end in ((60, 60), (186, 70), (60, 164), (200, 176), (120, 212)):
        pygame.draw.line(s, PATH_DARK, hub, end, 14)
        pygame.draw.line(s, PATH, hub, end, 10)
    pygame.draw.circle(s, PATH_DARK, hub, 16)
    pygame.draw.circle(s, PATH, hub, 13)
    for _ in range(80):
        x, y = hub[0] + rng.randint(-12, 12), hub[1] + rng.randint(-12, 12)
        s.set_at((x, y), PATH_DARK)


def _beach(s: pygame.Surface, rng: random.Random) -> None:
    pygame.draw.ellipse(s, SAND, (56, 206, 128, 60))
    pygame.draw.ellipse(s, WATER, (66, 218, 108, 50))
    pygame.draw.ellipse(s, WATER_DEEP, (82, 228, 76, 36))
    for _ in range(40):
        s.set_at((rng.randint(60, 180), rng.randint(208, 220)), (214, 190, 128))
    for x in (64, 172):  # palm trees
        pygame.draw.line(s, art.PALETTE["B"], (x, 222), (x + 3, 208), 2)
        for dx, dy in ((-7, -2), (7, -1), (-4, 4), (5, 4), (0, -6)):
            pygame.draw.line(s, (40, 130, 60), (x + 3, 208), (x + 3 + dx, 208 + dy), 2)


def _house(s: pygame.Surface, rect: pygame.Rect, roof: art.RGB) -> None:
    wall = rect.inflate(-4, 0).move(0, 6)
    wall.height = rect.height - 6
    pygame.draw.rect(s, (226, 204, 166), wall)
    pygame.draw.rect(s, art.OUTLINE, wall, 1)
    door = pygame.Rect(wall.centerx - 2, wall.bottom - 7, 5, 7)
    pygame.draw.rect(s, art.PALETTE["B"], door)
    pygame.draw.rect(s, (250, 230, 120), (wall.x + 3, wall.bottom - 8, 3, 3))  # lit window
    roof_rect = pygame.Rect(rect.x, rect.y, rect.width, 12)
    dark = tuple(int(c * 0.7) for c in roof)
    pygame.draw.polygon(s, roof, [roof_rect.bottomleft, (roof_rect.centerx, roof_rect.y - 4), roof_rect.bottomright])
    pygame.draw.rect(s, roof, roof_rect.inflate(0, -4).move(0, 2))
    pygame.draw.line(s, dark, (roof_rect.x, roof_rect.bottom - 1), (roof_rect.right - 1, roof_rect.bottom - 1), 2)
    pygame.draw.rect(s, art.OUTLINE, roof_rect.inflate(0, -4).move(0, 2), 1)


def _village(s: pygame.Surface, rng: random.Random) -> None:
    for rect, roof in zip(SOLIDS[:3], ROOF_COLOURS):
        _house(s, rect, roof)
    pygame.draw.circle(s, STONE_DARK, (66, 188), 7)  # the well
    pygame.draw.circle(s, WATER_DEEP, (66, 188), 4)
    for _ in range(14):  # flowers
        x, y = rng.randint(4, 92), rng.randint(160, 200)
        s.set_at((x, y), rng.choice(((250, 90, 120), (250, 230, 90), (240, 240, 250))))
    for x in range(4, 96, 6):  # fence
        pygame.draw.line(s, art.PALETTE["B"], (x, 128), (x, 133), 1)
    pygame.draw.line(s, art.PALETTE["B"], (4, 130), (94, 130), 1)


def _cave(s: pygame.Surface, rng: random.Random) -> None:
    pts = [(150, 0), (240, 0), (240, 62), (226, 58), (214, 40), (200, 34), (184, 36), (170, 30), (156, 18)]
    pygame.draw.polygon(s, ROCK, pts)
    for _ in range(90):
        x, y = rng.randint(156, 238), rng.randint(0, 40)
        if s.get_at((x, y))[:3] == ROCK:
            pygame.draw.rect(s, rng.choice((ROCK_DARK, ROCK_LIGHT)), (x, y, 2, 2))
    pygame.draw.lines(s, ROCK_DARK, False, pts[2:], 2)
    pygame.draw.ellipse(s, (20, 16, 24), (188, 20, 22, 18))  # the cave mouth
    pygame.draw.rect(s, (20, 16, 24), (188, 29, 22, 6))
    for x, y in ((182, 44), (216, 66), (160, 40), (232, 72)):  # boulders
        pygame.draw.circle(s, ROCK_DARK, (x, y + 1), 5)
        pygame.draw.circle(s, ROCK, (x, y), 4)
    for x, y in ((196, 48), (203, 52)):  # bones
        pygame.draw.line(s, (240, 235, 215), (x, y), (x + 4, y + 1), 1)


def _castle(s: pygame.Surface) -> None:
    keep = SOLIDS[5]
    pygame.draw.rect(s, STONE_DARK, keep.inflate(4, 4))
    pygame.draw.rect(s, STONE, keep)
    for y in range(keep.y + 6, keep.bottom, 6):  # brick courses
        pygame.draw.line(s, STONE_DARK, (keep.x, y), (keep.right - 1, y), 1)
    for x in range(keep.x, keep.right, 6):  # crenellations
        pygame.draw.rect(s, STONE_LIGHT, (x, keep.y - 3, 3, 3))
    for cx, cy in (keep.topleft, keep.topright, keep.bottomleft, keep.bottomright):  # towers
        pygame.draw.circle(s, STONE_DARK, (cx, cy), 9)
        pygame.draw.circle(s, STONE_LIGHT, (cx, cy), 7)
        pygame.draw.circle(s, (90, 60, 130), (cx, cy), 4)
    gate = pygame.Rect(keep.centerx - 6, keep.bottom - 12, 12, 12)
    pygame.draw.rect(s, (40, 30, 30), gate)
    pygame.draw.circle(s, (40, 30, 30), (gate.centerx, gate.y), 6)
    for x in range(gate.x + 2, gate.right, 3):
        pygame.draw.line(s, STONE_DARK, (x, gate.y - 2), (x, gate.bottom - 1), 1)


def _forest(s: pygame.Surface, rng: random.Random) -> None:
    trees = [(rng.randint(4, 96), rng.randint(2, 82)) for _ in range(34)]
    trees = [t for t in trees if math.dist(t, (60, 60)) > 13 and math.dist(t, (86, 78)) > 10]
    for x, y in sorted(trees, key=lambda t: t[1]):
        r = rng.randint(7, 10)
        pygame.draw.circle(s, (40, 80, 40), (x + 2, y + 3), r)           # shadow
        pygame.draw.circle(s, (34, 110, 52), (x, y), r)
        pygame.draw.circle(s, (52, 142, 62), (x - 2, y - 2), r - 3)
        pygame.draw.circle(s, (96, 182, 84), (x - 3, y - 4), max(2, r // 3))


def draw_water_shimmer(target: pygame.Surface, t: float) -> None:
    """Moving wave glints on the lake, drawn over the static map every frame."""
    for i in range(8):
        phase = t * 1.5 + i * 0.9
        x = 88 + (i * 13 + int(phase * 6)) % 64
        y = 226 + (i * 5) % 12 + int(math.sin(phase) * 1.5)
        pygame.draw.line(target, (180, 220, 250), (x, y), (x + 3, y), 1)


def draw_flags(target: pygame.Surface, t: float) -> None:
    keep = SOLIDS[5]
    for cx in (keep.left, keep.right):
        top = keep.top - 14
        pygame.draw.line(target, art.OUTLINE, (cx, top), (cx, keep.top - 4), 1)
        wave = int(math.sin(t * 6 + cx) * 1.5)
        pygame.draw.polygon(target, art.PALETTE["R"], [(cx + 1, top), (cx + 8, top + 2 + wave), (cx + 1, top + 5)])


# ---------------------------------------------------------------------------------------------------
# Who walks the map

class Hero:
    """The player's knight: moves with a direction vector, blocked by solids, two-frame walk cycle."""

    def __init__(self, pos: tuple[float, float] = START):
        self.x, self.y = pos
        self.facing_left = False
        self.walk_time = 0.0
        self.moving = False
        self.frames = {name: art.sprite(rows) for name, rows in art.KNIGHT_ROWS.items()}
        self.shadow = art.shadow(10)

    def update(self, dx: float, dy: float, dt: float) -> None:
        length = math.hypot(dx, dy)
        self.moving = length > 0
        if not self.moving:
            return
        step = HERO_SPEED * dt / length
        if dx:
            self.facing_left = dx < 0
        self._try_move(dx * step, 0.0)
        self._try_move(0.0, dy * step)
        self.walk_time += dt

    def _try_move(self, mx: float, my: float) -> None:
        x = min(max(self.x + mx, 6.0), MAP_W - 6.0)
        y = min(max(self.y + my, 10.0), MAP_H - 2.0)
        feet = pygame.Rect(int(x) - 4, int(y) - 3, 8, 3)
        if feet.collidelist(SOLIDS) < 0:
            self.x, self.y = x, y

    def draw(self, target: pygame.Surface) -> None:
        stepping = self.moving and int(self.walk_time * 8) % 2 == 1
        image = self.frames["step" if stepping else "stand"]
        if self.facing_left:
            image = pygame.transform.flip(image, True, False)
        target.blit(self.shadow, (int(self.x) - 5, int(self.y) - 2))
        target.blit(image, (int(self.x) - 6, int(self.y) - 14 - (1 if stepping else 0)))


def draw_swing(target: pygame.Surface, hero: Hero, progress: float) -> None:
    """A sword slash in front of the hero; `progress` runs 0..1 over the swing."""
    side = -1 if hero.facing_left else 1
    cx, cy = int(hero.x) + side * 6, int(hero.y) - 8
    start = -1.2 + 2.4 * progress
    for i in range(4):
        a = start - i * 0.25
        x, y = cx + side * math.cos(a) * 9, cy + math.sin(a) * 9
        colour = (255, 255, 235) if i == 0 else (250, 230, 150)
        target.set_at((int(x), int(y)), colour)
        target.set_at((int(x) + side, int(y)), colour)


@dataclass
class Character:
    """Someone standing in a place: who they are to the model and what SPACE does near them."""

    key: str            # the name the model knows, e.g. "blue wizard"
    label: str          # shown in the HUD
    event: str          # "talk" or "attack"
    pos: tuple[int, int]
    frames: tuple[pygame.Surface, ...]
    bob_hz: float = 1.2
    reacting: float = 0.0  # seconds left of the reaction to the hero (fire for a foe, sparkles for a friend)

    def draw(self, target: pygame.Surface, t: float) -> None:
        frame = self.frames[int(t * self.bob_hz * 2) % len(self.frames)]
        w, h = frame.get_size()
        target.blit(art.shadow(max(8, w - 4)), (self.pos[0] - max(8, w - 4) // 2, self.pos[1] - 2))
        target.blit(frame, (self.pos[0] - w // 2, self.pos[1] - h))

    def draw_reaction(self, target: pygame.Surface, t: float) -> None:
        """Drawn after every sprite, so fire and sparkles are never hidden behind the hero."""
        if self.reacting > 0:
            (_fire if self.event == "attack" else _sparkles)(target, self.pos, self.frames[0].get_height(), t)

    def react(self, seconds: float = 1.5) -> None:
        self.reacting = seconds

    def update(self, dt: float) -> None:
        self.reacting = max(0.0, self.reacting - dt)

    def near(self, x: float, y: float) -> bool:
        return math.dist((x, y), self.pos) <= TALK_RANGE


def _fire(target: pygame.Surface, pos: tuple[int, int], height: int, t: float) -> None:
    """Flames puffing down-left from the dragon's mouth, growing as they go."""
    for i in range(8):
        k = (t * 2.5 + i / 8) % 1.0
        x, y = pos[0] - 4 - k * 26, pos[1] - height // 2 + 2 + k * 12 + math.sin(t * 20 + i) * 1.5
        radius = 1 + int(k * 5)
        pygame.draw.circle(target, (200, 50, 20), (int(x), int(y)), radius + 1)
        pygame.draw.circle(target, art.PALETTE["F"], (int(x), int(y)), radius)
        pygame.draw.circle(target, art.PALETTE["f"], (int(x), int(y)), max(1, radius - 2))


def _sparkles(target: pygame.Surface, pos: tuple[int, int], height: int, t: float) -> None:
    """Stars circling a friend's head."""
    for i in range(4):
        a = t * 4 + i * math.pi / 2
        x, y = pos[0] + math.cos(a) * 9, pos[1] - height - 3 + math.sin(a) * 3
        colour = art.PALETTE["Y"] if i % 2 else art.PALETTE["W"]
        target.set_at((int(x), int(y)), colour)
        pygame.draw.line(target, colour, (int(x) - 1, int(y)), (int(x) + 1, int(y)))
        pygame.draw.line(target, colour, (int(x), int(y) - 1), (int(x), int(y) + 1))


def cast() -> list[Character]:
    """Who the hero meets; with him they are the story's cast (at most three, as in the training data)."""
    wizard = art.sprite(art.WIZARD_ROWS)
    dragon = tuple(art.sprite(rows) for rows in art.DRAGON_ROWS.values())
    return [
        Character("blue wizard", "Wizard", "talk", (82, 176), (wizard,)),
        Character("green dragon", "Dragon", "attack", (202, 66), dragon, bob_hz=2.0),
    ]
