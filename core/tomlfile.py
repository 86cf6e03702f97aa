"""Reading TOML files with one parser (tomli) and errors that name the file."""

from __future__ import annotations

from typing import Any

from .errors import TomlError

__all__ = ["MAX_TOML_SIZE", "loads"]

MAX_TOML_SIZE = 1024 * 1024  # descriptors are a few hundred bytes; builder.toml a few KiB


def loads(data: bytes, name: str) -> dict[str, Any]:
    """Decode TOML bytes, turning every failure into a :class:`~cnbkit.TomlError` naming ``name``.

    Hostile input is an ordinary decode error: deep nesting (``RecursionError``), integers too
    long to convert (``ValueError``), invalid UTF-8, and documents over 1 MiB.
    """
    import tomli  # only when a descriptor is read: a warm resolve never pays for it

    if len(data) > MAX_TOML_SIZE:
        raise TomlError(f"{name}: too large for a TOML descriptor ({len(data)} bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TomlError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    try:
        return tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        raise TomlError(f"{name}: invalid TOML: {exc}") from None
    except RecursionError:
        raise TomlError(f"{name}: invalid TOML: nested too deeply") from None
    except (ValueError, MemoryError) as exc:
        raise TomlError(f"{name}: invalid TOML: {str(exc)[:200]}") from None
