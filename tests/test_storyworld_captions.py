"""Story world captions: the official JSON format, vocabulary coverage, paraphrases, label agreement."""
from __future__ import annotations

import re

import numpy as np

from storyworld import sample_story, story_captions, tokenize, vocabulary
from storyworld.captions import (DIRECTION, FRAMING, PLACE, PLACE_OBJECT, PROMPT_TOKENS, TOWARD, references,
                                 shot_caption)

ALLOWED = re.compile(r"^[a-z0-9 ,.:]+$")


def _stories(n: int):
    for split in ("train", "heldout"):
        for i in range(n):
            yield sample_story(9, split, i)


def test_captions_parse_into_the_official_format():
    for story in _stories(40):
        caps = story_captions(story)
        keys = ["global_caption"] + [f"shot{i}" for i in range(1, len(story.shots) + 1)]
        assert list(caps) == keys
        assert 2 <= len(story.shots) <= 8
        for text in caps.values():
            assert text and ALLOWED.match(text), text


def test_every_caption_token_is_in_the_vocabulary():
    vocab = set(vocabulary())
    for story in _stories(150):
        for text in story_captions(story).values():
            assert set(tokenize(text)) <= vocab, set(tokenize(text)) - vocab
    # the runtime prompt is global + "shot{i}:" + caption: its prefix tokens are covered too
    assert {"shot1", "shot8", ":"} <= vocab


def test_vocabulary_is_sorted_unique_tokens_that_fit_the_tiny_text_encoder():
    vocab = vocabulary()
    assert vocab == sorted(set(vocab))
    assert all(re.fullmatch(r"[a-z0-9]+|[,.:]", w) for w in vocab)
    assert {",", ".", ":"} <= set(vocab)
    assert len(vocab) < 500  # the tiny preset's text vocabulary holds 512 entries, specials included


def test_captions_name_the_cast_place_and_framing_of_their_labels():
    for story in _stories(30):
        caps = story_captions(story)
        for member in story.cast:
            assert member.name in caps["global_caption"]
        for i, shot in enumerate(story.shots, start=1):
            text = caps[f"shot{i}"]
            assert any(ref in text for ref in references(story, shot.actors[0].member))
            assert any(p in text for p in PLACE[shot.place] + PLACE_OBJECT[shot.place])
            assert any(f in text for f in FRAMING[shot.framing])


def test_the_same_shot_gets_paraphrased():
    story = sample_story(9, "train", 0)
    texts = {shot_caption(story, story.shots[0], np.random.default_rng(s)) for s in range(20)}
    assert len(texts) >= 5


def test_a_runtime_prompt_fits_the_tiny_text_encoder():
    """<bos> + global caption + "shot", digit, ":" + shot caption stays within the encoder's 80 tokens."""
    for story in _stories(300):
        caps = story_captions(story)
        head = len(tokenize(caps["global_caption"]))
        for i in range(1, len(story.shots) + 1):
            assert head + len(tokenize(caps[f"shot{i}"])) <= PROMPT_TOKENS


def _caption_of(story, shot, seeds=200):
    return [shot_caption(story, shot, np.random.default_rng(s)) for s in range(seeds)]


def test_directions_and_approaches_are_only_said_where_they_are_true():
    """'from the left' means moving right; 'toward X' only when the subject faces X."""
    checked = {"direction": 0, "toward": 0}
    for story in _stories(60):
        for shot in story.shots:
            subject = shot.actors[0]
            wrong = [d.strip() for d in DIRECTION[-subject.facing]]
            captions = _caption_of(story, shot, 30)
            if shot.action in ("walk", "run", "fly"):
                for text in captions:
                    assert not any(text.endswith(w) or f"{w} " in text for w in wrong if "from" in w), text
                    checked["direction"] += any("from" in d and d.strip() in text for d in DIRECTION[subject.facing])
            if len(shot.actors) > 1 and shot.action in TOWARD:
                other = shot.actors[1]
                faces = subject.facing * (other.x - subject.x) > 0
                verbs = {v.split(" {t}")[0] for v, _ in TOWARD[shot.action]}
                targets = references(story, other.member)
                said = any(f" {v} {t}" in text for text in captions for v in verbs for t in targets)
                if not faces:
                    assert not said
                checked["toward"] += said
    assert checked["direction"] > 0 and checked["toward"] > 0


def test_the_grammar_speaks_a_game_writers_words():
    vocab = set(vocabulary())
    writer = ("close up establishing enters leaves crosses approaches into across over from toward towards "
              "through fire sword hero talks fights sunset morning dusk dawn away mage beast push pull")
    assert set(writer.split()) <= vocab, set(writer.split()) - vocab


def test_the_hero_is_the_first_member_the_global_caption_names():
    seen = 0
    for story in _stories(80):
        caps = story_captions(story)
        first = caps["global_caption"].find(story.cast[0].name)
        assert all(0 <= first <= caps["global_caption"].find(m.name) for m in story.cast)
        for i, shot in enumerate(story.shots, start=1):
            if "hero" in caps[f"shot{i}"].replace(" is the hero", "").replace("the hero is", ""):
                seen += 1
                assert any(a.member == 0 for a in shot.actors), caps[f"shot{i}"]
    assert seen > 10
