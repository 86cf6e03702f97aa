"""The ``oci:`` transport against layouts that skopeo and umoci wrote, and the other way round."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cnbkit.archive.compression import decompressed
from cnbkit.archive.streams import CHUNK, close_stream
from cnbkit.archive.tarreader import iter_tar
from cnbkit.errors import DigestMismatchError, UsageError
from cnbkit.oci import mediatypes as mt
from cnbkit.oci.errors import ImageNotFoundError, LayoutError, ManifestError, PlatformNotFoundError
from cnbkit.oci.image import Image
from cnbkit.oci.platform import Platform
from cnbkit.oci.whiteout import Overlay
from cnbkit.transport.layout import LayoutWriter, open_layout, parse_layout_locator

from .images import Entry, ImageSpec, whiteout, write_image, write_index

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
needs_tools = pytest.mark.skipif(
    not (shutil.which("skopeo") and shutil.which("umoci")), reason="needs skopeo and umoci"
)


def run(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def files_of(image: Image) -> dict[str, bytes]:
    """The final files of ``image`` (whiteouts applied), read top layer first."""
    overlay, contents = Overlay(), {}
    for layer in reversed(image.layers()):
        stream = layer.open()
        try:
            scope = overlay.begin_layer(layer.index)
            for entry in iter_tar(decompressed(stream, layer.source), layer.source):
                if scope.add(entry.name, entry.kind) and entry.kind == "file":
                    contents[entry.name] = b"".join(entry.chunks())
            scope.finish()
        finally:
            close_stream(stream)
    return {name: data for name, data in contents.items() if overlay.visible(name)}


@pytest.fixture
def umoci_layout(tmp_path: Path) -> Path:
    """``L:t``, made by umoci: one layer (a GNU tar) holding cnb/lifecycle/analyzer."""
    (tmp_path / "src/cnb/lifecycle").mkdir(parents=True)
    (tmp_path / "src/cnb/lifecycle/analyzer").write_bytes(b"analyzer v1\n")
    run("tar", "cf", "layer.tar", "-C", "src", "cnb", cwd=tmp_path)
    run("umoci", "init", "--layout", "L", cwd=tmp_path)
    run("umoci", "new", "--image", "L:t", cwd=tmp_path)
    # Not `umoci insert`: umoci 0.4.7 ends those layers without tar padding or end blocks,
    # which GNU tar and Python's tarfile refuse (see test_umoci_insert_layers_stream_verified).
    run("umoci", "raw", "add-layer", "--image", "L:t", "layer.tar", cwd=tmp_path)
    return tmp_path / "L"


@needs_tools
def test_reads_umoci_layout_by_tag_and_digest(umoci_layout: Path) -> None:
    image = open_layout(umoci_layout, tag="t", platform=AMD64)
    assert image.reference == f"oci:{umoci_layout}:t"
    assert image.platform == AMD64 and len(image.layers()) == 1
    assert image.layers()[0].diff_id == image.config.diff_ids[0]
    assert files_of(image) == {"cnb/lifecycle/analyzer": b"analyzer v1\n"}
    by_digest = open_layout(umoci_layout, digest=image.digest, platform=AMD64)
    assert by_digest.digest == image.digest and by_digest.manifest == image.manifest
    assert open_layout(umoci_layout, platform=AMD64).digest == image.digest  # the only image


@needs_tools
def test_skopeo_copy_and_several_tags(umoci_layout: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    for tag in ("a", "b"):
        run("skopeo", "copy", "-q", f"oci:{umoci_layout}:t", f"oci:{copy}:{tag}")
    assert (
        open_layout(copy, tag="b", platform=AMD64).digest == open_layout(umoci_layout, platform=AMD64).digest
    )
    with pytest.raises(ImageNotFoundError, match=r"holds 2 images; name one with oci:.*:TAG \(tags: a, b\)"):
        open_layout(copy, platform=AMD64)
    with pytest.raises(ImageNotFoundError, match=r"no image tagged 'c' in the layout \(tags: a, b\)"):
        open_layout(copy, tag="c", platform=AMD64)


@needs_tools
def test_umoci_whiteouts_agree_with_ours(tmp_path: Path) -> None:
    # umoci writes the deletion of cnb/lifecycle/old as a whiteout in a second layer.
    (tmp_path / "src/cnb/lifecycle").mkdir(parents=True)
    (tmp_path / "src/cnb/lifecycle/old").write_bytes(b"old")
    (tmp_path / "src/cnb/lifecycle/keep").write_bytes(b"keep")
    run("tar", "cf", "layer.tar", "-C", "src", "cnb", cwd=tmp_path)
    run("umoci", "init", "--layout", "L", cwd=tmp_path)
    run("umoci", "new", "--image", "L:t", cwd=tmp_path)
    run("umoci", "raw", "add-layer", "--image", "L:t", "layer.tar", cwd=tmp_path)
    run("umoci", "unpack", "--rootless", "--image", "L:t", "bundle", cwd=tmp_path)
    (tmp_path / "bundle/rootfs/cnb/lifecycle/old").unlink()
    run("umoci", "repack", "--image", "L:t", "bundle", cwd=tmp_path)
    image = open_layout(tmp_path / "L", tag="t", platform=AMD64)
    assert len(image.layers()) == 2
    assert files_of(image) == {"cnb/lifecycle/keep": b"keep"}


@needs_tools
def test_umoci_insert_layers_stream_verified(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src/analyzer").write_bytes(b"x")
    run("umoci", "init", "--layout", "L", cwd=tmp_path)
    run("umoci", "new", "--image", "L:t", cwd=tmp_path)
    run("umoci", "insert", "--image", "L:t", "src", "/cnb/lifecycle", cwd=tmp_path)
    layer = open_layout(tmp_path / "L", tag="t", platform=AMD64).layers()[0]
    stream = decompressed(layer.open(), layer.source)
    tar = b""
    while chunk := stream.read(CHUNK):  # the digest is verified at the end
        tar += chunk
    # What umoci wrote: the last file's data is not padded and no end blocks follow.
    assert len(tar) % 512 == 1


def _tools_see(layout: Path, tag: str, tmp_path: Path) -> tuple[dict[str, object], Path]:
    inspected = json.loads(run("skopeo", "inspect", f"oci:{layout}:{tag}"))
    run("umoci", "unpack", "--rootless", "--image", f"{layout}:{tag}", str(tmp_path / "bundle"))
    return inspected, tmp_path / "bundle/rootfs"


@needs_tools
def test_our_layout_is_read_by_skopeo_and_umoci(tmp_path: Path) -> None:
    spec = ImageSpec(
        layers=[
            [Entry("cnb/", kind="dir"), Entry("cnb/lifecycle/old", b"old"), Entry("cnb/lifecycle/x", b"x")],
            [whiteout("cnb/lifecycle/old"), Entry("cnb/lifecycle/launcher", b"launch")],
        ],
        labels={"io.buildpacks.lifecycle.version": "0.20.0"},
    )
    write_image(tmp_path / "L", spec, tag="v1")
    inspected, rootfs = _tools_see(tmp_path / "L", "v1", tmp_path)
    assert inspected["Labels"] == {"io.buildpacks.lifecycle.version": "0.20.0"}
    assert sorted(p.name for p in (rootfs / "cnb/lifecycle").iterdir()) == ["launcher", "x"]
    image = open_layout(tmp_path / "L", tag="v1", platform=AMD64)
    assert files_of(image) == {"cnb/lifecycle/x": b"x", "cnb/lifecycle/launcher": b"launch"}
    assert image.config.label("io.buildpacks.lifecycle.version") == "0.20.0"


@needs_tools
@pytest.mark.parametrize("docker", [False, True], ids=["oci", "docker"])
def test_multi_arch_index(tmp_path: Path, docker: bool) -> None:
    specs = [
        ImageSpec([[Entry("arch", b"amd64")]], "linux/amd64", docker=docker),
        ImageSpec([[Entry("arch", b"arm64")]], "linux/arm64/v8", docker=docker),
    ]
    write_index(tmp_path / "L", specs, tag="multi", docker=docker, attestation=not docker)
    layouts = [(tmp_path / "L", "multi")]
    if not docker:  # skopeo 1.9 finds no image behind a Docker manifest list in index.json
        # skopeo reads our index and copies every platform; we read its copy.
        run("skopeo", "copy", "-q", "--all", f"oci:{tmp_path / 'L'}:multi", f"oci:{tmp_path / 'C'}:m")
        layouts.append((tmp_path / "C", "m"))
    for layout, tag in layouts:
        arm = open_layout(layout, tag=tag, platform=ARM64)
        assert arm.platform == Platform("linux", "arm64", "v8") and files_of(arm) == {"arch": b"arm64"}
        expected = mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST
        assert arm.manifest.media_type == expected
        with pytest.raises(
            PlatformNotFoundError, match="has no linux/s390x; it has linux/amd64, linux/arm64/v8"
        ):
            open_layout(layout, tag=tag, platform=Platform("linux", "s390x"))


def test_untagged_manifests_in_index_json_are_chosen_by_platform(tmp_path: Path) -> None:
    writer_dir = tmp_path / "L"
    index = write_index(writer_dir, [ImageSpec([[Entry("a", b"1")]]), ImageSpec([[]], "linux/arm64")], None)
    # Make index.json the multi-platform index itself, as go-containerregistry's layout does.
    blob = json.loads((writer_dir / "blobs/sha256" / index.encoded).read_bytes())
    (writer_dir / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": blob["manifests"]}))
    assert open_layout(writer_dir, platform=ARM64).platform.architecture == "arm64"


def test_single_image_of_another_platform(tmp_path: Path) -> None:
    write_image(tmp_path / "L", ImageSpec([[]], "linux/amd64"))
    with pytest.raises(PlatformNotFoundError, match=r"oci:.*:latest is linux/amd64, not linux/arm64"):
        open_layout(tmp_path / "L", tag="latest", platform=ARM64)


@pytest.mark.parametrize("digest", ["sha256:../../x", "sha256:" + "a" * 63 + "/", "md5:" + "a" * 32])
def test_traversal_digests_refused(tmp_path: Path, digest: str) -> None:
    with pytest.raises(UsageError, match="invalid digest"):
        open_layout(tmp_path / "missing", digest=digest, platform=AMD64)  # before the path is used
    with pytest.raises(UsageError, match="invalid digest"):
        parse_layout_locator(f"dir@{digest}")


def test_traversal_digest_in_index_json(tmp_path: Path) -> None:
    write_image(tmp_path / "L", ImageSpec([[]]))
    index = json.loads((tmp_path / "L/index.json").read_text())
    index["manifests"][0]["digest"] = "sha256:../../../etc/passwd"
    (tmp_path / "L/index.json").write_text(json.dumps(index))
    with pytest.raises(ManifestError, match="invalid digest"):
        open_layout(tmp_path / "L", platform=AMD64)


def _layer_file(layout: Path) -> Path:
    image = open_layout(layout, platform=AMD64)
    return layout / "blobs/sha256" / image.layers()[0].descriptor.encoded


def test_changed_layer_fails_at_end_of_stream(tmp_path: Path) -> None:
    write_image(tmp_path / "L", ImageSpec([[Entry("big", os.urandom(3 * CHUNK))]]))
    path = _layer_file(tmp_path / "L")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    layer = open_layout(tmp_path / "L", platform=AMD64).layers()[0]
    stream = layer.open()
    assert stream.read(CHUNK)  # nothing is wrong until the end
    with pytest.raises(DigestMismatchError) as info:
        while stream.read(CHUNK):
            pass
    message = str(info.value)
    assert "\n" not in message and f"expected {layer.digest}" in message and str(tmp_path) in message


def test_changed_manifest_is_refused(tmp_path: Path) -> None:
    descriptor = write_image(tmp_path / "L", ImageSpec([[]]))
    path = tmp_path / "L/blobs/sha256" / descriptor.encoded
    path.write_bytes(
        path.read_bytes().replace(b'"schemaVersion":2', b'"schemaVersion":2 '[:-1]).upper()[:0]
        + b" " * descriptor.size
    )
    with pytest.raises(DigestMismatchError, match=descriptor.digest):
        open_layout(tmp_path / "L", platform=AMD64)


def test_blob_symlinks_are_not_followed(tmp_path: Path) -> None:
    write_image(tmp_path / "L", ImageSpec([[Entry("f", b"x")]]))
    path = _layer_file(tmp_path / "L")
    outside = tmp_path / "outside"
    shutil.copy(path, outside)
    path.unlink()
    path.symlink_to(outside)
    layer = open_layout(tmp_path / "L", platform=AMD64).layers()[0]
    with pytest.raises(LayoutError, match="is a symlink"):
        layer.open()
    # A symlinked blobs/sha256 directory leads out of the layout as well.
    blobs = tmp_path / "L/blobs/sha256"
    blobs.rename(tmp_path / "elsewhere")
    blobs.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LayoutError, match="blobs/sha256 is a symlink, not a directory"):
        open_layout(tmp_path / "L", platform=AMD64)


def test_blob_of_the_wrong_size(tmp_path: Path) -> None:
    write_image(tmp_path / "L", ImageSpec([[Entry("f", b"x")]]))
    path = _layer_file(tmp_path / "L")
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(LayoutError, match=r"expected \d+; the layout is corrupt"):
        open_layout(tmp_path / "L", platform=AMD64).layers()[0].open()


def _marker(path: Path, version: str) -> None:
    path.mkdir()
    (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": version}))


@pytest.mark.parametrize(
    ("setup", "error", "message"),
    [
        (lambda p: None, LayoutError, "no such directory"),
        (lambda p: p.mkdir(), LayoutError, "has no oci-layout file"),
        (
            lambda p: (p.mkdir(), (p / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}')),
            LayoutError,
            "2.0.0",
        ),
        (
            lambda p: (p.mkdir(), (p / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')),
            LayoutError,
            "no index.json",
        ),
        (lambda p: LayoutWriter(p), ImageNotFoundError, "holds no image"),
    ],
)
def test_not_a_layout(tmp_path: Path, setup, error: type[Exception], message: str) -> None:  # type: ignore[no-untyped-def]
    setup(tmp_path / "L")
    with pytest.raises(error, match=message):
        open_layout(tmp_path / "L", platform=AMD64)


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        ("dir", ("dir", None, None)),
        ("dir:v1", ("dir", "v1", None)),
        ("/a:b/c", ("/a:b/c", None, None)),
        ("./a:b:latest", ("./a:b", "latest", None)),
        ("./a:b/", ("./a:b/", None, None)),
        ("d@sha256:" + "f" * 64, ("d", None, "sha256:" + "f" * 64)),
    ],
)
def test_locator(rest: str, expected: tuple[str, str | None, str | None]) -> None:
    locator = parse_layout_locator(rest)
    assert (locator.path, locator.tag, locator.digest) == expected


@pytest.mark.parametrize("rest", ["", ":tag", "dir:", "@sha256:" + "f" * 64])
def test_bad_locator(rest: str) -> None:
    with pytest.raises(UsageError):
        parse_layout_locator(rest)


def test_writer_moves_tags_and_verifies_blobs(tmp_path: Path) -> None:
    first = write_image(tmp_path / "L", ImageSpec([[Entry("a", b"1")]]), tag="t")
    second = write_image(tmp_path / "L", ImageSpec([[Entry("a", b"2")]]), tag="t")
    writer = LayoutWriter(tmp_path / "L")
    assert [entry.digest for entry in writer.index().manifests] == [second.digest]
    writer.add(first, "old")
    assert open_layout(tmp_path / "L", tag="old", platform=AMD64).digest == first.digest
    with pytest.raises(DigestMismatchError):
        writer.write_blob_stream(_Bytes(b"abc"), expected="sha256:" + "0" * 64)
    assert not [p for p in (tmp_path / "L/blobs/sha256").iterdir() if p.name.startswith(".")]
    digest, size = writer.write_blob_stream(_Bytes(b"abc"))
    assert size == 3 and writer.write_blob_stream(_Bytes(b""), expected=digest) == (digest, 3)
    with pytest.raises(LayoutError, match="not an OCI image layout"):
        LayoutWriter(tmp_path / "L/blobs")


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, size: int = -1, /) -> bytes:
        data, self._data = self._data[:size], self._data[size:]
        return data
