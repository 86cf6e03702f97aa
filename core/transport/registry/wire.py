"""What the registry's answers mean: its error type, its error documents, its small bodies.

Every registry request is sent by :func:`cnbkit.transport.request.send` (the one redirect,
retry and timeout policy); :class:`~cnbkit.transport.registry.connection.Connection` adds the
registry's authorization.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import DownloadError
from ...oci._json import load_json
from ...oci.errors import ManifestError
from ...redact import redact
from ..http import is_timeout, stalled

if TYPE_CHECKING:
    import requests

__all__ = ["RegistryError", "error_code", "read_body"]

_ERROR_BODY_MAX = 64 * 1024


class RegistryError(DownloadError):
    """A registry answered with an error, or refused what was asked.

    Attributes:
        status: the HTTP status, or ``None`` when no response was involved.
        code: the registry's error code (``MANIFEST_UNKNOWN``, ``UNAUTHORIZED``...), or ``""``.
    """

    def __init__(self, message: str, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def error_code(response: requests.Response) -> tuple[str, str]:
    """The first ``(code, message)`` of a registry's JSON error body, or ``("", "")``.

    The body is read only up to 64 KiB and only when it says it is JSON: an error page from a
    proxy can be anything, and none of it is worth memory.
    """
    if "json" not in response.headers.get("Content-Type", ""):
        return "", ""
    try:
        body = read_body(response, _ERROR_BODY_MAX, source="", peer="registry", timeout=0)
        document = load_json(body, source="error body", limit=_ERROR_BODY_MAX)
    except (ManifestError, DownloadError):
        return "", ""
    errors = document.get("errors") if isinstance(document, dict) else None
    first = errors[0] if isinstance(errors, list) and errors else None
    if not isinstance(first, dict):
        return "", ""  # not a registry's error document: the status alone is the message
    code, message = str(first.get("code", ""))[:64], str(first.get("message", ""))[:160]
    # One line, nothing a hostile registry could use to fake a second message.
    return redact(" ".join(code.split())), redact(" ".join(message.split()))


def read_body(response: requests.Response, most: int, *, source: str, peer: str, timeout: float) -> bytes:
    """Up to ``most`` bytes of a small body (a manifest, a token; pass a limit plus one to tell
    a body over it).

    Raises:
        DownloadError: the ``peer`` stalled, or the connection broke before the body's end
            (never urllib3's exceptions).
    """
    import requests
    import urllib3

    try:
        data: bytes = response.raw.read(most, decode_content=True)
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
        if is_timeout(exc):
            raise stalled(source, peer, timeout) from None
        raise DownloadError(
            f"{source}: the connection to the {peer} broke before the end; try again"
        ) from None
    return data
