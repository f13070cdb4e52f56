"""Random stories: cast, scenes, framings, camera moves and actions, drawn from a seed.

`sample_story(seed, split, index)` is deterministic: it seeds its own generator from
(seed, split, index), so a data set can be rendered in any order or in parallel. The `train`
split never lets a subject perform a held-out (kind, place, action) composition; every story of
the `heldout` split contains at least one shot that does.
"""
from __future__ import annotations

import numpy as np

from storyworld.constants import FRAME_SIZE, FRAMES_PER_SHOT, MAX_SHOTS, MIN_SHOTS
from storyworld.poses import FLY_ALTITUDE, JUMP_HEIGHT, SCREEN_TRAVEL
from storyworld.story import Actor, Camera, Member, Shot, Story
from storyworld.world import (ACTIONS, CAMERA_MOVES, FRAMINGS, KINDS, PLACE_NAMES, PLACES,
                              held_out_action, is_held_out, kind_index, place_index)

SPLITS = {"train": 0, "heldout": 1}
_MAX_VISIBLE = {"wide": 3, "medium": 2, "closeup": 1}
_GROUND_ROW = 46  # where the ground line sits in a wide shot
_MARGIN = 7  # pixels: an actor's feet stay this far inside the frame


def story_rng(seed: int, split: str, index: int, stream: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, SPLITS[split], index, stream]))


def _kind(member: Member):
    return KINDS[kind_index(member.kind)]


def _mean_lift(action: str) -> float:
    return {"fly": FLY_ALTITUDE, "jump": 0.4 * JUMP_HEIGHT}.get(action, 0.0)


def _place_actors(rng: np.random.Generator, cast: tuple[Member, ...], members: list[int],
                  action: str) -> list[Actor]:
    """Line the visible members up left to right; the subject (members[0]) faces the others."""
    order = list(rng.permutation(len(members)))
    xs, x = [], 0.0
    for k, i in enumerate(order):
        if k:
            prev = _kind(cast[members[order[k - 1]]]).footprint
            x += (prev + _kind(cast[members[i]]).footprint) / 2 + rng.uniform(0.1, 0.3)
        xs.append(x)
    centre = sum(xs) / len(xs)
    pos = {members[i]: xs[k] - centre for k, i in enumerate(order)}
    subject_x = pos[members[0]]
    others = [pos[m] for m in members[1:]]
    if others:
        facing = 1 if np.mean(others) > subject_x else -1
    else:
        facing = int(rng.choice((-1, 1)))
    actors = [Actor(members[0], action, subject_x, facing, float(rng.random()))]
    actors += [Actor(m, "idle", pos[m], 1 if pos[m] < subject_x else -1, float(rng.random()))
               for m in members[1:]]
    return actors


def _camera(rng: np.random.Generator, cast, framing: str, actors: list[Actor], move: str) -> Camera:
    subject = actors[0]
    kind = _kind(cast[subject.member])
    lift = kind.hover + _mean_lift(subject.action)
    if framing == "wide":
        ppu = rng.uniform(17.0, 20.0)
        cx = float(np.mean([a.x for a in actors])) + rng.uniform(-0.2, 0.2)
        cy = (_GROUND_ROW - FRAME_SIZE / 2) / ppu
    elif framing == "medium":
        tallest = max(_kind(cast[a.member]).height for a in actors)
        ppu = 40.0 / tallest * rng.uniform(0.92, 1.08)
        cx = float(np.mean([a.x for a in actors]))
        cy = lift + kind.height * 0.5
    else:
        ppu = kind.closeup_ppu * rng.uniform(0.92, 1.08)
        cx = subject.x + subject.facing * kind.head[0]
        cy = lift + kind.head[1]
    if move == "pan":
        return Camera(move, cx, cy, ppu, int(rng.choice((-1, 1))), travel=rng.uniform(24.0, 34.0))
    if move == "zoom":
        return Camera(move, cx, cy, ppu, int(rng.choice((-1, 1))), zoom=rng.uniform(1.45, 1.7))
    return Camera(move, cx, cy, ppu)


def _fits(camera: Camera, actors: list[Actor], framing: str) -> bool:
    lo, hi = (_MARGIN, FRAME_SIZE - _MARGIN) if framing != "closeup" else (14, FRAME_SIZE - 14)
    for a in actors:
        for t in (0, FRAMES_PER_SHOT // 2, FRAMES_PER_SHOT - 1):
            sx, _ = camera.to_screen(t, a.position(t, 0.0)[0], 0.0)
            if not lo <= sx <= hi:
                return False
    return True


def sample_shot(rng: np.random.Generator, cast: tuple[Member, ...], place: str, time: str,
                members: list[int], action: str, framing: str) -> Shot:
    """One shot of `members` (members[0] acts, the others idle), framed so that all stay in view."""
    move = str(rng.choice(CAMERA_MOVES, p=(0.4, 0.3, 0.3)))
    for attempt in range(12):
        actors = _place_actors(rng, cast, members, action)
        camera = _camera(rng, cast, framing, actors, move if attempt < 8 else "static")
        travel = SCREEN_TRAVEL.get(action, 0.0) * (0.5 if framing == "closeup" else 1.0)  # stay in view
        speed = travel / camera.ppu / (FRAMES_PER_SHOT - 1)
        actors[0] = Actor(actors[0].member, action, actors[0].x, actors[0].facing, actors[0].phase0, speed)
        if _fits(camera, actors, framing):
            break
    held = is_held_out(cast[members[0]].kind, place, action)
    return Shot(place, time, framing, camera, tuple(actors), held)


def _scenes(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    """(place, time) per shot: runs of one place, as a film cuts between angles of a scene."""
    place = str(rng.choice(PLACE_NAMES))
    night = bool(rng.random() < 0.4)
    out = []
    for i in range(n):
        if i and rng.random() < 0.35:
            place = str(rng.choice([p for p in PLACE_NAMES if p != place]))
            night = night != bool(rng.random() < 0.2)
        indoor = PLACES[place_index(place)].indoor
        out.append((place, "indoors" if indoor else ("night" if night else "day")))
    return out


def _action(rng: np.random.Generator, kind: str, place: str, split: str) -> str:
    allowed = [a for a in ACTIONS if split != "train" or not is_held_out(kind, place, a)]
    return str(rng.choice(allowed))


def sample_story(seed: int, split: str, index: int) -> Story:
    """Story `index` of `split` for data seed `seed`."""
    rng = story_rng(seed, split, index)
    n_shots = int(rng.integers(MIN_SHOTS, MAX_SHOTS + 1))
    size = int(rng.choice((1, 2, 3), p=(0.25, 0.45, 0.3)))
    kinds = rng.choice(len(KINDS), size=size, replace=False)
    cast = tuple(Member(KINDS[k].name, int(rng.integers(len(KINDS[k].variants)))) for k in kinds)
    scenes = _scenes(rng, n_shots)
    layouts = tuple((p, int(rng.integers(2**31))) for p in dict.fromkeys(p for p, _ in scenes))
    forced = int(rng.integers(n_shots)) if split == "heldout" else -1
    shots = []
    for i, (place, time) in enumerate(scenes):
        framing = str(rng.choice(FRAMINGS, p=(0.4, 0.35, 0.25)))
        count = int(rng.integers(1, min(_MAX_VISIBLE[framing], size) + 1))
        members = [int(m) for m in rng.permutation(size)[:count]]
        kind = cast[members[0]].kind
        action = held_out_action(kind, place) if i == forced else _action(rng, kind, place, split)
        shots.append(sample_shot(rng, cast, place, time, members, action, framing))
    return Story(seed, split, index, cast, layouts, tuple(shots))
