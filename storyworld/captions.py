"""Captions in the official ShotStream format, generated from a story's structured description.

A story's captions are {"global_caption": ..., "shot1": ..., "shotN": ...}: the global caption
names the cast and the style, each shot caption its framing, camera move, subject and action,
the place, the time of day and who else is there (and where). Every phrase comes from the tables
below, so `vocabulary()` can list every token any caption can contain; paraphrases are drawn with
a generator of their own, so captions vary without changing what is rendered.
Text is lower case; tokens are `[a-z0-9]+` words and the punctuation marks `,` `.` `:`.
"""
from __future__ import annotations

import re
import string
from functools import lru_cache

import numpy as np

from storyworld.constants import MAX_SHOTS
from storyworld.sampling import story_rng
from storyworld.story import Shot, Story
from storyworld.world import KINDS, PLACE_NAMES

TOKEN = re.compile(r"[a-z0-9]+|[,.:]")
PUNCTUATION = (",", ".", ":")
_CAPTION_STREAM = 1  # story_rng stream used for paraphrase choices

FRAMING = {
    "wide": ("wide shot", "long shot", "establishing shot", "wide view"),
    "medium": ("medium shot", "mid shot", "medium view"),
    "closeup": ("close up", "closeup", "close up shot", "tight close up"),
}
CAMERA = {
    ("static", 0): ("static camera", "the camera holds still", "fixed camera", "locked camera"),
    ("pan", -1): ("the camera pans left", "panning left", "slow pan to the left"),
    ("pan", 1): ("the camera pans right", "panning right", "slow pan to the right"),
    ("zoom", 1): ("the camera zooms in", "zooming in", "slow zoom in"),
    ("zoom", -1): ("the camera zooms out", "zooming out", "slow zoom out"),
}
# (present tense, gerund) pairs
ACTION = {
    "idle": (("stands still", "standing still"), ("waits quietly", "waiting quietly"),
             ("looks around", "looking around")),
    "walk": (("walks", "walking"), ("strolls along", "strolling along"), ("walks slowly", "walking slowly")),
    "run": (("runs", "running"), ("dashes", "dashing"), ("sprints", "sprinting")),
    "jump": (("jumps", "jumping"), ("hops up and down", "hopping up and down"), ("leaps", "leaping")),
    "wave": (("waves", "waving"), ("waves hello", "waving hello"), ("waves happily", "waving happily")),
    "attack": (("attacks", "attacking"), ("strikes", "striking"), ("lunges forward", "lunging forward")),
    "cast": (("casts a spell", "casting a spell"), ("casts magic", "casting magic"),
             ("conjures sparkling magic", "conjuring sparkling magic")),
    "fly": (("flies", "flying"), ("soars through the air", "soaring through the air"),
            ("flies above the ground", "flying above the ground")),
}
TARGETED = {  # actions aimed at another character: {t} is the target
    "attack": (("attacks {t}", "attacking {t}"), ("strikes at {t}", "striking at {t}"),
               ("lunges at {t}", "lunging at {t}")),
    "wave": (("waves at {t}", "waving at {t}"), ("waves hello to {t}", "waving hello to {t}")),
    "cast": (("casts a spell at {t}", "casting a spell at {t}"), ("casts magic at {t}", "casting magic at {t}")),
}
MOVING = ("walk", "run", "fly")
DIRECTION = {-1: " to the left", 1: " to the right"}
PLACE = {
    "forest": ("in the forest", "in the woods", "among the trees of the forest"),
    "cave": ("in the cave", "inside a dark cave", "in a rocky cave"),
    "castle hall": ("in the castle hall", "in the great hall of the castle", "inside the castle"),
    "desert": ("in the desert", "among the desert dunes", "on the desert sand"),
    "beach": ("on the beach", "by the sea", "on the sandy beach"),
    "village": ("in the village", "in the village street", "among the village houses"),
    "snowy mountains": ("in the snowy mountains", "on a snowy mountain", "among the snowy peaks"),
    "volcano": ("near the volcano", "by the lava of the volcano", "at the foot of the volcano"),
}
TIME = {
    "day": ("during the day", "in daylight", "by day", "on a sunny day"),
    "night": ("at night", "by night", "under the night sky", "under the stars"),
    "indoors": ("",),
}
OTHERS = (", while {o} {watch}", " next to {o}", ", with {o} nearby", ", as {o} {look} on")
WATCH = ("watches", "watch")  # singular, plural
LOOK = ("looks", "look")
SLOTS = ("on the left", "in the middle", "on the right")
POSITION_SENTENCE = (" {a} is {pa}, {b} is {pb}.", " {a} stands {pa} and {b} {pb}.")
SHOT_TEMPLATES = (
    "{framing}, {camera}. {subject} {verb} {place}{time}{others}.",
    "{framing} of {subject} {gerund} {place}{time}{others}. {camera}.",
    "{place}{time}: {subject} {verb}{others}. {framing}, {camera}.",
)
STYLE = ("pixel art style", "retro pixel art", "colourful pixel art animation", "storybook pixel art")
GLOBAL_TEMPLATES = ("a story with {cast}, {style}.", "{cast}, {style}.", "starring {cast}. {style}.")


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _article(noun_phrase: str) -> str:
    return ("an " if noun_phrase[0] in "aeiou" else "a ") + noun_phrase


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _ref(story: Story, member: int, rng: np.random.Generator) -> str:
    m = story.cast[member]
    return "the " + (m.name if rng.random() < 0.75 else m.kind)


def _action_phrase(story: Story, shot: Shot, rng: np.random.Generator) -> tuple[str, str, int]:
    """(present, gerund, how many actors the phrase already names)."""
    subject = shot.actors[0]
    if shot.action in TARGETED and len(shot.actors) > 1 and rng.random() < 0.6:
        target = _ref(story, shot.actors[1].member, rng)
        verb, gerund = _pick(rng, TARGETED[shot.action])
        return verb.format(t=target), gerund.format(t=target), 2
    verb, gerund = _pick(rng, ACTION[shot.action])
    if shot.action in MOVING and rng.random() < 0.5:
        return verb + DIRECTION[subject.facing], gerund + DIRECTION[subject.facing], 1
    return verb, gerund, 1


def _others(story: Story, shot: Shot, named: int, rng: np.random.Generator) -> str:
    if len(shot.actors) <= named:
        return ""
    names = [_ref(story, a.member, rng) for a in shot.actors[named:]]
    plural = len(names) > 1
    return _pick(rng, OTHERS).format(o=_join(names), watch=WATCH[plural], look=LOOK[plural])


def _positions(story: Story, shot: Shot, rng: np.random.Generator) -> str:
    if len(shot.actors) != 2 or rng.random() < 0.5:
        return ""
    left, right = sorted(shot.actors, key=lambda a: a.x)
    return _pick(rng, POSITION_SENTENCE).format(a=_ref(story, left.member, rng), pa=SLOTS[0],
                                                b=_ref(story, right.member, rng), pb=SLOTS[2])


def shot_caption(story: Story, shot: Shot, rng: np.random.Generator) -> str:
    verb, gerund, named = _action_phrase(story, shot, rng)
    time = _pick(rng, TIME[shot.time])
    text = _pick(rng, SHOT_TEMPLATES).format(
        framing=_pick(rng, FRAMING[shot.framing]),
        camera=_pick(rng, CAMERA[(shot.camera.move, shot.camera.direction)]),
        subject=_ref(story, shot.actors[0].member, rng), verb=verb, gerund=gerund,
        place=_pick(rng, PLACE[shot.place]), time=" " + time if time else "",
        others=_others(story, shot, named, rng))
    return text + _positions(story, shot, rng)


def global_caption(story: Story, rng: np.random.Generator) -> str:
    cast = _join([_article(m.name) for m in story.cast])
    return _pick(rng, GLOBAL_TEMPLATES).format(cast=cast, style=_pick(rng, STYLE))


def story_captions(story: Story) -> dict[str, str]:
    """The official JSON form: {"global_caption": str, "shot1": str, ..., "shotN": str}."""
    rng = story_rng(story.seed, story.split, story.index, _CAPTION_STREAM)
    out = {"global_caption": global_caption(story, rng)}
    for i, shot in enumerate(story.shots, start=1):
        out[f"shot{i}"] = shot_caption(story, shot, rng)
    return out


def tokenize(text: str) -> list[str]:
    """Split text the way the tiny text encoder's tokenizer will: lower-case words and , . :"""
    return TOKEN.findall(text.lower())


def _all_phrases() -> list[str]:
    tables = [FRAMING, CAMERA, PLACE, TIME]
    out = [s for t in tables for options in t.values() for s in options]
    for table in (ACTION, TARGETED):
        out += [s for options in table.values() for pair in options for s in pair]
    out += list(OTHERS) + list(WATCH) + list(LOOK) + list(SLOTS) + list(POSITION_SENTENCE)
    out += list(SHOT_TEMPLATES) + list(STYLE) + list(GLOBAL_TEMPLATES) + list(DIRECTION.values())
    out += ["a an the and"] + [k.name for k in KINDS] + [c for k in KINDS for c in k.colours]
    out += list(PLACE_NAMES) + [f"shot{i}:" for i in range(1, MAX_SHOTS + 1)]
    return out


@lru_cache(maxsize=None)
def _vocabulary() -> tuple[str, ...]:
    words: set[str] = set(PUNCTUATION)
    for phrase in _all_phrases():
        plain = re.sub(r"\{[a-z]+\}", " ", phrase)  # template slots are filled from the tables
        if set(plain) - set(string.ascii_lowercase + string.digits + " ,.:"):
            raise AssertionError(f"phrase {phrase!r} has characters the tokenizer does not keep")
        words.update(tokenize(plain))
    return tuple(sorted(words))


def vocabulary() -> list[str]:
    """Every token any caption generator here can emit (plus the `shot{i}` prompt prefixes),
    sorted. The text encoder's tokenizer is built from this list."""
    return list(_vocabulary())
