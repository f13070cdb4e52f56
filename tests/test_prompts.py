"""Prompts as writers type them: how text splits into the vocabulary's pieces, the strict and lenient modes,
and what a story keeps of a lenient prompt. Unknown words here are invented ("zorblax"), so these tests hold
whatever words the vocabulary grows."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import CAPTION, collect
from runtime.errors import InvalidPromptError, UnknownWordsError
from runtime.text import Tokenizer, split_words

WORDS = ", . : 0 1 2 3 4 5 6 7 8 9 a the knight dragon close up walks in cave shot".split()


@pytest.fixture
def tokenizer():
    return Tokenizer(WORDS, text_len=16)


@pytest.mark.parametrize("text, pieces", [
    ("Close-up: The KNIGHT walks", ["close", "up", ":", "the", "knight", "walks"]),
    ("the knight's cave", ["the", "knight", "cave"]),
    ("the knights' cave", ["the", "knights", "cave"]),
    ("the knight \u2019s cave", ["the", "knight", "s", "cave"]),
    ("the knight walks - in the cave", ["the", "knight", "walks", "in", "the", "cave"]),
    ("walks -- in \u2014 the \u2013 cave", ["walks", "in", "the", "cave"]),
    ("walks! in? the; cave...", ["walks", ".", "in", ".", "the", ".", "cave", "."]),
    ("what?! no\u2026", ["what", ".", "no", "."]),
    ('"the (knight)" [walks]', ["the", "knight", "walks"]),
    ("Caf\u00e9 d\u00e9j\u00e0", ["cafe", "deja"]),
    ("shot12:", ["shot", "1", "2", ":"]),
    ("a & b", ["a", "&", "b"]),
    ("-", []),
])
def test_text_splits_as_a_writer_means_it(text, pieces):
    assert split_words(text) == pieces


def test_strict_refuses_and_lists_unknown_words(tokenizer):
    with pytest.raises(UnknownWordsError) as err:
        tokenizer.check("The zorblax walks in the Quuxcave, zorblax!", "strict")
    assert err.value.words == ["zorblax", "quuxcave"]


def test_lenient_drops_unknown_words_and_reports_them(tokenizer):
    check = tokenizer.check("Close-up: the Zorblax knight walks in the quuxcave!", "lenient")
    assert check.dropped == ("zorblax", "quuxcave")
    assert check.text == "close up : the knight walks in the ."
    assert check.tokens == 1 + len(check.text.split())
    assert np.array_equal(tokenizer.encode("Close-up: the Zorblax knight walks in the quuxcave!", mode="lenient"),
                          tokenizer.encode(check.text))


def test_a_known_prompt_is_the_same_in_both_modes(tokenizer):
    text = "the knight walks in the cave"
    assert tokenizer.check(text, "lenient") == tokenizer.check(text, "strict")
    assert tokenizer.check(text, "strict").dropped == ()


@pytest.mark.parametrize("text", ["", "  -  ", "zorblax quux", "zorblax, quux."])
def test_lenient_still_refuses_a_prompt_with_nothing_known_left(tokenizer, text):
    with pytest.raises(InvalidPromptError) as err:
        tokenizer.check(text, "lenient")
    assert not isinstance(err.value, UnknownWordsError)


def test_too_long_is_refused_in_both_modes_and_dropped_words_do_not_count(tokenizer):
    for mode in ("strict", "lenient"):
        with pytest.raises(InvalidPromptError, match="tokens"):
            tokenizer.check(" ".join(["knight"] * 16), mode)
    assert tokenizer.check(" ".join(["knight"] * 15 + ["zorblax"] * 10), "lenient").tokens == 16


def test_an_unknown_mode_is_refused(tokenizer):
    with pytest.raises(InvalidPromptError, match="mode"):
        tokenizer.check("the knight", "loose")


FORMS = "the knight wizard and walks walking runs flies evening swings his sword spell locked houses".split()


@pytest.mark.parametrize("written, read", [
    ("walk", "walks"), ("walked", "walks"), ("walks", "walks"), ("walking", "walking"),  # base, -ed, -s, -ing
    ("run", "runs"), ("ran", "runs"), ("running", "runs"),  # irregular past; a doubled consonant
    ("fly", "flies"), ("flew", "flies"), ("flying", "flies"),  # -y -> -ies; no gerund in the vocabulary
    ("knights", "knight"), ("house", "houses"),  # nouns by number
    ("draws", "swings"), ("drawing", "swings"), ("fireball", "spell"),  # the model's synonyms, inflected
    ("starts", ""), ("began", ""),  # aspect verbs read as nothing
])
def test_a_known_word_in_another_form_reads_as_the_vocabulary_form(written, read):
    tokenizer = Tokenizer(FORMS, text_len=16, synonyms={"draw": ("swing",), "fireball": ("spell",),
                                                        "start": (), "begin": ()})
    check = tokenizer.check(f"the knight {written} his sword", "strict")
    assert check.text == " ".join(["the", "knight", *read.split(), "his", "sword"])
    assert check.read_as == (() if read == written else ((written, read),))
    assert check.tokens == 1 + len(check.text.split())


@pytest.mark.parametrize("word", ["even", "lock", "wizards's", "zorblaxes", "kin", "sing"])
def test_a_word_is_not_stretched_to_another_one(word):
    # "even" is not "evening", "lock" not "locked" (only -s forms stand for a plain word); "sing" has no stem
    tokenizer = Tokenizer(FORMS + ["king"], text_len=16)
    assert tokenizer.unknown_words(f"the {word}") == ([] if word == "wizards's" else [word])


def test_synonyms_must_read_as_the_vocabulary(tmp_path):
    with pytest.raises(ValueError, match="zorblax"):
        Tokenizer(FORMS, text_len=16, synonyms={"draw": ("zorblax",)})
    table = tmp_path / "synonyms.txt"
    table.write_text("# comment\ndraw = swing  # the sword\nstart =\n")
    assert Tokenizer.from_file(_vocab(tmp_path), 16, table).synonyms == {"draw": ("swing",), "start": ()}
    table.write_text("draw swing\n")
    with pytest.raises(ValueError, match="synonyms.txt:1"):
        Tokenizer.from_file(_vocab(tmp_path), 16, table)


def _vocab(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(FORMS) + "\n")
    return path


def test_the_refusal_says_where_the_words_are_and_how_to_go_on(tokenizer):
    with pytest.raises(UnknownWordsError) as err:
        tokenizer.check("the zorblax walks", "strict")
    assert "zorblax" in str(err.value)
    assert "shotstream vocab" in str(err.value) and "--prompt-mode lenient" in str(err.value)


def test_every_vocabulary_entry_is_one_piece_as_the_tokenizer_splits_text(ort_engine):
    # A word the splitter cannot produce (e.g. "close-up", "knight's", "Dragon") could never be used.
    assert [w for w in ort_engine.info.vocabulary if split_words(w) != [w]] == []


def test_engine_reports_its_vocabulary_and_checks_in_either_mode(ort_engine):
    vocabulary = ort_engine.info.vocabulary
    assert {",", ".", ":", "knight", "dragon", "walks"} <= set(vocabulary)
    assert "<pad>" not in vocabulary and "zorblax" not in vocabulary
    assert ort_engine.check_prompt("the Knight walks!", "strict").dropped == ()
    assert ort_engine.check_prompt("the zorblax knight walks", "lenient").dropped == ("zorblax",)


def test_a_lenient_story_plays_what_is_left_and_records_the_dropped_words(ort_engine):
    lenient = ort_engine.open_story(seed=3, global_caption="a zorblax knight, pixel art", prompt_mode="lenient")
    strict = ort_engine.open_story(seed=3, global_caption="a knight, pixel art")
    assert lenient.caption_dropped == ("zorblax",)
    assert lenient.check_prompt("the knight zorblaxes in the cave").dropped == ("zorblaxes",)
    with pytest.raises(UnknownWordsError):
        strict.check_prompt("the knight zorblaxes in the cave")
    frames = collect(lenient.generate_shot("The knight zorblaxes in the cave!", chunks=1))
    same = collect(strict.generate_shot("the knight in the cave.", chunks=1))
    assert np.array_equal(frames, same)  # what is left is exactly what the model read
    assert lenient.history[0].dropped == ("zorblaxes",) and strict.history[0].dropped == ()
    with pytest.raises(InvalidPromptError):
        lenient.generate_shot("zorblax quux")


def test_story_check_composes_caption_shot_number_and_prompt(ort_engine):
    story = ort_engine.open_story(seed=0, global_caption=CAPTION)
    text_len = ort_engine.info.text_len
    caption_tokens = ort_engine.check_prompt(CAPTION).tokens - 1
    fits = text_len - caption_tokens - 1 - 3  # <bos>, caption, "shot 1 :"
    assert story.check_prompt(" ".join(["knight"] * fits)).tokens == text_len
    with pytest.raises(InvalidPromptError, match="tokens"):
        story.check_prompt(" ".join(["knight"] * (fits + 1)))
    with pytest.raises(InvalidPromptError, match="tokens"):
        story.check_prompt(" ".join(["knight"] * fits), shot_index=9)  # "shot 1 0 :" is one token more
    ort_engine.check_prompt(" ".join(["knight"] * (fits + 1)))  # the prompt alone fits
