"""The cutscene director: script schema, errors that name the line, templates, parameters, cool-downs."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine_bridge._toml_lines import key_lines
from engine_bridge.director import Director, load_script, parse_script, parse_template
from engine_bridge.errors import BadRequestError, PreconditionError, ScriptError, UnknownEventError

EXAMPLE = Path(__file__).resolve().parents[1] / "engine_bridge" / "scripts" / "example_director.toml"

SCRIPT = """\
version = 1
[defaults]
chunks = 2
cooldown_s = 5

[events.door]
shots = [{ prompt = "the wizard waves" }]

[events.boss]
priority = "interrupt"
params = ["hero"]
optional = { place = "castle" }
[[events.boss.shots]]
prompt = "a dragon flies above the {place}"
chunks = 3
[[events.boss.shots]]
prompt = "the {hero} looks up, {{surprised}}"
"""


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def error_of(text: str, **kw) -> ScriptError:
    with pytest.raises(ScriptError) as caught:
        parse_script(text, **kw)
    return caught.value


def test_a_script_parses_with_defaults_priorities_and_templates():
    script = parse_script(SCRIPT)
    door, boss = script.events["door"], script.events["boss"]
    assert (door.interrupt, door.cooldown_s, [s.chunks for s in door.shots]) == (False, 5.0, [2])
    assert (boss.interrupt, [s.chunks for s in boss.shots], boss.required) == (True, [3, 2], {"hero"})
    assert boss.line == 9 and [s.line for s in boss.shots] == [14, 17]


def test_the_example_script_is_valid():
    script = load_script(EXAMPLE)
    assert {"enter_village", "boss_appears", "night_falls"} <= set(script.events)


@pytest.mark.parametrize("old, new, line, words", [
    ("chunks = 3", "chunks = 9", 15, "must be an integer in 1..7, got 9"),
    ("cooldown_s = 5", "cooldown = 5", 4, "defaults.cooldown: unknown key"),
    ('priority = "interrupt"', 'priority = "now"', 10, 'must be "queue" or "interrupt"'),
    ("{place}", "{plaec}", 14, "uses {plaec}, which is not declared"),
    ("{place}", "{place!r}", 14, "fields are plain parameter names"),
    ('prompt = "the wizard waves"', 'prompt = ""', 7, "must be a non-empty string"),
    ('params = ["hero"]', 'params = ["hero", "hero"]', 11, "lists a parameter twice"),
    ('prompt = "the {hero} looks', 'prompt = the {hero} looks', 17, "not valid TOML"),
    ("version = 1", "version = 2", 1, "version: must be 1"),
])
def test_errors_name_the_line(old, new, line, words):
    assert old in SCRIPT
    err = error_of(SCRIPT.replace(old, new, 1))
    assert err.line == line and f"line {line}:" in str(err) and words in str(err)


def test_missing_pieces_and_wrong_types_are_refused():
    assert "missing required key 'events'" in str(error_of("version = 1\n"))
    assert "missing required key 'shots'" in str(error_of("version = 1\n[events.a]\npriority = 'queue'\n"))
    err = error_of("version = 1\n[events.a]\nshots = 'x'\n")
    assert err.line == 3 and "must be 1..8 shot tables" in str(err)
    err = error_of("version = 1\n[events.'bad name']\nshots = [{prompt = 'x'}]\n")
    assert err.line == 2 and "event names use letters" in str(err)
    assert "at most 100" in str(error_of("#" * 200, max_bytes=100))


def test_template_text_is_checked_against_the_vocabulary():
    def check(text: str) -> None:
        if "zorblax" in text:
            raise ValueError("unknown words: zorblax")

    err = error_of(SCRIPT.replace("the wizard waves", "the zorblax waves"), check_prompt=check)
    assert err.line == 7 and "zorblax" in str(err)


def test_templates_fill_fields_and_keep_literal_braces():
    assert parse_template("the {hero} and {{x}}").render({"hero": "knight"}) == "the knight and {x}"
    for bad in ("{0}", "{}", "{a.b}", "{a:>3}", "unclosed {"):
        with pytest.raises(ValueError):
            parse_template(bad)


def test_expand_checks_parameters_and_uses_defaults():
    director = Director([parse_script(SCRIPT)], max_param_chars=10)
    cue = director.expand("boss", {"hero": "knight"})
    assert cue.shots == (("a dragon flies above the castle", 3), ("the knight looks up, {surprised}", 2))
    assert cue.interrupt and director.expand("boss", {"hero": "elf", "place": "cave"}).shots[0][0].endswith("cave")
    with pytest.raises(BadRequestError, match="needs parameter"):
        director.expand("boss", {})
    with pytest.raises(BadRequestError, match="takes no parameter"):
        director.expand("boss", {"hero": "elf", "heroo": "x"})
    with pytest.raises(BadRequestError, match="at most 10"):
        director.expand("boss", {"hero": "x" * 11})
    with pytest.raises(UnknownEventError, match="knows: boss, door"):
        director.expand("nope", {})
    with pytest.raises(PreconditionError):
        Director([]).expand("door", {})


def test_the_session_script_comes_before_the_servers():
    server = parse_script(SCRIPT)
    session = parse_script('version = 1\n[events.door]\nshots = [{ prompt = "a cat" }]\n')
    director = Director([session, server])
    assert director.expand("door", {}).shots == (("a cat", 7),)
    assert director.events == ["boss", "door"]


def test_cooldowns_suppress_repeats_until_they_pass():
    clock = Clock()
    director = Director([parse_script(SCRIPT)], clock=clock)
    cue = director.expand("door", {})
    assert director.cooldown_remaining(cue) == 0
    director.fired(cue)
    clock.now += 2
    assert director.cooldown_remaining(cue) == pytest.approx(3)
    clock.now += 3.01
    assert director.cooldown_remaining(cue) == 0


keys = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
prompts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, st.lists(st.tuples(prompts, st.integers(-2, 9)), max_size=3), max_size=4))
def test_any_generated_script_parses_or_fails_with_a_script_error(events):
    lines = ["version = 1"]
    for name, shots in events.items():
        lines.append(f"[events.{name}]")
        for prompt, chunks in shots:
            escaped = prompt.replace("\\", "\\\\").replace('"', '\\"')
            lines += [f"[[events.{name}.shots]]", f'prompt = "{escaped}"', f"chunks = {chunks}"]
    text = "\n".join(lines) + "\n"
    try:
        script = parse_script(text)
    except ScriptError as err:
        assert 0 <= err.line <= len(lines)
    else:
        assert set(script.events) == set(events)


def test_key_lines_follow_tables_arrays_and_inline_tables():
    text = 'a = 1\n[t]\nx = { y = "}", z = [1, 2] }  # c\n[[t.s]]\np = """multi\nline"""\n[[t.s]]\np = 2\n'
    lines = key_lines(text)
    assert lines[("a",)] == 1 and lines[("t", "x", "y")] == 3 and lines[("t", "x", "z", 1)] == 3
    assert lines[("t", "s", 0, "p")] == 5 and lines[("t", "s", 1, "p")] == 8
