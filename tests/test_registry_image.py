"""Reading an image from a registry (``open_registry_image``): what it asks, what it keeps,
what it refuses.

A tag costs a ping, a ``HEAD`` and the manifest and config the first time; one ``HEAD`` once
the registry is remembered; a digest whose blobs are cached costs nothing, and ``--offline``
never asks. Manifests and configs are cached by digest, verified when kept and when read back
(a damaged or oversized entry is fetched again). An index yields the requested platform's
manifest; an artifact, an index where an image belongs, a config over 4 MiB or of another
platform is refused with a message naming the image. Driven against a registry that is a
:class:`tests.hostile_server.HostileServer` on loopback (every request counted) and a real
:class:`~cnbkit.transport.registry.RegistryClient`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cnbkit.cache import Cache
from cnbkit.cache.records import TagDigest
from cnbkit.errors import CacheMissError
from cnbkit.oci import mediatypes as mt
from cnbkit.oci.config import MAX_CONFIG_SIZE
from cnbkit.oci.errors import ManifestError, PlatformNotFoundError
from cnbkit.oci.platform import parse_platform
from cnbkit.transport.registry import RegistryClient
from cnbkit.transport.registry.image import RegistryImage, _Fetcher, open_registry_image, tag_key
from cnbkit.transport.registry.reference import Reference, parse_reference

from tests.hostile_server import Answer, HostileServer, Request, answer
from tests.images import Entry, gzip_layer

JSON = {"Content-Type": "application/json"}
AMD64 = parse_platform("linux/amd64")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    """Blobs and manifests by digest (manifests by tag too), served on loopback; ``login``
    makes ``/v2/`` ask for Basic credentials."""

    def __init__(self, *, login: bool = False) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[bytes, str]] = {}
        self.login = login
        self.server = HostileServer(self._respond)
        self.host = self.server.host

    def close(self) -> None:
        self.server.close()

    def blob(self, data: bytes) -> str:
        self.blobs[sha256(data)] = data
        return sha256(data)

    def manifest(self, document: dict[str, Any] | bytes, media_type: str, tag: str | None = None) -> str:
        data = document if isinstance(document, bytes) else json.dumps(document).encode()
        digest = sha256(data)
        self.manifests[digest] = (data, media_type)
        if tag is not None:
            self.manifests[tag] = (data, media_type)
        return digest

    def seen(self, since: int = 0) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.server.requests[since:]]

    def mark(self) -> int:
        return len(self.server.requests)

    def _respond(self, request: Request) -> Answer:
        if self.login and "authorization" not in request.headers:
            return answer(401, b"{}", {"WWW-Authenticate": 'Basic realm="fake"', **JSON})
        if request.path == "/v2/":
            return answer(200, b"{}", JSON)
        match = re.fullmatch(r"/v2/(.+)/(manifests|blobs)/([^/?]+)", request.path)
        if match and match[2] == "manifests" and match[3] in self.manifests:
            data, media_type = self.manifests[match[3]]
            headers = {"Content-Type": media_type, "Docker-Content-Digest": sha256(data)}
            reply = answer(200, data, headers)
            return reply[: len(reply) - len(data)] if request.method == "HEAD" else reply
        if match and match[2] == "blobs" and match[3] in self.blobs:
            return answer(200, self.blobs[match[3]], {"Content-Type": "application/octet-stream"})
        return answer(404, b'{"errors": [{"code": "NOT_FOUND", "message": "not here"}]}', JSON)


@pytest.fixture
def registry() -> Any:
    served = Registry()
    yield served
    served.close()


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


LAYER, DIFF_ID = gzip_layer([Entry("f", b"x")])


def config(platform: str = "linux/amd64", pad: int = 0) -> bytes:
    """An image config of ``platform``, padded with spaces to ``pad`` bytes."""
    os_, _, arch = platform.partition("/")
    data = json.dumps({"architecture": arch, "os": os_, "rootfs": {"type": "layers", "diff_ids": [DIFF_ID]}})
    return data.encode().ljust(pad, b" ")


def push_image(
    registry: Registry,
    tag: str | None = "v1",
    *,
    platform: str = "linux/amd64",
    config_bytes: bytes | None = None,
    config_type: str = mt.OCI_CONFIG,
    config_size: int | None = None,
) -> str:
    data = config(platform) if config_bytes is None else config_bytes
    document = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": registry.blob(data), "size": config_size or len(data)},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": registry.blob(LAYER), "size": len(LAYER)}],
    }
    return registry.manifest(document, mt.OCI_MANIFEST, tag)


def push_index(registry: Registry, entries: list[dict[str, Any]], tag: str = "v1") -> str:
    document = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
    return registry.manifest(document, mt.OCI_INDEX, tag)


def entry(
    registry: Registry, digest: str, platform: str | None, media_type: str = mt.OCI_MANIFEST
) -> dict[str, Any]:
    data, _ = registry.manifests[digest]
    found: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": len(data)}
    if platform is not None:
        os_, _, arch = platform.partition("/")
        found["platform"] = {"os": os_, "architecture": arch}
    return found


def open_image(ref: str | Reference, cache: Cache, **options: Any) -> RegistryImage:
    target = parse_reference(ref) if isinstance(ref, str) else ref
    options.setdefault("platform", AMD64)
    client = options.pop("client", None) or RegistryClient(timeout=10)
    return open_registry_image(target, client=lambda: client, cache=cache, **options)


def read_all(image: RegistryImage) -> list[bytes]:
    data = []
    for layer in image.layers():
        stream = image.open_blob(layer.descriptor)
        try:
            data.append(stream.read())
        finally:
            stream.close()
    return data


# -- what a tag, a warm tag, a digest and --offline cost ------------------------------------


def test_a_tag_then_warm_then_by_digest_then_offline(registry: Registry, cache: Cache) -> None:
    digest = push_image(registry)
    config_digest = sha256(config())
    first = open_image(f"{registry.host}/org/app:v1", cache)
    assert (first.digest, first.reference, first.platforms) == (digest, f"{registry.host}/org/app:v1", ())
    assert first.ref == Reference(registry.host, "org/app", "v1", digest)
    assert registry.seen() == [
        ("GET", "/v2/"),
        ("HEAD", "/v2/org/app/manifests/v1"),
        ("GET", f"/v2/org/app/manifests/{digest}"),
        ("GET", f"/v2/org/app/blobs/{config_digest}"),
    ]
    remembered = cache.recall(TagDigest, f"docker://{registry.host}/org/app:v1")
    assert remembered is not None and (remembered.digest, remembered.size) == (
        digest,
        len(registry.manifests[digest][0]),
    )
    assert first.cached_blob(first.layers()[0].descriptor) is None
    mark = registry.mark()
    assert read_all(first) == [LAYER]
    assert registry.seen(mark) == [("GET", f"/v2/org/app/blobs/{sha256(LAYER)}")]
    assert first.cached_blob(first.layers()[0].descriptor) == cache.blob_path(sha256(LAYER))
    mark = registry.mark()
    assert read_all(first) == [LAYER]
    warm = open_image(f"{registry.host}/org/app:v1", cache)
    assert warm.digest == digest
    assert registry.seen(mark) == [("HEAD", "/v2/org/app/manifests/v1")]  # no ping, nothing else
    mark = registry.mark()
    pinned = open_image(f"{registry.host}/org/app@{digest}", cache)
    assert read_all(pinned) == [LAYER]
    offline = open_image(f"{registry.host}/org/app:v1", cache, offline=True)
    assert (offline.digest, read_all(offline)) == (digest, [LAYER])
    assert registry.seen(mark) == []


def test_a_registry_that_asks_for_credentials_is_never_revalidated_without_them(
    cache: Cache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry(login=True)
    try:
        auth = base64.b64encode(b"user:secret").decode()
        (tmp_path / "docker").mkdir()
        (tmp_path / "docker" / "config.json").write_text(
            json.dumps({"auths": {registry.host: {"auth": auth}}})
        )
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
        push_image(registry)
        open_image(f"{registry.host}/org/app:v1", cache)
        mark = registry.mark()
        open_image(f"{registry.host}/org/app:v1", cache)
        assert ("GET", "/v2/") in registry.seen(mark)  # the full path again: ping, then log in
    finally:
        registry.close()


def test_offline_says_what_is_not_cached(registry: Registry, cache: Cache) -> None:
    digest = push_image(registry)
    name = f"{registry.host}/org/app"
    with pytest.raises(CacheMissError) as raised:
        open_image(f"{name}:v1", cache, offline=True)
    assert str(raised.value) == f"{name}:v1: the tag was never resolved on this machine (--offline)"
    with pytest.raises(CacheMissError) as raised:
        open_image(f"{name}@{digest}", cache, offline=True)
    assert str(raised.value) == f"{name}@{digest}: the manifest is not cached (--offline)"
    image = open_image(f"{name}:v1", cache)
    cache.blob_path(sha256(config())).unlink()
    with pytest.raises(CacheMissError) as raised:
        open_image(f"{name}:v1", cache, offline=True)
    assert str(raised.value) == f"{name}:v1: the config {sha256(config())} is not cached (--offline)"
    again = open_image(f"{name}:v1", cache)
    offline = RegistryImage(
        again.ref, again.manifest, again.config, cache=cache, client=lambda: None, offline=True
    )  # type: ignore[arg-type, return-value]
    layer = image.layers()[0].descriptor
    with pytest.raises(CacheMissError) as raised:
        offline.open_blob(layer)
    assert str(raised.value) == f"{again.ref}: blob {layer.digest} is not cached (--offline)"
    online = RegistryImage(again.ref, again.manifest, again.config, cache=cache, client=RegistryClient)
    assert online.reference == str(again.ref)  # by default, the pinned reference names it
    stream = online.open_blob(layer)
    assert stream.read() == LAYER
    stream.close()
    assert registry.seen()[-1] == ("GET", f"/v2/org/app/blobs/{sha256(LAYER)}")


def test_tag_key() -> None:
    assert tag_key(parse_reference("ghcr.io/org/app:v2")) == "docker://ghcr.io/org/app:v2"
    assert tag_key(parse_reference("alpine")) == "docker://docker.io/library/alpine:latest"


def test_a_mirror_serves_the_image_and_names_it(registry: Registry, cache: Cache) -> None:
    digest = push_image(registry)
    image = open_image("ghcr.io/org/app:v1", cache, mirrors={"ghcr.io": f"{registry.host}/pre"})
    assert (image.digest, image.reference) == (digest, f"{registry.host}/pre/org/app:v1")
    assert ("HEAD", "/v2/pre/org/app/manifests/v1") in registry.seen()
    assert cache.recall(TagDigest, f"docker://{registry.host}/pre/org/app:v1") is not None


# -- the cache of manifests and configs -----------------------------------------------------


def test_a_damaged_cache_entry_is_fetched_again(registry: Registry, cache: Cache) -> None:
    digest = push_image(registry)
    open_image(f"{registry.host}/org/app@{digest}", cache)
    cache.blob_path(digest).write_bytes(b"{}")
    mark = registry.mark()
    open_image(f"{registry.host}/org/app@{digest}", cache)
    assert registry.seen(mark) == [("GET", "/v2/"), ("GET", f"/v2/org/app/manifests/{digest}")]
    assert cache.blob_path(digest).read_bytes() == registry.manifests[digest][0]


def test_the_cache_holds_at_most_the_limit(registry: Registry, cache: Cache) -> None:
    fetcher = _Fetcher(parse_reference(f"{registry.host}/org/app"), cache, RegistryClient, offline=True)
    for limit in (10, 11):  # an odd limit too: limit | 1 is not limit + 1 there
        for size in (limit, limit + 1):
            data = b"x" * size
            path = cache.blob_path(sha256(data))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            assert fetcher.cached(sha256(data), limit) == (data if size == limit else None)
            assert path.exists()  # over the limit is not trusted, but not removed either
    wrong = cache.blob_path(sha256(b"y"))
    wrong.write_bytes(b"z")
    assert fetcher.cached(sha256(b"y"), 10) is None
    assert not wrong.exists()
    assert fetcher.cached(sha256(b"never"), 10) is None


def test_a_damaged_entry_another_process_removed_meanwhile(
    registry: Registry, cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two processes find the same damaged entry: the second to unlink it finds it gone.
    import cnbkit.transport.registry.image as module

    def verify_then_lose(data: bytes, digest: str, *, source: str) -> None:
        cache.blob_path(digest).unlink()
        raise ValueError("damaged")

    path = cache.blob_path(sha256(b"y"))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"z")
    monkeypatch.setattr(module, "verify_digest", verify_then_lose)
    fetcher = _Fetcher(parse_reference(f"{registry.host}/org/app"), cache, RegistryClient, offline=True)
    assert fetcher.cached(sha256(b"y"), 10) is None


def test_only_sha256_blobs_are_kept_and_once(registry: Registry, cache: Cache) -> None:
    fetcher = _Fetcher(parse_reference(f"{registry.host}/org/app"), cache, RegistryClient, offline=True)
    fetcher.keep(b"data", "sha512:" + hashlib.sha512(b"data").hexdigest())
    assert not (cache.root / "blobs" / "sha512").exists()
    fetcher.keep(b"data", sha256(b"data"))
    assert cache.blob_path(sha256(b"data")).read_bytes() == b"data"
    path = cache.blob_path(sha256(b"data"))
    path.chmod(0o444)
    before = path.stat().st_mtime_ns, path.stat().st_ino
    fetcher.keep(b"data", sha256(b"data"))
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == before


def test_a_config_of_4_mib_is_read_and_cached(registry: Registry, cache: Cache) -> None:
    big = config(pad=MAX_CONFIG_SIZE)
    digest = push_image(registry, config_bytes=big)
    assert open_image(f"{registry.host}/org/app@{digest}", cache).config.platform == AMD64
    mark = registry.mark()
    open_image(f"{registry.host}/org/app@{digest}", cache)
    assert registry.seen(mark) == []


def test_a_config_over_4_mib_is_refused_unread(registry: Registry, cache: Cache) -> None:
    digest = push_image(registry, config_size=MAX_CONFIG_SIZE + 1)
    with pytest.raises(ManifestError) as raised:
        open_image(f"{registry.host}/org/app@{digest}", cache)
    over = f"the config is {MAX_CONFIG_SIZE + 1} bytes, over the {MAX_CONFIG_SIZE} limit"
    assert str(raised.value) == f"{registry.host}/org/app@{digest}: {over}"
    assert not any("/blobs/" in path for _, path in registry.seen())


# -- indexes, platforms, artifacts ----------------------------------------------------------


def test_an_index_yields_the_platform_asked_for(registry: Registry, cache: Cache) -> None:
    amd = push_image(registry, None)
    arm = push_image(registry, None, platform="linux/arm64")
    index = push_index(registry, [entry(registry, amd, "linux/amd64"), entry(registry, arm, "linux/arm64")])
    image = open_image(f"{registry.host}/org/app:v1", cache, platform=parse_platform("linux/arm64"))
    assert (image.digest, image.platforms) == (arm, ("linux/amd64", "linux/arm64"))
    assert image.reference == f"{registry.host}/org/app:v1"
    assert cache.has_blob(index) and cache.has_blob(arm) and not cache.has_blob(amd)


def test_an_index_entry_s_platform_is_trusted_over_its_config(registry: Registry, cache: Cache) -> None:
    other = push_image(registry, None, platform="linux/arm64")
    push_index(registry, [entry(registry, other, "linux/amd64")])
    assert open_image(f"{registry.host}/org/app:v1", cache).digest == other


def test_an_index_entry_without_a_platform_is_checked_by_its_config(registry: Registry, cache: Cache) -> None:
    other = push_image(registry, None, platform="linux/arm64")
    push_index(registry, [entry(registry, other, None)])
    with pytest.raises(PlatformNotFoundError) as raised:
        open_image(f"{registry.host}/org/app:v1", cache)
    message = (
        f"{registry.host}/org/app:v1 is linux/arm64, not linux/amd64; choose another image or --platform"
    )
    assert str(raised.value) == message


def test_a_single_image_of_another_platform_is_refused(registry: Registry, cache: Cache) -> None:
    push_image(registry, platform="linux/arm64")
    with pytest.raises(PlatformNotFoundError) as raised:
        open_image(f"{registry.host}/org/app:v1", cache)
    assert (raised.value.available, raised.value.single) == (["linux/arm64"], True)
    assert str(raised.value).endswith("is linux/arm64, not linux/amd64; choose another image or --platform")


def test_an_index_where_an_image_belongs_is_refused(registry: Registry, cache: Cache) -> None:
    amd = push_image(registry, None)
    inner = push_index(registry, [entry(registry, amd, "linux/amd64")], tag="inner")
    push_index(registry, [entry(registry, inner, "linux/amd64")])  # says manifest, is an index
    with pytest.raises(ManifestError) as raised:
        open_image(f"{registry.host}/org/app:v1", cache)
    assert str(raised.value) == f"{registry.host}/org/app:v1: {inner} is an index where an image was expected"


def test_an_artifact_is_not_an_image(registry: Registry, cache: Cache) -> None:
    kind = "application/vnd.example." + "x" * 100 + "+json"
    push_image(registry, config_type=kind)
    with pytest.raises(ManifestError) as raised:
        open_image(f"{registry.host}/org/app:v1", cache)
    assert str(raised.value) == f"{registry.host}/org/app:v1 is not a container image (config {kind[:80]})"
