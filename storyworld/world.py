"""The catalogue of the story world: cast, places, framings, camera moves, actions, times of day.

Everything here is static data (frozen dataclasses and tuples). Indices into these tuples are the
class ids the probe predicts, so their order is part of the data format: append, never reorder.
Also owns the fixed set of held-out compositions (character, place, action) that training data
never shows.
"""
from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Variant:
    """One colour variant of a character kind; `colour` is the caption word, `main` its signature."""

    colour: str
    main: RGB
    accent: RGB


@dataclass(frozen=True)
class Kind:
    """A character kind: its look (drawn in `storyworld.sprites`) and its framing geometry.

    Units are world units (a knight is about 1 unit tall); x points the way the character faces.
    """

    name: str
    variants: tuple[Variant, ...]
    height: float  # body height used to frame medium shots
    footprint: float  # width on the ground, used to space characters apart
    head: tuple[float, float]  # close-up aim point (x, y), facing right
    closeup_ppu: float  # pixels per unit of a close-up
    hover: float = 0.0  # resting altitude (ghosts float)
    size: float = 1.0  # drawing scale: small animals are drawn larger to stay readable in wide shots

    @property
    def colours(self) -> tuple[str, ...]:
        return tuple(v.colour for v in self.variants)


KINDS: tuple[Kind, ...] = (
    Kind("knight", (Variant("red", (200, 40, 40), (250, 210, 60)),
                    Variant("blue", (40, 80, 210), (240, 240, 240)),
                    Variant("gold", (225, 175, 30), (150, 30, 30))),
         height=1.08, footprint=0.55, head=(0.0, 0.82), closeup_ppu=84),
    Kind("wizard", (Variant("blue", (50, 70, 200), (250, 220, 70)),
                    Variant("purple", (130, 50, 170), (250, 220, 70)),
                    Variant("green", (40, 140, 60), (240, 240, 200))),
         height=1.3, footprint=0.55, head=(0.02, 0.86), closeup_ppu=78),
    Kind("princess", (Variant("pink", (240, 110, 180), (255, 230, 240)),
                      Variant("yellow", (245, 205, 40), (255, 250, 220)),
                      Variant("teal", (30, 170, 170), (220, 255, 250))),
         height=1.1, footprint=0.6, head=(0.0, 0.82), closeup_ppu=84),
    Kind("robot", (Variant("yellow", (240, 195, 35), (70, 220, 255)),
                   Variant("orange", (235, 120, 30), (70, 220, 255)),
                   Variant("teal", (40, 160, 150), (255, 80, 80))),
         height=1.1, footprint=0.6, head=(0.0, 0.84), closeup_ppu=80),
    Kind("ghost", (Variant("white", (240, 240, 250), (40, 40, 60)),
                   Variant("purple", (185, 130, 235), (60, 20, 80)),
                   Variant("green", (140, 235, 150), (20, 60, 30))),
         height=0.95, footprint=0.55, head=(0.0, 0.72), closeup_ppu=72, hover=0.14),
    Kind("dragon", (Variant("green", (60, 170, 60), (240, 220, 140)),
                    Variant("red", (205, 45, 35), (250, 200, 90)),
                    Variant("blue", (50, 110, 220), (200, 230, 250))),
         height=1.45, footprint=1.9, head=(0.55, 1.0), closeup_ppu=58),
    Kind("cat", (Variant("orange", (240, 140, 40), (255, 240, 220)),
                 Variant("black", (45, 40, 50), (245, 245, 245)),
                 Variant("grey", (150, 150, 160), (245, 245, 245))),
         height=0.95, footprint=1.08, head=(0.35, 0.68), closeup_ppu=82, size=1.35),
    Kind("owl", (Variant("brown", (140, 90, 50), (235, 210, 170)),
                 Variant("white", (235, 235, 240), (200, 200, 215)),
                 Variant("grey", (120, 120, 135), (215, 215, 225))),
         height=1.0, footprint=0.69, head=(0.0, 0.69), closeup_ppu=84, size=1.25),
)
KIND_NAMES: tuple[str, ...] = tuple(k.name for k in KINDS)


@dataclass(frozen=True)
class Place:
    name: str  # caption noun phrase head, e.g. "castle hall"
    indoor: bool


PLACES: tuple[Place, ...] = (
    Place("forest", False),
    Place("cave", True),
    Place("castle hall", True),
    Place("desert", False),
    Place("beach", False),
    Place("village", False),
    Place("snowy mountains", False),
    Place("volcano", False),
)
PLACE_NAMES: tuple[str, ...] = tuple(p.name for p in PLACES)

FRAMINGS: tuple[str, ...] = ("wide", "medium", "closeup")
CAMERA_MOVES: tuple[str, ...] = ("static", "pan", "zoom")
# "idle" is what every non-subject character does; the subject of a shot does any of these.
ACTIONS: tuple[str, ...] = ("idle", "walk", "run", "jump", "wave", "attack", "cast", "fly")
TIMES: tuple[str, ...] = ("day", "night", "indoors")  # indoor places have no time of day


def kind_index(name: str) -> int:
    return KIND_NAMES.index(name)


def place_index(name: str) -> int:
    return PLACE_NAMES.index(name)


# -- held-out compositions -----------------------------------------------------------------------
# A Latin-square design: for every (kind, place) pair exactly one non-idle action is held out, so
# each (kind, action) and (place, action) pair still appears in training with at least 6 partners.
_HELD_OUT_STRIDE = 3


def held_out_action(kind: str, place: str) -> str:
    """The one action that `kind` never performs in `place` in the training split."""
    active = ACTIONS[1:]
    k, p = kind_index(kind), place_index(place)
    return active[(k + _HELD_OUT_STRIDE * p) % len(active)]


def is_held_out(kind: str, place: str, action: str) -> bool:
    return action == held_out_action(kind, place)


def held_out_compositions() -> tuple[tuple[str, str, str], ...]:
    """Every held-out (kind, place, action) triple, in catalogue order."""
    return tuple((k, p, held_out_action(k, p)) for k in KIND_NAMES for p in PLACE_NAMES)
