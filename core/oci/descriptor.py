"""Content descriptors: the (media type, digest, size) triple that points at every blob."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..archive.digest import validate_digest
from ..errors import ArchiveError
from ._json import check_string_map, check_strings, optional_str
from .errors import ManifestError
from .platform import Platform

__all__ = ["Descriptor", "parse_platform_object", "platform_to_json"]


@dataclass(frozen=True)
class Descriptor:
    """A pointer to a blob, as OCI image-spec ``descriptor.md`` defines it.

    Attributes:
        media_type: what the blob is (see :mod:`cnbkit.oci.mediatypes`).
        digest: ``sha256:<hex>`` (or ``sha512``), always validated: safe in a path or URL.
        size: the blob's size in bytes.
        platform: the platform of an index entry, ``None`` when not given.
        annotations: free-form string metadata (``org.opencontainers.image.ref.name`` etc.).
        urls: where a foreign (nondistributable) layer may be downloaded instead.
        artifact_type: the artifact type of an index entry (image-spec 1.1), or ``""``.
    """

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    urls: tuple[str, ...] = ()
    artifact_type: str = ""

    @property
    def algorithm(self) -> str:
        """``sha256`` or ``sha512``: the directory of the blob in a layout."""
        return self.digest.split(":", 1)[0]

    @property
    def encoded(self) -> str:
        """The hex part of the digest: the blob's file name in a layout."""
        return self.digest.split(":", 1)[1]

    @classmethod
    def from_json(cls, obj: Any, *, source: str) -> Descriptor:
        """Parse and validate a descriptor object from a manifest or index.

        The digest is validated first, so that nothing (a path, a URL, a message) ever sees
        an unchecked one.

        Args:
            obj: the decoded JSON value.
            source: what holds the descriptor, for messages (``index.json of oci:DIR``).

        Raises:
            ManifestError: a field is missing or of the wrong type, or the digest is invalid.
        """
        if not isinstance(obj, dict):
            raise ManifestError(f"{source}: a descriptor must be a JSON object")
        try:
            digest = validate_digest(obj.get("digest"))  # type: ignore[arg-type]
        except ArchiveError as exc:
            raise ManifestError(f"{source}: {exc}") from None
        where = f"{source}: descriptor {digest}"
        media_type = optional_str(obj, "mediaType", source=where)
        if not media_type:
            raise ManifestError(f"{where} has no mediaType")
        size = obj.get("size")
        # bool is an int in Python; a JSON true is not a size.
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestError(f"{where}: size must be a non-negative integer, not {size!r}"[:200])
        platform = None
        if obj.get("platform") is not None:
            platform = parse_platform_object(obj["platform"], source=where)
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            platform=platform,
            annotations=check_string_map(obj.get("annotations"), key="annotations", source=where),
            urls=check_strings(obj.get("urls"), key="urls", source=where),
            artifact_type=optional_str(obj, "artifactType", source=where),
        )

    def to_json(self) -> dict[str, Any]:
        """The descriptor as a JSON object, with the keys in the order the specs show them."""
        result: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            result["urls"] = list(self.urls)
        if self.annotations:
            result["annotations"] = dict(self.annotations)
        if self.platform is not None:
            result["platform"] = platform_to_json(self.platform)
        if self.artifact_type:
            result["artifactType"] = self.artifact_type
        return result


def parse_platform_object(obj: Any, *, source: str) -> Platform:
    """Parse the ``platform`` object of an index entry (``os.version``/``features`` ignored).

    Raises:
        ManifestError: not an object, or ``os``/``architecture`` missing or not strings.
    """
    if not isinstance(obj, dict):
        raise ManifestError(f"{source}: platform must be a JSON object")
    os_name = optional_str(obj, "os", source=source)
    arch = optional_str(obj, "architecture", source=source)
    if not os_name or not arch:
        raise ManifestError(f"{source}: platform needs both os and architecture")
    return Platform(os_name, arch, optional_str(obj, "variant", source=source))


def platform_to_json(platform: Platform) -> dict[str, str]:
    """A :class:`Platform` as the ``platform`` object of an index entry."""
    result = {"architecture": platform.architecture, "os": platform.os}
    if platform.variant:
        result["variant"] = platform.variant
    return result
