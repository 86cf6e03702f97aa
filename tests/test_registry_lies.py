"""A registry that vouches for other bytes than were asked for, and a registry token on a
redirect to another port of the same host: the precise checks behind the broad ones, driven
through a plugin's registry client and the CLI against lying registries on real sockets
(tests/hostile_server.py)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import cnbkit
import pytest
import trustme
from cnbkit.api import new_context
from cnbkit.options import Options
from cnbkit.transport.registry import Credentials, RegistryClient

from tests.conftest import digest_of, one_line_error, run_cli
from tests.hostile_server import Answer, HostileServer, Request, answer
from tests.https_server import IDENTITIES, test_ca_fixture  # noqa: F401 - fixtures
from tests.raw_registry import tiny_image

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def servers() -> Iterator[list[HostileServer]]:
    """The hostile servers a test starts, closed after it."""
    started: list[HostileServer] = []
    yield started
    for server in started:
        server.close()


def _vouching(other: bytes, digest: str) -> HostileServer:
    """A registry that answers every manifest with ``other`` and ``digest`` as its
    ``Docker-Content-Digest``: it vouches for the bytes it sent, not those asked for."""

    def respond(request: Request) -> Answer:
        if request.path == "/v2/":
            return answer(200, b"{}", JSON)
        if "/manifests/" in request.path:
            headers = {"Content-Type": MANIFEST_TYPE, "Docker-Content-Digest": digest}
            return answer(200, other if request.method == "GET" else b"", headers, length=len(other))
        return answer(404, b"{}", JSON)

    return HostileServer(respond)


def test_a_manifest_by_digest_is_checked_against_that_digest_not_the_registrys(
    servers: list[HostileServer], cache_dir: Path
) -> None:
    _layer, _config, asked = tiny_image()
    _layer, _config, other = tiny_image(annotations={"swapped": "yes"})
    servers.append(_vouching(other, digest_of(other)))
    context = new_context(Options.build(cache_dir=cache_dir))
    ref = cnbkit.parse_image_reference(f"{servers[0].host}/x/app@{digest_of(asked)}")
    with pytest.raises(cnbkit.DigestMismatchError) as raised:
        context.registry_client().get_manifest(ref)
    assert str(raised.value) == (
        f"{ref}: the manifest has digest {digest_of(other)}, not {digest_of(asked)} (asked for)"
    )


def test_a_sha512_pin_is_not_replaced_by_the_registrys_sha256(servers: list[HostileServer]) -> None:
    # A sha256 pin would also be caught when the manifest is cached by its digest; a sha512 pin
    # only by the check of the digest asked for.
    _layer, _config, asked = tiny_image()
    _layer, _config, other = tiny_image(annotations={"swapped": "yes"})
    pin = "sha512:" + hashlib.sha512(asked).hexdigest()
    servers.append(_vouching(other, digest_of(other)))
    result = run_cli("resolve", f"docker://{servers[0].host}/x/lifecycle@{pin}", "--pull-policy", "always")
    line = one_line_error(result)
    got = "sha512:" + hashlib.sha512(other).hexdigest()
    assert f"the manifest has digest {got}, not {pin} (asked for)" in line, line


def _token_registry(servers: list[HostileServer], redirects: dict[str, Answer]) -> HostileServer:
    """A registry that wants an (anonymous) Bearer token from its own ``/token``, and answers a
    request with that token from ``redirects`` (by method and path), else ``{}``."""

    def registry(request: Request) -> Answer:
        if request.path.startswith("/token"):
            return answer(200, json.dumps({"token": "registry-token"}).encode(), JSON)
        if request.headers.get("authorization") != "Bearer registry-token":
            realm = f"http://{server.host}/token"
            challenge = {"WWW-Authenticate": f'Bearer realm="{realm}",service="lies"'}
            return answer(401, b"{}", {**JSON, **challenge})
        return redirects.get(f"{request.method} {request.path}", answer(200, b"{}", JSON))

    server = HostileServer(registry)
    servers.append(server)
    return server


@pytest.mark.parametrize(("username", "password"), [("u", ""), ("", "p"), ("u", "p"), ("", "")])
def test_the_token_request_carries_basic_credentials_when_either_half_is_given(
    servers: list[HostileServer], username: str, password: str
) -> None:
    # A password alone (a personal access token) or a user without one still logs in; only
    # credentials with neither go anonymous.
    registry = _token_registry(servers, {})
    client = RegistryClient(timeout=5, credentials=lambda _registry: Credentials(username, password))
    ref = cnbkit.parse_image_reference(f"{registry.host}/x/app:v1")
    assert client.blob_exists(ref, "sha256:" + "ab" * 32) is not None
    sent = [r.headers.get("authorization") for r in registry.requests if r.path.startswith("/token")]
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    assert sent == [f"Basic {pair}" if username or password else None]


@pytest.mark.parametrize("realm", ["ftp://127.0.0.1/token", "http:///token", "/token", "token"])
def test_a_token_realm_that_is_not_an_http_url_is_refused_naming_it(
    servers: list[HostileServer], cache_dir: Path, realm: str
) -> None:
    challenge = {"WWW-Authenticate": f'Bearer realm="{realm}",service="lies"'}
    servers.append(HostileServer(lambda request: answer(401, b"{}", {**JSON, **challenge})))
    context = new_context(Options.build(cache_dir=cache_dir))
    ref = cnbkit.parse_image_reference(f"{servers[0].host}/x/app:v1")
    with pytest.raises(cnbkit.CnbkitError) as raised:
        context.registry_client().get_manifest(ref)
    assert str(raised.value) == f"{servers[0].host}: the token realm {realm!r} is not an http(s) URL"
    assert all(not r.path.startswith(("/token", "token")) for r in servers[0].requests)


def test_a_registry_token_is_not_sent_to_another_port_of_the_same_host(
    servers: list[HostileServer], cache_dir: Path
) -> None:
    blob = b"a blob behind a redirect\n" * 100
    digest = digest_of(blob)
    elsewhere = HostileServer(lambda request: answer(200, blob))  # 127.0.0.1, another port
    servers.append(elsewhere)
    location = {"Location": f"http://127.0.0.1:{elsewhere.port}/blob"}
    registry = _token_registry(servers, {f"GET /v2/x/app/blobs/{digest}": answer(307, headers=location)})
    context = new_context(Options.build(cache_dir=cache_dir))
    ref = cnbkit.parse_image_reference(f"{registry.host}/x/app:v1")
    path = context.registry_client().fetch_blob(ref, digest, len(blob), context.cache)
    assert path.read_bytes() == blob
    asked = [r for r in registry.requests if r.path == f"/v2/x/app/blobs/{digest}"]
    assert asked and asked[-1].headers["authorization"] == "Bearer registry-token"  # its own origin
    assert [r.path for r in elsewhere.requests] == ["/blob"]
    assert "authorization" not in elsewhere.requests[0].headers


def test_an_upload_location_on_another_port_of_the_same_host_gets_no_token(
    servers: list[HostileServer], cache_dir: Path
) -> None:
    # The registry hands back where to upload: the same host name, another port (a second
    # server on 127.0.0.1). That is another origin: the body goes there, the token does not.
    blob = b"a blob to push\n" * 100
    digest = digest_of(blob)
    elsewhere = HostileServer(lambda request: answer(201, headers={"Docker-Content-Digest": digest}))
    servers.append(elsewhere)
    location = {"Location": f"http://127.0.0.1:{elsewhere.port}/upload/1?state=s"}
    registry = _token_registry(servers, {"POST /v2/x/app/blobs/uploads/": answer(202, headers=location)})
    context = new_context(Options.build(cache_dir=cache_dir))
    ref = cnbkit.parse_image_reference(f"{registry.host}/x/app:v1")
    context.registry_client().upload_blob(ref, io.BytesIO(blob), digest, len(blob))
    started = [r for r in registry.requests if r.method == "POST"]
    assert started and started[-1].headers["authorization"] == "Bearer registry-token"
    assert [(r.method, r.body) for r in elsewhere.requests] == [("PUT", blob)]
    assert "authorization" not in elsewhere.requests[0].headers


def _blob_server(blob: bytes, status: int = 200, length: int | None = None) -> HostileServer:
    """An anonymous registry serving one blob (any digest) with ``status`` and ``Content-Length``."""

    def respond(request: Request) -> Answer:
        if request.path == "/v2/":
            return answer(200, b"{}", JSON)
        if status != 200:
            return answer(status, b'{"errors": [{"code": "BLOB_UNKNOWN"}]}', JSON)
        return answer(200, blob, length=length)

    return HostileServer(respond)


def test_a_blob_of_exactly_the_size_limit_is_fetched_and_one_byte_more_is_not(
    servers: list[HostileServer], cache_dir: Path
) -> None:
    blob = bytes(range(256)) * 40
    digest = digest_of(blob)
    servers.append(_blob_server(blob))
    ref = cnbkit.parse_image_reference(f"{servers[0].host}/x/app:v1")
    exact = new_context(Options.build(cache_dir=cache_dir, max_size=len(blob)))
    # the descriptor's size unknown: the registry's Content-Length is what is checked
    assert exact.registry_client().fetch_blob(ref, digest, None, exact.cache).read_bytes() == blob
    under = new_context(Options.build(cache_dir=cache_dir / "under", max_size=len(blob) - 1))
    for size in (None, len(blob)):  # by Content-Length, and by the descriptor before any request
        with pytest.raises(cnbkit.CnbkitError, match=f"larger than the limit of {len(blob) - 1} bytes"):
            under.registry_client().fetch_blob(ref, digest, size, under.cache)


def test_a_missing_blob_is_the_registrys_answer(servers: list[HostileServer], cache_dir: Path) -> None:
    servers.append(_blob_server(b"", status=404))
    context = new_context(Options.build(cache_dir=cache_dir))
    ref = cnbkit.parse_image_reference(f"{servers[0].host}/x/app:v1")
    digest = "sha256:" + "ab" * 32
    with pytest.raises(cnbkit.CnbkitError) as raised:
        context.registry_client().fetch_blob(ref, digest, 10, context.cache)
    assert str(raised.value).startswith(f"{servers[0].host}/x/app: blob {digest}: HTTP 404 BLOB_UNKNOWN")


def _manifest_server(data: bytes, content_type: str, *, length: bool = True) -> HostileServer:
    def respond(request: Request) -> Answer:
        if request.path == "/v2/":
            return answer(200, b"{}", JSON)
        if not length:  # no Content-Length: the body ends where the connection does
            return b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type.encode() + b"\r\n\r\n" + data, 0
        return answer(200, data, {"Content-Type": content_type})

    return HostileServer(respond)


def test_a_manifest_with_a_generic_content_type_is_read_by_its_own_media_type(
    servers: list[HostileServer], cache_dir: Path
) -> None:
    _layer, _config, manifest = tiny_image()
    servers.append(_manifest_server(manifest, "application/octet-stream"))
    context = new_context(Options.build(cache_dir=cache_dir))
    ref = cnbkit.parse_image_reference(f"{servers[0].host}/x/app@{digest_of(manifest)}")
    assert context.registry_client().get_manifest(ref) == (manifest, MANIFEST_TYPE, digest_of(manifest))


@pytest.mark.parametrize("extra", [0, 1])
def test_a_manifest_body_over_4_mib_without_a_length_is_refused(
    servers: list[HostileServer], cache_dir: Path, extra: int
) -> None:
    _layer, _config, manifest = tiny_image()
    padded = manifest[:-1] + b" " * (4 * 1024 * 1024 - len(manifest) + extra) + b"}"  # valid JSON
    servers.append(_manifest_server(padded, MANIFEST_TYPE, length=False))
    context = new_context(Options.build(cache_dir=cache_dir))
    ref = cnbkit.parse_image_reference(f"{servers[0].host}/x/app@{digest_of(padded)}")
    if extra == 0:
        assert context.registry_client().get_manifest(ref)[0] == padded  # 4 MiB exactly: accepted
        return
    with pytest.raises(cnbkit.CnbkitError) as raised:
        context.registry_client().get_manifest(ref)
    assert str(raised.value) == f"{ref}: the manifest is over the 4194304-byte limit; refused"


@pytest.mark.parametrize(
    "header", ["sha256:" + "g" * 64, "sha256:abc", "md5:" + "0" * 32, "sha256:" + "0" * 64 + "/.."]
)
def test_a_malformed_docker_content_digest_is_one_refusal(
    servers: list[HostileServer], cache_dir: Path, header: str
) -> None:
    _layer, _config, manifest = tiny_image()
    servers.append(_vouching(manifest, header))
    context = new_context(Options.build(cache_dir=cache_dir))
    ref = cnbkit.parse_image_reference(f"{servers[0].host}/x/app:v1")  # by tag: the header is what is checked
    for ask in (context.registry_client().get_manifest, context.registry_client().head_manifest):
        with pytest.raises(cnbkit.CnbkitError) as raised:
            ask(ref)
        assert str(raised.value) == f"{ref}: the registry sent a malformed Docker-Content-Digest"


@pytest.mark.parametrize("what", ["manifest", "blob", "token"])
def test_a_1xx_answer_is_refused_whatever_its_body(
    servers: list[HostileServer], cache_dir: Path, what: str
) -> None:
    # http.client hands any 1xx but 100 over as the final answer; it is not a 200, even with
    # the very body that was asked for
    _layer, _config, manifest = tiny_image()
    blob = b"a blob behind a 199\n"

    def respond(request: Request) -> Answer:
        if request.path.startswith("/token"):
            return answer(199, b'{"token": "t"}', JSON)
        if request.path == "/v2/" and what == "token":
            challenge = f'Bearer realm="http://{server.host}/token?from=lies",service="lies"'
            return answer(401, b"{}", {**JSON, "WWW-Authenticate": challenge})
        if request.path == "/v2/":
            return answer(200, b"{}", JSON)
        if "/manifests/" in request.path:
            return answer(199 if what == "manifest" else 200, manifest, {"Content-Type": MANIFEST_TYPE})
        return answer(199, blob)

    server = HostileServer(respond)
    servers.append(server)
    context = new_context(Options.build(cache_dir=cache_dir))
    ref = cnbkit.parse_image_reference(f"{server.host}/x/app@{digest_of(manifest)}")
    client = context.registry_client()
    said = {  # what was asked, answered with HTTP 199: named at once, never read as a 200's body
        "manifest": f"{server.host}/x/app: manifest {digest_of(manifest)}: HTTP 199",
        "blob": f"{server.host}/x/app: blob {digest_of(blob)}: HTTP 199",
        "token": f"{server.host}: the token server {server.url('/token')} answered HTTP 199; try again later",
    }[what]
    with pytest.raises(cnbkit.CnbkitError) as raised:
        if what == "blob":
            client.fetch_blob(ref, digest_of(blob), len(blob), context.cache)
        else:
            client.get_manifest(ref)
    assert str(raised.value) == said
    assert not context.cache.has_blob(digest_of(blob))


def _stalling(answer_bytes: bytes) -> HostileServer:
    """A registry that sends ``answer_bytes`` for anything but the ping, then falls silent."""

    def respond(request: Request) -> Answer:
        if request.path == "/v2/":
            return answer(200, b"{}", JSON)
        return answer_bytes, 30  # the test's timeout is 2 s: waiting for more is a "stalled" error

    return HostileServer(respond)


def test_a_plain_http_token_realm_of_an_https_registry_is_a_downgrade(
    servers: list[HostileServer], cache_dir: Path, tmp_path: Path, test_ca: trustme.CA
) -> None:
    # even on loopback, where plain http is allowed: the registry spoke https
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    test_ca.issue_cert(*IDENTITIES).configure_cert(context)
    challenge = {"WWW-Authenticate": 'Bearer realm="http://127.0.0.1:9/token",service="lies"'}
    servers.append(HostileServer(lambda request: answer(401, b"{}", {**JSON, **challenge}), tls=context))
    test_ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    options = Options.build(cache_dir=cache_dir, ca_cert=tmp_path / "ca.pem")
    ref = cnbkit.parse_image_reference(f"{servers[0].host}/x/app:v1")
    with pytest.raises(cnbkit.CnbkitError) as raised:
        new_context(options).registry_client().get_manifest(ref)
    said = "refusing a plain-http token realm (http://127.0.0.1:9/token) for an https registry"
    assert str(raised.value) == f"{servers[0].host}: {said}"


def test_a_token_answer_past_1_mib_is_refused_at_the_limit_without_waiting_for_more(
    servers: list[HostileServer], cache_dir: Path
) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
    token = _stalling(head + b'{"token": "' + b"t" * (1024 * 1024))  # past 1 MiB, unfinished, then silence
    servers.append(token)
    challenge = {"WWW-Authenticate": f'Bearer realm="{token.url("/token")}",service="lies"'}
    servers.append(HostileServer(lambda request: answer(401, b"{}", {**JSON, **challenge})))
    context = new_context(Options.build(cache_dir=cache_dir, timeout=2))
    ref = cnbkit.parse_image_reference(f"{servers[1].host}/x/app:v1")
    with pytest.raises(cnbkit.CnbkitError) as raised:
        context.registry_client().get_manifest(ref)
    said = "the token server's answer is 1048577 bytes, more than the 1048576 bytes allowed"
    assert str(raised.value) == f"{servers[1].host}: {said}"  # not "stalled": the rest is never waited for


def test_a_manifest_announced_over_4_mib_is_refused_before_its_body_and_4_mib_is_not(
    servers: list[HostileServer], cache_dir: Path
) -> None:
    _layer, _config, manifest = tiny_image()
    exact = manifest[:-1] + b" " * (4 * 1024 * 1024 - len(manifest)) + b"}"  # valid JSON, 4 MiB
    servers.append(_manifest_server(exact, MANIFEST_TYPE))  # with its Content-Length
    context = new_context(Options.build(cache_dir=cache_dir, timeout=2))
    ref = cnbkit.parse_image_reference(f"{servers[0].host}/x/app@{digest_of(exact)}")
    assert context.registry_client().get_manifest(ref)[0] == exact
    servers.append(_stalling(answer(200, b"", {"Content-Type": MANIFEST_TYPE}, length=5_000_000_000)))
    big = cnbkit.parse_image_reference(f"{servers[1].host}/x/app:v1")
    with pytest.raises(cnbkit.CnbkitError) as raised:
        context.registry_client().get_manifest(big)
    assert str(raised.value) == f"{big}: the manifest is 5000000000 bytes, over the 4194304 limit"


def test_a_manifest_body_past_4_mib_is_refused_at_the_limit_without_waiting_for_more(
    servers: list[HostileServer], cache_dir: Path
) -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {MANIFEST_TYPE}\r\n\r\n".encode()
    servers.append(_stalling(head + b"{" + b" " * (4 * 1024 * 1024)))  # one byte past, no length
    context = new_context(Options.build(cache_dir=cache_dir, timeout=2))
    ref = cnbkit.parse_image_reference(f"{servers[0].host}/x/app:v1")
    with pytest.raises(cnbkit.CnbkitError) as raised:
        context.registry_client().get_manifest(ref)
    assert str(raised.value) == f"{ref}: the manifest is over the 4194304-byte limit; refused"


def test_a_blob_announced_over_the_size_limit_is_refused_before_its_body(
    servers: list[HostileServer], cache_dir: Path
) -> None:
    servers.append(_stalling(answer(200, b"", length=10_000_000_000)))
    context = new_context(Options.build(cache_dir=cache_dir, timeout=2, max_size=1000))
    ref = cnbkit.parse_image_reference(f"{servers[0].host}/x/app:v1")
    with pytest.raises(cnbkit.CnbkitError, match="larger than the limit of 1000 bytes"):
        context.registry_client().fetch_blob(ref, "sha256:" + "cd" * 32, None, context.cache)
    assert not any(context.cache.root.joinpath("blobs").rglob("*"))


def _without_media_type(**extra: object) -> bytes:
    """An OCI manifest that names no ``mediaType`` (the field is optional), with ``extra``."""
    _layer, _config, manifest = tiny_image()
    document = json.loads(manifest)
    del document["mediaType"]
    return json.dumps({**document, **extra}).encode()


def test_a_manifest_naming_no_media_type_is_read_by_its_content_type_with_parameters(
    servers: list[HostileServer], cache_dir: Path
) -> None:
    manifest = _without_media_type()
    servers.append(_manifest_server(manifest, MANIFEST_TYPE + "; charset=utf-8"))
    context = new_context(Options.build(cache_dir=cache_dir))
    ref = cnbkit.parse_image_reference(f"{servers[0].host}/x/app@{digest_of(manifest)}")
    assert context.registry_client().get_manifest(ref) == (manifest, MANIFEST_TYPE, digest_of(manifest))


@pytest.mark.parametrize(
    ("content_type", "extra", "shown"),
    [
        ("text/html", {}, "'text/html'"),
        ("text/html", {"mediaType": "application/vnd.example+json"}, "'application/vnd.example+json'"),
        ("", {}, "'unknown'"),
    ],
)
def test_a_manifest_of_another_type_is_refused_naming_the_type(
    servers: list[HostileServer], cache_dir: Path, content_type: str, extra: dict[str, str], shown: str
) -> None:
    manifest = _without_media_type(**extra)
    servers.append(_manifest_server(manifest, content_type))
    context = new_context(Options.build(cache_dir=cache_dir))
    ref = cnbkit.parse_image_reference(f"{servers[0].host}/x/app@{digest_of(manifest)}")
    with pytest.raises(cnbkit.CnbkitError) as raised:
        context.registry_client().get_manifest(ref)
    said = str(raised.value)
    assert said.startswith(f"{ref}: the registry sent a manifest of type {shown}; expected one of "), said


def test_a_sha512_blob_is_refused_before_any_request_naming_the_digest_cut_short(cache_dir: Path) -> None:
    context = new_context(Options.build(cache_dir=cache_dir))
    ref = cnbkit.parse_image_reference("127.0.0.1:9/x/app:v1")  # nothing listens: no request is made
    with pytest.raises(cnbkit.CnbkitError) as raised:
        context.registry_client().open_blob(ref, "sha512:" + "ab" * 64, 10, context.cache)
    assert str(raised.value) == "127.0.0.1:9/x/app@sha512:abababababab...: only sha256 blobs can be cached"


def test_a_registry_client_made_without_options_verifies_tls(test_ca: trustme.CA) -> None:
    # A plugin may make its own client: by default it trusts the system's CAs only, so a
    # registry whose certificate the test CA signed is refused before any request.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    test_ca.issue_cert(*IDENTITIES).configure_cert(context)
    server = HostileServer(lambda request: answer(200, b"{}", JSON), tls=context)
    try:
        with pytest.raises(cnbkit.CnbkitError, match="certificate verification failed"):
            RegistryClient(timeout=5).ping(cnbkit.parse_image_reference(f"{server.host}/x/app:v1"))
        assert server.requests == []
    finally:
        server.close()


def _head_server(manifest: bytes, digest: str, content_type: str) -> HostileServer:
    def respond(request: Request) -> Answer:
        if request.path == "/v2/":
            return answer(200, b"{}", JSON)
        headers = {"Content-Type": content_type, "Docker-Content-Digest": digest}
        return answer(200, b"" if request.method == "HEAD" else manifest, headers, length=len(manifest))

    return HostileServer(respond)


def test_a_head_gives_the_digest_the_media_type_and_the_size(
    servers: list[HostileServer], cache_dir: Path
) -> None:
    _layer, _config, manifest = tiny_image()
    servers.append(_head_server(manifest, digest_of(manifest), MANIFEST_TYPE + "; charset=utf-8"))
    context = new_context(Options.build(cache_dir=cache_dir))
    ref = cnbkit.parse_image_reference(f"{servers[0].host}/x/app@{digest_of(manifest)}")
    assert context.registry_client().head_manifest(ref) == (digest_of(manifest), MANIFEST_TYPE, len(manifest))


@pytest.mark.parametrize("other", ["sha256:" + "0" * 64, "sha256:" + "f" * 64])
def test_a_head_vouching_for_another_digest_is_refused(
    servers: list[HostileServer], cache_dir: Path, other: str
) -> None:
    _layer, _config, manifest = tiny_image()
    servers.append(_head_server(manifest, other, MANIFEST_TYPE))
    context = new_context(Options.build(cache_dir=cache_dir))
    ref = cnbkit.parse_image_reference(f"{servers[0].host}/x/app@{digest_of(manifest)}")
    with pytest.raises(cnbkit.CnbkitError, match=f"the registry says its digest is {other}; refused"):
        context.registry_client().head_manifest(ref)


def test_a_blob_whose_length_is_not_the_descriptors_is_refused_and_one_at_the_limit_is_not(
    servers: list[HostileServer], cache_dir: Path
) -> None:
    blob = bytes(range(256)) * 40
    servers.append(_blob_server(blob))
    ref = cnbkit.parse_image_reference(f"{servers[0].host}/x/app:v1")
    exact = new_context(Options.build(cache_dir=cache_dir, max_size=len(blob)))
    client = exact.registry_client()
    assert client.fetch_blob(ref, digest_of(blob), len(blob), exact.cache).read_bytes() == blob
    roomy = new_context(Options.build(cache_dir=cache_dir / "roomy"))
    for size in (100, len(blob) + 100):  # a Content-Length below or above the descriptor's size
        says = f"the registry offers {len(blob)} bytes, the manifest says {size}"
        with pytest.raises(cnbkit.CnbkitError, match=says):
            roomy.registry_client().fetch_blob(ref, "sha256:" + "cd" * 32, size, roomy.cache)


def test_a_blob_without_a_length_is_fetched_and_the_anonymous_scheme_is_known(
    servers: list[HostileServer], cache_dir: Path
) -> None:
    blob = b"no length given\n" * 100

    def respond(request: Request) -> Answer:
        if request.path == "/v2/":
            return answer(200, b"{}", JSON)
        return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + blob, 0  # ends where the connection does

    servers.append(HostileServer(respond))
    context = new_context(Options.build(cache_dir=cache_dir))
    ref = cnbkit.parse_image_reference(f"{servers[0].host}/x/app:v1")
    client = context.registry_client()
    assert client.fetch_blob(ref, digest_of(blob), None, context.cache).read_bytes() == blob
    assert client.anonymous_scheme(ref) == "http"  # no challenge: a later process may skip the ping
    token = _token_registry(servers, {})
    challenged = cnbkit.parse_image_reference(f"{token.host}/x/app:v1")
    assert client.anonymous_scheme(challenged) is None


@pytest.mark.parametrize(
    ("token_answer", "says"),
    [
        (answer(401, b"{}", JSON), "answered HTTP 401; check credentials for"),
        (answer(400, b"{}", JSON), "answered HTTP 400; check credentials for"),
        (answer(403, b"{}", JSON), "answered HTTP 403; check credentials for"),
        (answer(402, b"{}", JSON), "answered HTTP 402; try again later"),
        (answer(500, b"{}", JSON), "answered HTTP 500; try again later"),
        (answer(200, b'{"token": "t", "expires_in": [60]}', JSON), "the token server sent no usable token"),
        (answer(200, b'{"token": "t", "expires_in": "soon"}', JSON), "the token server sent no usable token"),
        (answer(200, b'["token"]', JSON), "the token server sent no usable token"),
        (
            answer(200, b'{"token": "t"}' + b" " * (1024 * 1024 - 13), JSON),
            "the token server's answer is 1048577 bytes, more than the 1048576 bytes allowed",
        ),
    ],
    ids=["401", "400", "403", "402", "500", "expiry-list", "expiry-text", "not-an-object", "over-1-mib"],
)
def test_what_a_token_server_answers_is_one_error_saying_what_to_do(
    servers: list[HostileServer], cache_dir: Path, token_answer: bytes, says: str
) -> None:
    token = HostileServer(lambda request: token_answer)
    servers.append(token)

    def registry(request: Request) -> Answer:
        challenge = f'Bearer realm="http://{token.host}/token",service="lies"'
        return answer(401, b"{}", {**JSON, "WWW-Authenticate": challenge})

    servers.append(HostileServer(registry))
    context = new_context(Options.build(cache_dir=cache_dir))
    ref = cnbkit.parse_image_reference(f"{servers[1].host}/x/app:v1")
    with pytest.raises(cnbkit.CnbkitError) as raised:
        context.registry_client().fetch_blob(ref, "sha256:" + "ab" * 32, 10, context.cache)
    assert says in str(raised.value), raised.value
    assert {r.path for r in token.requests} == {"/token?service=lies&scope=repository%3Ax%2Fapp%3Apull"}


class _Clock:
    """``time.monotonic`` for the token cache, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("expires_in", "used_for"),
    [
        (20, 15.0),  # a 20 s token renewed 5 s early: a quarter of its life, at most 10 s
        (2, 7.5),  # a token for less than 10 s is taken as a 10 s one (and renewed 2.5 s early)
        (None, 50.0),  # no expires_in: the token spec's 60 s, renewed 10 s early
    ],
)
def test_a_token_is_renewed_a_quarter_of_its_life_before_it_expires(
    servers: list[HostileServer],
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    expires_in: int | None,
    used_for: float,
) -> None:
    # Renewed early, so it cannot expire between the check and the request.
    from cnbkit.transport.registry import auth

    clock = _Clock()
    monkeypatch.setattr(auth, "time", clock)
    fields = {"token": "t"} if expires_in is None else {"token": "t", "expires_in": expires_in}
    body = json.dumps(fields).encode()
    token = HostileServer(lambda request: answer(200, body, JSON))
    servers.append(token)

    def registry(request: Request) -> Answer:
        if request.headers.get("authorization") == "Bearer t":
            return answer(404, b'{"errors": [{"code": "BLOB_UNKNOWN"}]}', JSON)
        challenge = f'Bearer realm="http://{token.host}/token",service="lies"'
        return answer(401, b"{}", {**JSON, "WWW-Authenticate": challenge})

    servers.append(HostileServer(registry))
    context = new_context(Options.build(cache_dir=cache_dir))
    ref = cnbkit.parse_image_reference(f"{servers[1].host}/x/app:v1")
    fetched = []
    for later in (0.0, used_for - 0.1, used_for):  # renewed at the moment it is due, not after
        clock.now = 1000.0 + later
        with pytest.raises(cnbkit.CnbkitError, match="HTTP 404"):
            context.registry_client().fetch_blob(ref, "sha256:" + "ab" * 32, 10, context.cache)
        fetched.append(len(token.requests))
    assert fetched == [1, 1, 2]
