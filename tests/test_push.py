"""The push half of the registry client, rule by rule: a blob ``HEAD``, a cross-repository
mount, a monolithic and a chunked upload, a manifest ``PUT``.

Standard behaviour against the real ``docker-registry``; what a real registry will not do (odd
``Location`` s, statuses out of the spec, a digest it never checked, a stored manifest digest
that is not the one sent) against a hostile registry on loopback that answers from a table.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator

import pytest
from cnbkit.archive.streams import CHUNK
from cnbkit.errors import ArchiveError, DownloadError
from cnbkit.oci import mediatypes as mt
from cnbkit.transport.registry import RegistryClient, RegistryError, parse_reference
from cnbkit.transport.registry.push import _Body
from cnbkit.transport.registry.reference import Reference

from tests.conftest import digest_of
from tests.hostile_server import Answer, HostileServer, Request, answer
from tests.raw_registry import tiny_image
from tests.services.registry import Registry

JSON = {"Content-Type": "application/json"}
DATA = b"seven b"  # 7 bytes: chunks of 3 are 3, 3 and 1
DIGEST = digest_of(DATA)
# Wrong digests on either side of any other: a check that compares with < or > misses one.
LOW, HIGH = "sha256:" + "0" * 64, "sha256:" + "f" * 64
Respond = Callable[[Request], Answer | None]
Hostile = Callable[[Respond], tuple[HostileServer, RegistryClient]]


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    """``hostile(respond)``: a registry answering ``/v2/`` with 200, then ``respond`` (``None``:
    404), and a client of it (a short timeout: a body the server waits for fails fast)."""
    servers: list[HostileServer] = []

    def start(respond: Respond) -> tuple[HostileServer, RegistryClient]:
        def reply(request: Request) -> Answer:
            if request.path == "/v2/":
                return answer(200, b"{}", JSON)
            found = respond(request)
            if found is None:  # a HEAD answer has no body
                return answer(404) if request.method == "HEAD" else answer(404, b"{}", JSON)
            return found

        server = HostileServer(reply)
        servers.append(server)
        return server, RegistryClient(timeout=20)

    yield start
    for server in servers:
        server.close()


def _sent(server: HostileServer) -> list[Request]:
    return [r for r in server.requests if r.path != "/v2/"]


def _ref(server: HostileServer, repo: str = "x/app", tag: str = "v1") -> Reference:
    return parse_reference(f"{server.host}/{repo}:{tag}")


# -- blob HEAD -------------------------------------------------------------------------------


@pytest.mark.parametrize(("length", "size"), [("1234", 1234), ("0", 0), ("-5", 0), ("12a", 0)])
def test_a_blob_there_has_its_content_length_as_size(hostile: Hostile, length: str, size: int) -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n".encode()
    server, client = hostile(lambda r: head if r.method == "HEAD" else None)
    assert client.blob_exists(_ref(server), DIGEST) == size
    assert [(r.method, r.path) for r in _sent(server)] == [("HEAD", f"/v2/x/app/blobs/{DIGEST}")]


def test_a_blob_not_there_is_none_and_a_bad_digest_is_never_sent(hostile: Hostile) -> None:
    server, client = hostile(lambda r: None)
    assert client.blob_exists(_ref(server), DIGEST) is None
    with pytest.raises(ArchiveError, match="invalid digest"):
        client.blob_exists(_ref(server), "sha256:../../x")
    assert len(_sent(server)) == 1


@pytest.mark.parametrize("status", [199, 201, 204, 403, 405, 409])
def test_any_other_blob_answer_is_an_error_naming_the_blob(hostile: Hostile, status: int) -> None:
    server, client = hostile(lambda r: answer(status))
    with pytest.raises(RegistryError, match=rf"x/app: blob {DIGEST}: HTTP {status}"):
        client.blob_exists(_ref(server), DIGEST)


def test_the_real_registry_tells_a_blob_and_its_size(registry: Registry) -> None:
    client = RegistryClient()
    repo = registry.unique_repo("push")
    ref = parse_reference(registry.ref(repo, "v1"))
    assert client.blob_exists(ref, DIGEST) is None
    client.upload_blob(ref, io.BytesIO(DATA), DIGEST, len(DATA))
    assert client.blob_exists(ref, DIGEST) == len(DATA)


# -- mount -----------------------------------------------------------------------------------


def test_a_mount_from_another_registry_is_declined_without_a_request(hostile: Hostile) -> None:
    server, client = hostile(lambda r: answer(201))
    other = Reference(f"localhost:{server.port}", "x/base")
    assert not client.mount_blob(_ref(server), DIGEST, other)
    assert _sent(server) == []


def test_a_mount_names_the_digest_and_the_source(hostile: Hostile) -> None:
    server, client = hostile(lambda r: answer(201) if r.method == "POST" else None)
    assert client.mount_blob(_ref(server), DIGEST, _ref(server, "x/base"))
    (post,) = _sent(server)
    query = f"mount={DIGEST.replace(':', '%3A')}&from=x%2Fbase"
    assert (post.method, post.path, post.headers["content-length"]) == (
        "POST",
        f"/v2/x/app/blobs/uploads/?{query}",
        "0",
    )


@pytest.mark.parametrize(
    ("location", "deleted"),
    [
        ("/v2/x/app/blobs/uploads/s1?_state=abc", "/v2/x/app/blobs/uploads/s1?_state=abc"),
        (None, None),
        ("http://example.invalid/v2/x/app/blobs/uploads/s1", None),  # refused: still declined
    ],
)
def test_a_declined_mount_cancels_the_session_it_opened(
    hostile: Hostile, location: str | None, deleted: str | None
) -> None:
    def respond(request: Request) -> Answer | None:
        if request.method == "POST":
            return answer(202, headers={"Location": location} if location else {})
        return answer(204) if request.method == "DELETE" else None

    server, client = hostile(respond)
    assert client.mount_blob(_ref(server), DIGEST, _ref(server, "x/base")) is False
    assert [r.path for r in _sent(server) if r.method == "DELETE"] == ([deleted] if deleted else [])


@pytest.mark.parametrize("status", [200, 204, 403, 409])
def test_any_other_mount_answer_is_an_error(hostile: Hostile, status: int) -> None:
    server, client = hostile(lambda r: answer(status, headers={"Location": "/v2/x/app/blobs/uploads/s"}))
    with pytest.raises(RegistryError, match=rf"mount of blob {DIGEST} from x/base: HTTP {status}"):
        client.mount_blob(_ref(server), DIGEST, _ref(server, "x/base"))
    assert not [r for r in _sent(server) if r.method == "DELETE"]


def test_the_real_registry_mounts_a_blob_it_has_and_declines_one_it_lacks(registry: Registry) -> None:
    client = RegistryClient()
    source = parse_reference(registry.ref(registry.unique_repo("push"), "v1"))
    target = parse_reference(registry.ref(registry.unique_repo("push"), "v1"))
    client.upload_blob(source, io.BytesIO(DATA), DIGEST, len(DATA))
    missing = digest_of(b"nowhere")
    mark = registry.mark()
    assert client.mount_blob(target, DIGEST, source) is True
    assert client.mount_blob(target, missing, source) is False
    assert client.blob_exists(target, DIGEST) == len(DATA) and client.blob_exists(target, missing) is None
    assert registry.count("DELETE", rf"/v2/{target.repository}/blobs/uploads/.+", since=mark) == 1


# -- uploads ---------------------------------------------------------------------------------


class _Uploads:
    """A registry that takes any upload: ``POST`` opens ``start``; each ``PATCH`` and ``PUT``
    answers as told; the ``Location`` after the n-th ``PATCH`` is ``/up/n?s=n``."""

    def __init__(self, start: Answer, *, patch: int = 202, put: int = 201, lost_after: int = -1) -> None:
        self.start, self.patch, self.put, self.lost_after = start, patch, put, lost_after
        self.patches = 0

    def __call__(self, request: Request) -> Answer | None:
        if request.method == "POST":
            return self.start
        if request.method == "PATCH":
            self.patches += 1
            gone = self.patches == self.lost_after
            return answer(
                self.patch, headers={} if gone else {"Location": f"/up/{self.patches}?s={self.patches}"}
            )
        return answer(self.put) if request.method == "PUT" else None


def _opened(location: str) -> bytes:
    return answer(202, headers={"Location": location})


@pytest.mark.parametrize(
    ("location", "put"),
    [
        ("/up/s1", f"/up/s1?digest={DIGEST.replace(':', '%3A')}"),
        ("/up/s1?_state=a%2Fb", f"/up/s1?_state=a%2Fb&digest={DIGEST.replace(':', '%3A')}"),
        ("up/rel", f"/up/rel?digest={DIGEST.replace(':', '%3A')}"),
    ],
)
def test_a_monolithic_upload_puts_the_bytes_at_the_location_with_the_digest(
    hostile: Hostile, location: str, put: str
) -> None:
    server, client = hostile(_Uploads(_opened(location)))
    # a stream longer than the size: exactly `size` bytes go
    client.upload_blob(_ref(server), io.BytesIO(DATA + b"more"), DIGEST, len(DATA))
    post, done = _sent(server)
    assert (post.method, post.path, post.headers["content-length"]) == (
        "POST",
        "/v2/x/app/blobs/uploads/",
        "0",
    )
    assert (done.method, done.path, done.body) == ("PUT", put, DATA)
    assert done.headers["content-type"] == "application/octet-stream"


def test_an_absolute_location_is_followed(hostile: Hostile) -> None:
    uploads = _Uploads(b"")
    server, client = hostile(uploads)
    uploads.start = _opened(server.url("/abs/s?k=v"))
    client.upload_blob(_ref(server), io.BytesIO(DATA), DIGEST, len(DATA), chunk_size=4)
    assert [(r.method, r.path.split("?")[0]) for r in _sent(server)] == [
        ("POST", "/v2/x/app/blobs/uploads/"),
        ("PATCH", "/abs/s"),
        ("PATCH", "/up/1"),
        ("PUT", "/up/2"),
    ]


def test_a_chunked_upload_sends_each_range_then_an_empty_put(hostile: Hostile) -> None:
    server, client = hostile(_Uploads(_opened("/up/0")))
    client.upload_blob(_ref(server), io.BytesIO(DATA), DIGEST, len(DATA), chunk_size=3)
    _post, *patches, done = _sent(server)
    assert [(p.path, p.headers["content-range"], p.headers["content-length"], p.body) for p in patches] == [
        ("/up/0", "0-2", "3", b"sev"),
        ("/up/1?s=1", "3-5", "3", b"en "),
        ("/up/2?s=2", "6-6", "1", b"b"),
    ]
    assert all(p.headers["content-type"] == "application/octet-stream" for p in patches)
    assert (done.method, done.path, done.headers["content-length"], done.body) == (
        "PUT",
        f"/up/3?s=3&digest={DIGEST.replace(':', '%3A')}",
        "0",
        b"",
    )


@pytest.mark.parametrize("chunk_size", [None, 1, 5])
def test_an_empty_blob_is_one_empty_put(hostile: Hostile, chunk_size: int | None) -> None:
    server, client = hostile(_Uploads(_opened("/up/0")))
    empty = digest_of(b"")
    client.upload_blob(_ref(server), io.BytesIO(b""), empty, 0, chunk_size=chunk_size)
    assert [(r.method, r.headers.get("content-length"), r.body) for r in _sent(server)][1:] == [
        ("PUT", "0", b"")
    ]


def test_a_sha512_blob_is_hashed_with_sha512(hostile: Hostile) -> None:
    server, client = hostile(_Uploads(_opened("/up/0")))
    digest = "sha512:" + hashlib.sha512(DATA).hexdigest()
    client.upload_blob(_ref(server), io.BytesIO(DATA), digest, len(DATA), chunk_size=4)
    with pytest.raises(RegistryError, match="not stored"):
        client.upload_blob(_ref(server), io.BytesIO(b"other b"), digest, len(DATA), chunk_size=4)


@pytest.mark.parametrize("chunk_size", [0, -1])
def test_a_chunk_size_must_be_positive(hostile: Hostile, chunk_size: int) -> None:
    # a PATCH is refused: a client that sent one (never ending, for 0) fails at once
    server, client = hostile(_Uploads(_opened("/up/0"), patch=400))
    with pytest.raises(ValueError, match="chunk_size must be positive"):
        client.upload_blob(_ref(server), io.BytesIO(DATA), DIGEST, len(DATA), chunk_size=chunk_size)
    assert not [r for r in _sent(server) if r.method in ("PATCH", "PUT")]


@pytest.mark.parametrize(
    "start",
    [
        answer(201, headers={"Location": "/up/0"}),
        answer(202),
        answer(200, headers={"Location": "/u"}),
        answer(204, headers={"Location": "/u"}),
    ],
)
def test_an_upload_the_registry_does_not_open_is_an_error(hostile: Hostile, start: bytes) -> None:
    server, client = hostile(_Uploads(start))
    with pytest.raises(RegistryError, match="x/app: starting a blob upload: HTTP 20"):
        client.upload_blob(_ref(server), io.BytesIO(DATA), DIGEST, len(DATA))
    assert len(_sent(server)) == 1


@pytest.mark.parametrize(("patch", "lost_after", "where"), [(204, -1, 0), (200, -1, 0), (202, 2, 3)])
def test_a_chunk_the_registry_does_not_take_is_an_error_naming_its_offset(
    hostile: Hostile, patch: int, lost_after: int, where: int
) -> None:
    server, client = hostile(_Uploads(_opened("/up/0"), patch=patch, lost_after=lost_after))
    with pytest.raises(RegistryError, match=rf"uploading blob {DIGEST} at byte {where}: HTTP {patch}"):
        client.upload_blob(_ref(server), io.BytesIO(DATA), DIGEST, len(DATA), chunk_size=3)
    assert not [r for r in _sent(server) if r.method == "PUT"]


@pytest.mark.parametrize("status", [200, 202, 204])
def test_a_closing_put_not_answered_201_is_an_error(hostile: Hostile, status: int) -> None:
    server, client = hostile(_Uploads(_opened("/up/0"), put=status))
    with pytest.raises(RegistryError, match=rf"uploading blob {DIGEST}: HTTP {status}"):
        client.upload_blob(_ref(server), io.BytesIO(DATA), DIGEST, len(DATA))


@pytest.mark.parametrize(("chunk_size", "missing"), [(None, 2), (3, 1)])  # chunks: "sev", "en" of 3
def test_a_short_stream_is_an_error_naming_the_bytes_missing(
    hostile: Hostile, chunk_size: int | None, missing: int
) -> None:
    server, client = hostile(_Uploads(_opened("/up/0")))
    with pytest.raises(DownloadError, match=rf"x/app@{DIGEST}: the stream ended {missing} bytes early"):
        client.upload_blob(_ref(server), io.BytesIO(DATA[:5]), DIGEST, len(DATA), chunk_size=chunk_size)


@pytest.mark.parametrize("wrong", [LOW, HIGH])
def test_wrong_bytes_a_registry_accepts_are_still_an_error(hostile: Hostile, wrong: str) -> None:
    server, client = hostile(_Uploads(_opened("/up/0")))
    with pytest.raises(RegistryError, match=rf"has digest {DIGEST}, the registry accepted it as {wrong}"):
        client.upload_blob(_ref(server), io.BytesIO(DATA), wrong, len(DATA))


@pytest.mark.parametrize("wrong", [LOW, HIGH])
def test_wrong_bytes_in_chunks_are_never_stored(hostile: Hostile, wrong: str) -> None:
    server, client = hostile(_Uploads(_opened("/up/0")))
    with pytest.raises(RegistryError, match=rf"x/app@{wrong}: the stream has digest {DIGEST}; not stored"):
        client.upload_blob(_ref(server), io.BytesIO(DATA), wrong, len(DATA), chunk_size=3)
    assert [r.method for r in _sent(server)] == ["POST", "PATCH", "PATCH", "PATCH"]


@pytest.mark.parametrize("chunk_size", [None, 150_000])
def test_the_real_registry_stores_what_was_uploaded(registry: Registry, chunk_size: int | None) -> None:
    data = bytes(range(256)) * 1200  # 307,200 bytes: more than one CHUNK, three PATCHes of 150,000
    ref = parse_reference(registry.ref(registry.unique_repo("push"), "v1"))
    RegistryClient().upload_blob(ref, io.BytesIO(data), digest_of(data), len(data), chunk_size=chunk_size)
    got = registry.session().get(f"{registry.url}/v2/{ref.repository}/blobs/{digest_of(data)}", timeout=30)
    assert got.content == data


class _Greedy:
    """A stream that ignores the size asked and returns all it has."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, size: int = -1, /) -> bytes:
        data, self._data = self._data, b""
        return data


@pytest.mark.parametrize(
    ("size", "got"), [(None, CHUNK), (-1, CHUNK), (5, 5), (CHUNK + 1, CHUNK), (CHUNK * 3, CHUNK)]
)
def test_a_body_reads_at_most_what_is_asked_and_a_chunk(size: int | None, got: int) -> None:
    data = bytes(CHUNK * 2 + 10)
    hasher = hashlib.sha256()
    body = _Body(io.BytesIO(data), len(data), hasher, "src")
    assert len(body) == len(data)
    assert len(body.read() if size is None else body.read(size)) == got


def test_a_body_stops_at_its_count_and_hashes_what_it_gives() -> None:
    hasher = hashlib.sha256()
    body = _Body(_Greedy(DATA + b"tail"), len(DATA), hasher, "src")
    assert (body.read(100), body.read(100)) == (DATA, b"")
    assert hasher.hexdigest() == hashlib.sha256(DATA).hexdigest()


# -- manifests -------------------------------------------------------------------------------

MAX = 4 * 1024 * 1024


def _manifests(status: int = 201, stored: str | None = None) -> Respond:
    def respond(request: Request) -> Answer | None:
        if request.method != "PUT":
            return None
        digest = digest_of(request.body) if stored is None else stored
        return answer(status, headers={"Docker-Content-Digest": digest} if digest else {})

    return respond


@pytest.mark.parametrize("size", [MAX - 1, MAX])
def test_a_manifest_of_up_to_4_mib_is_put_under_the_tag(hostile: Hostile, size: int) -> None:
    server, client = hostile(_manifests())
    data = b"{" + b" " * (size - 2) + b"}"
    assert client.put_manifest(_ref(server), data, mt.OCI_MANIFEST) == digest_of(data)
    (put,) = _sent(server)
    assert (put.path, put.headers["content-type"], put.body) == (
        "/v2/x/app/manifests/v1",
        mt.OCI_MANIFEST,
        data,
    )


def test_a_manifest_over_4_mib_is_refused_before_a_request(hostile: Hostile) -> None:
    server, client = hostile(_manifests())
    with pytest.raises(RegistryError, match=rf"the manifest is {MAX + 1} bytes, over the 4 MiB"):
        client.put_manifest(_ref(server), b" " * (MAX + 1), mt.OCI_MANIFEST)
    assert _sent(server) == []


@pytest.mark.parametrize("wrong", [LOW, HIGH])
def test_a_manifest_goes_by_its_own_digest_only(hostile: Hostile, wrong: str) -> None:
    server, client = hostile(_manifests())
    data = b'{"a": 1}'
    by_digest = parse_reference(f"{server.host}/x/app@{digest_of(data)}")
    assert client.put_manifest(by_digest, data, mt.OCI_MANIFEST) == digest_of(data)
    other = parse_reference(f"{server.host}/x/app@{wrong}")
    with pytest.raises(RegistryError, match=r"the manifest's digest is sha256:\w+, not the reference's"):
        client.put_manifest(other, data, mt.OCI_MANIFEST)
    assert [r.path for r in _sent(server)] == [f"/v2/x/app/manifests/{digest_of(data)}"]


@pytest.mark.parametrize("stored", ["", None])
def test_a_registry_silent_or_right_about_the_digest_is_believed(
    hostile: Hostile, stored: str | None
) -> None:
    server, client = hostile(_manifests(stored=stored))
    assert client.put_manifest(_ref(server), b"{}", mt.OCI_MANIFEST) == digest_of(b"{}")


@pytest.mark.parametrize("wrong", [LOW, HIGH])
def test_a_registry_that_stores_another_digest_is_an_error(hostile: Hostile, wrong: str) -> None:
    stored = wrong + "X" * 100
    server, client = hostile(_manifests(stored=stored))
    with pytest.raises(RegistryError) as raised:
        client.put_manifest(_ref(server), b"{}", mt.OCI_MANIFEST)
    assert f"stored the manifest as {stored[:80]}, not {digest_of(b'{}')}" in str(raised.value)
    assert "X" * 17 not in str(raised.value)


@pytest.mark.parametrize("status", [200, 202, 400])
def test_a_manifest_put_not_answered_201_is_an_error(hostile: Hostile, status: int) -> None:
    server, client = hostile(_manifests(status))
    with pytest.raises(RegistryError, match=rf"x/app: manifest v1: HTTP {status}"):
        client.put_manifest(_ref(server), b"{}", mt.OCI_MANIFEST)


def test_the_real_registry_takes_a_manifest_by_tag_and_by_digest(registry: Registry) -> None:
    client = RegistryClient()
    repo = registry.unique_repo("push")
    layer, config, manifest = tiny_image()
    ref = parse_reference(registry.ref(repo, "v1"))
    for blob in (layer, config):
        client.upload_blob(ref, io.BytesIO(blob), digest_of(blob), len(blob))
    assert client.put_manifest(ref, manifest, mt.OCI_MANIFEST) == digest_of(manifest)
    pinned = parse_reference(registry.ref(repo, digest_of(manifest)))
    assert client.put_manifest(pinned, manifest, mt.OCI_MANIFEST) == digest_of(manifest)
    assert client.get_manifest(ref) == (manifest, mt.OCI_MANIFEST, digest_of(manifest))
