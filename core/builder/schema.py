"""builder.toml's schema (pack's ``builder/config_reader.go``) and a strict walk over a document.

Decoding is strict, as pack's is: a key the schema does not know is an error naming it, and a
value of the wrong type is an error naming its key path. Lines are found in the text, since
TOML parsers report them only for syntax errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..errors import TomlError
from ..redact import clip, listing

__all__ = ["SCHEMA", "Spec", "check_document", "line_of", "table_line"]

# A spec is a scalar type name ("str", "bool", "strs"), a table (dict of key -> spec), or a
# one-element list holding the spec of an array's items.
Spec = str | dict[str, Any] | list[Any]

_MODULE_INFO: dict[str, Spec] = {
    "id": "str",
    "name": "str",
    "version": "str",
    "description": "str",
    "homepage": "str",
    "keywords": "strs",
    "exec-env": "strs",
    "licenses": [{"type": "str", "uri": "str"}],
    "clear-env": "bool",
}
_MODULE: dict[str, Spec] = {**_MODULE_INFO, "uri": "str", "image": "str"}
_REF: dict[str, Spec] = {**_MODULE_INFO, "optional": "bool"}
_ORDER: Spec = [{"group": [_REF]}]

SCHEMA: dict[str, Spec] = {
    "description": "str",
    "buildpacks": [_MODULE],
    "extensions": [_MODULE],
    "order": _ORDER,
    "order-extensions": _ORDER,
    "stack": {"id": "str", "build-image": "str", "run-image": "str", "run-image-mirrors": "strs"},
    "lifecycle": {"uri": "str", "version": "str"},
    "run": {"images": [{"image": "str", "mirrors": "strs"}]},
    "build": {
        "image": "str",
        "env": [{"name": "str", "value": "str", "suffix": "str", "delim": "str", "exec-env": "strs"}],
    },
    "targets": [
        {"os": "str", "arch": "str", "variant": "str", "distros": [{"name": "str", "version": "str"}]}
    ],
    "system": {"pre": {"buildpacks": [_REF]}, "post": {"buildpacks": [_REF]}},
}

_TYPE_NAMES = {
    str: "a string",
    bool: "true or false",
    int: "an integer",
    float: "a number",
    list: "an array",
    dict: "a table",
}


def _kind(value: Any) -> str:
    return next((name for t, name in _TYPE_NAMES.items() if isinstance(value, t)), "a date or time")


def _check_scalar(value: Any, spec: str, path: str, wrong: list[tuple[str, str, str]]) -> None:
    if spec == "str" and not isinstance(value, str):
        wrong.append((path, "a string", _kind(value)))
    elif spec == "bool" and not isinstance(value, bool):
        wrong.append((path, "true or false", _kind(value)))
    elif spec == "strs" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        wrong.append((path, "an array of strings", _kind(value)))


def _walk(doc: Any, spec: Spec, path: str, unknown: list[str], wrong: list[tuple[str, str, str]]) -> None:
    if isinstance(spec, str):
        _check_scalar(doc, spec, path, wrong)
    elif isinstance(spec, list):
        if not isinstance(doc, list):
            wrong.append((path, "an array of tables", _kind(doc)))
            return
        for item in doc:
            _walk(item, spec[0], path, unknown, wrong)
    else:
        if not isinstance(doc, dict):
            wrong.append((path, "a table", _kind(doc)))
            return
        for key, value in doc.items():
            where = f"{path}.{key}" if path else key
            if key not in spec:
                unknown.append(where)
            else:
                _walk(value, spec[key], where, unknown, wrong)


_SHOWN_KEYS = 5  # a hostile file may hold 20,000 unknown keys: name a few, count the rest
_KEY_CHARS = 100  # and a key may be 1 MB long


def _pack_unknown(keys: list[str]) -> list[str]:
    # pack's FormatUndecodedKeys: a key is listed once, and only if its first segment is not a
    # listed key, so [[groups]] with three keys reports 'groups' once. Set look-ups keep this
    # linear (comparing each key with every listed one took 21 s for 20,000 keys).
    shown: list[str] = []
    listed: set[str] = set()
    for key in keys:
        if key not in listed and key.split(".", 1)[0] not in listed:
            shown.append(key)
            listed.add(key)
    return shown


def _candidates(key_path: str) -> Iterator[re.Pattern[str]]:
    parts = key_path.split(".")
    last = re.escape(parts[-1])
    # `key =`, `"key" =`, a dotted `a.key =`, or a table header `[a.key]` / `[[a.key]]`.
    yield re.compile(rf'^[ \t]*(?:[\w.-]+\.)?(?P<k>"?{last}"?)[ \t]*=', re.MULTILINE)
    yield re.compile(rf"^[ \t]*\[\[?[ \t]*(?P<k>{re.escape(key_path)})[ \t]*\]", re.MULTILINE)
    yield re.compile(rf"^[ \t]*\[\[?[^\]\n]*\b(?P<k>{last})[ \t]*\]", re.MULTILINE)


def line_of(text: str, key_path: str) -> int | None:
    """The first line (1-based) where ``key_path``'s last key is written, or ``None``."""
    for pattern in _candidates(key_path):
        match = pattern.search(text)
        if match:
            return text.count("\n", 0, match.start("k")) + 1
    return None


def table_line(text: str, key_path: str, index: int) -> int | None:
    """The line (1-based) of the ``index``-th (0-based) ``[[key_path]]`` header, or ``None``
    (an inline array, or fewer headers)."""
    header = re.compile(rf"^[ \t]*\[\[[ \t]*{re.escape(key_path)}[ \t]*\]\]", re.MULTILINE)
    for count, match in enumerate(header.finditer(text)):
        if count == index:
            return text.count("\n", 0, match.start()) + 1
    return None


def _at(text: str, key_path: str) -> str:
    line = line_of(text, key_path)
    return f" (line {line})" if line else ""


def check_document(doc: dict[str, Any], text: str, name: str) -> None:
    """Check ``doc`` against :data:`SCHEMA`.

    Args:
        doc: the decoded builder.toml.
        text: its text, to find lines in.
        name: the file's path, for messages.

    Raises:
        TomlError: unknown keys (pack's message, plus the line), or a value of the wrong type.
    """
    unknown: list[str] = []
    wrong: list[tuple[str, str, str]] = []
    _walk(doc, SCHEMA, "", unknown, wrong)
    if unknown:
        keys = _pack_unknown(unknown)
        word = "element" if len(keys) == 1 else "elements"
        listed = listing([f"'{clip(k, _KEY_CHARS)}'" for k in keys], _SHOWN_KEYS)
        raise TomlError(
            f"parse contents of '{name}': unknown configuration {word} {listed} in '{name}'"
            f"{_at(text, keys[0])}"
        )
    if wrong:
        path, expected, found = wrong[0]
        raise TomlError(f"{name}: {path}{_at(text, path)}: expected {expected}, found {found}")
