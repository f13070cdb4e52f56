"""How each action moves a character: limb poses per animation phase and motion through the world.

An action is a loop of `PHASES` poses played at its own period. A `Pose` holds limb angles and
effect switches that every kind's drawing reads in its own way (a knight swings a sword where a
dragon breathes fire). Displacement (walking, jumping, flying) is a pure function of the frame
index, so any frame of a shot can be rendered without simulating the ones before it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

PHASES = 12  # poses per animation loop

# frames per animation loop, and how the action moves the character
PERIOD = {"idle": 24, "walk": 10, "run": 6, "jump": 12, "wave": 8, "attack": 12, "cast": 9, "fly": 8}
SCREEN_TRAVEL = {"walk": 16.0, "run": 30.0, "fly": 12.0}  # pixels crossed over a whole shot
JUMP_HEIGHT = 0.45  # world units at the top of a hop
FLY_ALTITUDE = 0.7


@dataclass(frozen=True)
class Pose:
    """Angles in radians: 0 = hanging straight down, +pi/2 = pointing forward, pi = up."""

    leg_front: float = 0.0
    leg_back: float = 0.0
    arm_front: float = 0.15
    arm_back: float = -0.15
    bob: float = 0.0  # body lift in units (breathing, stride)
    crouch: float = 0.0  # 0..1, bends the legs before a hop
    lean: float = 0.0  # forward lean in radians
    wing: float = 0.0  # wing raise, -1 (down) .. 1 (up)
    swing: float = 0.0  # 0..1 progress of an attack stroke
    effect: str = ""  # "", "sparkle", "speed", "slash", "fire"
    effect_phase: int = 0
    tuck: float = 0.0  # legs drawn up (airborne)


def _idle(p: float) -> Pose:
    return Pose(arm_front=0.12, arm_back=-0.12)  # still: any motion means another action


def _walk(p: float) -> Pose:
    s = math.sin(2 * math.pi * p)
    return Pose(leg_front=0.45 * s, leg_back=-0.45 * s, arm_front=-0.4 * s, arm_back=0.4 * s,
                bob=0.02 * abs(math.cos(2 * math.pi * p)), wing=0.15 * s)


def _run(p: float) -> Pose:
    s = math.sin(2 * math.pi * p)
    return Pose(leg_front=0.95 * s, leg_back=-0.95 * s, arm_front=0.4 - 1.0 * s, arm_back=0.4 + 1.0 * s,
                bob=0.05 * abs(math.cos(2 * math.pi * p)), lean=0.3, wing=0.4 * s,
                effect="speed", effect_phase=int(p * PHASES) % 3)


def _jump(p: float) -> Pose:
    if p < 0.25:  # crouch on the ground
        return Pose(crouch=math.sin(math.pi * p / 0.25), arm_front=-0.5, arm_back=-0.7)
    return Pose(arm_front=2.6, arm_back=2.3, tuck=math.sin(math.pi * (p - 0.25) / 0.75), wing=0.8)


def _wave(p: float) -> Pose:
    return Pose(arm_front=2.5 + 0.6 * math.sin(2 * math.pi * p), arm_back=-0.12, wing=0.0,
                bob=0.02 * abs(math.sin(2 * math.pi * p)))


def _attack(p: float) -> Pose:
    # wind up (0..0.35), strike (0.35..0.6), recover
    if p < 0.35:
        arm, swing = 0.15 + 2.6 * (p / 0.35), 0.0
    elif p < 0.6:
        arm, swing = 2.75 - 2.4 * ((p - 0.35) / 0.25), (p - 0.35) / 0.25
    else:
        arm, swing = 0.35 - 0.2 * ((p - 0.6) / 0.4), 1.0 - (p - 0.6) / 0.4
    return Pose(arm_front=arm, arm_back=0.5, lean=0.15 * swing, swing=swing,
                effect="slash" if 0.3 <= p < 0.85 else "", effect_phase=int(p * PHASES),
                leg_front=0.3, leg_back=-0.25)


def _cast(p: float) -> Pose:
    s = math.sin(2 * math.pi * p)
    return Pose(arm_front=1.9 + 0.15 * s, arm_back=1.6 - 0.15 * s, effect="sparkle",
                effect_phase=int(p * PHASES), wing=0.5 + 0.2 * s)


def _fly(p: float) -> Pose:
    s = math.sin(2 * math.pi * p)
    return Pose(arm_front=2.2, arm_back=1.9, leg_front=-0.6, leg_back=-0.8, lean=0.25,
                wing=s, tuck=0.3)


_POSERS = {"idle": _idle, "walk": _walk, "run": _run, "jump": _jump, "wave": _wave,
           "attack": _attack, "cast": _cast, "fly": _fly}


@lru_cache(maxsize=None)
def pose(action: str, phase_index: int) -> Pose:
    """The pose of `action` at loop step `phase_index` (0..PHASES-1)."""
    return _POSERS[action]((phase_index % PHASES) / PHASES)


def phase_at(action: str, frame: int, phase0: float) -> float:
    return (phase0 + frame / PERIOD[action]) % 1.0


def phase_index(action: str, frame: int, phase0: float) -> int:
    return int(phase_at(action, frame, phase0) * PHASES) % PHASES


def altitude(action: str, frame: int, phase0: float) -> float:
    """Height of the feet above the character's resting altitude, in world units."""
    p = phase_at(action, frame, phase0)
    if action == "jump":
        return JUMP_HEIGHT * math.sin(math.pi * (p - 0.25) / 0.75) if p >= 0.25 else 0.0
    if action == "fly":
        return FLY_ALTITUDE + 0.05 * math.sin(2 * math.pi * p)
    return 0.0
