"""Image references as Docker spells them: ``[registry[:port]/]repo[:tag][@sha256:hex]``.

The grammar and the normalisation follow Docker's ``reference`` package (``ParseNormalizedNamed``):
a first path component is a registry only if it holds a ``.`` or a ``:`` or is ``localhost``;
otherwise the image is on Docker Hub (``docker.io``, whose API host is ``registry-1.docker.io``)
and a single-name repository gets ``library/``. Every part is validated before it can reach a
URL, so a reference can never add a path segment, a query or a host to a request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ...archive.digest import validate_digest
from ...errors import CnbkitError, UsageError

__all__ = [
    "DOCKER_HUB",
    "DOCKER_HUB_API",
    "Reference",
    "is_reference",
    "mirrored",
    "parse_mirrors",
    "parse_reference",
]

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
_NAME_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
# ``\Z``, not ``$``: Go's ``$`` is the end of the text, Python's also matches before a final newline
_COMPONENT = re.compile(rf"^{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*\Z")
_TAG = re.compile(r"^[\w][\w.-]{0,127}\Z", re.ASCII)
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = re.compile(
    rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]{{1,5}})?\Z", re.ASCII
)
_HEX64 = re.compile(r"^[a-f0-9]{64}\Z")


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference.

    Attributes:
        registry: the registry as users name it (``docker.io``, ``ghcr.io``,
            ``127.0.0.1:5000``); also the key for credentials.
        repository: the repository path (``library/alpine``, ``org/app``).
        tag: the tag, or ``None`` (``latest`` is implied when there is no digest either).
        digest: ``sha256:<hex>`` (validated), or ``None``.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """The host (and port) that serves the registry API (``registry-1.docker.io`` for Hub)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def hostname(self) -> str:
        """The API host without its port or IPv6 brackets."""
        host = self.api_host
        if host.startswith("["):
            return host[1 : host.index("]")]
        return host.partition(":")[0]

    @property
    def target(self) -> str:
        """What to ask the registry for: the digest when there is one, else the tag (or ``latest``)."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        """``registry/repository`` (for messages)."""
        return f"{self.registry}/{self.repository}"

    def with_digest(self, digest: str) -> Reference:
        """The same repository pinned to ``digest`` (the tag is kept for display)."""
        return Reference(self.registry, self.repository, self.tag, validate_digest(digest))

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _error(raw: str, why: str) -> CnbkitError:
    return UsageError(f"invalid image reference {raw[:200]!r}: {why}")


def parse_reference(raw: str) -> Reference:
    """Parse ``raw`` the way ``docker pull`` does.

    Args:
        raw: ``alpine``, ``alpine:3.20``, ``ghcr.io/org/app@sha256:...``,
            ``127.0.0.1:5000/repo:tag``, ``localhost/app``.

    Returns:
        The normalised :class:`Reference`.

    Raises:
        UsageError: the reference breaks the grammar (the message names it and says why).
    """
    if not raw or raw != raw.strip() or any(c.isspace() for c in raw):
        raise _error(raw, "it is empty or holds whitespace")
    if "://" in raw:
        raise _error(raw, "an image reference has no scheme (drop http:// or https://)")
    rest, at, digest = raw.partition("@")
    if at:
        try:
            validate_digest(digest)
        except CnbkitError:
            raise _error(raw, "the digest must be sha256:<64 lower-case hex digits>") from None
    tag: str | None = None
    head, colon, maybe_tag = rest.rpartition(":")
    if colon and "/" not in maybe_tag:  # a colon before the last '/' is a registry port
        rest, tag = head, maybe_tag
        if not _TAG.match(tag):
            raise _error(raw, f"tag {tag[:130]!r} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        registry, path = first, remainder
        if not _HOST.match(registry):
            raise _error(raw, f"registry {registry!r} is not a valid host[:port]")
        if registry in _HUB_ALIASES:
            registry = DOCKER_HUB
    else:
        registry, path = DOCKER_HUB, rest
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    components = path.split("/")
    for component in components:
        if not _COMPONENT.match(component):
            raise _error(
                raw,
                f"repository component {component[:80]!r} must be lower-case letters and digits, "
                "joined by '.', '_', '__' or '-'",
            )
    if _HEX64.match(rest):
        raise _error(raw, "a 64-hex-digit name is an image ID, not a repository")
    if len(registry) + 1 + len(path) > _NAME_MAX:
        raise _error(raw, f"the name is longer than {_NAME_MAX} characters")
    return Reference(registry, path, tag, digest or None)


def is_reference(raw: str) -> bool:
    """Whether ``raw`` is an image reference as ``docker pull`` reads it."""
    try:
        parse_reference(raw)
    except CnbkitError:
        return False
    return True


_MIRROR_FORM = (
    "REGISTRY=MIRROR (as in --registry-mirror index.docker.io=mirror.example:5000, or "
    "CNBKIT_REGISTRY_MIRRORS=index.docker.io=mirror.example,ghcr.io=mirror.example/ghcr)"
)


def parse_mirrors(pairs: Iterable[str]) -> dict[str, str]:
    """pack's ``registry-mirrors``: ``REGISTRY=MIRROR`` pairs as ``{registry: mirror}``.

    ``REGISTRY`` is a registry's ``host[:port]`` (Docker Hub's names, ``docker.io`` and
    ``index.docker.io``, are one registry) or ``*``, every registry; ``MIRROR`` is
    ``host[:port][/path]``: an image ``REGISTRY/REPO:TAG`` is then fetched as
    ``MIRROR/REPO:TAG`` (Docker Hub's ``REPO`` with its ``library/``), as pack's
    ``TranslateRegistry`` does.

    Raises:
        UsageError: a pair of another form (the message shows the form).
    """
    mirrors: dict[str, str] = {}
    for pair in pairs:
        registry, equals, mirror = (part.strip() for part in pair.partition("="))
        host, _, path = mirror.rstrip("/").partition("/")
        valid = (
            equals
            and (registry == "*" or _HOST.match(registry))
            and _HOST.match(host)
            and all(_COMPONENT.match(part) for part in path.split("/") if path)
        )
        if not valid:
            raise UsageError(f"registry mirror {pair[:200]!r}: give {_MIRROR_FORM}")
        mirrors[DOCKER_HUB if registry in _HUB_ALIASES else registry] = mirror.rstrip("/")
    return mirrors


def mirrored(ref: Reference, mirrors: Mapping[str, str]) -> Reference:
    """``ref`` as fetched from its registry's mirror (``*`` first, as pack), else ``ref`` itself."""
    mirror = mirrors.get("*") or mirrors.get(ref.registry)
    if mirror is None:
        return ref
    host, _, path = mirror.partition("/")
    registry = DOCKER_HUB if host in _HUB_ALIASES else host
    repository = f"{path}/{ref.repository}" if path else ref.repository
    return Reference(registry, repository, ref.tag, ref.digest)
