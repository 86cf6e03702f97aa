"""Issue 20, item 4: a multi-platform image (:class:`cnbkit.ImageIndex`) written by every
built-in exporter: an OCI layout names the index, a registry gets every manifest by digest and
the index under the tag last (a blob two platforms share sent once), the Docker daemon gets its
own platform's image; read back by skopeo and docker, the independent readers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cnbkit
import pytest
from cnbkit.api import new_context
from cnbkit.options import Options

from tests.canned_server import Route, serve_unix
from tests.images import Entry, ImageSpec, write_index
from tests.services.dockerd import Dockerd
from tests.services.registry import Registry
from tests.services.skopeo import inspect, registry_flags, skopeo

_SHARED = [Entry("shared/readme", b"the same bytes for every platform\n", mode=0o644)]


def _two_platforms(tmp_path: Path) -> tuple[cnbkit.ImageIndex, list[cnbkit.Image]]:
    """An amd64 and an arm64 image sharing their first layer, joined in an ImageIndex."""
    layout = tmp_path / "source"
    specs = [
        ImageSpec([_SHARED, [Entry(f"only/{arch}", arch.encode(), mode=0o644)]], platform=f"linux/{arch}")
        for arch in ("amd64", "arm64")
    ]
    write_index(layout, specs, "v1")
    images = [
        cnbkit.open_layout(layout, tag="v1", platform=cnbkit.parse_platform(f"linux/{arch}"))
        for arch in ("amd64", "arm64")
    ]
    return cnbkit.ImageIndex("test index", images), images


def _context(tmp_path: Path) -> cnbkit.Context:
    return new_context(Options.build(cache_dir=tmp_path / "cache", quiet=True))


def test_the_index_lists_each_image_with_its_platform_and_is_stable(tmp_path: Path) -> None:
    index, images = _two_platforms(tmp_path)
    document = json.loads(index.index.raw)
    assert document["mediaType"] == cnbkit.media_types.OCI_INDEX
    assert [(m["digest"], m["platform"]["architecture"]) for m in document["manifests"]] == [
        (images[0].digest, "amd64"),
        (images[1].digest, "arm64"),
    ]
    assert cnbkit.ImageIndex("again", images).digest == index.digest  # the name is not in the bytes
    with pytest.raises(cnbkit.ManifestError, match="two images for linux/amd64"):
        cnbkit.ImageIndex("twice", [images[0], images[0]])


def test_a_layout_names_the_index_and_skopeo_reads_each_platform(tmp_path: Path) -> None:
    index, images = _two_platforms(tmp_path)
    written = cnbkit.export_layout(index, f"{tmp_path / 'out'}:v1")
    assert written.endswith(index.digest)
    entry = json.loads((tmp_path / "out" / "index.json").read_text())["manifests"]
    assert [(e["mediaType"], e["digest"]) for e in entry] == [(cnbkit.media_types.OCI_INDEX, index.digest)]
    for arch, image in zip(("amd64", "arm64"), images, strict=True):
        found = json.loads(
            skopeo("inspect", "--override-arch", arch, f"oci:{tmp_path / 'out'}:v1", workdir=tmp_path).stdout
        )
        # skopeo's Digest is the index's (what the name points at); the layers are the image's
        assert (found["Architecture"], found["Digest"]) == (arch, index.digest)
        assert found["Layers"] == [layer.digest for layer in image.manifest.layers]
    shared = images[0].manifest.layers[0].digest
    assert shared == images[1].manifest.layers[0].digest
    assert (tmp_path / "out" / "blobs" / "sha256" / shared[7:]).is_file()


def test_a_registry_gets_every_manifest_then_the_index_and_a_shared_blob_once(
    registry: Registry, tmp_path: Path
) -> None:
    index, images = _two_platforms(tmp_path)
    repo = registry.unique_repo("multi")
    mark = registry.count()
    _context(tmp_path).push_image(index, registry.ref(repo, "v1"))
    raw = inspect(registry, registry.ref(repo, "v1"), workdir=tmp_path, raw=True)
    assert raw["mediaType"] == cnbkit.media_types.OCI_INDEX
    assert [m["digest"] for m in raw["manifests"]] == [image.digest for image in images]
    shared = images[0].manifest.layers[0].digest
    # each upload ends with a request naming the digest it is for (PUT ...?digest= or POST)
    uploads = [e for e in registry.log_requests(since=mark) if "/blobs/uploads/" in e.path]
    assert sum(shared[7:] in e.query for e in uploads) == 1, uploads  # sent once for two platforms
    manifests = registry.log_requests("PUT", rf"/v2/{repo}/manifests/.*", since=mark)
    puts = [e.path.rsplit("/", 1)[1] for e in manifests]
    assert puts == [images[0].digest, images[1].digest, "v1"]  # the tag last
    for arch, image in zip(("amd64", "arm64"), images, strict=True):
        args = ["inspect", *registry_flags(registry, ""), "--override-arch", arch]
        found = json.loads(skopeo(*args, f"docker://{registry.ref(repo, 'v1')}", workdir=tmp_path).stdout)
        layers = [layer.digest for layer in image.manifest.layers]
        assert (found["Architecture"], found["Layers"]) == (arch, layers)


def test_the_daemon_gets_its_own_platform(docker_host: Dockerd, tmp_path: Path) -> None:
    index, images = _two_platforms(tmp_path)
    written = _context(tmp_path).load_image(index, "cnbkit-test/multi:v1")
    assert written.endswith(images[0].manifest.config.digest)  # the daemon runs linux/amd64
    found = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Architecture}}", "cnbkit-test/multi:v1"],
        capture_output=True,
        text=True,
        env={"DOCKER_HOST": docker_host.host, "PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout.strip()
    assert found == "amd64"


def test_an_index_without_the_daemons_platform_is_refused_in_one_line(
    docker_host: Dockerd, tmp_path: Path
) -> None:
    _, images = _two_platforms(tmp_path)
    arm_only = cnbkit.ImageIndex("arm only", [images[1]])
    with pytest.raises(cnbkit.BuilderError) as raised:
        _context(tmp_path).load_image(arm_only, "cnbkit-test/arm-only:v1")
    message = str(raised.value)
    assert "daemon's platform linux/amd64" in message and "linux/arm64" in message and "\n" not in message


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (b"[" * 5000 + b"]" * 5000, "nesting deeper than 64"),  # the SDK's parser would recurse
        (json.dumps({"Os": "linux"}).encode(), "names no Os and Arch"),
        (json.dumps({"Os": "linux", "Arch": "../\u001b[2J"}).encode(), "is not a platform"),
        (b'{"message": "boom"}', "(HTTP 500)"),
    ],
    ids=["deep", "no-arch", "hostile-arch", "error"],
)
def test_a_daemon_that_will_not_say_its_platform_is_one_line(
    answer: bytes, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, _ = _two_platforms(tmp_path)
    routes = [
        Route("GET", "/version", json.dumps({"ApiVersion": "1.41", "Version": "24.0.0"}).encode()),
        Route("GET", r"/v[0-9.]+/version", answer, 500 if said == "(HTTP 500)" else 200),
    ]
    with serve_unix(tmp_path / "docker.sock", routes) as docker_host:
        monkeypatch.setenv("DOCKER_HOST", docker_host)
        with pytest.raises(cnbkit.ImageError) as raised:
            _context(tmp_path).load_image(index, "cnbkit-test/multi:v1")
    message = str(raised.value)
    assert "did not say its platform" in message or "version answer" in message, message
    assert said in message and "\n" not in message and "\x1b" not in message, message


class _SinglePlatformExporter:
    """A third party's exporter written before indexes: its hook does not take ``index``."""

    def __init__(self) -> None:
        self.asked = 0

    @cnbkit.hookimpl
    def cnbkit_export(self, target: str, image: cnbkit.Image, context: cnbkit.Context) -> str | None:
        self.asked += 1
        return f"{target} {image.digest}" if target.startswith("single:") else None


def test_an_exporter_that_does_not_take_an_index_is_not_asked_to_write_one(tmp_path: Path) -> None:
    index, images = _two_platforms(tmp_path)
    exporter = _SinglePlatformExporter()
    cnbkit.register_plugin(exporter, "single-platform")
    try:
        context = _context(tmp_path)
        assert context.export("single:x", images[0]) == f"single:x {images[0].digest}"
        refused = "no plugin exports a multi-platform image to 'single:x'"
        with pytest.raises(cnbkit.NoResolverError, match=refused):
            context.export("single:x", images[0], index=index)
    finally:
        cnbkit.unregister_plugin("single-platform")
    assert exporter.asked == 1
