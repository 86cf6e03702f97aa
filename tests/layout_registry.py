"""An OCI layout served as a registry by the fault-injecting :class:`HTTPSServer`.

The real registry (tests/services) cannot trickle, stall or tamper with a blob; this one can,
behind a real TLS socket, with every fault :class:`HTTPSServer` offers, per blob path.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.https_server import HTTPSServer

__all__ = ["blob_path", "serve_layout"]


def blob_path(repo: str, digest: str) -> str:
    """The registry path of blob ``digest`` in ``repo`` (to inject a fault there)."""
    return f"/v2/{repo}/blobs/{digest}"


def serve_layout(server: HTTPSServer, layout: Path, repo: str = "hostile/image") -> str:
    """Serve every blob of ``layout`` as ``repo`` on ``server``; its only manifest is pinned.

    Returns:
        ``HOST:PORT/REPO@sha256:...``, the reference of the layout's first manifest (a digest
        reference: no ``HEAD`` of a tag, whose ``Docker-Content-Digest`` this server lacks).
    """
    server.add("/v2/", b"{}")
    for blob in (layout / "blobs" / "sha256").iterdir():
        data = blob.read_bytes()
        digest = f"sha256:{blob.name}"
        server.add(blob_path(repo, digest), data)
        server.add(f"/v2/{repo}/manifests/{digest}", data)
    index = json.loads((layout / "index.json").read_text())
    host = server.base_url.removeprefix("https://")
    return f"{host}/{repo}@{index['manifests'][0]['digest']}"
