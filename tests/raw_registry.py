"""Documents of any shape put into a real registry as they are: blobs by a monolithic upload,
manifests and indexes by ``PUT``, byte for byte (no tool in between to tidy them up)."""

from __future__ import annotations

import hashlib
import json

from cnbkit.oci import mediatypes as mt

from tests.conftest import digest_of
from tests.images import Entry, gzip_layer
from tests.services.registry import Registry

__all__ = ["put_blob", "put_manifest", "tiny_image"]


def tiny_image(**extra: object) -> tuple[bytes, bytes, bytes]:
    """A layer, a linux/amd64 config and an OCI manifest of them (with ``extra`` fields)."""
    layer, diff_id = gzip_layer([Entry("f", b"x")])
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": digest_of(layer), "size": len(layer)}],
            **extra,
        }
    ).encode()
    return layer, config, manifest


def put_blob(registry: Registry, repo: str, data: bytes) -> str:
    """Upload ``data`` as a blob of ``repo``; return its digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    session = registry.session()
    started = session.post(f"{registry.url}/v2/{repo}/blobs/uploads/", timeout=30)
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    if location.startswith("/"):
        location = registry.url + location
    done = session.put(location, params={"digest": digest}, data=data, timeout=30)
    assert done.status_code == 201, done.text
    return digest


def put_manifest(registry: Registry, repo: str, reference: str, data: bytes, media_type: str) -> str:
    """``PUT`` ``data`` as the manifest ``repo:reference``; return its digest."""
    response = registry.session().put(
        f"{registry.url}/v2/{repo}/manifests/{reference}",
        data=data,
        headers={"Content-Type": media_type},
        timeout=60,
    )
    assert response.status_code == 201, response.text[:500]
    return "sha256:" + hashlib.sha256(data).hexdigest()
