"""builder.toml's schema (pack's ``builder/config_reader.go``) and a strict walk over a document.

Decoding is strict, as pack's is: a key the schema does not know is an error naming it, and a
value of the wrong type is an error naming its key path. Lines come from
:class:`~cnbkit.builder.keylines.KeyLines`, since TOML parsers report them only for syntax errors.
"""

from __future__ import annotations

from typing import Any

from ..errors import TomlError
from ..redact import clip, listing
from .keylines import KeyLines
from .keylines import Path as KeyPath

__all__ = ["SCHEMA", "Spec", "check_document", "fold_key"]

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

# Go's simple case folding of the two non-ASCII letters that fold to an ASCII one (the Kelvin
# sign K and the long s); every other non-ASCII letter matches no field.
_FOLDS = {"\u212a": "k", "\u017f": "s"}


def fold_key(key: str) -> str:
    """``key`` as pack's decoder matches it to a field: BurntSushi/toml takes a struct field
    whose name equals the key, else one equal to it case-insensitively (Go's
    ``strings.EqualFold``); every table of builder.toml decodes into a struct, so every key
    matches so. The field names are lower-case ASCII: folding the key is comparing."""
    return "".join(_FOLDS.get(c, c.lower() if c.isascii() else c) for c in key)


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


_Wrong = list[tuple[KeyPath, str, str]]


def _dotted(at: KeyPath) -> str:
    return ".".join(part for part in at if isinstance(part, str))


def _check_scalar(value: Any, spec: str, at: KeyPath, wrong: _Wrong) -> None:
    if spec == "str" and not isinstance(value, str):
        wrong.append((at, "a string", _kind(value)))
    elif spec == "bool" and not isinstance(value, bool):
        wrong.append((at, "true or false", _kind(value)))
    elif spec == "strs" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        wrong.append((at, "an array of strings", _kind(value)))


def _walk(doc: Any, spec: Spec, at: KeyPath, found: _Found) -> Any:
    """``doc`` with every key as the schema spells it (pack's fields), checked against ``spec``.

    ``at`` keeps array positions and the keys as written, so a message names the key the file
    has and gets the line of the very entry."""
    if isinstance(spec, str):
        _check_scalar(doc, spec, at, found.wrong)
        return doc
    if isinstance(spec, list):
        if not isinstance(doc, list):
            found.wrong.append((at, "an array of tables", _kind(doc)))
            return doc
        return [_walk(item, spec[0], (*at, index), found) for index, item in enumerate(doc)]
    if not isinstance(doc, dict):
        found.wrong.append((at, "a table", _kind(doc)))
        return doc
    fields: dict[str, Any] = {}
    written: dict[str, str] = {}
    for key, value in doc.items():
        name = fold_key(key)
        if name not in spec:
            found.unknown.append((*at, key))
        elif name in written:  # pack keeps one of the two, whichever its map gives last
            found.twins.append(((*at, written[name]), (*at, key)))
        else:
            written[name] = key
            fields[name] = _walk(value, spec[name], (*at, key), found)
    return fields


class _Found:
    """What a walk found wrong: unknown keys, values of the wrong type, keys that fold to one."""

    def __init__(self) -> None:
        self.unknown: list[KeyPath] = []
        self.wrong: _Wrong = []
        self.twins: list[tuple[KeyPath, KeyPath]] = []


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


def _at(lines: KeyLines, at: KeyPath) -> str:
    line = lines.at(at) or lines.first(_dotted(at))
    return f" (line {line})" if line else ""


def check_document(doc: dict[str, Any], lines: KeyLines, name: str) -> dict[str, Any]:
    """Check ``doc`` against :data:`SCHEMA`, reading keys as pack's decoder does
    (:func:`fold_key`: ``[Lifecycle] Version`` is ``[lifecycle] version``).

    Args:
        doc: the decoded builder.toml.
        lines: where its keys are written (made with ``fold=fold_key``).
        name: the file's path, for messages.

    Returns:
        ``doc`` with every key spelled as the schema spells it.

    Raises:
        TomlError: unknown keys (pack's message, plus the line), a value of the wrong type, or
            two keys of one table that name the same field (pack would keep either).
    """
    found = _Found()
    fields: dict[str, Any] = _walk(doc, SCHEMA, (), found)
    if found.unknown:
        keys = _pack_unknown([_dotted(at) for at in found.unknown])
        word = "element" if len(keys) == 1 else "elements"
        listed = listing([f"'{clip(k, _KEY_CHARS)}'" for k in keys], _SHOWN_KEYS)
        first = next(at for at in found.unknown if _dotted(at) == keys[0])
        raise TomlError(
            f"parse contents of '{name}': unknown configuration {word} {listed} in '{name}'"
            f"{_at(lines, first)}"
        )
    if found.wrong:
        at, expected, kind = found.wrong[0]
        raise TomlError(f"{name}: {_dotted(at)}{_at(lines, at)}: expected {expected}, found {kind}")
    if found.twins:
        one, other = found.twins[0]
        raise TomlError(
            f"{name}: keys '{clip(_dotted(one), _KEY_CHARS)}'{_at(lines, one)} and "
            f"'{clip(_dotted(other), _KEY_CHARS)}'{_at(lines, other)} name the same field (keys match "
            "case-insensitively, as pack reads them): keep one"
        )
    return fields
