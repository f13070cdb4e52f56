"""The structured description of a story: cast, shots, and for every shot its camera and actors.

A `Story` holds everything needed to render it and to caption it, and nothing random: the
renderer is a pure function of it. `to_dict`/`from_dict` give the JSON form stored beside each
rendered story (the labels), so a story can be re-rendered or scored from its labels alone.
Camera and motion maths (world <-> screen, where an actor is at frame t) also live here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from storyworld.constants import FRAME_SIZE, FRAMES_PER_SHOT
from storyworld.poses import altitude
from storyworld.world import KINDS, kind_index

HALF = FRAME_SIZE / 2
_LAST = FRAMES_PER_SHOT - 1  # camera moves and walks are spread over a full-length shot


@dataclass(frozen=True)
class Member:
    """A cast member: a kind in one colour variant, the same in every shot of its story."""

    kind: str
    variant: int

    @property
    def colour(self) -> str:
        return KINDS[kind_index(self.kind)].variants[self.variant].colour

    @property
    def name(self) -> str:
        return f"{self.colour} {self.kind}"


@dataclass(frozen=True)
class Actor:
    """A cast member in one shot. `x` is its world x at mid-shot; it moves `speed` units per
    frame the way it faces (+1 right, -1 left)."""

    member: int  # index into Story.cast
    action: str
    x: float
    facing: int
    phase0: float
    speed: float = 0.0

    def position(self, t: float, hover: float) -> tuple[float, float]:
        return (self.x + self.facing * self.speed * (t - _LAST / 2),
                hover + altitude(self.action, int(t), self.phase0))


@dataclass(frozen=True)
class Camera:
    """`move`: static, pan (direction -1 left / +1 right, `travel` pixels over the shot) or zoom
    (direction +1 in / -1 out, `zoom` = ratio of last to first scale). (cx, cy) is the world point
    at the frame centre at mid-shot, `ppu` the pixels per world unit at mid-shot."""

    move: str
    cx: float
    cy: float
    ppu: float
    direction: int = 0
    travel: float = 0.0
    zoom: float = 1.0

    def at(self, t: float) -> tuple[float, float, float]:
        """(cx, cy, ppu) at frame t. Pans advance in whole pixels so backgrounds slide cleanly."""
        u = t / _LAST - 0.5
        if self.move == "pan":
            return self.cx + self.direction * round(self.travel * u) / self.ppu, self.cy, self.ppu
        if self.move == "zoom":
            return self.cx, self.cy, self.ppu * self.zoom ** (self.direction * u)
        return self.cx, self.cy, self.ppu

    def to_screen(self, t: float, x: float, y: float) -> tuple[float, float]:
        cx, cy, ppu = self.at(t)
        return HALF + (x - cx) * ppu, HALF - (y - cy) * ppu


@dataclass(frozen=True)
class Shot:
    place: str
    time: str  # "day", "night" or "indoors"
    framing: str
    camera: Camera
    actors: tuple[Actor, ...]  # actors[0] is the subject; the others idle
    held_out: bool = False  # the subject's (kind, place, action) never occurs in training

    @property
    def action(self) -> str:
        return self.actors[0].action


@dataclass(frozen=True)
class Story:
    seed: int
    split: str
    index: int
    cast: tuple[Member, ...]
    layouts: tuple[tuple[str, int], ...]  # (place, layout seed): one layout per place per story
    shots: tuple[Shot, ...]

    def layout(self, place: str) -> int:
        return dict(self.layouts)[place]

    def recoloured(self, shift: int = 1) -> Story:
        """The same story with every cast member in another colour variant of its kind (variant + shift,
        cyclically). Rendering some shots from it gives a story whose characters change colour between shots."""
        cast = tuple(replace(m, variant=(m.variant + shift) % len(KINDS[kind_index(m.kind)].variants))
                     for m in self.cast)
        return replace(self, cast=cast)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> Story:
        shots = tuple(
            Shot(s["place"], s["time"], s["framing"], Camera(**s["camera"]),
                 tuple(Actor(**a) for a in s["actors"]), s.get("held_out", False))
            for s in d["shots"])
        return Story(d["seed"], d["split"], d["index"], tuple(Member(**m) for m in d["cast"]),
                     tuple((p, int(s)) for p, s in d["layouts"]), shots)
