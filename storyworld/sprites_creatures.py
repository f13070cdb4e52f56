"""The four creature kinds (ghost, dragon, cat, owl), drawn facing right in world units.

They read the same `Pose` as the two-legged kinds, mapped onto their own bodies: a raised front
arm becomes a raised paw or wing, leg swings become a gait or a wobble, `wing` flaps wings.
A dragon's attack is fire from its mouth. Each function returns the point its effects come from.
"""
from __future__ import annotations

import math

from storyworld import palette as P
from storyworld.poses import Pose
from storyworld.raster import Canvas, Point, rotate


def _raised(pose: Pose, fallback: float, cap: float = 2.1) -> float:
    """A front limb follows the arm when the action lifts it (wave, cast, attack), else the gait;
    `cap` keeps a raised paw in front of the body instead of behind the head."""
    return min(pose.arm_front, cap) if pose.arm_front > 1.0 else fallback


def draw_ghost(c: Canvas, pose: Pose) -> Point:
    top = 0.62 + pose.bob - 0.08 * pose.crouch
    lean = 0.25 * pose.lean
    c.capsule((0.0, top - 0.12), rotate((0.0, top - 0.12), pose.arm_back, 0.27), 0.06, P.MAIN_DARK)
    c.circle(lean, top, 0.3, P.MAIN)
    c.polygon([(lean - 0.3, top), (lean + 0.3, top), (0.3, 0.2), (-0.3, 0.2)], P.MAIN)
    wig = 0.06 * math.sin(pose.leg_front * 3.0)
    for i, dx in enumerate((-0.2, 0.0, 0.2)):
        c.circle(dx + (wig if i % 2 else -wig), 0.2, 0.1, P.MAIN)
    c.ellipse(lean + 0.06, top + 0.06, 0.045, 0.075, P.ACCENT)
    c.ellipse(lean + 0.19, top + 0.06, 0.045, 0.075, P.ACCENT)
    mouth = 0.05 + 0.06 * pose.swing
    c.ellipse(lean + 0.14, top - 0.12, 0.05, mouth, P.ACCENT)
    shoulder = (lean + 0.16, top - 0.14)
    hand = rotate(shoulder, _raised(pose, pose.arm_front), 0.26)
    c.capsule(shoulder, hand, 0.065, P.MAIN)
    return hand


def _dragon_wing(c: Canvas, root: Point, flap: float, slot: int) -> None:
    x, y = root
    lift = 0.45 * flap
    c.polygon([(x + 0.05, y), (x - 0.15, y + 0.55 + lift), (x - 0.45, y + 0.2 + 0.6 * lift)], slot)
    c.polygon([(x - 0.1, y - 0.02), (x - 0.45, y + 0.2 + 0.6 * lift), (x - 0.7, y + 0.05 + 0.3 * lift),
               (x - 0.4, y - 0.05)], slot)
    c.capsule((x + 0.05, y), (x - 0.15, y + 0.55 + lift), 0.025, P.MAIN)


def _dragon_legs(c: Canvas, body_y: float, pose: Pose, near: bool) -> None:
    slot = P.MAIN if near else P.MAIN_DARK
    front, hind = (pose.leg_front, pose.leg_back) if near else (pose.leg_back, pose.leg_front)
    if near:
        front = _raised(pose, front)
    bend = 1.2 * pose.tuck
    for x, angle in ((0.22, front), (-0.3, hind)):
        hip = (x + (0.0 if near else 0.06), body_y - 0.1)
        foot = rotate(hip, angle - bend, body_y - 0.07)
        c.capsule(hip, foot, 0.075, slot)
        c.ellipse(foot[0] + 0.04, foot[1], 0.08, 0.04, P.BONE if near else P.MAIN_DARK)


def draw_dragon(c: Canvas, pose: Pose) -> Point:
    by = 0.6 + pose.bob - 0.1 * pose.crouch
    _dragon_wing(c, (0.05, by + 0.22), pose.wing - 0.15, P.MAIN_DARK)
    _dragon_legs(c, by, pose, near=False)
    sway = 0.08 * pose.leg_front
    c.capsule((-0.4, by), (-0.78, by - 0.12 + sway), 0.11, P.MAIN)
    c.capsule((-0.78, by - 0.12 + sway), (-1.08, by - 0.2 + 2 * sway), 0.07, P.MAIN)
    tip = (-1.1, by - 0.21 + 2 * sway)
    c.polygon([(tip[0] + 0.03, tip[1] + 0.1), (tip[0] - 0.17, tip[1]), (tip[0] + 0.03, tip[1] - 0.1)], P.ACCENT)
    for x in (-0.32, -0.12, 0.08):
        c.polygon([(x - 0.07, by + 0.2), (x + 0.07, by + 0.22), (x - 0.02, by + 0.37)], P.ACCENT)
    c.ellipse(-0.05, by, 0.48, 0.27, P.MAIN)
    c.ellipse(0.0, by - 0.1, 0.36, 0.14, P.ACCENT)  # belly
    hx, hy = 0.66 + 0.2 * pose.lean, by + 0.44 - 0.1 * pose.lean
    c.capsule((0.28, by + 0.08), (hx - 0.08, hy - 0.04), 0.13, P.MAIN)  # neck
    c.polygon([(hx - 0.12, hy + 0.08), (hx - 0.2, hy + 0.3), (hx - 0.02, hy + 0.1)], P.BONE)  # horn
    c.ellipse(hx, hy, 0.2, 0.14, P.MAIN)
    c.ellipse(hx + 0.17, hy - 0.04, 0.14, 0.09, P.MAIN)  # snout
    c.circle(hx + 0.02, hy + 0.05, 0.05, P.GLOW)
    c.circle(hx + 0.04, hy + 0.05, 0.022, P.DARK)
    c.circle(hx + 0.26, hy, 0.015, P.DARK)
    mouth = (hx + 0.3, hy - 0.07)
    if pose.effect == "slash":
        c.polygon([(hx + 0.1, hy - 0.07), (mouth[0] + 0.02, hy - 0.03), (mouth[0] + 0.02, hy - 0.13)], P.DARK)
    _dragon_legs(c, by, pose, near=True)
    _dragon_wing(c, (0.15, by + 0.2), pose.wing, P.MAIN_DARK)
    return mouth


def draw_cat(c: Canvas, pose: Pose) -> Point:
    by = 0.33 + pose.bob - 0.08 * pose.crouch
    sway = 0.1 * pose.leg_front
    c.capsule((-0.25, by + 0.03), (-0.4, by + 0.18), 0.045, P.MAIN)  # tail
    c.capsule((-0.4, by + 0.18), (-0.36 + sway, by + 0.38), 0.045, P.MAIN)
    for x, angle, near in ((0.16, pose.leg_back, False), (-0.17, pose.leg_front, False),
                           (0.2, _raised(pose, pose.leg_front), True), (-0.13, pose.leg_back, True)):
        hip = (x, by - 0.04)
        foot = rotate(hip, angle - 1.2 * pose.tuck, by - 0.03)
        c.capsule(hip, foot, 0.045, P.MAIN if near else P.MAIN_DARK)
        c.circle(foot[0] + 0.01, foot[1], 0.045, P.ACCENT)
    c.ellipse(-0.02, by, 0.27, 0.13, P.MAIN)
    c.ellipse(0.13, by - 0.03, 0.1, 0.08, P.ACCENT)  # chest
    hx, hy = 0.28 + 0.1 * pose.lean, by + 0.15
    for ex in (-0.06, 0.06):
        c.polygon([(hx + ex - 0.07, hy + 0.06), (hx + ex + 0.05, hy + 0.08), (hx + ex - 0.03, hy + 0.22)], P.MAIN)
        c.polygon([(hx + ex - 0.04, hy + 0.08), (hx + ex + 0.02, hy + 0.09), (hx + ex - 0.025, hy + 0.16)], P.PINK)
    c.circle(hx, hy, 0.14, P.MAIN)
    c.ellipse(hx + 0.07, hy - 0.05, 0.08, 0.055, P.ACCENT)  # muzzle
    for ex in (0.0, 0.09):
        c.ellipse(hx + ex, hy + 0.03, 0.03, 0.04, P.CAT_EYE)
        c.ellipse(hx + ex + 0.005, hy + 0.03, 0.01, 0.03, P.DARK)
    c.circle(hx + 0.12, hy - 0.03, 0.02, P.PINK)
    return rotate((0.2, by - 0.04), _raised(pose, 1.57), by - 0.03)


def draw_owl(c: Canvas, pose: Pose) -> Point:
    by = 0.38 + pose.bob - 0.06 * pose.crouch
    for foot in (pose.leg_back, pose.leg_front):
        c.ellipse(0.04 + 0.15 * math.sin(foot), 0.03 + 0.1 * pose.tuck, 0.06, 0.03, P.BEAK)
    flap = max(pose.wing, -0.6)
    c.capsule((-0.12, by + 0.1), rotate((-0.12, by + 0.1), -0.4 + 2.0 * flap, 0.3), 0.08, P.MAIN_DARK)
    for ex in (-0.1, 0.18):
        c.polygon([(ex - 0.06, by + 0.2), (ex + 0.04, by + 0.22), (ex - 0.04, by + 0.4)], P.MAIN)
    c.ellipse(0.02, by, 0.23, 0.3, P.MAIN)
    c.ellipse(0.05, by - 0.08, 0.15, 0.19, P.ACCENT)
    for ex in (-0.04, 0.12):
        c.circle(ex, by + 0.14, 0.09, P.ACCENT)
        c.circle(ex, by + 0.14, 0.06, P.GOLD)
        c.circle(ex + 0.01, by + 0.14, 0.03, P.DARK)
    c.polygon([(0.02, by + 0.08), (0.08, by + 0.08), (0.05, by - 0.02)], P.BEAK)
    shoulder = (0.14, by + 0.08)
    wing = _raised(pose, 0.2 + 1.6 * max(flap, 0.0), cap=2.8)
    tip = rotate(shoulder, wing, 0.3)
    c.capsule(shoulder, tip, 0.08, P.MAIN_DARK)
    return tip
