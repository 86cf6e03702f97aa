"""The one reader of untrusted JSON: size-capped, nesting-capped, UTF-8, no duplicate keys.

Every document from outside (manifests, indexes, configs, ``index.json``, a token server's
answer, a registry's error body, ``docker save``'s ``manifest.json``, the daemon's inspect answer,
labels) goes through :func:`load_json`: a document nested a thousand deep would otherwise raise
``RecursionError`` from deep inside the parser, and real documents nest a handful of levels.
Two parsers that disagree about a duplicated key could see two different images behind one
digest, so a duplicated key is refused rather than resolved.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import CnbkitError
from .errors import ManifestError

__all__ = [
    "MAX_JSON_DEPTH",
    "check_string_map",
    "check_strings",
    "compact_json",
    "load_json",
    "load_object",
    "optional_str",
]

MAX_JSON_DEPTH = 64  # arrays and objects inside each other; an image config nests about 4 deep


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _too_deep(value: Any, limit: int) -> bool:
    """True when ``value`` nests arrays and objects more than ``limit`` deep (no recursion)."""
    level = [value] if isinstance(value, (dict, list)) else []
    for _ in range(limit):
        below = []
        for item in level:
            for child in item.values() if isinstance(item, dict) else item:
                if isinstance(child, (dict, list)):
                    below.append(child)
        if not below:
            return False
        level = below
    return bool(level)


def load_json(data: bytes | str, *, source: str, limit: int, error: type[CnbkitError] = ManifestError) -> Any:
    """Parse ``data`` as one untrusted JSON document of at most ``limit`` bytes.

    Args:
        data: the document (bytes are decoded as UTF-8).
        source: what the document is and where it came from, to start the messages.
        limit: the most bytes allowed.
        error: the error class to raise (a registry's, a builder's, ...).

    Raises:
        ManifestError: (or ``error``) too large, not UTF-8, not JSON, duplicate keys, or nested
            deeper than :data:`MAX_JSON_DEPTH`; the message says which.
    """
    if len(data) > limit:
        raise error(f"{source} is {len(data)} bytes, more than the {limit} bytes allowed")
    deep = f"{source} is not valid JSON: nesting deeper than {MAX_JSON_DEPTH}"
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except RecursionError:  # the parser's own bound, far beyond ours: raised before any harm
        raise error(deep) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise error(f"{source} is not valid JSON ({str(exc)[:120]})") from None
    # Cheap first: fewer brackets than the bound cannot nest deeper than it.
    brackets = text.count("[") + text.count("{")
    if brackets > MAX_JSON_DEPTH and _too_deep(value, MAX_JSON_DEPTH):
        raise error(deep)
    return value


def load_object(data: bytes, *, source: str, limit: int) -> dict[str, Any]:
    """Parse ``data`` as one JSON object of at most ``limit`` bytes (see :func:`load_json`).

    Raises:
        ManifestError: too large, not UTF-8, not JSON, too deep, duplicate keys, or not an object.
    """
    value = load_json(data, source=source, limit=limit)
    if not isinstance(value, dict):
        raise ManifestError(f"{source} is not a JSON object")
    return value


def optional_str(obj: Mapping[str, Any], key: str, *, source: str) -> str:
    """``obj[key]`` if it is a string, ``""`` if it is absent or null.

    Raises:
        ManifestError: the value is of another type.
    """
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ManifestError(f"{source}: {key!r} must be a string, not {type(value).__name__}")
    return value


def check_strings(value: Any, *, key: str, source: str) -> tuple[str, ...]:
    """A JSON list of strings (``null`` = empty) as a tuple.

    Raises:
        ManifestError: not a list of strings.
    """
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ManifestError(f"{source}: {key!r} must be a list of strings")
    return tuple(value)


def check_string_map(value: Any, *, key: str, source: str) -> dict[str, str]:
    """A JSON object of strings (``null`` = empty) as a dict.

    Raises:
        ManifestError: not an object whose values are all strings.
    """
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise ManifestError(f"{source}: {key!r} must be an object of strings")
    return dict(value)


def compact_json(obj: Any) -> bytes:
    """``obj`` as the bytes of a manifest, config or index the core writes: compact, keys in the
    given order, UTF-8 as it is; the same object always gives the same bytes, so the same digest."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
