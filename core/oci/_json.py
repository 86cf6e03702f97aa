"""Strict JSON for manifests, indexes and configs: size-capped, UTF-8, objects, no duplicates.

Two parsers that disagree about a duplicated key could see two different images behind one
digest, so a duplicated key is refused rather than resolved.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .errors import ManifestError

__all__ = ["check_string_map", "check_strings", "load_object", "optional_str"]


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_object(data: bytes, *, source: str, limit: int) -> dict[str, Any]:
    """Parse ``data`` as one JSON object of at most ``limit`` bytes.

    Raises:
        ManifestError: too large, not UTF-8, not JSON, duplicate keys, or not an object.
    """
    if len(data) > limit:
        raise ManifestError(
            f"{source} is {len(data)} bytes, more than the {limit} bytes allowed; is it really an image?"
        )
    try:
        value = json.loads(
            data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"{source} is not valid JSON ({str(exc)[:120]})") from None
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
