"""Errors of the image model and its transports, all :class:`cnbkit.errors.CnbkitError`.

Every message stands alone on one line: the image, digest, tag or file, what was wrong and
what to do about it.
"""

from __future__ import annotations

from ..errors import CnbkitError

__all__ = [
    "ImageError",
    "ImageNotFoundError",
    "LayoutError",
    "ManifestError",
    "PlatformNotFoundError",
]


class ImageError(CnbkitError):
    """Base of the image errors: an image could not be found, read or trusted."""


class ManifestError(ImageError):
    """A manifest, index, image config or descriptor is malformed, too large or unsupported."""


class ImageNotFoundError(ImageError):
    """The reference names no image: an unknown tag or digest, or several images and no tag."""


class PlatformNotFoundError(ImageError):
    """The image (or index) has no manifest for the requested platform.

    Attributes:
        available: the platforms the image offers, as ``OS/ARCH[/VARIANT]`` strings.
        single: the image is one manifest (no index) of the one platform in ``available``:
            a builder without targets uses it as it is, as pack does.
    """

    def __init__(self, message: str, available: list[str], *, single: bool = False) -> None:
        super().__init__(message)
        self.available = available
        self.single = single


class LayoutError(ImageError):
    """An OCI image layout directory is missing, malformed or unsafe to read or write."""
