"""Where each key of a TOML document is written: key path -> 1-based line.

`tomllib` parses values but forgets positions, and a director script's errors must name the line. This
is a structure-only scanner for documents `tomllib` has already accepted: it follows tables, arrays of
tables, dotted keys, inline tables and arrays (counting elements), skips strings, comments and scalars,
and records the line of every key, table header and array element. Paths hold strings for keys and
ints for array indices, e.g. ("events", "boss", "shots", 1, "prompt").
"""
from __future__ import annotations

KeyPath = tuple  # tuple[str | int, ...]

_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def key_lines(text: str) -> dict[KeyPath, int]:
    scanner = _Scanner(text)
    scanner.document()
    return scanner.lines


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int:
    """The line of `path`, or of its longest recorded prefix; 0 when nothing matches."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 0


class _Scanner:
    def __init__(self, text: str):
        self.s, self.i, self.line = text, 0, 1
        self.lines: dict[KeyPath, int] = {}
        self._aot: dict[KeyPath, int] = {}  # array-of-tables path -> elements seen

    # -- low level ------------------------------------------------------------------------------------
    def peek(self, n: int = 1) -> str:
        return self.s[self.i:self.i + n]

    def advance(self, n: int = 1) -> None:
        self.line += self.s.count("\n", self.i, self.i + n)
        self.i += n

    def skip_blank(self, newlines: bool) -> None:
        """Spaces and comments, and newlines too when `newlines`."""
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.advance()
            elif c == "#":
                end = self.s.find("\n", self.i)
                self.advance((len(self.s) if end < 0 else end) - self.i)
            else:
                return

    def string(self) -> str:
        quote = self.peek()
        if self.peek(3) == quote * 3:
            end = self.s.find(quote * 3, self.i + 3)
            while self.s[end + 3:end + 4] == quote:  # up to two quotes may close a multi-line string
                end += 1
            value = self.s[self.i + 3:end]
            self.advance(end + 3 - self.i)
            return value
        j = self.i + 1
        while self.s[j] != quote:
            j += 2 if quote == '"' and self.s[j] == "\\" else 1
        value = self.s[self.i + 1:j]
        self.advance(j + 1 - self.i)
        return value

    def key(self) -> KeyPath:
        parts: list[str] = []
        while True:
            self.skip_blank(False)
            if self.peek() in "\"'":
                parts.append(self.string())
            else:
                j = self.i
                while j < len(self.s) and self.s[j] in _BARE:
                    j += 1
                parts.append(self.s[self.i:j])
                self.advance(j - self.i)
            self.skip_blank(False)
            if self.peek() != ".":
                return tuple(parts)
            self.advance()

    # -- structure ------------------------------------------------------------------------------------
    def document(self) -> None:
        table: KeyPath = ()
        while True:
            self.skip_blank(True)
            if self.i >= len(self.s):
                return
            if self.peek() == "[":
                table = self.header()
            else:
                self.assignment(table)

    def header(self) -> KeyPath:
        line = self.line
        many = self.peek(2) == "[["
        self.advance(2 if many else 1)
        path = self.key()
        self.advance(2 if many else 1)
        if many:
            index = self._aot.get(path, 0)
            self._aot[path] = index + 1
            self.lines.setdefault(path, line)
            path = path + (index,)
        self.lines[path] = line
        return path

    def assignment(self, prefix: KeyPath) -> None:
        path = prefix + self.key()
        self.lines[path] = self.line
        self.advance()  # '='
        self.skip_blank(False)
        self.value(path)

    def value(self, path: KeyPath) -> None:
        c = self.peek()
        if c == "{":
            self.advance()
            self.skip_blank(False)
            while self.peek() != "}":
                self.assignment(path)
                self.skip_blank(False)
                if self.peek() == ",":
                    self.advance()
                    self.skip_blank(False)
            self.advance()
        elif c == "[":
            self.advance()
            index = 0
            self.skip_blank(True)
            while self.peek() != "]":
                self.lines[path + (index,)] = self.line
                self.value(path + (index,))
                index += 1
                self.skip_blank(True)
                if self.peek() == ",":
                    self.advance()
                    self.skip_blank(True)
            self.advance()
        elif c in "\"'":
            self.string()
        else:  # number, boolean, date: runs to a delimiter
            j = self.i
            while j < len(self.s) and self.s[j] not in ",]}\n#":
                j += 1
            self.advance(j - self.i)
