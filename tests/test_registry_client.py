"""The registry client against real CNCF Distribution registries started here (loopback only).

Three registries: anonymous, htpasswd basic auth, and bearer tokens from a tiny token server
signing real JWTs. Images are built with umoci and pushed with skopeo, so every byte the client
reads was written by independent tools.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cnbkit.cache import Cache
from cnbkit.errors import CnbkitError, DigestMismatchError
from cnbkit.transport.http import new_session
from cnbkit.transport.registry import (
    OCI_MANIFEST,
    Credentials,
    RegistryClient,
    RegistryError,
    clear_token_cache,
    parse_reference,
)

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("docker-registry", "skopeo", "umoci")),
    reason="needs docker-registry, skopeo and umoci",
)

USER, PASSWORD = "tester", "s3cret-pw"
# bcrypt of PASSWORD (Distribution's htpasswd accepts bcrypt only), made once with crypt(3).
HTPASSWD = f"{USER}:$2b$04$wPeYgiFnHy6hyA61aiEVxuWdvzZSotDt2bUG9LLzt.t2NsKfVKuAe\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    root: Path  # storage root directory
    process: subprocess.Popen[bytes]

    def blob_file(self, digest: str) -> Path:
        hexdigest = digest.partition(":")[2]
        return self.root / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"


def _start_registry(base: Path, auth: str = "") -> Registry:
    base.mkdir(parents=True)
    port = _free_port()
    config = base / "config.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {base / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: not-a-secret\n"
        "log:\n  level: error\n" + auth
    )
    log = open(base / "registry.log", "wb")  # noqa: SIM115 - kept open for the process
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=log)
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            break
        except urllib.error.HTTPError:
            break  # 401: up, and asking for credentials
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError((base / "registry.log").read_text()) from None
            time.sleep(0.05)
    return Registry(f"127.0.0.1:{port}", base / "data", process)


def _stop(registry: Registry) -> None:
    registry.process.terminate()
    registry.process.wait(10)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCI layout with image ``t``: one layer of 400 KB random bytes (several chunks)."""
    base = tmp_path_factory.mktemp("layout")
    layout = base / "L"
    subprocess.run(["umoci", "init", "--layout", str(layout)], check=True)
    subprocess.run(["umoci", "new", "--image", f"{layout}:t"], check=True)
    content = base / "content"
    content.mkdir()
    (content / "random.bin").write_bytes(os.urandom(400_000))
    subprocess.run(["umoci", "insert", "--image", f"{layout}:t", str(content), "/data"], check=True)
    return layout


def _push(layout: Path, registry: Registry, repo: str, creds: str | None = None) -> None:
    command = ["skopeo", "copy", "-q", "--dest-tls-verify=false"]
    if creds:
        command += ["--dest-creds", creds]
    command += [f"oci:{layout}:t", f"docker://{registry.host}/{repo}"]
    subprocess.run(command, check=True, env={**os.environ, "HOME": str(layout.parent)})


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory, layout: Path) -> Iterator[Registry]:
    """An anonymous registry holding ``test/app:v1``."""
    registry = _start_registry(tmp_path_factory.mktemp("plain") / "r")
    try:
        _push(layout, registry, "test/app:v1")
        yield registry
    finally:
        _stop(registry)


@pytest.fixture(scope="module")
def basic(tmp_path_factory: pytest.TempPathFactory, layout: Path) -> Iterator[Registry]:
    """A registry with htpasswd basic auth holding ``test/app:v1``."""
    base = tmp_path_factory.mktemp("basic")
    (base / "htpasswd").write_text(HTPASSWD)
    auth = f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {base / 'htpasswd'}\n"
    registry = _start_registry(base / "r", auth)
    try:
        _push(layout, registry, "test/app:v1", f"{USER}:{PASSWORD}")
        yield registry
    finally:
        _stop(registry)


@pytest.fixture(autouse=True)
def _no_user_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "docker-config"
    empty.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(empty))
    clear_token_cache()


class Counting:
    """A session whose requests are recorded as ``(method, url, headers)``."""

    def __init__(self) -> None:
        self.session = new_session()
        self.calls: list[tuple[str, str, dict[str, str]]] = []
        original = self.session.request

        def request(method: str, url: str, **kwargs: Any) -> Any:
            self.calls.append((method, url, dict(kwargs.get("headers") or {})))
            return original(method, url, **kwargs)

        self.session.request = request  # type: ignore[method-assign,assignment]


def _client(counting: Counting | None = None, **kwargs: Any) -> RegistryClient:
    return RegistryClient(counting.session if counting else None, timeout=10, **kwargs)


def _manifest(client: RegistryClient, ref: str) -> dict[str, Any]:
    data, _, _ = client.get_manifest(parse_reference(ref))
    return dict(json.loads(data))


# -- anonymous -------------------------------------------------------------------------------


def test_get_by_tag_and_digest_and_head(plain: Registry) -> None:
    counting = Counting()
    client = _client(counting)
    ref = parse_reference(f"{plain.host}/test/app:v1")
    data, media_type, digest = client.get_manifest(ref)
    assert media_type == OCI_MANIFEST
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert client.get_manifest(ref.with_digest(digest)) == (data, media_type, digest)
    counting.calls.clear()
    assert client.head_manifest(ref) == (digest, media_type, len(data))
    assert [method for method, _, _ in counting.calls] == ["HEAD"]  # revalidation: no GET (a pull)


def test_manifest_not_found_is_one_line(plain: Registry) -> None:
    with pytest.raises(RegistryError) as info:
        _client().get_manifest(parse_reference(f"{plain.host}/test/app:nope"))
    message = str(info.value)
    assert "\n" not in message
    assert f"{plain.host}/test/app" in message and "HTTP 404" in message and "MANIFEST_UNKNOWN" in message
    assert info.value.code == "MANIFEST_UNKNOWN"


def test_blob_into_cache_then_no_request(plain: Registry, tmp_path: Path) -> None:
    counting = Counting()
    client = _client(counting)
    ref = parse_reference(f"{plain.host}/test/app:v1")
    manifest = _manifest(client, str(ref))
    cache = Cache(tmp_path / "cache")
    for descriptor in (manifest["config"], *manifest["layers"]):
        path = client.fetch_blob(ref, descriptor["digest"], descriptor["size"], cache)
        assert path == cache.blob_path(descriptor["digest"])
        assert path.read_bytes() == plain.blob_file(descriptor["digest"]).read_bytes()
    counting.calls.clear()
    layer = manifest["layers"][0]
    assert client.fetch_blob(ref, layer["digest"], layer["size"], cache).is_file()
    assert counting.calls == []
    assert not list((tmp_path / "cache" / "tmp").iterdir())


def test_open_blob_streams_while_caching(plain: Registry, tmp_path: Path) -> None:
    client = _client()
    ref = parse_reference(f"{plain.host}/test/app:v1")
    layer = _manifest(client, str(ref))["layers"][0]
    cache = Cache(tmp_path / "cache")
    stream = client.open_blob(ref, layer["digest"], layer["size"], cache)
    chunks = []
    while chunk := stream.read(65536):
        chunks.append(chunk)
    assert len(chunks) > 1
    assert b"".join(chunks) == plain.blob_file(layer["digest"]).read_bytes()
    assert cache.has_blob(layer["digest"])


def test_traversal_digest_refused_before_any_request(plain: Registry, tmp_path: Path) -> None:
    counting = Counting()
    client = _client(counting)
    ref = parse_reference(f"{plain.host}/test/app:v1")
    for call in (
        lambda: client.fetch_blob(ref, "sha256:../../x", None, Cache(tmp_path / "c")),
        lambda: client.blob_exists(ref, "sha256:../../x"),
        lambda: client.get_manifest(ref.with_digest("sha256:../../x")),
    ):
        with pytest.raises(CnbkitError):
            call()
    with pytest.raises(CnbkitError, match="invalid image reference"):
        parse_reference(f"{plain.host}/test/app@sha256:../../x")
    assert counting.calls == []


def test_anonymous_pull_never_imports_docker(plain: Registry, tmp_path: Path) -> None:
    config = tmp_path / "docker-config"
    (config / "config.json").write_text(json.dumps({"auths": {"elsewhere.example": {"auth": "eDp5"}}}))
    code = (
        "import sys\n"
        "from cnbkit.transport.registry import RegistryClient, parse_reference\n"
        f"RegistryClient().get_manifest(parse_reference('{plain.host}/test/app:v1'))\n"
        "assert 'docker' not in sys.modules, 'docker was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "DOCKER_CONFIG": str(config)})


# -- tampering -------------------------------------------------------------------------------


@pytest.fixture
def tampered(plain: Registry) -> Iterator[tuple[Registry, dict[str, Any], str]]:
    """The layer of ``test/app:v1`` with one byte changed in the registry's storage."""
    client = _client()
    data, _, digest = client.get_manifest(parse_reference(f"{plain.host}/test/app:v1"))
    manifest = json.loads(data)
    path = plain.blob_file(manifest["layers"][0]["digest"])
    original = path.read_bytes()
    path.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
    try:
        yield plain, manifest, digest
    finally:
        path.write_bytes(original)


def test_tampered_blob_fails_and_nothing_is_cached(
    tampered: tuple[Registry, dict[str, Any], str], tmp_path: Path
) -> None:
    registry, manifest, _ = tampered
    ref = parse_reference(f"{registry.host}/test/app:v1")
    layer = manifest["layers"][0]
    cache = Cache(tmp_path / "cache")
    with pytest.raises(DigestMismatchError, match="nothing was cached"):
        _client().fetch_blob(ref, layer["digest"], layer["size"], cache)
    assert not cache.has_blob(layer["digest"])
    assert not list((tmp_path / "cache" / "tmp").iterdir())
    stream = _client().open_blob(ref, layer["digest"], layer["size"], cache)
    with pytest.raises(DigestMismatchError):  # the streaming reader never sees a clean end
        while stream.read(65536):
            pass
    assert not cache.has_blob(layer["digest"])


def test_tampered_manifest_is_refused(plain: Registry) -> None:
    client = _client()
    ref = parse_reference(f"{plain.host}/test/app:v1")
    data, _, digest = client.get_manifest(ref)
    path = plain.blob_file(digest)
    path.write_bytes(data.replace(b'"schemaVersion":2', b'"schemaVersion":2 '))
    try:
        with pytest.raises(DigestMismatchError, match=digest):
            client.get_manifest(ref.with_digest(digest))
        with pytest.raises(DigestMismatchError, match="Docker-Content-Digest"):
            client.get_manifest(ref)
    finally:
        path.write_bytes(data)


# -- basic auth and credentials --------------------------------------------------------------


def _write_config(directory: str, config: dict[str, Any]) -> None:
    Path(directory, "config.json").write_text(json.dumps(config))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "form",
    ["auth", "auth-https-key", "username-password", "credsStore", "credHelpers"],
)
def test_credentials_from_docker_config(
    basic: Registry, form: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helper_dir = tmp_path / "bin"
    helper_dir.mkdir()
    helper = helper_dir / "docker-credential-test"
    helper.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "server = sys.stdin.read().strip()\n"
        f"if sys.argv[1] == 'get' and server == {basic.host!r}:\n"
        f"    print(json.dumps({{'ServerURL': server, 'Username': {USER!r}, 'Secret': {PASSWORD!r}}}))\n"
        "else:\n"
        "    print('credentials not found in native keychain'); sys.exit(1)\n"
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper_dir}{os.pathsep}{os.environ['PATH']}")
    configs: dict[str, dict[str, Any]] = {
        "auth": {"auths": {basic.host: {"auth": _b64(f"{USER}:{PASSWORD}")}}},
        "auth-https-key": {"auths": {f"https://{basic.host}": {"auth": _b64(f"{USER}:{PASSWORD}")}}},
        "username-password": {"auths": {basic.host: {"username": USER, "password": PASSWORD}}},
        "credsStore": {"auths": {basic.host: {}}, "credsStore": "test"},
        "credHelpers": {"credHelpers": {basic.host: "test"}},
    }
    entry = configs[form]
    _write_config(os.environ["DOCKER_CONFIG"], entry)
    data, _, digest = _client().get_manifest(parse_reference(f"{basic.host}/test/app:v1"))
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("password", [None, "wrong-password-123"])
def test_basic_auth_refused_is_one_line_without_the_password(basic: Registry, password: str | None) -> None:
    if password:
        _write_config(
            os.environ["DOCKER_CONFIG"], {"auths": {basic.host: {"auth": _b64(f"{USER}:{password}")}}}
        )
    with pytest.raises(RegistryError) as info:
        _client().get_manifest(parse_reference(f"{basic.host}/test/app:v1"))
    message = str(info.value)
    assert "HTTP 401" in message and f"check credentials for {basic.host}" in message
    assert "\n" not in message
    assert not password or (password not in message and _b64(f"{USER}:{password}") not in message)


def test_missing_credential_helper_is_named(basic: Registry) -> None:
    _write_config(os.environ["DOCKER_CONFIG"], {"credHelpers": {basic.host: "absent-helper-xyz"}})
    with pytest.raises(CnbkitError, match="docker-credential-absent-helper-xyz"):
        _client().get_manifest(parse_reference(f"{basic.host}/test/app:v1"))


def test_credentials_provider_and_basic_blob(basic: Registry, tmp_path: Path) -> None:
    counting = Counting()
    client = _client(counting, credentials=lambda registry: Credentials(USER, PASSWORD))
    ref = parse_reference(f"{basic.host}/test/app:v1")
    layer = _manifest(client, str(ref))["layers"][0]
    path = client.fetch_blob(ref, layer["digest"], layer["size"], Cache(tmp_path / "cache"))
    assert path.read_bytes() == basic.blob_file(layer["digest"]).read_bytes()
    assert repr(Credentials(USER, PASSWORD)).count(PASSWORD) == 0


# -- push ------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [None, 150_000])
def test_push_blob_mount_and_manifest(plain: Registry, tmp_path: Path, chunk_size: int | None) -> None:
    client = _client()
    source = parse_reference(f"{plain.host}/test/app:v1")
    data, media_type, digest = client.get_manifest(source)
    manifest = json.loads(data)
    target = parse_reference(f"{plain.host}/pushed/app{chunk_size or 0}:v2")
    layer = manifest["layers"][0]
    assert client.blob_exists(target, layer["digest"]) is None
    with open(plain.blob_file(layer["digest"]), "rb") as stream:
        # every argument by name, as a plugin may: none of them is positional-only
        client.upload_blob(
            ref=target, stream=stream, digest=layer["digest"], size=layer["size"], chunk_size=chunk_size
        )
    assert client.blob_exists(target, layer["digest"]) == layer["size"]
    assert client.mount_blob(target, manifest["config"]["digest"], source)
    assert client.put_manifest(target, data, media_type) == digest
    assert client.get_manifest(target) == (data, media_type, digest)


def test_upload_of_wrong_bytes_is_refused(plain: Registry) -> None:
    import io

    client = _client()
    target = parse_reference(f"{plain.host}/pushed/wrong:v1")
    wrong = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(RegistryError, match=r"DIGEST_INVALID|not stored"):
        client.upload_blob(target, io.BytesIO(b"hello"), wrong, 5)
    assert client.blob_exists(target, wrong) is None


# -- references and the plain-http rule ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alpine", ("docker.io", "library/alpine", None, None)),
        ("alpine:3.20", ("docker.io", "library/alpine", "3.20", None)),
        ("index.docker.io/org/app:v1", ("docker.io", "org/app", "v1", None)),
        ("localhost/app", ("localhost", "app", None, None)),
        ("127.0.0.1:5000/a/b_c/d-e:x", ("127.0.0.1:5000", "a/b_c/d-e", "x", None)),
        ("ghcr.io/org/app@sha256:" + "a" * 64, ("ghcr.io", "org/app", None, "sha256:" + "a" * 64)),
        ("[::1]:5000/app:t", ("[::1]:5000", "app", "t", None)),
    ],
)
def test_parse_reference(raw: str, expected: tuple[str | None, ...]) -> None:
    ref = parse_reference(raw)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == expected
    assert parse_reference("alpine").api_host == "registry-1.docker.io"


@pytest.mark.parametrize(
    "raw", ["", "org/Upper", "app:", "app:-bad", "a//b", "app@sha256:abc", "http://x/y", "a" * 64, "x y"]
)
def test_parse_reference_refuses(raw: str) -> None:
    with pytest.raises(CnbkitError, match="invalid image reference"):
        parse_reference(raw)


def test_plain_http_only_for_loopback_or_listed() -> None:
    assert _client().connection.allow_http("127.0.0.1:5000")
    assert _client().connection.allow_http("localhost")
    assert not _client().connection.allow_http("registry.example:5000")
    assert _client(insecure=["registry.example:5000"]).connection.allow_http("registry.example:5000")
    assert _client(insecure=["registry.example"]).connection.allow_http("registry.example:5000")


# -- bearer tokens: a token server signing real JWTs -----------------------------------------


class TokenServer:
    """Issues RS256 JWTs the registry verifies with its ``rootcertbundle`` (the ``x5c`` chain)."""

    REFRESH = "refresh-token-abc"

    def __init__(self, base: Path) -> None:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cnbkit test token signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = base / "token-ca.pem"
        self.bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                from urllib.parse import parse_qs, urlsplit

                query = parse_qs(urlsplit(self.path).query)
                server.requests.append(("GET", dict(self.headers)))
                user = ""
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if (user, password) != (USER, PASSWORD):
                        self.send_error(401)
                        return
                self._token(user, query.get("scope", []))

            def do_POST(self) -> None:
                from urllib.parse import parse_qs

                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                server.requests.append(("POST", dict(self.headers)))
                if form.get("grant_type") != ["refresh_token"] or form.get("refresh_token") != [
                    server.REFRESH
                ]:
                    self.send_error(401)
                    return
                self._token(USER, form.get("scope", [""])[0].split())

            def _token(self, user: str, scopes: list[str]) -> None:
                access = []
                for scope in scopes:
                    kind, _, rest = scope.partition(":")
                    repo, _, actions = rest.rpartition(":")
                    if user:  # anonymous gets a token that grants nothing
                        access.append({"type": kind, "name": repo, "actions": actions.split(",")})
                body = json.dumps({"token": server.sign(user, access), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def sign(self, user: str, access: list[dict[str, Any]]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        def b64url(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {
            "iss": "test-issuer",
            "sub": user,
            "aud": "test-registry",
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": os.urandom(8).hex(),
            "access": access,
        }
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory, layout: Path) -> Iterator[tuple[Registry, TokenServer]]:
    """A registry with bearer-token auth (``test/app:v1``) and its token server."""
    base = tmp_path_factory.mktemp("token")
    server = TokenServer(base)
    auth = (
        f"auth:\n  token:\n    realm: {server.realm}\n    service: test-registry\n"
        f"    issuer: test-issuer\n    rootcertbundle: {server.bundle}\n"
    )
    registry = _start_registry(base / "r", auth)
    try:
        _push(layout, registry, "test/app:v1", f"{USER}:{PASSWORD}")
        yield registry, server
    finally:
        _stop(registry)
        server.httpd.shutdown()


def test_bearer_token_flow_and_cache(token: tuple[Registry, TokenServer], tmp_path: Path) -> None:
    registry, server = token
    server.requests.clear()
    counting = Counting()
    client = _client(counting, credentials=lambda host: Credentials(USER, PASSWORD))
    ref = parse_reference(f"{registry.host}/test/app:v1")
    manifest = _manifest(client, str(ref))
    client.head_manifest(ref)
    client.fetch_blob(ref, manifest["layers"][0]["digest"], None, Cache(tmp_path / "cache"))
    assert len(server.requests) == 1  # one token for the scope, reused for every request
    assert server.requests[0][1]["Authorization"].startswith("Basic ")  # credentials: realm only
    for _method, url, headers in counting.calls:
        if url.startswith(f"http://{registry.host}/v2/test/"):
            assert headers["Authorization"].startswith("Bearer ")
        else:
            assert not headers.get("Authorization", "").startswith("Bearer ")
    other = _client(credentials=lambda host: Credentials(USER, PASSWORD))  # same process: cached token
    other.get_manifest(ref)
    assert len(server.requests) == 1


def test_bearer_identity_token_is_a_refresh_grant(token: tuple[Registry, TokenServer]) -> None:
    registry, server = token
    server.requests.clear()
    _write_config(os.environ["DOCKER_CONFIG"], {"auths": {registry.host: {"identitytoken": server.REFRESH}}})
    _client().get_manifest(parse_reference(f"{registry.host}/test/app:v1"))
    assert [method for method, _ in server.requests] == ["POST"]


def test_bearer_anonymous_denied(token: tuple[Registry, TokenServer]) -> None:
    registry, _ = token
    with pytest.raises(RegistryError, match=f"HTTP 401 UNAUTHORIZED.*check credentials for {registry.host}"):
        _client().get_manifest(parse_reference(f"{registry.host}/test/app:v1"))


def test_bearer_push(token: tuple[Registry, TokenServer]) -> None:
    registry, _ = token
    client = _client(credentials=lambda host: Credentials(USER, PASSWORD))
    source = parse_reference(f"{registry.host}/test/app:v1")
    data, media_type, digest = client.get_manifest(source)
    manifest = json.loads(data)
    target = parse_reference(f"{registry.host}/copy/app:v1")
    for descriptor in (manifest["config"], *manifest["layers"]):
        assert client.mount_blob(target, descriptor["digest"], source)
    assert client.put_manifest(target, data, media_type) == digest


# -- a registry that redirects blobs to storage on another host ------------------------------


@pytest.fixture(scope="module")
def redirecting(
    tmp_path_factory: pytest.TempPathFactory, layout: Path
) -> Iterator[tuple[Registry, list[dict[str, str]]]]:
    """A basic-auth registry whose blobs redirect to a file server at ``localhost`` (another host)."""
    base = tmp_path_factory.mktemp("redirect")
    (base / "htpasswd").write_text(HTPASSWD)
    seen: list[dict[str, str]] = []
    root = base / "r" / "data"

    class Files(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            path = (root / self.path.split("?")[0].lstrip("/")).resolve()
            if not path.is_relative_to(root.resolve()) or not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    files = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    auth = (
        f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {base / 'htpasswd'}\n"
        "middleware:\n  storage:\n    - name: redirect\n      options:\n"
        f"        baseurl: http://localhost:{files.server_address[1]}/\n"
    )
    registry = _start_registry(base / "r", auth)
    try:
        _push(layout, registry, "test/app:v1", f"{USER}:{PASSWORD}")
        yield registry, seen
    finally:
        _stop(registry)
        files.shutdown()


def test_redirect_to_storage_drops_authorization(
    redirecting: tuple[Registry, list[dict[str, str]]], tmp_path: Path
) -> None:
    registry, seen = redirecting
    client = _client(credentials=lambda host: Credentials(USER, PASSWORD))
    ref = parse_reference(f"{registry.host}/test/app:v1")
    layer = _manifest(client, str(ref))["layers"][0]
    seen.clear()
    path = client.fetch_blob(ref, layer["digest"], layer["size"], Cache(tmp_path / "cache"))
    assert path.read_bytes() == registry.blob_file(layer["digest"]).read_bytes()
    assert seen, "the blob did not come through the redirect"
    assert all("Authorization" not in headers for headers in seen)


def test_parse_challenges_quoted_commas_and_several() -> None:
    from cnbkit.transport.registry.auth import parse_challenges

    header = (
        'Basic realm="x", Bearer realm="https://auth.example/token",service="reg, \\"quoted\\"",'
        'scope="repository:a/b:pull,push repository:c:pull" , error="invalid_token"'
    )
    basic, bearer = parse_challenges(header)
    assert basic.scheme == "basic" and basic.params == {"realm": "x"}
    assert bearer.params == {
        "realm": "https://auth.example/token",
        "service": 'reg, "quoted"',
        "scope": "repository:a/b:pull,push repository:c:pull",
        "error": "invalid_token",
    }
