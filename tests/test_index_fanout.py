"""An index fan-out: an index of 2,000 entries, each naming the same child index of 2,000
platforms. Choosing a platform visits each digest once and bounds the work, so the CLI answers
in one line at once, from an OCI layout and from a real registry alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cnbkit.errors import CnbkitError
from cnbkit.oci import mediatypes as mt
from cnbkit.oci.descriptor import Descriptor
from cnbkit.oci.manifest import Index
from cnbkit.oci.platform import Platform
from cnbkit.oci.select import MAX_INDEXES_FETCHED, select_manifest
from cnbkit.transport.layout import LayoutWriter

from tests.conftest import digest_of, one_line_error, run_cli
from tests.raw_registry import put_blob, put_manifest, tiny_image
from tests.services.registry import Registry

FAN = 2000
NO_HANG = 60  # before the fix: minutes, and memory rising


def _index(entries: list[dict[str, object]]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}).encode()


def _fan_out(manifest: bytes) -> tuple[bytes, bytes]:
    """The child index (FAN platforms of one manifest) and the outer index (FAN times the child)."""
    entry = {"mediaType": mt.OCI_MANIFEST, "digest": digest_of(manifest), "size": len(manifest)}
    child = _index([{**entry, "platform": {"os": "linux", "architecture": f"arch{i}"}} for i in range(FAN)])
    outer = _index([{"mediaType": mt.OCI_INDEX, "digest": digest_of(child), "size": len(child)}] * FAN)
    return child, outer


def _check(error: str) -> None:
    assert "has no linux/amd64; it has linux/arch0, linux/arch1" in error
    assert f"and {FAN - 10:,} more" in error and len(error) < 1000


def test_a_fan_out_in_a_layout_is_answered_at_once(tmp_path: Path) -> None:
    writer = LayoutWriter(tmp_path / "L")
    layer, config, manifest = tiny_image()
    for blob in (layer, config, manifest):
        writer.write_blob(blob)
    child, outer = _fan_out(manifest)
    writer.write_blob(child)
    writer.write_blob(outer)
    writer.add(Descriptor(mt.OCI_INDEX, digest_of(outer), len(outer)), "fan")
    args = ("resolve", f"oci:{tmp_path / 'L'}:fan", "--platform", "linux/amd64")
    _check(one_line_error(run_cli(*args, timeout=NO_HANG)))


def test_a_fan_out_in_a_registry_is_answered_at_once(registry: Registry, tmp_path: Path) -> None:
    repo = registry.unique_repo("fanout")
    layer, config, manifest = tiny_image()
    put_blob(registry, repo, layer)
    put_blob(registry, repo, config)
    put_manifest(registry, repo, digest_of(manifest), manifest, mt.OCI_MANIFEST)
    child, outer = _fan_out(manifest)
    put_manifest(registry, repo, digest_of(child), child, mt.OCI_INDEX)
    put_manifest(registry, repo, "fan", outer, mt.OCI_INDEX)
    args = ("resolve", f"docker://{registry.ref(repo, 'fan')}", "--platform", "linux/amd64")
    _check(one_line_error(run_cli(*args, timeout=NO_HANG)))
    # Each index was read once: the child from the registry a single time.
    assert registry.count("GET", rf"/v2/{repo}/manifests/{digest_of(child)}") == 1


def test_the_indexes_followed_are_bounded() -> None:
    """Distinct nested indexes, each fetched once, and no more than the bound."""
    fetched: list[str] = []

    def fetch(descriptor: Descriptor) -> Index:
        fetched.append(descriptor.digest)
        return Index(mt.OCI_INDEX, (), descriptor.digest, b"")

    children = [
        Descriptor(mt.OCI_INDEX, "sha256:" + f"{i:064x}", 100) for i in range(MAX_INDEXES_FETCHED * 4)
    ]
    outer = Index(mt.OCI_INDEX, tuple(children), "sha256:" + "f" * 64, b"")
    with pytest.raises(CnbkitError, match=rf"more than {MAX_INDEXES_FETCHED} nested indexes"):
        select_manifest(outer, Platform("linux", "amd64"), fetch, reference="image X")
    assert len(fetched) == len(set(fetched)) == MAX_INDEXES_FETCHED
