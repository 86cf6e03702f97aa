"""Removing secrets from URLs and messages before anything is printed, logged or used as a key."""

from __future__ import annotations

import re

__all__ = ["redact"]

# userinfo in any URL-ish string: scheme://user:password@host or scheme://token@host
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s?#]+)@")
# query parameters whose value is a credential (presigned URLs, API tokens)
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&][^=&#\s]*(?:token|sig|signature|secret|password|passwd|credential|key|auth)"
    r"[^=&#\s]*=)(?P<value>[^&#\s]*)",
    re.IGNORECASE,
)


def _userinfo(match: re.Match[str]) -> str:
    user, sep, _password = match["userinfo"].partition(":")
    # A lone name is often a token (https://TOKEN@host): hide it too; keep a user name that
    # comes with a password, so the user can still tell which account was used.
    shown = f"{user}:***" if sep else "***"
    return f"{match['scheme']}{shown}@"


def redact(url: str) -> str:
    """Return ``url`` with its password, token-like userinfo and secret query values masked.

    Args:
        url: a URL or any string holding URLs.

    Returns:
        The same string with ``user:***@`` or ``***@`` in place of userinfo and ``***`` in place
        of credential-like query values (``token=``, ``X-Amz-Signature=`` and the like).
    """
    url = _USERINFO.sub(_userinfo, url)
    return _SECRET_PARAM.sub(lambda m: f"{m['key']}***", url)
