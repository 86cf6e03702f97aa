"""The image model: descriptors, manifests, indexes, configs and platform selection."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cnbkit.errors import CnbkitError, DigestMismatchError
from cnbkit.oci import mediatypes as mt
from cnbkit.oci.config import ImageConfig
from cnbkit.oci.descriptor import Descriptor
from cnbkit.oci.errors import ManifestError, PlatformNotFoundError
from cnbkit.oci.manifest import MAX_MANIFEST_SIZE, Index, Manifest, parse_manifest_or_index, sha256_digest
from cnbkit.oci.platform import Platform
from cnbkit.oci.select import is_attestation, select_manifest

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def _desc(media_type: str = mt.OCI_LAYER_GZIP, digest: str = D1, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": 10, **extra}


def _manifest(media_type: str | None = mt.OCI_MANIFEST, **extra: Any) -> bytes:
    body: dict[str, Any] = {"schemaVersion": 2, "config": _desc(mt.OCI_CONFIG, D2), "layers": [_desc()]}
    if media_type:
        body["mediaType"] = media_type
    return json.dumps({**body, **extra}).encode()


def _index(entries: list[dict[str, Any]], media_type: str = mt.OCI_INDEX) -> Index:
    data = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}).encode()
    return Index.parse(data)


def _entry(
    platform: str, digest: str = D1, media_type: str = mt.OCI_MANIFEST, **extra: Any
) -> dict[str, Any]:
    parts = platform.split("/")
    plat = {"os": parts[0], "architecture": parts[1], **({"variant": parts[2]} if len(parts) > 2 else {})}
    return {**_desc(media_type, digest), "platform": plat, **extra}


def test_media_type_helpers() -> None:
    assert mt.is_index(mt.DOCKER_MANIFEST_LIST) and mt.is_index(mt.OCI_INDEX + "; charset=utf-8")
    assert mt.is_manifest(mt.DOCKER_MANIFEST) and not mt.is_manifest(mt.DOCKER_SCHEMA1)
    assert mt.layer_compression(mt.OCI_LAYER_ZSTD) is mt.Compression.ZSTD
    assert mt.layer_compression(mt.OCI_ND_LAYER) is mt.Compression.NONE
    assert mt.layer_compression(mt.DOCKER_LAYER_GZIP) is mt.Compression.GZIP
    assert mt.layer_compression(mt.OCI_CONFIG) is None and not mt.is_layer(mt.OCI_CONFIG)


def test_descriptor_round_trip() -> None:
    obj = _entry("linux/arm64/v8", annotations={"a": "b"}, urls=["https://x"])
    desc = Descriptor.from_json(obj, source="t")
    assert desc.platform == Platform("linux", "arm64", "v8")
    assert (desc.algorithm, desc.encoded) == ("sha256", "1" * 64)
    assert Descriptor.from_json(desc.to_json(), source="t") == desc


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({**_desc(), "digest": "sha256:../../etc/passwd"}, "invalid digest"),
        ({**_desc(), "digest": None}, "invalid digest"),
        ({**_desc(), "size": -1}, "non-negative"),
        ({**_desc(), "size": True}, "non-negative"),
        ({**_desc(), "size": "10"}, "non-negative"),
        ({**_desc(), "mediaType": 3}, "must be a string"),
        ({k: v for k, v in _desc().items() if k != "mediaType"}, "no mediaType"),
        ({**_desc(), "annotations": {"a": 1}}, "object of strings"),
        ({**_desc(), "platform": {"os": "linux"}}, "both os and architecture"),
        ([], "JSON object"),
    ],
)
def test_descriptor_validation(obj: Any, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        Descriptor.from_json(obj, source="t")


def test_digest_is_checked_before_anything_else() -> None:
    # A bad digest and a bad size: the digest is what the message names.
    with pytest.raises(ManifestError, match="invalid digest"):
        Descriptor.from_json({"digest": "../x", "size": "huge", "mediaType": 1}, source="t")


def test_a_long_invalid_digest_is_quoted_to_80_characters() -> None:
    digest = "sha256:" + "z" * 500  # a hostile manifest's digest: quoted, not copied whole
    with pytest.raises(ManifestError) as raised:
        Descriptor.from_json({**_desc(), "digest": digest}, source="t")
    assert f"invalid digest {digest[:80]!r}: expected sha256:<64 hex digits>" in str(raised.value)


def test_manifest_oci_and_docker() -> None:
    data = _manifest()
    manifest = parse_manifest_or_index(data)
    assert isinstance(manifest, Manifest) and manifest.is_image
    assert manifest.digest == sha256_digest(data) and manifest.raw == data
    assert manifest.layers[0].digest == D1 and manifest.config.digest == D2
    docker = Manifest.parse(_manifest(mt.DOCKER_MANIFEST))
    assert docker.media_type == mt.DOCKER_MANIFEST
    # No mediaType in the body: the transport's Content-Type, else the document's shape.
    assert Manifest.parse(_manifest(None), mt.DOCKER_MANIFEST).media_type == mt.DOCKER_MANIFEST
    assert Manifest.parse(_manifest(None), "application/json").media_type == mt.OCI_MANIFEST


def test_index_both_flavours() -> None:
    index = _index([_entry("linux/amd64")], mt.DOCKER_MANIFEST_LIST)
    assert index.media_type == mt.DOCKER_MANIFEST_LIST
    assert index.manifests[0].platform == Platform("linux", "amd64")
    with pytest.raises(ManifestError, match="image index, where an image manifest"):
        Manifest.parse(index.raw)


@pytest.mark.parametrize(
    ("data", "media_type", "message"),
    [
        (b'{"schemaVersion": 1, "fsLayers": []}', None, "schema 1 manifest, which cnbkit does not read"),
        (b"{}", mt.DOCKER_SCHEMA1_SIGNED, "schema 1"),
        (_manifest(), mt.OCI_INDEX, "says it is .* but was served as"),
        (_manifest(schemaVersion=3), None, "schemaVersion 3"),
        (b'{"a": 1, "a": 2}', None, "duplicate key"),
        (b"[1]", None, "not a JSON object"),
        (b"\xff", None, "not valid JSON"),
        (b'{"mediaType": "text/plain"}', None, "unsupported media type"),
        (b'{"foo": 1}', None, "neither an image manifest nor an image index"),
        (b" " * (MAX_MANIFEST_SIZE + 1), None, "more than the 4194304 bytes"),
        (_manifest(layers={}), None, "'layers' must be a list"),
    ],
)
def test_manifest_refusals(data: bytes, media_type: str | None, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest_or_index(data, media_type, source="image x")


def _config(**extra: Any) -> bytes:
    body = {
        "os": "linux",
        "architecture": "arm64",
        "variant": "v8",
        "config": {"Labels": {"io.buildpacks.lifecycle.version": "0.20.0"}, "Env": ["A=1", "B=x=y"]},
        "rootfs": {"type": "layers", "diff_ids": [D1]},
        "history": [{"created_by": "x"}, {"empty_layer": True}],
    }
    return json.dumps({**body, **extra}).encode()


def test_config() -> None:
    data = _config()
    config = ImageConfig.parse(data, expected=sha256_digest(data))
    assert config.platform == Platform("linux", "arm64", "v8")
    assert config.label("io.buildpacks.lifecycle.version") == "0.20.0"
    assert config.label("nope") is None and config.label("nope", "d") == "d"
    assert config.env_value("B") == "x=y" and config.env_value("C") is None
    assert config.diff_ids == (D1,) and config.history[1].empty_layer
    assert ImageConfig.parse(b'{"os": "linux", "architecture": "amd64", "config": null}').labels == {}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_config(rootfs={"diff_ids": ["sha256:../x"]}), "invalid digest"),
        (_config(config={"Labels": {"a": 1}}), "object of strings"),
        (_config(config={"Entrypoint": "sh"}), "list of strings"),
        (_config(history=[{"empty_layer": "yes"}]), "true or false"),
    ],
)
def test_config_refusals(data: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        ImageConfig.parse(data)


def test_config_digest_mismatch() -> None:
    with pytest.raises(DigestMismatchError, match=f"expected {D1}"):
        ImageConfig.parse(_config(), source="image x config", expected=D1)


def _no_fetch(descriptor: Descriptor) -> Manifest | Index:
    raise AssertionError(f"unexpected fetch of {descriptor.digest}")


def test_select_skips_attestations_and_defaults_variant() -> None:
    attestation = _entry(
        "unknown/unknown", D2, annotations={"vnd.docker.reference.type": "attestation-manifest"}
    )
    index = _index([attestation, _entry("linux/amd64", D2), _entry("linux/arm64/v8", D1)])
    assert is_attestation(Descriptor.from_json(attestation, source="t"))
    assert select_manifest(index, Platform("linux", "arm64"), _no_fetch).digest == D1
    assert select_manifest(index, Platform("linux", "amd64"), _no_fetch).digest == D2


def test_select_no_match_lists_platforms() -> None:
    index = _index([_entry("linux/amd64"), _entry("linux/arm64/v8"), _entry("unknown/unknown")])
    with pytest.raises(PlatformNotFoundError) as info:
        select_manifest(index, Platform("linux", "s390x"), _no_fetch, reference="image X")
    assert str(info.value).startswith("image X has no linux/s390x; it has linux/amd64, linux/arm64/v8")
    assert info.value.available == ["linux/amd64", "linux/arm64/v8"]
    assert isinstance(info.value, CnbkitError)


def test_select_follows_nested_indexes_with_a_bound() -> None:
    inner = _index([_entry("linux/arm64/v8", D1)])
    outer = _index([{**_desc(mt.OCI_INDEX, inner.digest)}])
    fetched: list[str] = []

    def fetch(descriptor: Descriptor) -> Manifest | Index:
        fetched.append(descriptor.digest)
        return inner

    assert select_manifest(outer, Platform("linux", "arm64", "v8"), fetch).digest == D1
    assert fetched == [inner.digest]
    looping = _index([{**_desc(mt.OCI_INDEX, D2)}])
    # A loop is read once round, not followed again: there is nothing new behind it.
    with pytest.raises(PlatformNotFoundError, match="no image with a platform"):
        select_manifest(looping, Platform("linux", "amd64"), lambda _d: looping)
    # A chain of ever new indexes ends at the depth bound.
    chain = iter(range(100))

    def deeper(_d: Descriptor) -> Index:
        return _index([{**_desc(mt.OCI_INDEX, "sha256:" + f"{next(chain):064x}")}])

    with pytest.raises(ManifestError, match="nest too deeply"):
        select_manifest(looping, Platform("linux", "amd64"), deeper)


def test_select_single_entry_without_platform() -> None:
    index = _index([_desc(mt.OCI_MANIFEST, D1)])
    assert select_manifest(index, Platform("linux", "amd64"), _no_fetch).digest == D1
