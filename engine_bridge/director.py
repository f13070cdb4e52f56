"""The cutscene director: game events -> shots, written as TOML scripts (schema version 1).

    version = 1
    [defaults]                      # optional; applies to every event
    chunks = 3                      # shot length 1..7 chunks (default 7, a full shot)
    priority = "queue"              # "queue": after current work; "interrupt": cut it at the next chunk
    cooldown_s = 0                  # seconds during which a repeat of the event is ignored
    [events.boss_appears]           # event name: letters, digits, '_' and '-', 1..64 characters
    priority = "interrupt"          # chunks / priority / cooldown_s override [defaults]
    params = ["hero"]               # parameters the game must pass
    optional = { place = "castle" } # parameters with a default value
    [[events.boss_appears.shots]]   # 1..8 shots, played in order
    prompt = "a dragon flies near the {hero} at the {place}"
    chunks = 2

Owns: parsing and validating scripts (every error names its line), rendering prompt templates from
an event's parameters, and per-session cool-downs. Imports neither gRPC nor the runtime: the vocabulary
check of template text comes in as a callable. The full schema is in docs/bridge.md.
"""
from __future__ import annotations

import re
import string
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

from engine_bridge._toml_lines import key_lines, line_of
from engine_bridge.errors import BadRequestError, PreconditionError, ScriptError, UnknownEventError

SCHEMA_VERSION = 1
MAX_EVENTS = 256
MAX_COOLDOWN_S = 24 * 3600.0
EVENT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
PRIORITIES = {"queue": False, "interrupt": True}


@dataclass(frozen=True)
class Template:
    """A prompt with `{name}` fields; `{{` and `}}` are literal braces."""

    parts: tuple[tuple[str, str | None], ...]  # (literal text, field name or None)

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(name for _, name in self.parts if name)

    @property
    def literal(self) -> str:
        return "".join(text for text, _ in self.parts)

    def render(self, values: Mapping[str, str]) -> str:
        return "".join(text + (values[name] if name else "") for text, name in self.parts)


@dataclass(frozen=True)
class ShotRule:
    prompt: Template
    chunks: int
    line: int


@dataclass(frozen=True)
class EventRule:
    name: str
    shots: tuple[ShotRule, ...]
    interrupt: bool
    cooldown_s: float
    required: frozenset[str]
    optional: Mapping[str, str]
    line: int


@dataclass(frozen=True)
class Cue:
    """What one trigger of an event asks for: shots (prompt, chunks) and how they enter the queue."""

    event: str
    shots: tuple[tuple[str, int], ...]
    interrupt: bool
    cooldown_s: float


@dataclass(frozen=True)
class Script:
    events: Mapping[str, EventRule]
    source: str


# ---------------------------------------------------------------------------------------------------
# Parsing and validation

def load_script(path: str | Path, **limits) -> Script:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"cannot read the script: {exc}", source=str(path)) from None
    return parse_script(text, source=str(path), **limits)


def parse_script(text: str, *, source: str = "<script>", max_chunks: int = 7, max_shots: int = 8,
                 max_bytes: int = 65536, check_prompt: Callable[[str], object] | None = None) -> Script:
    """Parses and validates a script; raises ScriptError naming the line of the first problem."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ScriptError(f"the script is {size} bytes; at most {max_bytes}", source=source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        raise ScriptError(f"not valid TOML: {exc}", int(found.group(1)) if found else 0, source) from None
    v = _Validator(key_lines(text), source, max_chunks, max_shots, check_prompt)
    return Script(MappingProxyType(v.script(data)), source)


class _Validator:
    def __init__(self, lines, source, max_chunks, max_shots, check_prompt):
        self.lines, self.source = lines, source
        self.max_chunks, self.max_shots, self.check_prompt = max_chunks, max_shots, check_prompt

    def fail(self, path: tuple, message: str) -> ScriptError:
        return ScriptError(f"{_dotted(path)}: {message}" if path else message, line_of(self.lines, path), self.source)

    def keys(self, table: dict, path: tuple, allowed: set[str], required: set[str] = frozenset()) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(path + (key,), f"unknown key; expected one of {', '.join(sorted(allowed))}")
        for key in sorted(required - table.keys()):
            raise self.fail(path, f"missing required key {key!r}")

    def table(self, value, path: tuple) -> dict:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a table, got {_kind(value)}")
        return value

    def script(self, data: dict) -> dict[str, EventRule]:
        self.keys(data, (), {"version", "defaults", "events"}, {"version", "events"})
        if data["version"] != SCHEMA_VERSION or isinstance(data["version"], bool):
            raise self.fail(("version",), f"must be {SCHEMA_VERSION}, got {data['version']!r}")
        defaults = self.table(data.get("defaults", {}), ("defaults",))
        self.keys(defaults, ("defaults",), {"chunks", "priority", "cooldown_s"})
        base = self.settings(defaults, ("defaults",), (self.max_chunks, False, 0.0))
        events = self.table(data["events"], ("events",))
        if not 1 <= len(events) <= MAX_EVENTS:
            raise self.fail(("events",), f"must hold 1..{MAX_EVENTS} events, got {len(events)}")
        return {name: self.event(name, self.table(body, ("events", name)), base) for name, body in events.items()}

    def settings(self, table: dict, path: tuple, base: tuple[int, bool, float]) -> tuple[int, bool, float]:
        chunks, interrupt, cooldown = base
        if "chunks" in table:
            chunks = self.chunks(table["chunks"], path + ("chunks",))
        if "priority" in table:
            value = table["priority"]
            if value not in PRIORITIES:
                raise self.fail(path + ("priority",), f'must be "queue" or "interrupt", got {value!r}')
            interrupt = PRIORITIES[value]
        if "cooldown_s" in table:
            value = table["cooldown_s"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_COOLDOWN_S:
                raise self.fail(path + ("cooldown_s",), f"must be a number of seconds in 0..{MAX_COOLDOWN_S:g}, got {value!r}")
            cooldown = float(value)
        return chunks, interrupt, cooldown

    def chunks(self, value, path: tuple) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= self.max_chunks:
            raise self.fail(path, f"must be an integer in 1..{self.max_chunks}, got {value!r}")
        return value

    def event(self, name: str, body: dict, base: tuple[int, bool, float]) -> EventRule:
        path = ("events", name)
        if not EVENT_NAME.fullmatch(name):
            raise self.fail(path, "event names use letters, digits, '_' and '-' (1..64 characters)")
        self.keys(body, path, {"shots", "priority", "cooldown_s", "chunks", "params", "optional"}, {"shots"})
        chunks, interrupt, cooldown = self.settings(body, path, base)
        required = self.param_names(body.get("params", []), path + ("params",))
        optional = self.optional(body.get("optional", {}), path + ("optional",))
        for both in sorted(required & optional.keys()):
            raise self.fail(path + ("optional", both), "is also listed in params")
        shots = body["shots"]
        if not isinstance(shots, list) or not 1 <= len(shots) <= self.max_shots:
            raise self.fail(path + ("shots",), f"must be 1..{self.max_shots} shot tables, got {_kind(shots)}")
        declared = required | optional.keys()
        rules = tuple(self.shot(shot, path + ("shots", i), chunks, declared) for i, shot in enumerate(shots))
        return EventRule(name, rules, interrupt, cooldown, frozenset(required), MappingProxyType(optional),
                         line_of(self.lines, path))

    def param_names(self, value, path: tuple) -> set[str]:
        if not isinstance(value, list):
            raise self.fail(path, f"must be a list of parameter names, got {_kind(value)}")
        for i, name in enumerate(value):
            if not isinstance(name, str) or not PARAM_NAME.fullmatch(name):
                raise self.fail(path + (i,), f"parameter names are identifiers of 1..32 characters, got {name!r}")
        if len(set(value)) != len(value):
            raise self.fail(path, "lists a parameter twice")
        return set(value)

    def optional(self, value, path: tuple) -> dict[str, str]:
        table = self.table(value, path)
        self.param_names(list(table), path)
        for name, default in table.items():
            if not isinstance(default, str):
                raise self.fail(path + (name,), f"a default value must be a string, got {_kind(default)}")
        return dict(table)

    def shot(self, body, path: tuple, chunks: int, declared: set[str]) -> ShotRule:
        body = self.table(body, path)
        self.keys(body, path, {"prompt", "chunks"}, {"prompt"})
        if "chunks" in body:
            chunks = self.chunks(body["chunks"], path + ("chunks",))
        prompt = body["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise self.fail(path + ("prompt",), f"must be a non-empty string, got {prompt!r}")
        try:
            template = parse_template(prompt)
        except ValueError as exc:
            raise self.fail(path + ("prompt",), str(exc)) from None
        for field in sorted(template.fields - declared):
            raise self.fail(path + ("prompt",), f"uses {{{field}}}, which is not declared in params or optional")
        if self.check_prompt is not None and re.search(r"\w", template.literal):
            try:
                self.check_prompt(template.literal)
            except Exception as exc:  # the runtime's prompt errors; their text says what is wrong
                raise self.fail(path + ("prompt",), f"the template's fixed text is refused: {exc}") from None
        return ShotRule(template, chunks, line_of(self.lines, path + ("prompt",)))


def parse_template(text: str) -> Template:
    parts = []
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"bad template ({exc}); write literal braces as {{{{ and }}}}") from None
    for literal, name, spec, conversion in pieces:
        if name is not None and (spec or conversion or not PARAM_NAME.fullmatch(name)):
            raise ValueError(f"bad field {{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}: "
                             "fields are plain parameter names such as {hero}")
        parts.append((literal, name))
    return Template(tuple(parts))


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _kind(value) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean"}.get(type(value), repr(value))


# ---------------------------------------------------------------------------------------------------
# Triggering

class Director:
    """One session's view: its own script first, then the server's; cool-downs per event."""

    def __init__(self, scripts: Sequence[Script], *, max_param_chars: int = 200,
                 clock: Callable[[], float] = time.monotonic):
        self.scripts = tuple(scripts)
        self.max_param_chars = max_param_chars
        self._clock = clock
        self._lock = threading.Lock()
        self._last_fired: dict[str, float] = {}

    @property
    def events(self) -> list[str]:
        return sorted({name for script in self.scripts for name in script.events})

    def rule(self, event: str) -> EventRule:
        if not self.scripts:
            raise PreconditionError("no director script is loaded for this session or this server")
        for script in self.scripts:
            if event in script.events:
                return script.events[event]
        shown = ", ".join(self.events[:20]) + (", ..." if len(self.events) > 20 else "")
        raise UnknownEventError(f"unknown event {event[:64]!r}; this session knows: {shown}")

    def expand(self, event: str, params: Mapping[str, str]) -> Cue:
        """Fills the event's templates from `params`; raises for unknown events and bad parameters."""
        rule = self.rule(event)
        unknown = sorted(set(params) - rule.required - rule.optional.keys())
        if unknown:
            raise BadRequestError(f"event {event!r} takes no parameter(s) {', '.join(map(repr, unknown))}; "
                                  f"it takes {', '.join(sorted(rule.required | rule.optional.keys())) or 'none'}")
        missing = sorted(rule.required - params.keys())
        if missing:
            raise BadRequestError(f"event {event!r} needs parameter(s) {', '.join(map(repr, missing))}")
        for name, value in params.items():
            if len(value) > self.max_param_chars:
                raise BadRequestError(f"parameter {name!r} is {len(value)} characters; at most {self.max_param_chars}")
        values = {**rule.optional, **params}
        shots = tuple((shot.prompt.render(values), shot.chunks) for shot in rule.shots)
        return Cue(event, shots, rule.interrupt, rule.cooldown_s)

    def cooldown_remaining(self, cue: Cue) -> float:
        """Seconds until `cue`'s event may fire again (0: now)."""
        with self._lock:
            last = self._last_fired.get(cue.event)
        if last is None or cue.cooldown_s <= 0:
            return 0.0
        return max(0.0, last + cue.cooldown_s - self._clock())

    def fired(self, cue: Cue) -> None:
        with self._lock:
            self._last_fired[cue.event] = self._clock()
