"""The lifecycle out of an image, end to end: ``cnbkit resolve oci:...`` and the Python API.

Images are OCI layouts written by tests/images.py, and by ``skopeo copy`` (a layout no one here
wrote); layers are checked with ``tar``. The image plugin is the built-in ``oci-layout``; the
service under test (core/lifecycle/from_image.py) is the same for every image source.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import cnbkit
import pytest

from tests import lifecycles
from tests.conftest import cli_json, one_line_error, run_cli
from tests.images import Entry, ImageSpec, write_image, write_index
from tests.services.registry import Registry
from tests.services.skopeo import copy, registry_flags, skopeo

LABELS = {
    "io.buildpacks.lifecycle.version": "0.21.0",
    "io.buildpacks.lifecycle.apis": json.dumps(
        {
            "buildpack": {"deprecated": [], "supported": lifecycles.BUILDPACK_APIS},
            "platform": {"deprecated": [], "supported": lifecycles.PLATFORM_APIS},
        }
    ),
}
BASE = [
    Entry("etc", kind="dir"),
    Entry("etc/passwd", b"root:x:0:0:root:/root:/sbin/nologin\n", mode=0o644),
    Entry("usr/bin/sh", b"#!base\n"),
]


def lifecycle_layer(
    *, leading: str = "/", omit: tuple[str, ...] = (), version: str = "0.21.0"
) -> list[Entry]:
    """The lifecycle entries as the official image writes them (``/cnb/...``)."""
    found = lifecycles.lifecycle_entries(
        shape="image", leading=leading, omit=omit, desc=lifecycles.descriptor(version)
    )
    default = {"file": 0o755, "dir": 0o755, "symlink": 0o777}
    return [
        Entry(e.name, e.data, e.kind, e.mode if e.mode is not None else default[e.kind], e.linkname)
        for e in found
    ]


def official(path: Path, *, tag: str = "v1", **spec: object) -> Path:
    """The official shape: base layers, then one layer with the lifecycle, and its labels."""
    write_image(
        path, ImageSpec([BASE, [Entry("tmp", kind="dir")], lifecycle_layer()], labels=LABELS, **spec), tag
    )  # type: ignore[arg-type]
    return path


def manifest_of(layout: Path, tag: str = "v1") -> dict[str, object]:
    index = json.loads((layout / "index.json").read_text())
    (entry,) = [m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == tag]
    return json.loads((layout / "blobs" / "sha256" / entry["digest"].split(":")[1]).read_bytes())


def blob_path(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":")[1]


def tar_names(path: Path) -> list[str]:
    with tarfile.open(path) as archive:
        return archive.getnames()


def test_the_official_shape_passes_its_lifecycle_layer_through(tmp_path: Path, cache_dir: Path) -> None:
    layout = official(tmp_path / "img")
    layer = manifest_of(layout)["layers"][2]  # type: ignore[index]
    data = cli_json("resolve", f"oci:{layout}:v1", "--json", "--save", str(tmp_path / "l.tar"))
    assert data["resolver"] == "oci-layout"
    assert data["version"] == "0.21.0" and data["os"] == "linux" and data["arch"] == "amd64"
    # The one layer that holds the lifecycle alone is the artifact: its digest is kept.
    assert data["digest"] == layer["digest"] and data["size"] == layer["size"]
    index = json.loads((layout / "index.json").read_text())
    assert data["image"] == {"digest": index["manifests"][0]["digest"], "platform": "linux/amd64"}
    names = tar_names(tmp_path / "l.tar")
    assert names[:3] == ["cnb", "cnb/lifecycle", "cnb/lifecycle/analyzer"]
    assert "cnb/lifecycle.toml" in names and not any(n.startswith(("etc", "usr", "tmp")) for n in names)
    human = run_cli("resolve", f"oci:{layout}:v1")
    assert human.returncode == 0, human.stderr
    assert f"image           {data['image']['digest']} (linux/amd64)" in human.stdout
    assert "layer 2 holds the lifecycle alone" in human.stdout


def test_the_python_api_names_the_image_and_the_reusable_layer(tmp_path: Path, cache_dir: Path) -> None:
    layout = official(tmp_path / "img")
    lifecycle = cnbkit.resolve_lifecycle(f"oci:{layout}:v1")
    image = lifecycle.blob.image
    assert image is not None and image.layer is not None
    assert image.layer.index == 2 and image.layer.digest == lifecycle.blob.digest
    assert image.labels["io.buildpacks.lifecycle.version"] == "0.21.0"
    assert lifecycle.blob.resolver == "oci-layout"


def test_a_second_resolve_reads_no_layer(tmp_path: Path, cache_dir: Path) -> None:
    layout = official(tmp_path / "img")
    first = cli_json("resolve", f"oci:{layout}:v1", "--json")
    # Every layer blob gone: only the cache's record of these layer digests can answer.
    for layer in manifest_of(layout)["layers"]:  # type: ignore[attr-defined]
        blob_path(layout, layer["digest"]).unlink()
    second = cli_json("resolve", f"oci:{layout}@{first['image']['digest']}", "--json")
    assert second == {**first, "uri": f"oci:{layout}@{first['image']['digest']}"}


def test_a_lifecycle_layer_with_other_files_is_restreamed_without_them(
    tmp_path: Path, cache_dir: Path
) -> None:
    layer = [*lifecycle_layer(), Entry("/etc/passwd", b"evil::0:0::/:/bin/sh\n", mode=0o644)]
    write_image(tmp_path / "img", ImageSpec([BASE, layer]), "v1")
    data = cli_json("resolve", f"oci:{tmp_path / 'img'}:v1", "--json", "--save", str(tmp_path / "l.tar"))
    stored = manifest_of(tmp_path / "img")["layers"][1]  # type: ignore[index]
    assert data["digest"] != stored["digest"]
    names = tar_names(tmp_path / "l.tar")
    assert "cnb/lifecycle/launcher" in names and not any("passwd" in n or n == "etc" for n in names)


def test_a_lifecycle_split_over_layers_with_a_whiteout_and_an_opaque_dir(
    tmp_path: Path, cache_dir: Path
) -> None:
    old = [*lifecycle_layer(version="0.1.0"), Entry("/cnb/lifecycle/stale", b"old\n")]
    top = lifecycle_layer(leading="")
    split_low = [e for e in top if "launcher" not in e.name and "lifecycle.toml" not in e.name]
    split_high = [
        Entry("cnb/lifecycle/launcher", b"#!new launcher\n"),
        Entry("cnb/lifecycle.toml", lifecycles.descriptor("0.21.0"), mode=0o644),
        Entry("cnb/lifecycle/.wh.stale", mode=0o644),
    ]
    # Layer 1 deletes the old copy's extra file by a whiteout and replaces the rest; an
    # opaque cnb/lifecycle in a second image hides the old lifecycle entirely.
    write_image(tmp_path / "img", ImageSpec([BASE, old, split_low, split_high]), "split")
    opaque = [Entry("cnb/lifecycle/.wh..wh..opq", mode=0o644), *top]
    write_image(tmp_path / "img", ImageSpec([BASE, old, opaque]), "opaque")
    for tag in ("split", "opaque"):
        save = tmp_path / f"{tag}.tar"
        data = cli_json("resolve", f"oci:{tmp_path / 'img'}:{tag}", "--json", "--save", str(save))
        assert data["version"] == "0.21.0", tag
        names = tar_names(save)
        assert "cnb/lifecycle/stale" not in names and "cnb/lifecycle/launcher" in names, tag
        assert not any(".wh." in n for n in names), tag
    with tarfile.open(tmp_path / "split.tar") as archive:
        launcher = archive.extractfile("cnb/lifecycle/launcher")
        assert launcher is not None and launcher.read() == b"#!new launcher\n"


def test_a_phase_deleted_by_a_whiteout_is_a_clear_error(tmp_path: Path, cache_dir: Path) -> None:
    gone = [Entry("cnb/lifecycle/.wh.exporter", mode=0o644)]
    write_image(tmp_path / "img", ImageSpec([BASE, lifecycle_layer(), gone]), "v1")
    line = one_line_error(run_cli("resolve", f"oci:{tmp_path / 'img'}:v1"))
    assert "lacks the phase binaries exporter" in line and "img:v1" in line


def test_an_image_without_a_lifecycle_says_so(tmp_path: Path, cache_dir: Path) -> None:
    write_image(tmp_path / "img", ImageSpec([BASE]), "v1")
    line = one_line_error(run_cli("resolve", f"oci:{tmp_path / 'img'}:v1"))
    assert "no /cnb/lifecycle.toml in the image's filesystem" in line


def test_an_opaque_lifecycle_dir_stops_the_scan_above_the_base(tmp_path: Path, cache_dir: Path) -> None:
    top = [Entry("cnb/lifecycle/.wh..wh..opq", mode=0o644), *lifecycle_layer(leading="")]
    for tag, layer in (("opaque", top), ("plain", lifecycle_layer())):
        write_image(tmp_path / tag, ImageSpec([BASE, layer]), "v1")
        base = manifest_of(tmp_path / tag)["layers"][0]  # type: ignore[index]
        blob_path(tmp_path / tag, base["digest"]).write_bytes(b"\0" * base["size"])  # corrupt
    # Opaque: no lower layer can change the lifecycle, so the corrupt base is never read.
    assert cli_json("resolve", f"oci:{tmp_path / 'opaque'}:v1", "--json")["version"] == "0.21.0"
    # Without a marker a lower layer could add files under /cnb/lifecycle: it is read, and fails.
    line = one_line_error(run_cli("resolve", f"oci:{tmp_path / 'plain'}:v1"))
    assert "layer sha256:" in line


def test_a_multi_platform_index_picks_the_platform(tmp_path: Path, cache_dir: Path) -> None:
    specs = [ImageSpec([BASE, lifecycle_layer()], platform=p) for p in ("linux/amd64", "linux/arm64")]
    write_index(tmp_path / "multi", specs, attestation=True)
    data = cli_json("resolve", f"oci:{tmp_path / 'multi'}", "--platform", "linux/arm64", "--json")
    assert data["arch"] == "arm64" and data["image"]["platform"] == "linux/arm64"
    line = one_line_error(run_cli("resolve", f"oci:{tmp_path / 'multi'}", "--platform", "linux/ppc64le"))
    assert "it has linux/amd64, linux/arm64" in line


def test_labels_that_contradict_the_descriptor_are_an_error(tmp_path: Path, cache_dir: Path) -> None:
    labels = {**LABELS, "io.buildpacks.lifecycle.version": "0.20.0"}
    write_image(tmp_path / "img", ImageSpec([BASE, lifecycle_layer()], labels=labels), "v1")
    line = one_line_error(run_cli("resolve", f"oci:{tmp_path / 'img'}:v1"))
    assert "label io.buildpacks.lifecycle.version says '0.20.0' but /cnb/lifecycle.toml says '0.21.0'" in line
    apis = json.dumps({"buildpack": {"supported": ["0.2"]}, "platform": {"supported": ["0.3"]}})
    write_image(tmp_path / "img2", ImageSpec([BASE, lifecycle_layer()], labels={LABELS_APIS: apis}), "v1")
    line = one_line_error(run_cli("resolve", f"oci:{tmp_path / 'img2'}:v1"))
    assert "lists buildpack APIs 0.2 but /cnb/lifecycle.toml lists 0.7" in line


LABELS_APIS = "io.buildpacks.lifecycle.apis"


def test_two_tags_and_none_given_lists_them(tmp_path: Path, cache_dir: Path) -> None:
    official(tmp_path / "img", tag="a")
    official(tmp_path / "img", tag="b", platform="linux/arm64")
    line = one_line_error(run_cli("resolve", f"oci:{tmp_path / 'img'}"))
    assert "holds 2 images" in line and "(tags: a, b)" in line


def test_a_traversal_digest_is_refused(tmp_path: Path, cache_dir: Path) -> None:
    official(tmp_path / "img")
    result = run_cli("resolve", f"oci:{tmp_path / 'img'}@sha256:../../../etc/passwd")
    assert result.returncode == 2 and "error: " in result.stderr and "digest" in result.stderr
    assert not (cache_dir / "lifecycles").exists()


def test_no_plugin_claims_lists_the_image_claims_too(cache_dir: Path) -> None:
    line = one_line_error(run_cli("resolve", "ftp://example.com/l.tgz"))
    assert "oci:DIR[:TAG] (oci-layout)" in line and "PATH (file)" in line


def _uncompressed_image(layout: Path, tar: bytes) -> str:
    """An image whose one layer is an uncompressed tar (so bytes after its end marker are raw)."""
    from cnbkit.oci import mediatypes as mt
    from cnbkit.oci.descriptor import Descriptor
    from cnbkit.transport.layout import LayoutWriter

    writer = LayoutWriter(layout)
    digest = writer.write_blob(tar)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [digest]},
        "config": {},
    }
    config_desc = writer.write_json(config, mt.OCI_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": config_desc.to_json(),
        "layers": [Descriptor(mt.OCI_LAYER, digest, len(tar)).to_json()],
    }
    writer.add(writer.write_json(manifest, mt.OCI_MANIFEST), "v1")
    return digest


def _tar(entries: list[Entry], trailer: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE}[
                entry.kind
            ]
            info.mode, info.linkname = entry.mode, entry.target
            info.size = len(entry.data) if entry.kind == "file" else 0
            archive.addfile(info, io.BytesIO(entry.data) if entry.kind == "file" else None)
    return buffer.getvalue() + trailer


@pytest.mark.parametrize("where", ["inside", "after the end marker"])
def test_tampered_layer_bytes_are_an_error_and_nothing_is_cached(
    tmp_path: Path, cache_dir: Path, where: str
) -> None:
    tar = _tar(lifecycle_layer(), b"\0" * 2048)
    digest = _uncompressed_image(tmp_path / "img", tar)
    assert hashlib.sha256(tar).hexdigest() == digest.split(":")[1]
    data = bytearray(tar)
    if where == "inside":
        at = data.index(b"[lifecycle]")
        data[at : at + 11] = b"[lifecyclX]"
    else:
        data[-1] = 0x01  # after the tar's end marker: no tar reader looks there, the digest does
    blob_path(tmp_path / "img", digest).write_bytes(bytes(data))
    line = one_line_error(run_cli("resolve", f"oci:{tmp_path / 'img'}:v1", "--save", str(tmp_path / "l.tar")))
    assert f"content has digest sha256:{hashlib.sha256(data).hexdigest()}, expected {digest}" in line
    assert not (tmp_path / "l.tar").exists()
    assert not (cache_dir / "lifecycles").exists() or not any((cache_dir / "lifecycles").iterdir())
    assert list((cache_dir / "records").glob("lifecycle-from-image.*")) == []


def test_the_untampered_uncompressed_layer_resolves(tmp_path: Path, cache_dir: Path) -> None:
    # The control for the tampering test: the same image, bytes intact, passes through.
    tar = _tar(lifecycle_layer(), b"\0" * 2048)
    digest = _uncompressed_image(tmp_path / "img", tar)
    assert cli_json("resolve", f"oci:{tmp_path / 'img'}:v1", "--json")["digest"] == digest


def test_a_layout_written_by_skopeo_resolves_by_tag_and_by_digest(tmp_path: Path, cache_dir: Path) -> None:
    official(tmp_path / "src")
    # skopeo re-writes the image (its own index.json, its own manifest encoding): a layout
    # cnbkit did not write, as users make them.
    skopeo("copy", f"oci:{tmp_path / 'src'}:v1", f"oci:{tmp_path / 'copied'}:lc", workdir=tmp_path)
    skopeo("copy", f"oci:{tmp_path / 'src'}:v1", f"oci:{tmp_path / 'copied'}:other", workdir=tmp_path)
    by_tag = cli_json("resolve", f"oci:{tmp_path / 'copied'}:lc", "--json")
    manifest = by_tag["image"]["digest"]
    by_digest = cli_json("resolve", f"oci:{tmp_path / 'copied'}@{manifest}", "--json")
    assert by_tag["version"] == by_digest["version"] == "0.21.0"
    assert by_digest["digest"] == by_tag["digest"]
    line = one_line_error(run_cli("resolve", f"oci:{tmp_path / 'copied'}"))
    assert "(tags: lc, other)" in line


def test_a_gzip_layer_is_verified_to_its_raw_end(tmp_path: Path, cache_dir: Path) -> None:
    official(tmp_path / "img")
    layer = manifest_of(tmp_path / "img")["layers"][2]  # type: ignore[index]
    path = blob_path(tmp_path / "img", layer["digest"])
    raw = path.read_bytes()
    assert gzip.decompress(raw)  # a valid gzip stream; change its last byte (the ISIZE field)
    path.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    line = one_line_error(run_cli("resolve", f"oci:{tmp_path / 'img'}:v1"))
    assert layer["digest"].split(":")[1][:12] in line


@pytest.mark.parametrize("schema", ["oci", "v2s2"])
def test_a_layout_pulled_from_a_registry_by_skopeo_resolves(
    tmp_path: Path, cache_dir: Path, registry: Registry, schema: str
) -> None:
    official(tmp_path / "src")
    repo = registry.unique_repo("lifecycle")
    # Through a real registry and back (in Docker schema 2 too): skopeo recompresses nothing,
    # so the lifecycle layer keeps its digest, and a layout made from a pull resolves.
    copy(f"oci:{tmp_path / 'src'}:v1", registry, repo, "v1", workdir=tmp_path, extra=("--format", schema))
    pulled = tmp_path / "pulled"
    flags = registry_flags(registry, "src")
    skopeo("copy", *flags, f"docker://{registry.ref(repo, 'v1')}", f"oci:{pulled}:lc", workdir=tmp_path)
    original = cli_json("resolve", f"oci:{tmp_path / 'src'}:v1", "--json")
    data = cli_json("resolve", f"oci:{pulled}:lc", "--json")
    assert data["version"] == "0.21.0" and data["binaries"] == original["binaries"]
    assert data["digest"] == original["digest"]  # the lifecycle layer passed through both ways


@pytest.mark.parametrize(
    "shape",
    ["official", "passwd-after", "passwd-before", "setuid-late", "split", "opaque-split"],
)
def test_the_blob_digest_is_the_layer_or_the_sha256_of_the_stream(
    tmp_path: Path, cache_dir: Path, shape: str
) -> None:
    """Whatever is found out late (a file after the lifecycle, a setuid bit, a second layer
    supplying entries), a Blob that is not one layer has the digest of its stream's bytes."""
    from cnbkit.cache import Cache
    from cnbkit.lifecycle.from_image import image_blob

    top = lifecycle_layer()
    split_high = [e for e in top if "launcher" in e.name or "lifecycle.toml" in e.name]
    split_low = [e for e in top if e not in split_high]
    layers = {
        "official": [BASE, top],
        "passwd-after": [BASE, [*top, Entry("/etc/passwd", b"evil::0:0::/:/bin/sh\n", mode=0o644)]],
        "passwd-before": [BASE, [Entry("/aaa", b"first\n", mode=0o644), *top]],
        "setuid-late": [BASE, [*top, Entry("/cnb/lifecycle/zz", b"#!x\n", mode=0o4755)]],
        "split": [BASE, split_low, split_high],
        "opaque-split": [BASE, [Entry("cnb/lifecycle/.wh..wh..opq", mode=0o644), *split_low], split_high],
    }[shape]
    write_image(tmp_path / "img", ImageSpec(layers), "v1")  # type: ignore[arg-type]
    image = cnbkit.open_layout(tmp_path / "img", tag="v1", platform=cnbkit.parse_platform("linux/amd64"))
    blob = image_blob(image, Cache(cache_dir))
    stream = blob.open()
    try:
        data = b"".join(iter(lambda: stream.read(1 << 16), b""))
    finally:
        stream.close()  # type: ignore[attr-defined]
    passthrough = blob.image is not None and blob.image.layer is not None
    assert passthrough == (shape == "official")
    if passthrough:
        assert blob.image is not None and blob.image.layer is not None
        assert blob.digest == blob.image.layer.digest
    else:
        assert blob.digest == f"sha256:{hashlib.sha256(data).hexdigest()}" and blob.size == len(data)
    again = image_blob(image, Cache(cache_dir))  # the record: same digest, no layer read
    assert again.digest == blob.digest
