"""Documents of any shape put into a real registry as they are: blobs by a monolithic upload,
manifests and indexes by ``PUT``, byte for byte (no tool in between to tidy them up)."""

from __future__ import annotations

import hashlib

from tests.services.registry import Registry

__all__ = ["put_blob", "put_manifest"]


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
