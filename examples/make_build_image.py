"""Write the example's build image: a tiny OCI image layout in ``examples/build-image``.

The bundled example must build with no network and no Docker, so its build image travels in
the repository as an OCI layout a few KB small. This script makes it, deterministically (the
same bytes every run), with the standard library only: one layer holding ``/etc/passwd`` and
``/etc/group`` with the ``cnb`` user, a config with ``CNB_USER_ID=1000`` and
``CNB_GROUP_ID=1000`` (a builder needs both), for linux/amd64 and linux/arm64 in one index.

Run it from anywhere: ``python3 examples/make_build_image.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "build-image"
MTIME = 315532801  # 1980-01-01T00:00:01Z
FILES = {
    "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000:cnb:/home/cnb:/bin/sh\n",
    "etc/group": b"root:x:0:\ncnb:x:1000:\n",
}
PLATFORMS = (("amd64", ""), ("arm64", "v8"))


def _layer() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("etc", "home", "home/cnb"):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
            if name == "home/cnb":
                info.uid = info.gid = 1000
            tar.addfile(info)
        for name, data in FILES.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, MTIME
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _blob(data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (OUT / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}"


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def main() -> None:
    """Write the layout, replacing any earlier one."""
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "blobs" / "sha256").mkdir(parents=True)
    tar = _layer()
    compressed = gzip.compress(tar, compresslevel=9, mtime=0)
    layer = {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": _blob(compressed),
        "size": len(compressed),
    }
    manifests = []
    for arch, variant in PLATFORMS:
        platform = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
        config = _json(
            {
                **platform,
                "config": {
                    "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "CNB_USER_ID=1000", "CNB_GROUP_ID=1000"],
                    "User": "1000:1000",
                    "Labels": {
                        "io.buildpacks.stack.id": "io.buildpacks.examples.tiny",
                        "org.opencontainers.image.description": "cnbkit's example build image",
                    },
                },
                "created": "1980-01-01T00:00:01Z",
                "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]},
            }
        )
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": _blob(config),
                    "size": len(config),
                },
                "layers": [layer],
            }
        )
        manifests.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": _blob(manifest),
                "size": len(manifest),
                "platform": platform,
            }
        )
    index = _json(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
    )
    entry = {
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": _blob(index),
        "size": len(index),
        "annotations": {"org.opencontainers.image.ref.name": "latest"},
    }
    (OUT / "index.json").write_bytes(_json({"schemaVersion": 2, "manifests": [entry]}))
    (OUT / "oci-layout").write_bytes(_json({"imageLayoutVersion": "1.0.0"}))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
