"""What may be printed: secrets masked (:func:`redact`), control characters escaped
(:func:`printable`), and how much of a hostile text or list a message quotes (:func:`clip`,
:func:`listing`). Every message cnbkit shows goes through the first two."""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection

__all__ = ["MAX_LISTED", "MAX_QUOTED", "clip", "listing", "printable", "redact"]

# How much of an untrusted text or list an error quotes: enough to recognise it, never so much
# that a hostile archive or index makes a message of megabytes (one line is the promise).
MAX_QUOTED = 256
MAX_LISTED = 10

# userinfo in any URL-ish string: scheme://user:password@host or scheme://token@host. The
# authority ends at the first / ? # or blank; userinfo is everything up to its LAST "@", so a
# password holding "@" (hostile, or just unencoded) is masked whole.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s]*)@")
# query parameters whose value is a credential (presigned URLs, API tokens)
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&][^=&#\s]*(?:token|sig|signature|secret|password|passwd|credential|key|auth)"
    r"[^=&#\s]*=)(?P<value>[^&#\s]*)",
    re.IGNORECASE,
)
# an Authorization value a server echoes back (``Basic <base64>``, ``Bearer <token>``): a
# registry's error body may quote the request's headers. A credential has a capital, a digit
# or a sign; "Basic authentication" is prose, left alone.
_AUTH_VALUE = re.compile(r"(?P<scheme>\b(?i:basic|bearer)\s+)(?=[\w+/.~-]*[A-Z0-9+/.~=-])[\w+/.~-]+=*")
# C0 controls (newline, ESC, ...), DEL, C1 controls, the Unicode line and paragraph
# separators, bidirectional overrides, and lone surrogates (bytes that were not UTF-8).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _userinfo(match: re.Match[str]) -> str:
    user, sep, _password = match["userinfo"].partition(":")
    # A lone name is often a token (https://TOKEN@host): hide it too; keep a user name that
    # comes with a password, so the user can still tell which account was used.
    shown = f"{user}:***" if sep and "@" not in user else "***"
    return f"{match['scheme']}{shown}@"


def redact(url: str) -> str:
    """Return ``url`` with its password, token-like userinfo, secret query values and
    ``Authorization`` values masked.

    Args:
        url: a URL or any string holding URLs.

    Returns:
        The same string with ``user:***@`` or ``***@`` in place of userinfo and ``***`` in place
        of credential-like query values (``token=``, ``X-Amz-Signature=`` and the like), and
        ``Basic ***`` / ``Bearer ***`` for credentials as an ``Authorization`` header holds them.
    """
    url = _USERINFO.sub(_userinfo, url)
    url = _AUTH_VALUE.sub(lambda m: f"{m['scheme']}***", url)
    return _SECRET_PARAM.sub(lambda m: f"{m['key']}***", url)


def _escape(match: re.Match[str]) -> str:
    code = ord(match[0])
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` made safe for a terminal and for a one-line message.

    Control characters (newline, carriage return, ESC and the rest of C0 and C1), Unicode
    line separators and bidi overrides become visible escapes (``\\x1b``, ``\\u2028``), so
    an archive entry name, an HTTP header or a URL can neither forge a second line nor drive
    the terminal. Bytes that were not UTF-8 (surrogate escapes) show as ``\\xNN``.
    """
    return _UNPRINTABLE.sub(_escape, text)


def clip(text: str, limit: int = MAX_QUOTED) -> str:
    """``text``, cut to ``limit`` characters with ``...`` when longer: what a message quotes
    of an untrusted name, value or message."""
    return text if len(text) <= limit else text[:limit] + "..."


def listing(items: Collection[str], limit: int = MAX_LISTED) -> str:
    """The first ``limit`` of ``items`` (each :func:`clip` ped), then how many more:
    ``"a, b, c and 9,997 more"``. What a message lists of platforms, tags, keys, names."""
    shown = [clip(item) for item in itertools.islice(items, limit)]
    more = len(items) - len(shown)
    return ", ".join(shown) + (f" and {more:,} more" if more > 0 else "")


def described(table: dict[str, list[str]]) -> str:
    """What plugins say they claim or write, for "no plugin ..." messages: ``pattern (plugin)``
    joined by commas, or ``nothing``."""
    return ", ".join(f"{item} ({name})" for name, items in table.items() for item in items) or "nothing"
