"""A registry's error document, read as far as it can be trusted and no further.

A failed request's message names the registry's own error code and message when its body is a
registry error document of at most 64 KiB: the first error only, the code cut at 64 characters
and the message at 160. Anything else (too long, not JSON, not an error document, a body cut
short) leaves the status alone, never a traceback. Driven through the plugin API's registry
client against a hostile registry on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cnbkit
import pytest
from cnbkit.api import new_context
from cnbkit.options import Options

from tests.hostile_server import Answer, HostileServer, Request, answer

JSON = {"Content-Type": "application/json"}
DIGEST = "sha256:" + "5" * 64
LIMIT = 64 * 1024


def _failure(error: Answer, cache_dir: Path) -> str:
    """The message of the error a manifest GET answered with ``error`` gives."""

    def respond(request: Request) -> Answer:
        return answer(200, b"{}", JSON) if request.path == "/v2/" else error

    server = HostileServer(respond)
    try:
        context = new_context(Options.build(cache_dir=cache_dir))
        ref = cnbkit.parse_image_reference(f"{server.host}/x/app@{DIGEST}")
        with pytest.raises(cnbkit.DownloadError) as raised:
            context.registry_client().get_manifest(ref)
        return str(raised.value)
    finally:
        server.close()


def _document(size: int | None = None, **first: object) -> bytes:
    """An error document whose first error is ``first``, padded to ``size`` bytes."""
    body = json.dumps({"errors": [first, {"code": "SECOND", "message": "the second error"}]}).encode()
    if size is not None:
        body = body[:-1] + b" " * (size - len(body)) + b"}"
    return body


Failure = Callable[[Answer], str]


@pytest.fixture
def failure(cache_dir: Path) -> Failure:
    """``_failure`` with this test's cache."""
    return lambda error: _failure(error, cache_dir)


@pytest.mark.parametrize("size", [LIMIT - 1, LIMIT])
def test_an_error_document_up_to_64_kib_is_read(failure: Failure, size: int) -> None:
    body = _document(size, code="MANIFEST_UNKNOWN", message="manifest unknown to this registry")
    assert len(body) == size
    message = failure(answer(404, body, JSON))
    assert "HTTP 404 MANIFEST_UNKNOWN (manifest unknown to this registry); check" in message, message


def test_an_error_document_over_64_kib_is_not_read(failure: Failure) -> None:
    body = _document(LIMIT + 1, code="MANIFEST_UNKNOWN", message="manifest unknown to this registry")
    message = failure(answer(404, body, JSON))
    assert "HTTP 404; " in message and "MANIFEST_UNKNOWN" not in message


def test_only_the_first_error_is_told_its_code_and_message_cut_short(failure: Failure) -> None:
    code, text = "C" * 100, "m" * 300
    message = failure(answer(404, _document(code=code, message=text), JSON))
    assert f"HTTP 404 {'C' * 64} ({'m' * 160})" in message
    assert "C" * 65 not in message and "m" * 161 not in message and "SECOND" not in message


@pytest.mark.parametrize(
    "errors",
    [[], ["a string"], [None], [5], "errors", 5, {"code": "X"}],
    ids=["empty", "string-item", "null-item", "number-item", "string", "number", "object"],
)
def test_a_body_that_is_not_an_error_document_leaves_the_status(failure: Failure, errors: object) -> None:
    message = failure(answer(404, json.dumps({"errors": errors}).encode(), JSON))
    assert "HTTP 404; " in message, message


@pytest.mark.parametrize("body", [b"[1]", b'"errors"', b"null", b"{not json", b"\xff"])
def test_a_body_that_is_not_a_json_object_leaves_the_status(failure: Failure, body: bytes) -> None:
    assert "HTTP 404; " in failure(answer(404, body, JSON))


def test_an_error_body_cut_short_leaves_the_status(failure: Failure) -> None:
    body = _document(code="MANIFEST_UNKNOWN", message="gone")
    message = failure((answer(404, body[:10], JSON, length=len(body)), 0))
    assert "HTTP 404; " in message and "MANIFEST_UNKNOWN" not in message
