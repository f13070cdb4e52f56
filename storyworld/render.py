"""The renderer: a `Story` (or one shot of it) to uint8 frames, numpy only, deterministic.

Per shot, the place is painted once onto a texture that covers everything the camera sees over
the shot (at the largest zoom), then every requested frame gathers its 64x64 view from it with
one fancy index. Characters are composited per frame from cached sprites, with a soft shadow
on the ground. Any subset of frames can be rendered (the probe trains on a few frames per shot).
Also returns each cast member's screen box per frame: (x0, y0, x1, y1), or -1 when absent.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from storyworld.constants import FRAME_SIZE, FRAMES_PER_SHOT
from storyworld.places import character_light, paint_place
from storyworld.poses import phase_index
from storyworld.raster import Canvas
from storyworld.sprites import sprite
from storyworld.story import HALF, Shot, Story
from storyworld.world import KINDS, kind_index

_SHADOW = 0.62  # brightness kept under a shadow
_SPRITE_STEP = math.log(1.03)  # sprite scales snap to 3 % steps (sizes stay within 1.5 %)


def _background(shot: Shot, layout_seed: int, ts: np.ndarray) -> np.ndarray:
    """(T, 64, 64, 3) float32 views of the place for frames `ts`."""
    cams = np.array([shot.camera.at(float(t)) for t in ts])  # (T, 3): cx, cy, ppu
    cx, cy, ppu = cams[:, 0], cams[:, 1], cams[:, 2]
    half = HALF / ppu
    tex_ppu = float(ppu.max())
    c = Canvas(float((cx - half).min()), float((cy - half).min()), float((cx + half).max()),
               float((cy + half).max()), tex_ppu)
    paint_place(c, shot.place, shot.time, layout_seed)
    centres = np.arange(FRAME_SIZE) + 0.5 - HALF  # pixel centres relative to the frame centre
    wx = cx[:, None] + centres[None, :] / ppu[:, None]  # (T, 64) world x per column
    wy = cy[:, None] - centres[None, :] / ppu[:, None]  # (T, 64) world y per row
    cols = np.clip(np.floor((wx - c.x0) * tex_ppu + 1e-6).astype(int), 0, c.w - 1)
    rows = np.clip(np.floor((c.y1 - wy) * tex_ppu + 1e-6).astype(int), 0, c.h - 1)
    return c.data[rows[:, :, None], cols[:, None, :]].astype(np.float32)


def _shadow(frame: np.ndarray, sx: float, sy: float, rx: float) -> None:
    ry = max(1.0, rx * 0.28)
    r0, r1 = max(0, int(sy - ry)), min(FRAME_SIZE, int(np.ceil(sy + ry)) + 1)
    c0, c1 = max(0, int(sx - rx)), min(FRAME_SIZE, int(np.ceil(sx + rx)) + 1)
    if r0 >= r1 or c0 >= c1:
        return
    yy = np.arange(r0, r1)[:, None] + 0.5
    xx = np.arange(c0, c1)[None, :] + 0.5
    inside = ((xx - sx) / rx) ** 2 + ((yy - sy) / ry) ** 2 <= 1.0
    frame[r0:r1, c0:c1][inside] *= _SHADOW


def _blit(frame: np.ndarray, spr, col: int, row: int, flip: bool, light: np.ndarray) -> np.ndarray:
    """Alpha-composite a sprite with its top-left at (col, row); returns the clipped box."""
    colour, alpha = (spr.colour[:, ::-1], spr.alpha[:, ::-1]) if flip else (spr.colour, spr.alpha)
    h, w = alpha.shape
    r0, c0 = max(row, 0), max(col, 0)
    r1, c1 = min(row + h, FRAME_SIZE), min(col + w, FRAME_SIZE)
    if r0 >= r1 or c0 >= c1:
        return np.full(4, -1, np.int16)
    a = alpha[r0 - row:r1 - row, c0 - col:c1 - col, None]
    region = frame[r0:r1, c0:c1]
    region *= 1.0 - a
    region += colour[r0 - row:r1 - row, c0 - col:c1 - col] * light
    return np.array([c0, r0, c1, r1], np.int16)


def _draw_actors(frame: np.ndarray, story: Story, shot: Shot, t: int, boxes: np.ndarray) -> None:
    light = np.asarray(character_light(shot.place, shot.time), np.float32)
    cx, cy, ppu = shot.camera.at(float(t))
    for actor in shot.actors[::-1]:  # the subject (actors[0]) is drawn last, in front
        member = story.cast[actor.member]
        kind = KINDS[kind_index(member.kind)]
        x, y = actor.position(t, kind.hover)
        sx, sy = HALF + (x - cx) * ppu, HALF - (y - cy) * ppu
        _shadow(frame, sx, HALF + cy * ppu, 0.45 * kind.footprint * ppu / (1.0 + 1.5 * y))
        scale = int(round(math.exp(round(math.log(ppu * kind.size) / _SPRITE_STEP) * _SPRITE_STEP)))
        spr = sprite(member.kind, member.variant, actor.action,
                     phase_index(actor.action, t, actor.phase0), scale)
        h, w = spr.alpha.shape
        ox, oy = spr.origin
        flip = actor.facing < 0
        col = int(round(sx)) - (w - ox if flip else ox)
        boxes[actor.member] = _blit(frame, spr, col, int(round(sy)) - oy, flip, light)


def render_shot(story: Story, shot_index: int, frames: Sequence[int] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, 64, 64, 3) uint8 and boxes (T, len(cast), 4) int16 of one shot.

    `frames` picks frame indices (default: all FRAMES_PER_SHOT)."""
    shot = story.shots[shot_index]
    ts = np.arange(FRAMES_PER_SHOT) if frames is None else np.asarray(frames, int)
    out = _background(shot, story.layout(shot.place), ts)
    boxes = np.full((len(ts), len(story.cast), 4), -1, np.int16)
    for i, t in enumerate(ts):
        _draw_actors(out[i], story, shot, int(t), boxes[i])
    return np.clip(np.round(out), 0, 255).astype(np.uint8), boxes


def render_story(story: Story) -> tuple[np.ndarray, np.ndarray]:
    """All shots: frames (S, 81, 64, 64, 3) uint8 and boxes (S, 81, len(cast), 4) int16."""
    shots = [render_shot(story, i) for i in range(len(story.shots))]
    return np.stack([f for f, _ in shots]), np.stack([b for _, b in shots])
