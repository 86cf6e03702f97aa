"""The ``buildpack-registry`` plugin: ``urn:cnb:registry:NS/NAME[@VERSION]``, a buildpack of a
buildpack registry index (pack's ``RegistryLocator``), as the package image its entry names.

The index is ``--buildpack-registry DIR|URL`` (env ``CNBKIT_BUILDPACK_REGISTRY``): a copy of the
registry-index repository, or an ``https://`` base serving its files (fetched through the core's
downloads: cache, ETag revalidation, ``--offline``). As pack's ``IndexPath``, the file of
``NS/NAME`` is ``1/``, ``2/`` or ``3/<NAME[:2]>/`` for a 1-, 2- or 3-character name, else
``<NAME[:2]>/<NAME[2:4]>/``, named ``NS_NAME``; it holds one JSON object a line,
``{"ns", "name", "version", "yanked", "addr"}``. Without a version, the newest entry that is not
yanked is taken (semantic version order); ``addr`` must pin a digest
(``REGISTRY/REPO@sha256:...``), and that image is asked for as ``docker://ADDR``.

Written from the ``cnbkit`` face alone, as a third party would write it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnbkit import (
    CnbkitError,
    Context,
    Locator,
    close_stream,
    hookimpl,
    parse_locator,
    semver_key,
)

if TYPE_CHECKING:  # the image model is imported only when an image is made
    from cnbkit import Image

_PREFIX = "cnb:registry:"  # after the "urn" scheme
_NAMESPACE = re.compile(r"^[a-z0-9\-.:]{1,253}\Z")  # pack's validCharsPortRegexp
_NAME = re.compile(r"^[a-z0-9\-.]{1,253}\Z")
_INDEX_MAX = 16 * 1024 * 1024  # an index file lists versions: a few KB in the real index


@hookimpl
def cnbkit_resolvers() -> list[str]:
    """Claims: buildpack registry ids, as package images (with ``--buildpack-registry``)."""
    return ["urn:cnb:registry:NS/NAME[@VERSION] (a package image, via --buildpack-registry DIR|URL)"]


def index_path(namespace: str, name: str) -> str:
    """pack's ``IndexPath``: where the index keeps ``namespace/name``'s file.

    Raises:
        CnbkitError: a namespace or name pack would refuse.
    """
    if not _NAMESPACE.match(namespace) or not _NAME.match(name):
        raise CnbkitError(
            f"invalid buildpack registry id {namespace}/{name}: the namespace and name must be "
            "1 to 253 of a-z, 0-9, '-' and '.'"
        )
    if len(name) <= 2:
        folder = str(len(name))
    elif len(name) == 3:
        folder = f"3/{name[:2]}"
    else:
        folder = f"{name[:2]}/{name[2:4]}"
    return f"{folder}/{namespace}_{name}"


def _read_index(index: str, path: str, context: Context) -> tuple[str, bytes]:
    """Where the file is (for messages) and its bytes, from a directory or an https base."""
    base = parse_locator(index)
    if base.scheme in ("https", "http"):
        url = f"{index.rstrip('/')}/{path}"
        blob = context.download(url)
        stream = blob.open()
        data = bytearray()
        try:  # to the end: a download is committed to the cache once read whole
            while chunk := stream.read(1 << 16):
                if len(data) <= _INDEX_MAX:
                    data += chunk
        finally:
            close_stream(stream)
        return str(parse_locator(url)), bytes(data)
    file = Path(base.local_path()) / path
    try:
        with open(file, "rb") as f:
            return str(file), f.read(_INDEX_MAX + 1)
    except FileNotFoundError:
        raise CnbkitError(
            f"{file}: no such file: the buildpack is not in the registry index {index}"
        ) from None
    except OSError as exc:
        raise CnbkitError(f"{file}: cannot read it ({exc.strerror})") from None


def _entries(where: str, data: bytes) -> list[dict[str, Any]]:
    if len(data) > _INDEX_MAX:
        raise CnbkitError(f"{where}: more than {_INDEX_MAX} bytes; not a registry index file")
    entries = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise CnbkitError(f"{where}: line {number} is not JSON ({exc})") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("version"), str):
            raise CnbkitError(f"{where}: line {number} is not an entry with a version string")
        entries.append(entry)
    return entries


def _pick(entries: list[dict[str, Any]], version: str, where: str, context: Context) -> dict[str, Any]:
    """The entry of ``version``, or the newest one not yanked."""
    if version:
        for entry in entries:
            if entry["version"] == version:
                if entry.get("yanked") is True:
                    context.notice(f"{where}: version {version} is yanked")
                return entry
        known = ", ".join(entry["version"] for entry in entries) or "none"
        raise CnbkitError(f"{where}: no version {version} (the index lists: {known})")
    listed = [entry for entry in entries if entry.get("yanked") is not True]
    if not listed:
        raise CnbkitError(f"{where}: every version is yanked; name one with @VERSION")
    # Versions that do not parse sort first, as semver.Compare has them below any valid one.
    return max(listed, key=lambda entry: (1, key) if (key := semver_key(entry["version"])) else (0,))


@hookimpl
def cnbkit_resolve_image(locator: Locator, context: Context) -> Image | None:
    """The package image the registry index names for ``urn:cnb:registry:NS/NAME[@VERSION]``."""
    if locator.scheme != "urn" or not locator.rest.startswith(_PREFIX):
        return None
    ident = locator.rest[len(_PREFIX) :]
    parts = ident.split("@")  # pack's ParseIDLocator: a version only with exactly one '@'
    name_part, version = (parts[0], parts[1]) if len(parts) == 2 else (parts[0], "")
    namespace, slash, name = name_part.partition("/")
    if not slash or "/" in name:
        raise CnbkitError(f"{locator}: invalid registry ID: write urn:cnb:registry:NAMESPACE/NAME[@VERSION]")
    index = context.options.buildpack_registry
    if not index:
        raise CnbkitError(
            f"{locator}: a buildpack registry id: give --buildpack-registry DIR|URL (or "
            "CNBKIT_BUILDPACK_REGISTRY), a copy of the registry-index repository or an https URL serving it"
        )
    where, data = _read_index(index, index_path(namespace, name), context)
    entry = _pick(_entries(where, data), version, where, context)
    from cnbkit import parse_image_reference  # the registry's references, only when one is read

    addr = entry.get("addr")
    try:
        digest = parse_image_reference(addr).digest if isinstance(addr, str) else None
    except CnbkitError:
        digest = None
    if digest is None:
        raise CnbkitError(
            f"{where}: {namespace}/{name}@{entry['version']}: addr {addr!r} is not a digest "
            "reference (REGISTRY/REPO@sha256:...); refused"
        )
    return context.resolve_image(f"docker://{addr}")
