"""Two builder images side by side: what ``pack builder create`` made and what cnbkit made from
the same builder.toml, read from the registry (``skopeo copy`` to OCI layouts) and compared.

``differences(a, b)`` returns one line a difference, each starting with a stable key, so a test
can check every one against the patterns ``docs/pack-differences.md`` lists: ``ROLE layer:
PATH: FIELD: pack X cnbkit Y`` (a layer's role: ``directories``, ``lifecycle``, ``buildpack``,
or its first path), ``ROLE layer: PATH: only in pack|cnbkit``, ``ROLE layer: tar entry names``
(the same files, spelled differently: ``/cnb/x`` or ``cnb/x``), ``ROLE layer: tar entry order``,
``layers: ...``, ``config FIELD: ...``, ``label NAME[.KEY...]: pack X cnbkit Y`` (JSON parsed).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.services.registry import Registry
from tests.services.skopeo import registry_flags, skopeo

__all__ = ["BuilderImage", "differences", "fetch"]

_KINDS = {
    tarfile.REGTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
}


@dataclass(frozen=True)
class BuilderImage:
    """One image: its layers' file trees (bottom first), diff IDs, config and parsed labels."""

    layers: list[dict[str, dict[str, Any]]]
    names: list[list[str]]  # each layer's entry names as written, in order
    diff_ids: list[str]
    config: dict[str, Any]
    labels: dict[str, Any]


def _normal(name: str) -> str:
    return "/" + name.lstrip("./").rstrip("/")


def _tree(data: bytes) -> tuple[dict[str, dict[str, Any]], list[str]]:
    tree, names = {}, []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            names.append(member.name)
            name = _normal(member.name)
            body = tar.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            tree[name] = {
                "type": _KINDS.get(member.type, repr(member.type)),
                "mode": oct(member.mode),
                "owner": f"{member.uid}:{member.gid}",
                "mtime": int(member.mtime),
                "content": hashlib.sha256(body).hexdigest()[:16] if member.isfile() else member.linkname,
            }
    return tree, names


def _label(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def fetch(registry: Registry, ref: str, work: Path) -> BuilderImage:
    """Copy ``ref`` into an OCI layout and read it."""
    layout = work / ("layout-" + ref.rsplit("/", 1)[-1].replace(":", "-"))
    skopeo("copy", *registry_flags(registry, "src"), f"docker://{ref}", f"oci:{layout}:t", workdir=work)
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":")[1]).read_bytes())
    config = json.loads((blobs / manifest["config"]["digest"].split(":")[1]).read_bytes())
    layers, names = [], []
    for layer in manifest["layers"]:
        data = (blobs / layer["digest"].split(":")[1]).read_bytes()
        tree, written = _tree(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
        layers.append(tree)
        names.append(written)
    settings = config.get("config", {})
    labels = {k: _label(v) for k, v in (settings.get("Labels") or {}).items()}
    return BuilderImage(layers, names, config["rootfs"]["diff_ids"], settings, labels)


def _role(tree: dict[str, dict[str, Any]]) -> str:
    paths = sorted(tree)
    if any(p.startswith("/cnb/lifecycle/") for p in paths):
        return "lifecycle layer"
    if "/workspace" in tree:
        return "directories layer"
    if any(p.startswith("/cnb/buildpacks/") for p in paths):
        return "buildpack layer"
    return f"{paths[-1]} layer" if paths else "empty layer"


def _layer_diff(role: str, a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for path in sorted(set(a) | set(b)):
        if path not in a or path not in b:
            out.append(f"{role}: {path}: only in {'cnbkit' if path in b else 'pack'}")
            continue
        out += [
            f"{role}: {path}: {field}: pack {value} cnbkit {b[path][field]}"
            for field, value in a[path].items()
            if b[path][field] != value
        ]
    return out


def _json_diff(key: str, a: Any, b: Any) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for name in sorted(set(a) | set(b)):
            out += _json_diff(f"{key}.{name}", a.get(name, "<absent>"), b.get(name, "<absent>"))
        return out
    return [] if a == b else [f"{key}: pack {json.dumps(a)} cnbkit {json.dumps(b)}"]


def differences(pack: BuilderImage, cnbkit: BuilderImage) -> list[str]:
    """Every difference, one line each, pack's value first."""
    out = []
    if len(pack.layers) != len(cnbkit.layers):
        out.append(f"layers: pack {len(pack.layers)} cnbkit {len(cnbkit.layers)}")
    for i, (a, b) in enumerate(zip(pack.layers, cnbkit.layers, strict=False)):
        if pack.diff_ids[i] == cnbkit.diff_ids[i]:
            continue
        role = _role(a)
        out += _layer_diff(role, a, b)
        names_a, names_b = pack.names[i], cnbkit.names[i]
        common = {_normal(n) for n in names_a} & {_normal(n) for n in names_b}
        order_a = [_normal(n) for n in names_a if _normal(n) in common]
        order_b = [_normal(n) for n in names_b if _normal(n) in common]
        if order_a != order_b:
            first = next(j for j, (x, y) in enumerate(zip(order_a, order_b, strict=True)) if x != y)
            pair = f"pack {order_a[first : first + 2]} cnbkit {order_b[first : first + 2]}"
            out.append(f"{role}: tar entry order: {pair}")
        if sorted(names_a) != sorted(names_b):
            out.append(f"{role}: tar entry names: pack {names_a[:2]} cnbkit {names_b[:2]}")
    for field in ("Env", "User", "WorkingDir", "Entrypoint", "Cmd"):
        if pack.config.get(field) != cnbkit.config.get(field):
            out.append(f"config {field}: pack {pack.config.get(field)!r} cnbkit {cnbkit.config.get(field)!r}")
    for name in sorted(set(pack.labels) | set(cnbkit.labels)):
        absent = "<absent>"
        out += _json_diff(f"label {name}", pack.labels.get(name, absent), cnbkit.labels.get(name, absent))
    return out
