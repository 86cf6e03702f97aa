"""The lifecycle descriptor (``lifecycle.toml``): both formats, one model."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import LifecycleError, TomlError
from ..tomlfile import loads
from .versions import normal_version

__all__ = ["APISet", "Descriptor", "api_version", "parse_descriptor"]

# lifecycle's api.Version: "0.2", "1", "v0.3". ASCII digits only: ``\d`` and ``int()`` take
# Arabic-Indic digits too, which the lifecycle refuses when the builder runs; and few of them:
# ``int()`` refuses over 4300 digits with a ValueError.
_API = re.compile(r"v?([0-9]{1,9})(?:\.([0-9]{0,9}))?", re.ASCII)


@dataclass(frozen=True)
class APISet:
    """The API versions a lifecycle speaks for one kind (``buildpack`` or ``platform``)."""

    supported: tuple[str, ...]
    deprecated: tuple[str, ...] = ()

    def to_json(self) -> dict[str, list[str]]:
        """The ``{"supported": [...], "deprecated": [...]}`` form used in ``--json`` output."""
        return {"supported": list(self.supported), "deprecated": list(self.deprecated)}


@dataclass(frozen=True)
class Descriptor:
    """A parsed ``lifecycle.toml``.

    Attributes:
        version: ``[lifecycle] version`` as written (``0.21.0``).
        buildpack: the Buildpack API versions.
        platform: the Platform API versions.
        text: the descriptor as it was in the archive, written unchanged into the layer.
    """

    version: str
    buildpack: APISet
    platform: APISet
    text: bytes


def api_version(value: Any) -> str | None:
    """A Buildpack or Platform API version as ``X.Y`` (``"0.10"``, ``"v0.2"``, ``"1"`` -> ``1.0``),
    or ``None`` when ``value`` is no such string."""
    match = _API.fullmatch(value) if isinstance(value, str) else None
    return f"{int(match[1])}.{int(match[2] or 0)}" if match else None


def _api_version(value: Any, where: str) -> str:
    version = api_version(value)
    if version is None:
        raise LifecycleError(f'{where}: invalid API version {value!r}: expected a string like "0.12"')
    return version


def _api_list(table: Any, key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, []) if isinstance(table, dict) else []
    if not isinstance(value, list):
        raise LifecycleError(f"{where}.{key}: expected a list of API versions, got {value!r}")
    return tuple(_api_version(item, f"{where}.{key}") for item in value)


def _apis(doc: dict[str, Any], kind: str, name: str) -> APISet | None:
    table = doc.get("apis", {}).get(kind) if isinstance(doc.get("apis"), dict) else None
    if table is not None:
        where = f"{name}: [apis.{kind}]"
        if not isinstance(table, dict):
            raise LifecycleError(f"{where}: expected a table with supported = [...]")
        supported = _api_list(table, "supported", where)
        deprecated = _api_list(table, "deprecated", where)
        if supported:
            return APISet(supported, deprecated)
    # The RFC-0011 format ([api] buildpack = "0.2"), kept by newer lifecycles for old tools.
    legacy = doc.get("api", {})
    if isinstance(legacy, dict) and kind in legacy:
        return APISet((_api_version(legacy[kind], f"{name}: [api] {kind}"),))
    return None


def parse_descriptor(data: bytes, name: str) -> Descriptor:
    """Parse a lifecycle descriptor in either format.

    ``[apis.<kind>] supported/deprecated`` wins when it has supported versions (real
    descriptors carry both tables, and pack reads ``[apis]``); otherwise the old ``[api]``
    values become one-element supported lists.

    Args:
        data: the file's bytes.
        name: where it came from, for messages (``lifecycle.tgz!lifecycle.toml``).

    Raises:
        LifecycleError: invalid TOML, no APIs, or a bad version; the message names ``name``.
    """
    try:
        doc = loads(data, name)
    except TomlError as exc:  # same message, reported as a lifecycle problem
        raise LifecycleError(str(exc)) from None
    apis = {kind: _apis(doc, kind, name) for kind in ("buildpack", "platform")}
    missing = [kind for kind, found in apis.items() if found is None]
    if missing:
        raise LifecycleError(
            f"{name}: no {' or '.join(missing)} API versions: expected [apis.{missing[0]}] "
            f'supported = [...] or [api] {missing[0]} = "0.x"'
        )
    lifecycle = doc.get("lifecycle")
    version = lifecycle.get("version") if isinstance(lifecycle, dict) else None
    if not isinstance(version, str) or version != version.strip() or normal_version(version) is None:
        found = "missing" if version is None else repr(version)
        raise LifecycleError(f'{name}: [lifecycle] version is {found}: expected a version like "0.21.0"')
    buildpack, platform = apis["buildpack"], apis["platform"]
    assert buildpack is not None and platform is not None
    return Descriptor(version=version, buildpack=buildpack, platform=platform, text=data)
