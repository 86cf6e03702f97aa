"""``[lifecycle] version`` / ``--lifecycle-version``: the release URL and its checksum."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol

from ..errors import CacheMissError, DigestMismatchError, DownloadError, LifecycleError, UsageError
from ..redact import redact

if TYPE_CHECKING:
    from ..blob import Blob
    from ..oci.platform import Platform

__all__ = [
    "GITHUB_RELEASES",
    "Fetcher",
    "RELEASE_PLATFORMS",
    "lifecycle_url",
    "normal_version",
    "parse_version",
    "resolve_version",
    "semver_key",
]

GITHUB_RELEASES = "https://github.com/buildpacks/lifecycle/releases/download"
# OCI platform -> the suffix the lifecycle project names its release archives with.
RELEASE_PLATFORMS = {
    ("linux", "amd64"): "linux.x86-64",
    ("linux", "arm64"): "linux.arm64",
    ("linux", "ppc64le"): "linux.ppc64le",
    ("linux", "s390x"): "linux.s390x",
    ("windows", "amd64"): "windows.x86-64",
}
# Masterminds semver (pack's parser) is lenient: "v1.2", "1" are fine and mean 1.2.0, 1.0.0.
_VERSION = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)(?:\.(?P<minor>0|[1-9]\d*))?(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?P<pre>-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?P<build>\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?\Z"
)
_CHECKSUM = re.compile(r"^\s*([a-fA-F0-9]{64})\b")


class Fetcher(Protocol):
    """What resolving a version needs: the plugin context's ``download``, ``resolve`` and
    ``notice`` (this package never imports the plugin system; it is handed them)."""

    def download(self, url: str, *, sha256: str | None = None) -> Blob:
        """Fetch a URL through the cache."""
        ...

    def resolve(self, uri: str) -> Blob:
        """Send a URI through the resolver plugins."""
        ...

    def notice(self, message: str) -> None:
        """Tell the user something."""
        ...


def parse_version(text: str) -> str:
    """Normalise a lifecycle version as pack does (``v0.19`` -> ``0.19.0``).

    Raises:
        UsageError: not a semantic version.
    """
    match = _VERSION.match(text.strip())
    if not match:
        raise UsageError(f"invalid lifecycle version {text!r}: expected a semantic version like 0.21.0")
    core = f"{match['major']}.{match['minor'] or 0}.{match['patch'] or 0}"
    return core + (match["pre"] or "") + (match["build"] or "")


def normal_version(text: str) -> str | None:
    """:func:`parse_version`, or ``None`` when ``text`` is not a semantic version: the one rule
    for the versions of lifecycles (the descriptor's, the image label's, a requested one)."""
    try:
        return parse_version(text)
    except UsageError:
        return None


def semver_key(text: str) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]] | None:
    """A sort key giving semantic versions their precedence (``1.0.0-rc.1 < 1.0.0 < 1.0.1``;
    build metadata ignored), or ``None`` for a string that is no version: pack's
    ``semver.Compare``, by the one parse of versions here."""
    match = _VERSION.match(text.strip())
    if not match:
        return None
    pre = match["pre"]
    ids = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre[1:].split(".")) if pre else ()
    return int(match["major"]), int(match["minor"] or 0), int(match["patch"] or 0), 0 if pre else 1, ids


def lifecycle_url(version: str, platform: Platform, mirror: str | None = None) -> str:
    """The release archive URL for ``version`` on ``platform``, from GitHub or ``mirror``.

    Raises:
        UsageError: the version is invalid.
        LifecycleError: the lifecycle project publishes no archive for the platform (pack
            would silently fall back to x86-64).
    """
    version = parse_version(version)
    suffix = RELEASE_PLATFORMS.get((platform.os, platform.architecture))
    if suffix is None:
        known = ", ".join(f"{os}/{arch}" for os, arch in RELEASE_PLATFORMS)
        raise LifecycleError(f"the lifecycle is not released for {platform}; released platforms: {known}")
    return _append_path(mirror or GITHUB_RELEASES, f"v{version}/lifecycle-v{version}+{suffix}.tgz")


def _append_path(base: str, tail: str) -> str:
    """``base`` with ``tail`` added to its path; a query string (a signed mirror) stays last."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(base)
    path = f"{parts.path.rstrip('/')}/{tail}"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _sibling(url: str, suffix: str) -> str:
    """``url`` with ``suffix`` added to its file name (``x.tgz`` -> ``x.tgz.sha256``)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path + suffix, parts.query, ""))


def _published_checksum(context: Fetcher, url: str) -> str | None:
    """The hex sha256 from the ``.sha256`` file beside ``url``, or ``None`` if there is none."""
    from ..archive.streams import close_stream

    try:
        blob = context.download(_sibling(url, ".sha256"))
        stream = blob.open_raw()
        try:
            text = stream.read(4096).decode("utf-8", "replace")
            while stream.read(4096):  # read to the end, so the download commits to the cache
                pass
        finally:
            close_stream(stream)
    except DownloadError as exc:
        if exc.status in (403, 404, 410):
            return None
        raise
    except CacheMissError:
        # --offline without a cached .sha256: the mirror had none when the archive was fetched
        # (a published one is cached with it), so only the archive must come from the cache.
        return None
    match = _CHECKSUM.match(text)
    if not match:
        raise DigestMismatchError(f"{redact(url)}.sha256 does not start with a sha256 hex digest")
    return match[1].lower()


def resolve_version(
    version: str, platform: Platform, mirror: str | None, context: Fetcher
) -> tuple[str, Blob]:
    """Resolve a lifecycle version to its release archive, verified against its ``.sha256``.

    The archive URL goes through the resolver plugins (``context.resolve``), pinned with
    ``#sha256=`` to the published checksum, so a plugin that takes over ``https`` (a mirror,
    a proxy) serves versions too.

    Returns:
        The URL resolved (without the pin, redacted: safe to print) and the Blob.
    """
    url = lifecycle_url(version, platform, mirror)
    checksum = _published_checksum(context, url)
    if checksum is None:
        # The archive first: offline with an empty cache, the one thing to say is that the
        # archive is missing, not that an unverified one is used.
        blob = context.resolve(url)
        context.notice(f"{redact(url)} has no .sha256 beside it; its content is not verified")
        return redact(url), blob
    return redact(url), context.resolve(f"{url}#sha256={checksum}")
