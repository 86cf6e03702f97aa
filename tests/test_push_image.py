"""Pushing a whole image, rule by rule: a blob the repository has is skipped, one this machine
pushed elsewhere or that came from another repository of the registry is mounted, the rest is
streamed (one ``PUT`` up to the bound, ``PATCH`` chunks past it), each remembered; the manifest
last, the index after every image.

Against the real ``docker-registry`` (counted in its access log), and a hostile one for what it
will not do (a source repository that refuses a mount).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import cnbkit
import pytest
from cnbkit.api import new_context
from cnbkit.cache import Cache
from cnbkit.cache.records import PushedBlob
from cnbkit.errors import UsageError
from cnbkit.oci import mediatypes as mt
from cnbkit.oci.descriptor import Descriptor
from cnbkit.oci.image import Image
from cnbkit.options import Options
from cnbkit.transport.layout import LayoutWriter
from cnbkit.transport.registry import RegistryClient, parse_reference
from cnbkit.transport.registry.image import RegistryImage
from cnbkit.transport.registry.push_image import CHUNK_SIZE, MONOLITHIC_MAX, _Counted, push_image

from tests.conftest import digest_of
from tests.hostile_server import Answer, HostileServer, Request, answer
from tests.services.registry import Registry

A, B = b"layer A " * 40, b"layer B " * 2  # 320 and 16 bytes


def _image(path: Path, blobs: list[bytes], arch: str = "amd64") -> Image:
    """An image of ``blobs`` as its layers (stored as they are: a push never opens them)."""
    writer = LayoutWriter(path)
    layers = [Descriptor(mt.OCI_LAYER_GZIP, writer.write_blob(b), len(b)).to_json() for b in blobs]
    rootfs = {"type": "layers", "diff_ids": [digest_of(b) for b in blobs]}
    config = writer.write_json({"architecture": arch, "os": "linux", "rootfs": rootfs}, mt.OCI_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": config.to_json(),
        "layers": layers,
    }
    writer.add(writer.write_json(manifest, mt.OCI_MANIFEST), "v1")
    return cnbkit.open_layout(path, tag="v1", platform=cnbkit.parse_platform(f"linux/{arch}"))


def _mounts(registry: Registry, since: int) -> list[str]:
    """The ``from=`` repositories of the mount ``POST`` s since ``since``."""
    found = []
    for entry in registry.log_requests("POST", since=since):
        match = re.search(r"from=([^&]+)", entry.query)
        if match:
            found.append(match.group(1).replace("%2F", "/"))
    return found


def _uploads(registry: Registry, since: int) -> int:
    return registry.count("PUT", r"/v2/.+/blobs/uploads/.*", since=since)


class _Recorder:
    """A progress reporter factory that keeps what it was told."""

    def __init__(self) -> None:
        self.made: list[tuple[str, int | None]] = []
        self.updates: list[int] = []
        self.closed = 0

    def __call__(self, description: str, total: int | None) -> _Recorder:
        self.made.append((description, total))
        return self

    def update(self, n: int) -> None:
        self.updates.append(n)

    def close(self) -> None:
        self.closed += 1


def test_a_push_uploads_once_then_finds_then_mounts_what_it_remembers(
    registry: Registry, tmp_path: Path
) -> None:
    image = _image(tmp_path / "L", [A, B, A])  # A twice: sent once
    cfg = image.manifest.config.digest
    client, cache = RegistryClient(), Cache(tmp_path / "cache")
    first, second = registry.unique_repo("img"), registry.unique_repo("img")
    mark = registry.mark()
    result = push_image(client, image, parse_reference(f"{registry.host}/{first}"), cache=cache)
    assert (result.reference, result.digest) == (f"{registry.host}/{first}:latest", image.digest)
    assert (result.uploaded, result.mounted, result.existing) == ([digest_of(A), digest_of(B), cfg], [], [])
    assert result.summary() == "3 blobs uploaded, 0 mounted, 0 already there"
    assert _uploads(registry, mark) == 3 and _mounts(registry, mark) == []
    assert client.head_manifest(parse_reference(registry.ref(first, "latest")))[0] == image.digest

    again = push_image(client, image, parse_reference(registry.ref(first, "v2")), cache=cache)
    assert (again.uploaded, again.mounted, again.existing) == ([], [], [digest_of(A), digest_of(B), cfg])
    assert again.summary() == "0 blobs uploaded, 0 mounted, 3 already there"

    mark = registry.mark()
    other = push_image(client, image, parse_reference(registry.ref(second, "v1")), cache=cache)
    assert (other.uploaded, other.mounted, other.existing) == ([], [digest_of(A), digest_of(B), cfg], [])
    assert other.summary() == "0 blobs uploaded, 3 mounted, 0 already there"
    assert _mounts(registry, mark) == [first] * 3 and _uploads(registry, mark) == 0
    for digest in (digest_of(A), digest_of(B), cfg):  # the last repository it went to
        record = cache.recall(PushedBlob, f"{registry.host}:{digest}")
        assert record is not None and (record.digest, record.repository) == (digest, second)

    # Without a cache, nothing is remembered and nothing mounted: every blob is sent.
    mark = registry.mark()
    bare = push_image(client, image, parse_reference(registry.ref(registry.unique_repo("img"), "v1")))
    assert bare.summary() == "3 blobs uploaded, 0 mounted, 0 already there" and _mounts(registry, mark) == []


@pytest.mark.parametrize("damage", ["no-repository", "lower-digest", "higher-digest", "same-repository"])
def test_a_remembered_repository_that_cannot_lend_the_blob_is_not_asked(
    registry: Registry, tmp_path: Path, damage: str
) -> None:
    image = _image(tmp_path / "L", [A])
    client, cache = RegistryClient(), Cache(tmp_path / "cache")
    holder, target = registry.unique_repo("img"), registry.unique_repo("img")
    push_image(client, image, parse_reference(registry.ref(holder, "v1")))
    for digest in (digest_of(A), image.manifest.config.digest):
        repository = {"no-repository": "", "same-repository": target}.get(damage, holder)
        # another digest than the key's, on either side of it
        recorded = {"lower-digest": "sha256:" + "0" * 64, "higher-digest": "sha256:" + "f" * 64}.get(
            damage, digest
        )
        cache.remember(PushedBlob(f"{registry.host}:{digest}", digest=recorded, repository=repository))
    mark = registry.mark()
    result = push_image(client, image, parse_reference(registry.ref(target, "v1")), cache=cache)
    assert result.summary() == "2 blobs uploaded, 0 mounted, 0 already there"
    assert _mounts(registry, mark) == []


def test_layers_from_a_registry_image_are_mounted_from_their_repository(
    registry: Registry, tmp_path: Path
) -> None:
    client = RegistryClient()
    source = registry.unique_repo("img")
    push_image(client, _image(tmp_path / "L", [A, B]), parse_reference(registry.ref(source, "v1")))
    context = new_context(Options.build(cache_dir=tmp_path / "cache", quiet=True))
    pulled = context.registry_image(registry.ref(source, "v1"))
    mark = registry.mark()
    result = push_image(client, pulled, parse_reference(registry.ref(registry.unique_repo("img"), "v1")))
    # the config has no origin to mount from (and no cache says where it went): it is sent
    assert (result.mounted, result.uploaded) == (
        [digest_of(A), digest_of(B)],
        [pulled.manifest.config.digest],
    )
    assert _mounts(registry, mark) == [source, source]
    same = push_image(client, pulled, parse_reference(registry.ref(source, "v2")))
    assert same.summary() == "0 blobs uploaded, 0 mounted, 3 already there"


def test_a_blob_up_to_the_bound_goes_whole_and_past_it_in_chunks_with_progress(
    registry: Registry, tmp_path: Path
) -> None:
    image = _image(tmp_path / "L", [A, B])  # A: 320 bytes
    client = RegistryClient()
    for bound, patches in ((320, 0), (319, 3)):  # chunks of 128: 128, 128, 64
        progress = _Recorder()
        mark = registry.mark()
        ref = parse_reference(registry.ref(registry.unique_repo("img"), "v1"))
        result = push_image(client, image, ref, progress=progress, monolithic_max=bound, chunk_size=128)
        assert result.summary() == "3 blobs uploaded, 0 mounted, 0 already there"
        assert registry.count("PATCH", since=mark) == patches
        # one reporter per layer sent (not the config), told every byte, closed
        assert progress.made == [(f"push {digest_of(A)[7:19]}", 320), (f"push {digest_of(B)[7:19]}", 16)]
        assert sum(progress.updates) == 336 and progress.closed == 2


def test_the_default_bound_is_32_mib_and_chunks_are_32_mib(
    hostile_uploads: HostileServer, tmp_path: Path
) -> None:
    assert MONOLITHIC_MAX == CHUNK_SIZE == 32 * 1024 * 1024
    big = bytes(MONOLITHIC_MAX)
    image = _image(tmp_path / "L", [big, big + b"1"])
    push_image(RegistryClient(timeout=60), image, parse_reference(f"{hostile_uploads.host}/x/app:v1"))
    blobs = [r for r in hostile_uploads.requests if r.method != "HEAD" and "/manifests/" not in r.path]
    sent = [(r.method, len(r.body)) for r in blobs[1:]]  # after the ping
    whole, chunked, config = sent[:2], sent[2:6], sent[6:]
    assert whole == [("POST", 0), ("PUT", MONOLITHIC_MAX)]
    assert chunked == [("POST", 0), ("PATCH", CHUNK_SIZE), ("PATCH", 1), ("PUT", 0)]
    assert [method for method, _ in config] == ["POST", "PUT"]


def test_layers_from_another_registry_stream_across_and_stay_in_the_cache(
    registry: Registry, registry_factory: Callable[..., Registry], tmp_path: Path
) -> None:
    other = registry_factory(name="registry-push-target")
    source = registry.unique_repo("img")
    push_image(RegistryClient(), _image(tmp_path / "L", [A, B]), parse_reference(registry.ref(source, "v1")))
    context = new_context(Options.build(cache_dir=tmp_path / "cache", quiet=True))
    pulled = context.registry_image(registry.ref(source, "v1"))
    assert all(pulled.cached_blob(layer.descriptor) is None for layer in pulled.layers())
    mark = other.mark()
    result = push_image(RegistryClient(), pulled, parse_reference(other.ref("copied", "v1")))
    assert result.summary() == "3 blobs uploaded, 0 mounted, 0 already there"
    assert _mounts(other, mark) == []  # never asked to mount from another registry
    # each layer was read to its end as it went across: the download is kept
    assert all(pulled.cached_blob(layer.descriptor) is not None for layer in pulled.layers())


def test_a_counted_stream_reads_to_the_end_by_default_and_tells_each_read() -> None:
    progress = _Recorder()
    counted = _Counted(io.BytesIO(b"abcdef"), progress)
    assert (counted.read(2), counted.read(), counted.read()) == (b"ab", b"cdef", b"")
    assert progress.updates == [2, 4, 0]


def test_a_digest_target_is_refused_before_any_request(registry: Registry, tmp_path: Path) -> None:
    ref = parse_reference(registry.ref("x/app", digest_of(b"m")))
    mark = registry.mark()
    with pytest.raises(UsageError, match=rf"docker://{re.escape(str(ref))}: a push target takes a tag"):
        push_image(RegistryClient(), _image(tmp_path / "L", [A]), ref)
    assert registry.count(since=mark) == 0


def test_an_index_puts_each_image_by_digest_then_itself_under_the_tag(
    registry: Registry, tmp_path: Path
) -> None:
    images = [_image(tmp_path / arch, [A, arch.encode()], arch) for arch in ("amd64", "arm64")]
    index = cnbkit.ImageIndex("two", images)
    repo = registry.unique_repo("multi")
    mark = registry.mark()
    result = push_image(RegistryClient(), index, parse_reference(f"{registry.host}/{repo}"))
    assert (result.reference, result.digest) == (f"{registry.host}/{repo}:latest", index.digest)
    puts = [
        e.path.rsplit("/", 1)[1]
        for e in registry.log_requests("PUT", rf"/v2/{repo}/manifests/.+", since=mark)
    ]
    assert puts == [images[0].digest, images[1].digest, "latest"]
    # A once for both; each image's own layer and config
    assert (
        result.uploaded.count(digest_of(A)) == 1
        and len(result.uploaded) == 5
        and _uploads(registry, mark) == 5
    )


# -- a registry whose first source refuses the mount -------------------------------------------


@pytest.fixture
def hostile_uploads() -> Iterator[HostileServer]:
    """A registry that has no blob, mounts only from ``x/lender``, takes every upload."""

    def respond(request: Request) -> Answer:
        path = request.path
        if path == "/v2/":
            return answer(200, b"{}")
        if request.method == "POST" and "mount=" in path:
            return answer(201) if "from=x%2Flender" in path else answer(403, b"{}")
        if request.method in ("POST", "PATCH"):
            return answer(202, headers={"Location": "/up/s"})
        return answer(201) if request.method == "PUT" else answer(404)  # HEAD: no body

    server = HostileServer(respond)
    yield server
    server.close()


def test_a_source_that_refuses_is_passed_over_for_the_next(
    hostile_uploads: HostileServer, tmp_path: Path
) -> None:
    server = hostile_uploads
    client, cache = RegistryClient(), Cache(tmp_path / "cache")
    layout = _image(tmp_path / "L", [A])
    origin = RegistryImage(
        parse_reference(f"{server.host}/x/denied:v1"),
        layout.manifest,
        layout.config,
        cache=cache,
        client=lambda: client,
    )
    for digest in (digest_of(A), layout.manifest.config.digest):
        cache.remember(PushedBlob(f"{server.host}:{digest}", digest=digest, repository="x/lender"))
    result = push_image(client, origin, parse_reference(f"{server.host}/x/app:v1"), cache=cache)
    assert result.summary() == "0 blobs uploaded, 2 mounted, 0 already there"
    mounts = [re.search(r"from=([^&]+)", r.path).group(1) for r in server.requests if "mount=" in r.path]  # type: ignore[union-attr]
    assert mounts == ["x%2Fdenied", "x%2Flender", "x%2Flender"]  # the config: the cache's only


def test_a_layer_a_registry_sends_past_its_size_fails_the_push(registry: Registry, tmp_path: Path) -> None:
    def respond(request: Request) -> Answer:
        if request.path == "/v2/":
            return answer(200, b"{}")
        # no Content-Length: the body ends when the connection does, 4 bytes past the layer
        return (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + A + b"more", 0)

    source = HostileServer(respond)
    try:
        client, cache = RegistryClient(), Cache(tmp_path / "cache")
        layout = _image(tmp_path / "L", [A])
        ref = parse_reference(f"{source.host}/x/src:v1")
        image = RegistryImage(ref, layout.manifest, layout.config, cache=cache, client=lambda: client)
        repo = registry.unique_repo("img")
        mark = registry.mark()
        with pytest.raises(cnbkit.CnbkitError, match="sent more than the 320 bytes the manifest gives"):
            push_image(client, image, parse_reference(registry.ref(repo, "v1")))
        assert registry.count("PUT", rf"/v2/{repo}/manifests/.*", since=mark) == 0
    finally:
        source.close()
