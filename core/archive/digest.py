"""Content digests (``sha256:<hex>``): validating them before they touch a URL or a path."""

from __future__ import annotations

import re

from ..errors import ArchiveError

__all__ = ["DIGEST_PATTERN", "validate_digest"]

DIGEST_PATTERN = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})\Z")


def validate_digest(digest: str) -> str:
    """Return ``digest`` if it is ``sha256:<64 hex>`` or ``sha512:<128 hex>``.

    A digest is checked before it is ever used in a URL or a path, so that a hostile index or
    manifest cannot smuggle ``../`` into one.

    Raises:
        ArchiveError: the digest is malformed.
    """
    if not isinstance(digest, str) or not DIGEST_PATTERN.match(digest):
        raise ArchiveError(f"invalid digest {str(digest)[:80]!r}: expected sha256:<64 hex digits>")
    return digest
