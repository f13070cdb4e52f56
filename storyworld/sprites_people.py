"""The four two-legged kinds (knight, wizard, princess, robot), drawn facing right in world units.

They share one rig (`Rig`): hips, shoulders and head placed from a `Pose`; each kind dresses it
in its own silhouette: helmet, plume and shield; pointed hat, beard and staff; crown and wide
skirt; box body and antenna. Every draw function paints palette slots and returns the point its
effects (sparkles, slashes) come from.
"""
from __future__ import annotations

from dataclasses import dataclass

from storyworld import palette as P
from storyworld.poses import Pose
from storyworld.raster import Canvas, Point, rotate

THIGH = SHIN = 0.2
ARM = 0.3
SHOULDER_Y = 0.72  # above the hip line at rest


@dataclass(frozen=True)
class Rig:
    hip: Point
    shoulder: Point
    head: Point
    foot_front: Point
    foot_back: Point
    knee_front: Point
    knee_back: Point
    hand_front: Point
    hand_back: Point


def _leg(hip: Point, angle: float, pose: Pose) -> tuple[Point, Point]:
    thigh = angle + 1.3 * pose.tuck + 0.7 * pose.crouch
    shin = angle - 0.6 * pose.tuck - 0.6 * pose.crouch
    knee = rotate(hip, thigh, THIGH)
    return knee, rotate(knee, shin, SHIN)


def rig(pose: Pose) -> Rig:
    """Place the joints so that the lower foot stands on y = 0 (airborne poses keep hips at 0.42)."""
    probe = (0.0, 0.0)
    _, ff = _leg(probe, pose.leg_front, pose)
    _, fb = _leg(probe, pose.leg_back, pose)
    hip_y = 0.42 if pose.tuck > 0 else max(-ff[1], -fb[1]) + 0.035
    hip = (0.0, hip_y + pose.bob)
    rise = SHOULDER_Y - 0.40
    shoulder = (pose.lean * rise, hip[1] + rise)
    head = (shoulder[0] + pose.lean * 0.15 + 0.01, shoulder[1] + 0.14)
    kf, ff = _leg(hip, pose.leg_front, pose)
    kb, fb = _leg(hip, pose.leg_back, pose)
    return Rig(hip, shoulder, head, ff, fb, kf, kb,
               rotate(shoulder, pose.arm_front, ARM), rotate(shoulder, pose.arm_back, ARM))


def _legs(c: Canvas, r: Rig, front: bool, slot: int, boot: int, width: float = 0.055) -> None:
    knee, foot = (r.knee_front, r.foot_front) if front else (r.knee_back, r.foot_back)
    c.capsule(r.hip, knee, width, slot)
    c.capsule(knee, foot, width, slot)
    c.ellipse(foot[0] + 0.03, foot[1] + 0.005, 0.07, 0.035, boot)


def _torso(c: Canvas, r: Rig, half_hip: float, half_shoulder: float, slot: int) -> None:
    (hx, hy), (sx, sy) = r.hip, r.shoulder
    c.polygon([(hx - half_hip, hy - 0.03), (hx + half_hip, hy - 0.03),
               (sx + half_shoulder, sy), (sx - half_shoulder, sy)], slot)


def draw_knight(c: Canvas, pose: Pose) -> Point:
    r = rig(pose)
    _legs(c, r, False, P.METAL_DARK, P.DARK)
    c.capsule(r.shoulder, r.hand_back, 0.05, P.METAL_DARK)
    _torso(c, r, 0.12, 0.14, P.METAL)
    _torso(c, r, 0.08, 0.09, P.MAIN)  # tabard
    c.rect(r.hip[0] - 0.12, r.hip[1] - 0.01, r.hip[0] + 0.12, r.hip[1] + 0.03, P.DARK)
    hx, hy = r.head
    c.ellipse(hx - 0.07, hy + 0.15, 0.13, 0.055, P.MAIN)  # plume
    c.capsule((hx - 0.15, hy + 0.13), (hx - 0.22, hy + 0.02), 0.04, P.MAIN)
    c.circle(hx, hy, 0.135, P.METAL)
    c.rect(hx + 0.02, hy - 0.01, hx + 0.14, hy + 0.035, P.DARK)  # visor slit
    _legs(c, r, True, P.METAL, P.DARK)
    sx, sy = r.shoulder[0] + 0.14, r.hip[1] + 0.14  # shield on the chest
    c.polygon([(sx - 0.12, sy + 0.14), (sx + 0.12, sy + 0.14), (sx + 0.12, sy - 0.02),
               (sx, sy - 0.17), (sx - 0.12, sy - 0.02)], P.METAL_DARK)
    c.polygon([(sx - 0.09, sy + 0.11), (sx + 0.09, sy + 0.11), (sx + 0.09, sy - 0.01),
               (sx, sy - 0.13), (sx - 0.09, sy - 0.01)], P.MAIN)
    c.rect(sx - 0.017, sy - 0.1, sx + 0.017, sy + 0.1, P.ACCENT)
    c.rect(sx - 0.07, sy + 0.02, sx + 0.07, sy + 0.055, P.ACCENT)
    blade = pose.arm_front + 1.9 * min(1.0, max(0.0, (2.4 - pose.arm_front) / 2.0))  # raised: up the arm
    c.capsule(rotate(r.hand_front, blade, 0.05), rotate(r.hand_front, blade, 0.46), 0.028, P.BLADE)
    c.capsule(rotate(r.hand_front, blade - 1.57, 0.07), rotate(r.hand_front, blade + 1.57, 0.07),
              0.022, P.GOLD)
    c.capsule(r.shoulder, r.hand_front, 0.05, P.METAL)
    c.circle(*r.hand_front, 0.045, P.METAL_DARK)
    return rotate(r.hand_front, blade, 0.3)


def draw_wizard(c: Canvas, pose: Pose) -> Point:
    r = rig(pose)
    c.capsule(r.shoulder, r.hand_back, 0.06, P.MAIN_DARK)
    for foot in (r.foot_back, r.foot_front):
        c.ellipse(foot[0] + 0.04, 0.03, 0.07, 0.035, P.DARK)
    sway = 0.12 * (r.foot_front[0] + r.foot_back[0])
    (hx, hy), (sx, sy) = r.hip, r.shoulder
    c.polygon([(sx - 0.11, sy), (sx + 0.11, sy), (hx + 0.24 + sway, 0.05), (hx - 0.24 + sway, 0.05)],
              P.MAIN)
    c.rect(hx - 0.2 + sway, 0.05, hx + 0.2 + sway, 0.09, P.ACCENT)  # hem trim
    c.rect(hx - 0.14, hy + 0.02, hx + 0.14, hy + 0.05, P.ACCENT)  # belt
    x, y = r.head
    c.circle(x, y, 0.11, P.SKIN)
    c.polygon([(x - 0.02, y - 0.02), (x + 0.13, y - 0.04), (x + 0.05, y - 0.26)], P.WHITE)  # beard
    c.circle(x + 0.06, y + 0.03, 0.018, P.DARK)
    c.ellipse(x - 0.01, y + 0.08, 0.21, 0.045, P.MAIN_DARK)  # brim
    c.polygon([(x - 0.14, y + 0.09), (x + 0.12, y + 0.09), (x - 0.12, y + 0.47)], P.MAIN)
    c.star(x - 0.04, y + 0.2, 0.05, P.ACCENT)
    hand = r.hand_back
    c.capsule((hand[0] + 0.02, hand[1] - 0.4), (hand[0] + 0.02, hand[1] + 0.48), 0.025, P.WOOD)
    c.circle(hand[0] + 0.02, hand[1] + 0.52, 0.065, P.GLOW)
    c.circle(*hand, 0.04, P.SKIN)
    c.capsule(r.shoulder, r.hand_front, 0.06, P.MAIN)
    c.circle(*r.hand_front, 0.04, P.SKIN)
    return rotate(r.hand_front, pose.arm_front, 0.12)


def draw_princess(c: Canvas, pose: Pose) -> Point:
    r = rig(pose)
    x, y = r.head
    c.ellipse(x - 0.07, y - 0.12, 0.13, 0.24, P.HAIR)  # long hair behind
    c.capsule(r.shoulder, r.hand_back, 0.035, P.SKIN)
    for foot in (r.foot_back, r.foot_front):
        c.ellipse(foot[0] + 0.04, 0.03, 0.06, 0.03, P.MAIN_DARK)
    sway = 0.12 * (r.foot_front[0] + r.foot_back[0])
    (hx, hy), (sx, sy) = r.hip, r.shoulder
    c.polygon([(hx - 0.09, hy + 0.12), (hx + 0.09, hy + 0.12), (hx + 0.3 + sway, 0.05),
               (hx - 0.3 + sway, 0.05)], P.MAIN)
    c.rect(hx - 0.27 + sway, 0.05, hx + 0.27 + sway, 0.1, P.ACCENT)
    c.polygon([(hx - 0.08, hy + 0.12), (hx + 0.08, hy + 0.12), (sx + 0.1, sy), (sx - 0.1, sy)], P.MAIN)
    c.circle(sx - 0.05, sy - 0.01, 0.06, P.MAIN_LIGHT)  # puffed sleeve
    c.circle(x, y, 0.11, P.SKIN)
    c.ellipse(x - 0.03, y + 0.06, 0.12, 0.07, P.HAIR)  # fringe
    c.circle(x + 0.06, y + 0.01, 0.018, P.DARK)
    c.circle(x + 0.07, y - 0.05, 0.02, P.PINK)
    c.polygon([(x - 0.1, y + 0.1), (x + 0.08, y + 0.1), (x + 0.08, y + 0.17), (x - 0.1, y + 0.17)], P.GOLD)
    for dx in (-0.1, -0.01, 0.08):
        c.polygon([(x + dx - 0.03, y + 0.16), (x + dx + 0.03, y + 0.16), (x + dx, y + 0.24)], P.GOLD)
    c.circle(x - 0.01, y + 0.135, 0.02, P.RED)
    c.capsule(r.shoulder, r.hand_front, 0.035, P.SKIN)
    c.circle(sx + 0.02, sy - 0.01, 0.06, P.MAIN_LIGHT)
    return rotate(r.hand_front, pose.arm_front, 0.1)


def draw_robot(c: Canvas, pose: Pose) -> Point:
    r = rig(pose)
    _legs(c, r, False, P.METAL_DARK, P.DARK, 0.05)
    c.capsule(r.shoulder, r.hand_back, 0.045, P.METAL_DARK)
    (hx, hy), (sx, sy) = r.hip, r.shoulder
    c.polygon([(hx - 0.16, hy - 0.03), (hx + 0.16, hy - 0.03), (sx + 0.17, sy + 0.02),
               (sx - 0.17, sy + 0.02)], P.MAIN)
    c.rect(sx - 0.03, hy + 0.08, sx + 0.13, sy - 0.06, P.DARK)  # chest panel
    c.rect(sx, hy + 0.19, sx + 0.04, sy - 0.09, P.RED)
    c.rect(sx + 0.06, hy + 0.19, sx + 0.1, sy - 0.09, P.ACCENT)
    x, y = r.head
    c.capsule((x - 0.02, y + 0.1), (x - 0.05, y + 0.25), 0.014, P.METAL_DARK)  # antenna
    c.circle(x - 0.05, y + 0.26, 0.04, P.RED)
    c.rect(x - 0.13, y - 0.1, x + 0.14, y + 0.12, P.MAIN)
    c.rect(x - 0.02, y - 0.02, x + 0.14, y + 0.06, P.DARK)  # visor
    c.rect(x + 0.03, y, x + 0.07, y + 0.04, P.CYAN)
    c.rect(x + 0.09, y, x + 0.13, y + 0.04, P.CYAN)
    _legs(c, r, True, P.METAL, P.DARK, 0.05)
    c.capsule(r.shoulder, r.hand_front, 0.045, P.METAL)
    c.circle(*r.hand_front, 0.05, P.METAL_DARK)
    return rotate(r.hand_front, pose.arm_front, 0.12)
