"""Choosing the manifest for one platform from an image index, as containerd does.

Attestations (BuildKit's provenance and SBOM manifests, marked by the
``vnd.docker.reference.type`` annotation and the ``unknown/unknown`` platform) are not images
and never selected; nested indexes are followed, to a bounded depth. An index is untrusted: one
that names the same child index 2,000 times must not be read 2,000 times, so each nested index
is fetched once, and at most :data:`MAX_INDEXES_FETCHED` of them.
"""

from __future__ import annotations

from collections.abc import Callable

from ..redact import listing
from . import mediatypes as mt
from .descriptor import Descriptor
from .errors import ManifestError, PlatformNotFoundError
from .manifest import Index, Manifest
from .platform import Platform

__all__ = [
    "MAX_INDEXES_FETCHED",
    "MAX_INDEX_DEPTH",
    "REFERENCE_TYPE_ANNOTATION",
    "Fetch",
    "image_entries",
    "index_platforms",
    "is_attestation",
    "select_manifest",
]

MAX_INDEX_DEPTH = 4  # an index of indexes of ... deeper than this is a loop or an attack
# Real images nest one or two indexes; each may be up to 4 MiB, so this bounds the work.
MAX_INDEXES_FETCHED = 32
REFERENCE_TYPE_ANNOTATION = "vnd.docker.reference.type"
_ATTESTATION = "attestation-manifest"

Fetch = Callable[[Descriptor], "Manifest | Index"]
"""Reads the manifest or index a descriptor points at, verified against its digest."""


def is_attestation(descriptor: Descriptor) -> bool:
    """True for an index entry that is an attestation rather than a runnable image."""
    if descriptor.annotations.get(REFERENCE_TYPE_ANNOTATION) == _ATTESTATION:
        return True
    platform = descriptor.platform
    return platform is not None and (platform.os, platform.architecture) == ("unknown", "unknown")


def image_entries(index: Index) -> list[Descriptor]:
    """The entries of ``index`` that are images or nested indexes, attestations left out."""
    return [
        entry
        for entry in index.manifests
        if (mt.is_manifest(entry.media_type) or mt.is_index(entry.media_type)) and not is_attestation(entry)
    ]


def index_platforms(index: Index) -> tuple[str, ...]:
    """The platforms ``index``'s image entries declare, in its order (nested indexes and
    entries without a platform are not looked into)."""
    return tuple(str(e.platform) for e in image_entries(index) if e.platform is not None)


def select_manifest(
    index: Index,
    platform: Platform,
    fetch: Fetch,
    *,
    reference: str = "image",
    max_depth: int = MAX_INDEX_DEPTH,
) -> Descriptor:
    """The descriptor of the first manifest in ``index`` that serves ``platform``.

    A request without a variant matches the architecture's default variant
    (:meth:`Platform.matches`). Nested indexes are fetched only when their entry has no
    platform or a matching one. An index whose one image entry has no platform (as some
    tools write ``index.json``) yields that entry: the caller checks the config's platform.

    Args:
        index: the index to choose from.
        platform: the requested platform.
        fetch: reads a nested index (only called for index entries).
        reference: the image's name, for messages.
        max_depth: how many levels of nested indexes to follow.

    Raises:
        PlatformNotFoundError: no manifest for ``platform``; the message lists those there are.
        ManifestError: the indexes nest deeper than ``max_depth``.
    """
    walk = _Walk(platform, fetch, reference, {index.digest})
    found = walk.search(index, max_depth)
    if found is not None:
        return found
    entries = image_entries(index)
    if len(entries) == 1 and entries[0].platform is None and mt.is_manifest(entries[0].media_type):
        return entries[0]
    available = list(walk.seen)  # de-duplicated, in index order
    shown = listing(available) if available else "no image with a platform"
    raise PlatformNotFoundError(
        f"{reference} has no {platform}; it has {shown} (choose one with --platform)", available
    )


class _Walk:
    """One search through an index and its nested indexes: each index read at most once."""

    def __init__(self, platform: Platform, fetch: Fetch, reference: str, visited: set[str]) -> None:
        self.platform = platform
        self.fetch = fetch
        self.reference = reference
        self.visited = visited  # the digests of the indexes read so far
        self.seen: dict[str, None] = {}  # the platforms met, in order, once each

    def search(self, index: Index, depth: int) -> Descriptor | None:
        """The first entry of ``index`` (or of an index below it) that serves the platform."""
        for entry in image_entries(index):
            if mt.is_index(entry.media_type):
                if entry.platform is not None and not self.platform.matches(entry.platform):
                    self.seen[str(entry.platform)] = None
                    continue
                if entry.digest in self.visited:
                    continue  # already searched (or being searched: a loop): nothing new there
                if depth <= 0:
                    raise ManifestError(
                        f"{self.reference}: image indexes nest too deeply (at {entry.digest})"
                    )
                if len(self.visited) > MAX_INDEXES_FETCHED:
                    raise ManifestError(
                        f"{self.reference} names more than {MAX_INDEXES_FETCHED} nested indexes; "
                        "is it really an image? Name one platform's manifest by digest instead"
                    )
                self.visited.add(entry.digest)
                child = self.fetch(entry)
                if isinstance(child, Index):
                    found = self.search(child, depth - 1)
                    if found is not None:
                        return found
                continue
            if entry.platform is None:
                continue
            self.seen[str(entry.platform)] = None
            if self.platform.matches(entry.platform):
                return entry
        return None
