"""Captions in the official ShotStream format, generated from a story's structured description.

A story's captions are {"global_caption": ..., "shot1": ..., "shotN": ...}: the global caption
names the cast (the first named is the story's hero) and the style, each shot caption its framing,
camera move, subject and action, the place, the time of day and who else is there (and where).
Every phrase comes from the tables below, so `vocabulary()` can list every token any caption can
contain; paraphrases are drawn with a generator of their own, so captions vary without changing
what is rendered.

The tables speak the way game writers do about what the world draws: the usual names of framings
and camera moves ("establishing shot", "push in"), verbs of entering, leaving, crossing and
approaching with their prepositions ("enters the cave", "runs across the desert", "walks toward
the wizard"), each kind's own way of acting ("the dragon breathes fire", "the knight swings his
sword"), synonyms for places, times of day and the cast ("the hero", "the mage"), and two characters
as one subject where both are drawn doing it ("the knight and the dragon fight": one strikes, the
other stands facing it). A phrase is only used where it is true of the rendered shot: "toward" and
"talk" only when the subject faces its target, "from the left" only when it moves right. The world
has two outdoor lights, so dawn and morning are day, dusk and sunset are night. Nothing here can
show an over-the-shoulder framing, a character sitting (only the owl perches) or landing, or two
characters both moving, so no caption says so.
Text is lower case; tokens are `[a-z0-9]+` words and the punctuation marks `,` `.` `:`.

Long module: the phrase tables are most of it (data: one table for each thing a caption says, kept together so a
writer reads the world's whole language in one place); the code that composes captions from them is short.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from storyworld.constants import MAX_SHOTS
from storyworld.sampling import story_rng
from storyworld.story import Actor, Shot, Story
from storyworld.world import KINDS, PLACE_NAMES

TOKEN = re.compile(r"[a-z0-9]+|[,.:]")
PUNCTUATION = (",", ".", ":")
_CAPTION_STREAM = 1  # story_rng stream used for paraphrase choices
# A runtime prompt is <bos> + global caption + "shot", digit, ":" + shot caption, within the tiny text
# encoder's 80 tokens; a shot caption that would not fit is drawn again in a shorter form.
PROMPT_TOKENS = 80 - 4

FRAMING = {
    "wide": ("wide shot", "long shot", "establishing shot", "wide view", "full shot", "wide angle shot",
             "extreme wide shot", "long view"),
    "medium": ("medium shot", "mid shot", "medium view", "medium framing", "waist shot"),
    "closeup": ("close up", "closeup", "close up shot", "tight close up", "extreme close up", "tight shot",
                "close shot"),
}
CAMERA = {
    ("static", 0): ("static camera", "the camera holds still", "fixed camera", "locked camera", "still camera",
                    "steady camera", "the camera stays still", "stationary camera", "no camera movement"),
    ("pan", -1): ("the camera pans left", "panning left", "slow pan to the left", "the camera pans to the left",
                  "pan left", "the camera slowly pans left", "the camera tracks left", "tracking shot to the left"),
    ("pan", 1): ("the camera pans right", "panning right", "slow pan to the right", "the camera pans to the right",
                 "pan right", "the camera slowly pans right", "the camera tracks right", "tracking shot to the right"),
    ("zoom", 1): ("the camera zooms in", "zooming in", "slow zoom in", "zoom in", "the camera pushes in", "push in",
                  "the camera slowly zooms in", "the camera moves closer"),
    ("zoom", -1): ("the camera zooms out", "zooming out", "slow zoom out", "zoom out", "the camera pulls back",
                   "pull back", "the camera pulls out", "the camera slowly zooms out"),
}
# (present tense, gerund) pairs, any kind
ACTION = {
    "idle": (("stands still", "standing still"), ("waits quietly", "waiting quietly"),
             ("looks around", "looking around"), ("stands", "standing"), ("waits", "waiting"),
             ("rests", "resting"), ("pauses", "pausing"), ("stays still", "staying still")),
    "walk": (("walks", "walking"), ("strolls along", "strolling along"), ("walks slowly", "walking slowly"),
             ("wanders", "wandering"), ("steps forward", "stepping forward"), ("moves", "moving"),
             ("walks along", "walking along"), ("strolls", "strolling")),
    "run": (("runs", "running"), ("dashes", "dashing"), ("sprints", "sprinting"), ("races", "racing"),
            ("rushes", "rushing"), ("hurries", "hurrying"), ("runs fast", "running fast"),
            ("runs quickly", "running quickly")),
    "jump": (("jumps", "jumping"), ("hops up and down", "hopping up and down"), ("leaps", "leaping"),
             ("bounces", "bouncing"), ("jumps up and down", "jumping up and down"), ("hops", "hopping"),
             ("jumps for joy", "jumping for joy")),
    "wave": (("waves", "waving"), ("waves hello", "waving hello"), ("waves happily", "waving happily"),
             ("waves goodbye", "waving goodbye")),
    "attack": (("attacks", "attacking"), ("strikes", "striking"), ("lunges forward", "lunging forward"),
               ("fights", "fighting"), ("charges", "charging")),
    "cast": (("casts a spell", "casting a spell"), ("casts magic", "casting magic"),
             ("conjures sparkling magic", "conjuring sparkling magic"), ("uses magic", "using magic"),
             ("does magic", "doing magic"), ("casts a magic spell", "casting a magic spell")),
    "fly": (("flies", "flying"), ("soars through the air", "soaring through the air"),
            ("flies above the ground", "flying above the ground"), ("glides", "gliding"), ("hovers", "hovering"),
            ("flies through the air", "flying through the air"), ("soars", "soaring")),
}
# a kind's own way of doing an action (drawn: a knight's sword slash, a dragon's fire, a wizard's staff)
KIND_ACTION = {
    ("knight", "attack"): (("swings his sword", "swinging his sword"),
                           ("slashes with his sword", "slashing with his sword")),
    ("knight", "idle"): (("stands guard", "standing guard"),),
    ("knight", "walk"): (("marches", "marching"),),
    ("robot", "walk"): (("marches", "marching"),),
    ("dragon", "attack"): (("breathes fire", "breathing fire"), ("spits fire", "spitting fire")),
    ("wizard", "cast"): (("waves his staff", "waving his staff"), ("raises his staff", "raising his staff")),
    ("wizard", "attack"): (("swings his staff", "swinging his staff"),),
    ("princess", "wave"): (("waves her hand", "waving her hand"),),
    ("owl", "idle"): (("sits", "sitting"), ("perches", "perching"), ("sits still", "sitting still")),
    ("cat", "attack"): (("pounces", "pouncing"), ("scratches", "scratching")),
    ("dragon", "fly"): (("flaps its wings", "flapping its wings"),),
    ("owl", "fly"): (("flaps its wings", "flapping its wings"),),
    ("ghost", "walk"): (("floats along", "floating along"), ("drifts", "drifting")),
    ("ghost", "fly"): (("floats up high", "floating up high"),),
}
# actions aimed at another character: {t} is the target. "toward" forms only when the subject faces it,
# "away" forms only when it faces away.
TARGETED = {
    "attack": (("attacks {t}", "attacking {t}"), ("strikes at {t}", "striking at {t}"),
               ("lunges at {t}", "lunging at {t}"), ("fights {t}", "fighting {t}"),
               ("charges at {t}", "charging at {t}"), ("hits {t}", "hitting {t}"), ("battles {t}", "battling {t}")),
    "wave": (("waves at {t}", "waving at {t}"), ("waves hello to {t}", "waving hello to {t}"),
             ("greets {t}", "greeting {t}"), ("waves goodbye to {t}", "waving goodbye to {t}"),
             ("says hello to {t}", "saying hello to {t}")),
    "cast": (("casts a spell at {t}", "casting a spell at {t}"), ("casts magic at {t}", "casting magic at {t}"),
             ("casts a spell on {t}", "casting a spell on {t}"), ("uses magic on {t}", "using magic on {t}")),
}
KIND_TARGETED = {
    ("knight", "attack"): (("swings his sword at {t}", "swinging his sword at {t}"),
                           ("slashes at {t}", "slashing at {t}")),
    ("dragon", "attack"): (("breathes fire at {t}", "breathing fire at {t}"), ("spits fire at {t}", "spitting fire at {t}")),
    ("wizard", "cast"): (("points his staff at {t}", "pointing his staff at {t}"),),
    ("cat", "attack"): (("pounces on {t}", "pouncing on {t}"), ("scratches {t}", "scratching {t}")),
}
TOWARD = {
    "idle": (("talks to {t}", "talking to {t}"), ("speaks with {t}", "speaking with {t}"),
             ("chats with {t}", "chatting with {t}"), ("looks at {t}", "looking at {t}"),
             ("watches {t}", "watching {t}"), ("faces {t}", "facing {t}"), ("stands before {t}", "standing before {t}")),
    "walk": (("walks toward {t}", "walking toward {t}"), ("approaches {t}", "approaching {t}"),
             ("walks towards {t}", "walking towards {t}"), ("walks up to {t}", "walking up to {t}"),
             ("heads toward {t}", "heading toward {t}")),
    "run": (("runs toward {t}", "running toward {t}"), ("rushes toward {t}", "rushing toward {t}"),
            ("chases {t}", "chasing {t}"), ("runs up to {t}", "running up to {t}"),
            ("charges toward {t}", "charging toward {t}")),
    "fly": (("flies toward {t}", "flying toward {t}"), ("swoops toward {t}", "swooping toward {t}"),
            ("flies towards {t}", "flying towards {t}")),
}
AWAY = {
    "walk": (("walks away from {t}", "walking away from {t}"), ("moves away from {t}", "moving away from {t}")),
    "run": (("runs away from {t}", "running away from {t}"), ("flees from {t}", "fleeing from {t}"),
            ("escapes from {t}", "escaping from {t}")),
    "fly": (("flies away from {t}", "flying away from {t}"),),
}
MOVING = ("walk", "run", "fly")
DIRECTION = {-1: (" to the left", " toward the left", " towards the left", " from right to left", " in from the right"),
             1: (" to the right", " toward the right", " towards the right", " from left to right", " in from the left")}
# moving through a place: {p} is the place as an object ("enters the cave", "flies over the volcano")
THROUGH = {
    "walk": (("enters {p}", "entering {p}"), ("walks into {p}", "walking into {p}"),
             ("walks through {p}", "walking through {p}"), ("walks across {p}", "walking across {p}"),
             ("crosses {p}", "crossing {p}"), ("leaves {p}", "leaving {p}"), ("walks out of {p}", "walking out of {p}"),
             ("wanders through {p}", "wandering through {p}"), ("heads into {p}", "heading into {p}")),
    "run": (("runs into {p}", "running into {p}"), ("runs through {p}", "running through {p}"),
            ("runs across {p}", "running across {p}"), ("races across {p}", "racing across {p}"),
            ("dashes through {p}", "dashing through {p}"), ("rushes into {p}", "rushing into {p}"),
            ("runs out of {p}", "running out of {p}")),
    "fly": (("flies over {p}", "flying over {p}"), ("flies across {p}", "flying across {p}"),
            ("soars over {p}", "soaring over {p}"), ("flies into {p}", "flying into {p}"),
            ("flies through {p}", "flying through {p}"), ("glides over {p}", "gliding over {p}")),
}
# both the subject and its target as the sentence's subject: only what both are drawn doing (the target
# always stands facing the subject; "talk" also needs the subject to face it)
TOGETHER = {
    "idle": (("talk", "talking"), ("chat", "chatting"), ("stand together", "standing together"),
             ("wait together", "waiting together"), ("look at each other", "looking at each other")),
    "attack": (("fight", "fighting"), ("battle", "battling")),
}
KIND_THROUGH = {("ghost", "idle"): (("haunts {p}", "haunting {p}"),), ("ghost", "walk"): (("haunts {p}", "haunting {p}"),)}
PLACE = {
    "forest": ("in the forest", "in the woods", "among the trees of the forest", "deep in the forest",
               "in a forest"),
    "cave": ("in the cave", "inside a dark cave", "in a rocky cave", "in the cavern", "in a cave",
             "inside the cave"),
    "castle hall": ("in the castle hall", "in the great hall of the castle", "inside the castle", "in the castle",
                    "in the throne room", "at the castle"),
    "desert": ("in the desert", "among the desert dunes", "on the desert sand", "in the dunes", "in a desert"),
    "beach": ("on the beach", "by the sea", "on the sandy beach", "at the beach", "on the shore",
              "by the ocean", "at the seaside"),
    "village": ("in the village", "in the village street", "among the village houses", "in the town",
                "in a village"),
    "snowy mountains": ("in the snowy mountains", "on a snowy mountain", "among the snowy peaks", "in the mountains",
                        "in the snow", "on the mountains"),
    "volcano": ("near the volcano", "by the lava of the volcano", "at the foot of the volcano", "at the volcano",
                "on the volcano", "near the lava"),
}
PLACE_OBJECT = {
    "forest": ("the forest", "the woods", "the trees"),
    "cave": ("the cave", "the dark cave", "the cavern"),
    "castle hall": ("the castle", "the castle hall", "the great hall", "the throne room"),
    "desert": ("the desert", "the dunes", "the sand dunes"),
    "beach": ("the beach", "the shore"),
    "village": ("the village", "the town", "the village street"),
    "snowy mountains": ("the snowy mountains", "the mountains", "the snow"),
    "volcano": ("the volcano", "the lava"),
}
TIME = {
    "day": ("during the day", "in daylight", "by day", "on a sunny day", "in the morning", "in the afternoon",
            "at noon", "at dawn", "at sunrise", "in broad daylight", "in the daytime"),
    "night": ("at night", "by night", "under the night sky", "under the stars", "in the evening", "at dusk",
              "at sunset", "at midnight", "by moonlight", "in the dark", "at nightfall", "after dark",
              "in the moonlight", "as night falls", "when night falls"),
    "indoors": ("",),
}
OTHERS = (", while {o} {watch}", " next to {o}", ", with {o} nearby", ", as {o} {look} on", ", beside {o}",
          " near {o}", ", together with {o}", ", while {o} {stand} by")
WATCH = ("watches", "watch")  # singular, plural
LOOK = ("looks", "look")
STAND = ("stands", "stand")
SLOTS = ("on the left", "in the middle", "on the right")
POSITION_SENTENCE = (" {a} is {pa}, {b} is {pb}.", " {a} stands {pa} and {b} {pb}.",
                     " {a} is {pa} and {b} is {pb}.")
OPENERS = ("", "", "", "then ", "now ", "suddenly ", "meanwhile ")
SHOT_TEMPLATES = (
    "{framing}, {camera}. {opener}{subject} {does}{time}{others}.",
    "{framing} of {subject} {doing}{time}{others}. {camera}.",
    "{place}{time}: {subject} {verb}{others}. {framing}, {camera}.",
    "{opener}{subject} {be} {doing}{time}{others}. {framing}, {camera}.",
    "{camera}, {framing}: {subject} {does}{time}{others}.",
    "{framing} on {subject}, {camera}. {pronoun} {does}{time}{others}.",
)
PRONOUN = {"knight": "he", "wizard": "he", "princess": "she"}  # every other kind is "it", two are "they"
# other names for a kind and a colour; "the hero" is the cast member the global caption names first
KIND_SYNONYMS = {"knight": ("warrior",), "wizard": ("mage", "sorcerer", "magician"), "princess": (),
                 "robot": ("android", "droid"), "ghost": ("spirit", "phantom"), "dragon": ("beast",),
                 "cat": ("kitten", "kitty"), "owl": ("bird",)}
COLOUR_SYNONYMS = {"gold": "golden", "grey": "gray"}
EPITHETS = {"knight": ("brave",), "wizard": ("old", "wise"), "princess": ("young",), "robot": ("little", "metal"),
            "ghost": ("spooky",), "dragon": ("mighty", "fierce", "big"), "cat": ("little",), "owl": ("wise",)}
HERO = ("the hero", "our hero")
STYLE = ("pixel art style", "retro pixel art", "colourful pixel art animation", "storybook pixel art", "pixel art",
         "8 bit pixel art", "retro game style")
GLOBAL_TEMPLATES = ("a story with {cast}, {style}.", "{cast}, {style}.", "starring {cast}. {style}.")
HERO_TEMPLATES = ("{hero} is the hero{rest}. {style}.", "the hero is {hero}{rest}. {style}.",
                  "our hero, {hero}{rest}. {style}.")
HERO_REST = (", with {rest}", ", meeting {rest}", " and meets {rest}")


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _article(noun_phrase: str) -> str:
    return ("an " if noun_phrase[0] in "aeiou" else "a ") + noun_phrase


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def references(story: Story, member: int) -> tuple[str, ...]:
    """Every phrase a caption may use for cast member `member` of `story`."""
    m = story.cast[member]
    colour = COLOUR_SYNONYMS.get(m.colour, m.colour)
    out = ["the " + m.name, "the " + m.kind, f"the {colour} {m.kind}"] + [f"the {s}" for s in KIND_SYNONYMS[m.kind]]
    out += [f"the {e} {m.kind}" for e in EPITHETS[m.kind]]
    return tuple(dict.fromkeys(out + (list(HERO) if member == 0 else [])))


def _ref(story: Story, member: int, rng: np.random.Generator) -> str:
    m = story.cast[member]
    u = rng.random()
    if u < 0.6:
        return "the " + m.name
    if u < 0.8:
        return "the " + m.kind
    if member == 0 and u < 0.9:
        return _pick(rng, HERO)
    synonyms = KIND_SYNONYMS[m.kind]
    if synonyms and u < 0.94:
        return "the " + _pick(rng, synonyms)
    if u < 0.97:
        return f"the {_pick(rng, EPITHETS[m.kind])} {m.kind}"
    return f"the {COLOUR_SYNONYMS.get(m.colour, m.colour)} {m.kind}"


def _faces(subject: Actor, other: Actor) -> bool:
    return subject.facing * (other.x - subject.x) > 0


def _verb_pairs(story: Story, shot: Shot) -> tuple:
    kind = story.cast[shot.actors[0].member].kind
    return ACTION[shot.action] + KIND_ACTION.get((kind, shot.action), ())


def _aimed(story: Story, shot: Shot, rng: np.random.Generator):
    """(present, gerund) aimed at actors[1], or None when no phrase fits or the draw says plain."""
    subject, other = shot.actors[0], shot.actors[1]
    kind = story.cast[subject.member].kind
    options = TARGETED.get(shot.action, ()) + KIND_TARGETED.get((kind, shot.action), ())
    options += (TOWARD if _faces(subject, other) else AWAY).get(shot.action, ())
    if not options or rng.random() >= 0.6:
        return None
    target = _ref(story, other.member, rng)
    verb, gerund = _pick(rng, options)
    return verb.format(t=target), gerund.format(t=target)


@dataclass(frozen=True)
class _Doing:
    does: str  # present tense with the place ("enters the cave", "walks in the forest")
    doing: str  # gerund with the place
    verb: str  # present tense alone (the place said elsewhere)
    place: str
    named: int  # actors the phrase names
    subject: str  # how the sentence names its subject
    plural: bool = False


def _action_phrase(story: Story, shot: Shot, rng: np.random.Generator) -> _Doing:
    subject = shot.actors[0]
    kind = story.cast[subject.member].kind
    place = _pick(rng, PLACE[shot.place])
    me = _ref(story, subject.member, rng)
    if len(shot.actors) > 1:
        other = shot.actors[1]
        together = TOGETHER.get(shot.action, ())
        if shot.action == "idle" and not _faces(subject, other):
            together = together[2:]  # standing or waiting together, not talking
        if together and rng.random() < 0.2:
            verb, gerund = _pick(rng, together)
            both = f"{me} and {_ref(story, other.member, rng)}"
            return _Doing(f"{verb} {place}", f"{gerund} {place}", verb, place, 2, both, plural=True)
        aimed = _aimed(story, shot, rng)
        if aimed is not None:
            verb, gerund = aimed
            return _Doing(f"{verb} {place}", f"{gerund} {place}", verb, place, 2, me)
    verb, gerund = _pick(rng, _verb_pairs(story, shot))
    through = THROUGH.get(shot.action, ()) + KIND_THROUGH.get((kind, shot.action), ())
    if shot.action in MOVING and rng.random() < 0.5:
        direction = _pick(rng, DIRECTION[subject.facing])
        verb, gerund = verb + direction, gerund + direction
    elif through and rng.random() < 0.4:
        obj = _pick(rng, PLACE_OBJECT[shot.place])
        v, g = _pick(rng, through)
        return _Doing(v.format(p=obj), g.format(p=obj), v.format(p=obj), place, 1, me)
    return _Doing(f"{verb} {place}", f"{gerund} {place}", verb, place, 1, me)


def _others(story: Story, shot: Shot, named: int, rng: np.random.Generator) -> str:
    if len(shot.actors) <= named:
        return ""
    names = [_ref(story, a.member, rng) for a in shot.actors[named:]]
    plural = len(names) > 1
    return _pick(rng, OTHERS).format(o=_join(names), watch=WATCH[plural], look=LOOK[plural], stand=STAND[plural])


def _positions(story: Story, shot: Shot, rng: np.random.Generator) -> str:
    if len(shot.actors) != 2 or rng.random() < 0.5:
        return ""
    left, right = sorted(shot.actors, key=lambda a: a.x)
    return _pick(rng, POSITION_SENTENCE).format(a=_ref(story, left.member, rng), pa=SLOTS[0],
                                                b=_ref(story, right.member, rng), pb=SLOTS[2])


def shot_caption(story: Story, shot: Shot, rng: np.random.Generator, budget: int = PROMPT_TOKENS) -> str:
    """One caption of `shot`; drawn again without the position sentence, then without the bystanders,
    while it is longer than `budget` tokens."""
    for plain in range(3):
        act = _action_phrase(story, shot, rng)
        time = _pick(rng, TIME[shot.time])
        others = _others(story, shot, act.named, rng) if plain < 2 else ""
        pronoun = "they" if act.plural else PRONOUN.get(story.cast[shot.actors[0].member].kind, "it")
        text = _pick(rng, SHOT_TEMPLATES).format(
            framing=_pick(rng, FRAMING[shot.framing]),
            camera=_pick(rng, CAMERA[(shot.camera.move, shot.camera.direction)]),
            opener=_pick(rng, OPENERS), subject=act.subject, pronoun=pronoun, be="are" if act.plural else "is",
            does=act.does, doing=act.doing, verb=act.verb, place=act.place, time=" " + time if time else "",
            others=others)
        if plain == 0:
            text += _positions(story, shot, rng)
        if len(tokenize(text)) <= budget:
            return text
    return text


def global_caption(story: Story, rng: np.random.Generator) -> str:
    style = _pick(rng, STYLE)
    if rng.random() < 0.3:
        rest = [_article(m.name) for m in story.cast[1:]]
        tail = _pick(rng, HERO_REST).format(rest=_join(rest)) if rest else ""
        return _pick(rng, HERO_TEMPLATES).format(hero=_article(story.cast[0].name), rest=tail, style=style)
    cast = _join([_article(m.name) for m in story.cast])
    return _pick(rng, GLOBAL_TEMPLATES).format(cast=cast, style=style)


def story_captions(story: Story) -> dict[str, str]:
    """The official JSON form: {"global_caption": str, "shot1": str, ..., "shotN": str}."""
    rng = story_rng(story.seed, story.split, story.index, _CAPTION_STREAM)
    out = {"global_caption": global_caption(story, rng)}
    budget = PROMPT_TOKENS - len(tokenize(out["global_caption"]))
    for i, shot in enumerate(story.shots, start=1):
        out[f"shot{i}"] = shot_caption(story, shot, rng, budget)
    return out


def tokenize(text: str) -> list[str]:
    """Split text the way the tiny text encoder's tokenizer will: lower-case words and , . :"""
    return TOKEN.findall(text.lower())


def _all_phrases() -> list[str]:
    out = [s for t in (FRAMING, CAMERA, PLACE, PLACE_OBJECT, TIME) for options in t.values() for s in options]
    for table in (ACTION, KIND_ACTION, TARGETED, KIND_TARGETED, TOWARD, AWAY, THROUGH, TOGETHER, KIND_THROUGH):
        out += [s for options in table.values() for pair in options for s in pair]
    out += [s for options in DIRECTION.values() for s in options]
    out += list(OTHERS) + list(WATCH) + list(LOOK) + list(STAND) + list(SLOTS) + list(POSITION_SENTENCE)
    out += list(OPENERS) + list(SHOT_TEMPLATES) + list(STYLE) + list(GLOBAL_TEMPLATES) + list(HERO_TEMPLATES)
    out += list(HERO_REST) + list(HERO) + [s for names in KIND_SYNONYMS.values() for s in names]
    out += list(COLOUR_SYNONYMS.values()) + list(PRONOUN.values()) + ["it they are"]
    out += [e for names in EPITHETS.values() for e in names]
    out += ["a an the and is"] + [k.name for k in KINDS] + [c for k in KINDS for c in k.colours]
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
