"""The embedded model's language, tried with prompts as game writers type them (tests/data/writer_prompts.txt)."""
from __future__ import annotations

from pathlib import Path

import pytest

from runtime.errors import UnknownWordsError
from runtime.model import load_bundle

PROMPTS = Path(__file__).parent / "data" / "writer_prompts.txt"


def _sections() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    section = None
    for line in PROMPTS.read_text().splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1], [])
        elif line.strip() and not line.startswith("#"):
            section.append(line)
    return out


@pytest.fixture(scope="module")
def tokenizer():
    return load_bundle("tiny").tokenizer


def test_nine_in_ten_prompts_about_the_world_are_accepted_as_typed(tokenizer):
    world = _sections()["world"]
    refused = {}
    for prompt in world:
        try:
            tokenizer.check(prompt, "strict")
        except UnknownWordsError as e:
            refused[prompt] = e.words
    assert len(world) >= 50
    assert len(refused) <= len(world) // 10, refused


def test_lenient_mode_takes_every_prompt_and_names_what_it_dropped(tokenizer):
    sections = _sections()
    for prompt in sections["world"] + sections["beyond"]:
        check = tokenizer.check(prompt, "lenient")
        assert set(check.dropped) == set(tokenizer.unknown_words(prompt))
        assert not set(check.text.split()) & set(check.dropped)
    for prompt in sections["beyond"]:  # the words the world cannot draw are the ones dropped
        assert tokenizer.check(prompt, "lenient").dropped, prompt


def test_every_word_the_story_world_can_say_is_in_the_shipped_vocabulary(tokenizer):
    from storyworld import vocabulary

    words = {w for w in vocabulary() if not (w.startswith("shot") and w[4:].isdigit())}
    assert words <= set(tokenizer.words), words - set(tokenizer.words)


def test_the_readme_examples_of_what_the_model_knows_are_accepted(tokenizer):
    import re

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## What the embedded model knows", 1)[1].split("\n## ", 1)[0]
    examples = [row.rsplit("|", 2)[-2].strip().strip("`") for row in section.splitlines()
                if row.startswith("| ") and not row.startswith("| kind") and "`" in row.rsplit("|", 2)[-2]]
    assert len(examples) == 6
    for prompt in examples:
        tokenizer.check(prompt, "strict")
    assert re.search(r"`shotstream vocab` prints all (\d+)", section).group(1) == str(len(tokenizer.words))


def _readme_section() -> str:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    return readme.split("## What the embedded model knows", 1)[1].split("\n## ", 1)[0]


def test_the_readme_says_what_each_written_form_reads_as(tokenizer):
    import re

    section = " ".join(_readme_section().split())
    pairs = re.findall(r"`([^`]+)` -> `([^`]+)`", section)
    assert len(pairs) >= 4, pairs
    for written, read in pairs:  # "`walk`, `walked` -> `walks`" names two forms of one reading
        assert tokenizer.check(written, "strict").text == read, (written, read)
    assert "`starts`, `begins` add nothing to draw" in section
    assert tokenizer.reading("starts") == () and tokenizer.reading("begins") == ()


def test_the_readme_claims_about_words_in_and_out_of_the_vocabulary_hold(tokenizer):
    import re

    section = " ".join(_readme_section().split())
    refused = re.search(r"so ((?:`\w+`(?:, | and )?)+) are not in the\s+vocabulary", section).group(1)
    refused = re.findall(r"`(\w+)`", refused)
    assert len(refused) == 5
    for word in refused:
        assert tokenizer.unknown_words(word) == [word], word
    known = re.search(r"Only the owl sits: ((?:`\w+`(?:, | and )?)+) are in the vocabulary", section).group(1)
    for word in re.findall(r"`(\w+)`", known) + ["rests"]:
        assert word in tokenizer.words, word
    tokenizer.check("the princess sits", "strict")


def test_every_word_the_readme_table_says_the_world_has_is_read(tokenizer):
    import re

    rows = [row for row in _readme_section().splitlines()
            if row.startswith("| ") and not row.startswith(("| kind", "|---"))]
    assert len(rows) == 6
    for row in rows:
        listed = row.split("|")[2].split(";")[0]  # what follows a ";" is prose about the list
        words = re.findall(r"[a-z]+", listed)
        assert words and [w for w in words if tokenizer.reading(w) is None] == [], row
