"""A multi-platform image: single-platform images joined by an OCI image index.

The index is made here, once, from the images' own manifests and configs: each entry's
``platform`` is what that image's config declares, so an index can never name a platform its
image is not. Exporters write :attr:`ImageIndex.index` as it is (its bytes and digest are
final), after every image it lists.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import mediatypes as mt
from ._json import compact_json
from .descriptor import Descriptor
from .errors import ManifestError
from .image import Image
from .manifest import Index
from .platform import Platform

__all__ = ["ImageIndex"]


class ImageIndex:
    """Several single-platform images under one OCI image index.

    Attributes:
        reference: how messages name the index (the target it is written to).
        images: the images, in the order the index lists them.
        index: the OCI image index (``application/vnd.oci.image.index.v1+json``): one entry per
            image, with that image's manifest digest, size and platform; its ``raw`` bytes are
            what an exporter writes and its ``digest`` is the index's digest.

    Raises:
        ManifestError: (constructor) no image, or two images for the same platform (a reader
            choosing by platform could not tell them apart).
    """

    def __init__(self, reference: str, images: Sequence[Image]) -> None:
        if not images:
            raise ManifestError(f"{reference}: an image index needs at least one image")
        seen: dict[Platform, Image] = {}
        for image in images:
            if image.platform in seen:
                raise ManifestError(
                    f"{reference}: two images for {image.platform} "
                    f"({seen[image.platform].digest} and {image.digest}); an index holds one per platform"
                )
            seen[image.platform] = image
        self.reference = reference
        self.images = tuple(images)
        entries = [
            Descriptor(image.manifest.media_type, image.digest, image.manifest.size, platform=image.platform)
            for image in self.images
        ]
        manifests = [entry.to_json() for entry in entries]
        document = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests}
        # the same images always give the same bytes, so the same index digest
        self.index = Index.parse(compact_json(document), mt.OCI_INDEX, source=f"{reference} index")

    @property
    def digest(self) -> str:
        """The index's digest: what ``REF@sha256:...`` pins for every platform at once."""
        return self.index.digest

    def image_for(self, os_name: str, architecture: str = "") -> Image | None:
        """The first image for ``os_name`` and, when given, ``architecture`` (pack's rule for
        loading one target into a daemon: an architecture, when known, must match too)."""
        for image in self.images:
            platform = image.platform
            if platform.os == os_name and (not architecture or platform.architecture == architecture):
                return image
        return None

    def __repr__(self) -> str:
        platforms = ", ".join(str(image.platform) for image in self.images)
        return f"ImageIndex({self.reference!r}, {self.digest}, [{platforms}])"
