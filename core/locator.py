"""Parsing a lifecycle reference (a URI or a bare path) into a :class:`Locator`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import UsageError
from .redact import redact

__all__ = ["PACKAGE_FILE_SUFFIX", "Locator", "local_path", "parse_locator"]

# A buildpackage saved as a file (``pack buildpack package --format file``) is an OCI layout in
# a tar named ``*.cnb``: pack reads such a path as a package, so the ``archives`` plugin supplies
# it as an image and the ``file`` resolver passes on it (never a buildpack ``.tgz``).
PACKAGE_FILE_SUFFIX = ".cnb"

# RFC 3986 scheme; one letter is a Windows drive ("C:\x"), not a scheme.
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):")


@dataclass(frozen=True)
class Locator:
    """A parsed reference to a lifecycle (or, later, an image or buildpack).

    Attributes:
        raw: the string exactly as the user gave it. It may hold a password; it is the one
            place one stays, for the resolver that needs it. Never print it: use ``str()``.
        scheme: the lower-cased scheme (``file``, ``https``, ``http``, ``docker``, ``oci``, a
            third party's own) or ``None`` for a bare path.
        rest: what follows the scheme: after ``scheme://`` or ``scheme:``; for ``docker`` all
            leading slashes are dropped, so pack's ``docker:/REF`` and ``docker:///REF`` give
            ``REF`` too.
        base_dir: the directory relative paths resolve against (the directory of builder.toml,
            ``--base-dir``, or the working directory).
    """

    raw: str
    scheme: str | None
    rest: str
    base_dir: Path = field(default_factory=Path.cwd)

    def __str__(self) -> str:
        return redact(self.raw)

    def __repr__(self) -> str:
        return f"Locator({redact(self.raw)!r}, scheme={self.scheme!r})"

    @property
    def fragment(self) -> str:
        """The part after ``#`` in ``rest`` (``sha256=<hex>`` for pinned URLs), or ``""``."""
        return self.rest.partition("#")[2]

    def pin(self) -> str | None:
        """The ``sha256`` hex digits a ``#sha256=<hex>`` fragment pins the content to, or ``None``.

        Raises:
            UsageError: any other fragment.
        """
        if not self.fragment:
            return None
        key, _, value = self.fragment.partition("=")
        if key != "sha256":
            raise UsageError(f"{self}: unknown URL fragment {self.fragment!r}; only #sha256=<hex> pins")
        return value.lower()

    @property
    def url_path(self) -> str:
        """A URL's path, without its query and fragment (``/dl/x.cnb`` of ``https://h/dl/x.cnb?a``)."""
        return urlsplit(self.raw).path

    def local_path(self) -> Path:
        """The absolute filesystem path a bare path or ``file:`` URI names.

        Relative paths (``lifecycle.tgz``, ``file://sub/l.tgz``) resolve against ``base_dir``;
        ``~`` expands to the home directory.
        """
        text = self.raw if self.scheme is None else self.rest
        return self.path_for(text.split("#", 1)[0] if self.scheme else text)

    def path_for(self, text: str) -> Path:
        """``text`` (a path inside a reference: ``oci:DIR``'s ``DIR``) as an absolute path:
        ``~`` expanded, a relative path against ``base_dir``."""
        return local_path(text, self.base_dir)


def local_path(text: str, base_dir: str | os.PathLike[str] | None = None) -> Path:
    """``text`` as an absolute path: ``~`` expanded, a relative path against ``base_dir`` (the
    working directory by default). The one rule for every path a user writes."""
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else (Path(base_dir or Path.cwd()) / path).absolute()


def parse_locator(uri: str, base_dir: str | os.PathLike[str] | None = None) -> Locator:
    """Parse ``uri`` into a :class:`Locator`.

    Args:
        uri: a bare path, ``file://``, ``https://``, ``docker://``, ``oci:`` or any
            ``scheme:`` a plugin claims.
        base_dir: what relative paths resolve against; the working directory by default.

    Returns:
        The locator. Parsing never fails on an unknown scheme: claiming is the plugins' job.
    """
    base = Path(base_dir).absolute() if base_dir is not None else Path.cwd()
    match = _SCHEME.match(uri)
    if not match:
        return Locator(raw=uri, scheme=None, rest=uri, base_dir=base)
    scheme = match["scheme"].lower()
    rest = uri[match.end() :]
    if scheme == "docker":
        rest = rest.lstrip("/")
    elif rest.startswith("//"):
        rest = rest[2:]
    return Locator(raw=uri, scheme=scheme, rest=rest, base_dir=base)
