"""The line each key of a TOML text is written on, from a pass over its syntax.

tomli gives values but no positions, and searching the text for a key's name finds the first
key of that name anywhere (a buildpack's ``version`` for ``[lifecycle] version``). This pass
walks what the parser walked (table headers, arrays of tables, dotted keys, inline tables and
arrays) and maps each key path to the line of its key. It runs only on text tomli accepted, so
it need not judge the syntax, only follow it.
"""

from __future__ import annotations

import bisect
import contextlib
import re
from collections.abc import Callable, Iterator

__all__ = ["KeyLines", "Path"]

Path = tuple[str | int, ...]
"""A key path with array positions: ``("order", 0, "group", 1, "id")``."""

_SPACE = re.compile(r"[ \t]*")
_GAP = re.compile(r"(?:[ \t\r\n]+|#[^\n]*)*")  # whitespace, newlines and comments
_BARE = re.compile(r"[A-Za-z0-9_-]+")
_STRINGS = (
    re.compile(r'"""(?:\\[\s\S]|[^\\])*?"""(?!"{3})"{0,2}'),
    re.compile(r"'''[\s\S]*?'''(?!'{3})'{0,2}"),
    re.compile(r'"(?:\\.|[^"\\\n])*"'),
    re.compile(r"'[^'\n]*'"),
)
_SCALAR = re.compile(r"[^,\]}\s#]+(?:[ T][0-9:.+Z-]+)?")  # numbers, booleans, dates and times
_MAX_DEPTH = 12
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


def _unquote(token: str) -> str:
    if token.startswith("'"):
        return token[1:-1]
    if token.startswith('"'):
        return re.sub(
            r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)",
            lambda m: chr(int(m[1][1:], 16)) if len(m[1]) > 1 else _ESCAPES.get(m[1], m[1]),
            token[1:-1],
        )
    return token


class KeyLines:
    """The line (1-based) of every key of a TOML text, by key path.

    Args:
        text: the TOML text (one tomli accepted).
        fold: how a reader matches keys (builder.toml's: case-insensitively, as pack's decoder
            does): a path asked for is looked up as written, else folded (the identity by
            default). The pass itself follows TOML, whose keys are case-sensitive.
    """

    def __init__(self, text: str, fold: Callable[[str], str] = str) -> None:
        self._text = text
        self._fold = fold
        self._pos = 0
        self._newlines: list[int] = []
        self._arrays: dict[Path, int] = {}  # an array of tables -> its last index
        self._lines: dict[Path, int] | None = None  # the pass runs at the first question
        self._plain: dict[tuple[str, ...], int] = {}
        self._folded: dict[Path, int] = {}  # folded paths, with and without array positions

    @property
    def lines(self) -> dict[Path, int]:
        """Every key path found, with its line."""
        if self._lines is None:
            self._lines = {}
            self._newlines = [m.start() for m in re.finditer("\n", self._text)]
            with contextlib.suppress(RecursionError):  # nesting as deep as tomli allows
                self._document()
        return self._lines

    def at(self, path: Path) -> int | None:
        """The line of the key at ``path`` (with array positions), or ``None``."""
        found = self.lines.get(path)
        return found if found is not None else self._folded.get(self._folded_path(path))

    def first(self, key_path: str) -> int | None:
        """The line of the first key written at the dotted ``key_path`` (array positions left
        out: ``run.images.image``), or ``None``."""
        self.lines  # noqa: B018 - the pass, if it has not run
        parts = tuple(key_path.split("."))
        found = self._plain.get(parts)
        return found if found is not None else self._folded.get(self._folded_path(parts))

    def _folded_path(self, path: Path) -> Path:
        return tuple(self._fold(p) if isinstance(p, str) else p for p in path)

    # The pass.

    def _line(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1

    def _record(self, path: Path, pos: int) -> None:
        if len(path) > _MAX_DEPTH:  # builder.toml's keys are shallow: a hostile file's are not kept
            return
        line = self._line(pos)
        assert self._lines is not None
        self._lines.setdefault(path, line)
        plain = tuple(p for p in path if isinstance(p, str))
        self._plain.setdefault(plain, line)
        if self._fold is not str:
            self._folded.setdefault(self._folded_path(path), line)
            self._folded.setdefault(self._folded_path(plain), line)

    def _skip(self, pattern: re.Pattern[str]) -> None:
        match = pattern.match(self._text, self._pos)
        if match:
            self._pos = match.end()

    def _key(self) -> list[str]:
        parts = []
        while True:
            self._skip(_SPACE)
            for pattern in (_STRINGS[2], _STRINGS[3], _BARE):
                match = pattern.match(self._text, self._pos)
                if match:
                    parts.append(_unquote(match[0]))
                    self._pos = match.end()
                    break
            else:
                return parts  # not a key: stop, the caller moves on
            self._skip(_SPACE)
            if not self._text.startswith(".", self._pos):
                return parts
            self._pos += 1

    def _resolve(self, base: Path, parts: list[str]) -> Path:
        # A name that is an array of tables means its last entry, as the parser reads it.
        path = base
        for part in parts:
            path = (*path, part)
            if path in self._arrays:
                path = (*path, self._arrays[path])
        return path

    def _document(self) -> None:
        table: Path = ()
        text = self._text
        while True:
            self._skip(_GAP)
            start = self._pos
            if start >= len(text):
                return
            if text.startswith("[[", start):
                self._pos += 2
                parts = self._key()
                parent = self._resolve((), parts[:-1])
                name = (*parent, *parts[-1:])
                index = self._arrays.get(name, -1) + 1
                self._arrays[name] = index
                table = (*name, index)
                self._record(name, start)
                self._record(table, start)
                self._close("]]")
            elif text.startswith("[", start):
                self._pos += 1
                table = self._resolve((), self._key())
                self._record(table, start)
                self._close("]")
            else:
                self._pair(table)

    def _close(self, bracket: str) -> None:
        self._skip(_SPACE)
        if self._text.startswith(bracket, self._pos):
            self._pos += len(bracket)

    def _pair(self, table: Path) -> None:
        start = self._pos
        parts = self._key()
        if not parts:  # nothing this pass follows: step over the line
            end = self._text.find("\n", start + 1)
            self._pos = end if end > start else len(self._text)
            return
        path = (*table, *parts) if len(table) <= _MAX_DEPTH else table
        self._record(path, start)
        self._skip(_SPACE)
        self._pos += 1  # "="
        self._value(path)

    def _value(self, path: Path) -> None:
        self._skip(_SPACE)
        text, pos = self._text, self._pos
        if text.startswith("{", pos):
            self._pos += 1
            for _ in self._items("}"):
                self._pair(path)
        elif text.startswith("[", pos):
            self._pos += 1
            for index in self._items("]"):
                # Past the depth kept, the path stops growing (building ever longer tuples
                # would make a deeply nested hostile file quadratic).
                item = (*path, index) if len(path) <= _MAX_DEPTH else path
                if text.startswith("{", self._pos):  # an inline table: where its entry is
                    self._record(item, self._pos)
                self._value(item)
        else:
            for pattern in (*_STRINGS, _SCALAR):
                match = pattern.match(text, pos)
                if match:
                    self._pos = match.end()
                    return
            self._pos = pos + 1  # never stall

    def _items(self, close: str) -> Iterator[int]:
        """Each item of an inline table or array, as its position; ends past ``close``."""
        text, index = self._text, 0
        while True:
            self._skip(_GAP)
            if self._pos >= len(text) or text.startswith(close, self._pos):
                self._pos += 1
                return
            if text.startswith(",", self._pos):
                self._pos += 1
                continue
            yield index
            index += 1
