"""Story world captions: the official JSON format, vocabulary coverage, paraphrases, label agreement."""
from __future__ import annotations

import re

import numpy as np

from storyworld import sample_story, story_captions, tokenize, vocabulary
from storyworld.captions import FRAMING, PLACE, shot_caption

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
            assert story.cast[shot.actors[0].member].kind in text
            assert any(p in text for p in PLACE[shot.place])
            assert any(f in text for f in FRAMING[shot.framing])


def test_the_same_shot_gets_paraphrased():
    story = sample_story(9, "train", 0)
    texts = {shot_caption(story, story.shots[0], np.random.default_rng(s)) for s in range(20)}
    assert len(texts) >= 5
