"""cnbkit's docker resolver versus ``skopeo copy docker://... oci:DIR`` from a loopback registry.

Run from the repository root: ``python benchmarks/bench_docker.py [--sizes 30,300] [--rounds 5]``.
Writes ``benchmarks/results/docker.{md,json}`` (``docker-unsorted.{md,json}`` with ``--unsorted``).

The image has the official lifecycle image's shape: two small distroless-like base layers, then
one layer with ``/cnb/lifecycle.toml`` and ``/cnb/lifecycle/*`` whose binaries hold SIZE MB that
compress like compiled code (gzip level 1), in the order of lifecycle's packager (``--unsorted``:
the phase links after the binaries). It is pushed once to a private ``docker-registry``
on 127.0.0.1 by skopeo.

Contenders, paired and alternating (benchmarks/harness.py), every one a whole process, cold cache:

* ``skopeo copy``: the image's blobs into an OCI layout (fetch, verify, write);
* ``cnbkit fetch``: ``context.resolve_image("docker://...")`` and every layer read through its
  verified stream into the cache (fetch, verify, write): the same work as skopeo's;
* ``cnbkit resolve`` (when ``cnbkit.lifecycle.from_image`` is installed): ``cnbkit resolve
  docker://... --save FILE``, the lifecycle out of the image, validated and written.

After each cold cnbkit run, a warm run (by tag: one ``HEAD``; ``cnbkit resolve`` without
``--save``) is timed outside the pair.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import report
from benchmarks.harness import (
    MB,
    WORK_DIR,
    Contender,
    Sample,
    Spread,
    child_env,
    cnbkit_command,
    fresh_dir,
    machine_facts,
    paired_ratios,
    remove,
    run_paired,
    run_timed,
    summarize,
)
from tests.lifecycles import LINKED, _RandomReader, descriptor

FETCH = """\
import sys
from cnbkit.api import new_context
from cnbkit.options import Options
image = new_context(Options.build(platform="linux/amd64", pull_policy="always")).resolve_image(sys.argv[1])
total = 0
for layer in image.layers():
    stream = layer.open()
    while chunk := stream.read(131008):
        total += len(chunk)
    stream.close()
assert total == sum(layer.size for layer in image.layers())
"""


class _Hashing(io.RawIOBase):
    """A file writer that hashes what passes (the compressed blob)."""

    def __init__(self, raw: Any) -> None:
        self.raw, self.sha, self.size = raw, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sha.update(data)
        self.size += len(data)
        self.raw.write(data)
        return len(data)


def _layer(blobs: Path, add: Any) -> dict[str, Any]:
    """Write one gzip (level 1) layer, streamed; ``add(tar)`` adds its entries."""
    tmp = blobs / "layer.tmp"
    with open(tmp, "wb") as raw:
        hashing = _Hashing(raw)
        with gzip.GzipFile(fileobj=hashing, mode="wb", compresslevel=1, mtime=0) as gz:  # type: ignore[arg-type]
            diff = _Hashing(gz)
            with tarfile.open(fileobj=diff, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[arg-type]
                add(tar)
    digest = hashing.sha.hexdigest()
    tmp.rename(blobs / digest)
    return {"digest": f"sha256:{digest}", "size": hashing.size, "diff_id": f"sha256:{diff.sha.hexdigest()}"}


def _file(
    tar: tarfile.TarFile, name: str, data: bytes | None = None, size: int = 0, mode: int = 0o644
) -> None:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime = mode, 1_700_000_000
    if data is not None:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        info.size = size
        tar.addfile(info, _RandomReader(size))


def _dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
    tar.addfile(info)


def _lifecycle(tar: tarfile.TarFile, size: int, sorted_entries: bool = True) -> None:
    """The lifecycle layer. Sorted, its entries come in the order of lifecycle's own packager
    (as ``tests.lifecycles.big_lifecycle`` and the file benchmark make them); unsorted, the
    phase links come after the binaries, as a hand-made tar may list them, which costs cnbkit
    a second write of the layer in sorted order."""
    _dir(tar, "/cnb")
    _file(tar, "/cnb/lifecycle.toml", descriptor())
    _dir(tar, "/cnb/lifecycle")
    binaries = {"launcher": size - size * 2 // 3, "lifecycle": size * 2 // 3}
    names = sorted([*binaries, *LINKED]) if sorted_entries else [*binaries, *LINKED]
    for name in names:
        if name in binaries:
            _file(tar, f"/cnb/lifecycle/{name}", size=binaries[name], mode=0o755)
            continue
        info = tarfile.TarInfo(f"/cnb/lifecycle/{name}")
        info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, "lifecycle", 0o777, 1_700_000_000
        tar.addfile(info)


def _base(tar: tarfile.TarFile, files: dict[str, int]) -> None:
    for name, size in files.items():
        _file(tar, name, size=size)


def make_layout(path: Path, size_mb: int, sorted_entries: bool = True) -> Path:
    """The official-shaped lifecycle image as an OCI layout (reused when already made)."""
    if (path / "index.json").is_file():
        return path
    fresh_dir(path)
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layers = [
        _layer(blobs, lambda t: _base(t, {"etc/passwd": 2000, "etc/ssl/certs/ca-certificates.crt": 220_000})),
        _layer(
            blobs, lambda t: _base(t, {"usr/share/zoneinfo/tzdata": 1_500_000, "usr/lib/os-release": 300})
        ),
        _layer(blobs, lambda t: _lifecycle(t, size_mb * MB, sorted_entries)),
    ]
    return write_image(path, layers, {"Labels": {"io.buildpacks.lifecycle.version": "0.21.0"}})


def write_image(
    path: Path, layers: list[dict[str, Any]], settings: dict[str, Any], *, architecture: str = "amd64"
) -> Path:
    """Finish the layout at ``path``: a linux/``architecture`` config with ``settings``, the
    manifest of ``layers`` (made by :func:`_layer` into its blobs) and an index tagging it ``v1``."""
    blobs = path / "blobs" / "sha256"
    config = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "config": settings,
            "rootfs": {"type": "layers", "diff_ids": [layer["diff_id"] for layer in layers]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": x["digest"],
                    "size": x["size"],
                }
                for x in layers
            ],
        }
    ).encode()
    for blob in (config, manifest):
        (blobs / hashlib.sha256(blob).hexdigest()).write_bytes(blob)
    entry = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
        "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": "v1"},
    }
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return path


def _log(message: str) -> None:
    print(message, flush=True)


def _case(registry: Any, size_mb: int, rounds: int, work: Path, sorted_entries: bool) -> dict[str, Any]:
    from tests.services.skopeo import copy

    name = f"docker-image-{size_mb}mb-{'sorted' if sorted_entries else 'unsorted'}"
    layout = make_layout(WORK_DIR / name, size_mb, sorted_entries)
    repo = f"lifecycle-{size_mb}"
    ref = copy(f"oci:{layout}:v1", registry, repo, "v1", workdir=work)
    blob_bytes = sum(p.stat().st_size for p in (layout / "blobs" / "sha256").iterdir())
    uri = f"docker://{ref}"
    cache, out, script = work / "cache", work / "skopeo-out", work / "fetch.py"
    script.write_text(FETCH)
    env = child_env(CNBKIT_CACHE_DIR=str(cache), DOCKER_HOST=f"unix://{work}/no-daemon.sock")
    skopeo_argv = ["skopeo", "--insecure-policy", "copy", "--src-tls-verify=false", "--src-no-creds"]
    skopeo_argv += [uri, f"oci:{out}:v1"]
    skopeo_env = child_env(REGISTRY_AUTH_FILE=str(work / "auth.json"))
    (work / "auth.json").write_text('{"auths": {}}')
    fetch_argv = [sys.executable, str(script), uri]
    warm: dict[str, list[Sample]] = {"cnbkit fetch warm (tag)": []}
    contenders = [
        Contender(
            "skopeo copy",
            " ".join(skopeo_argv),
            lambda: remove(out),
            lambda: run_timed(skopeo_argv, env=skopeo_env),
        ),
        Contender(
            "cnbkit fetch",
            f"python fetch.py {uri}  (context.resolve_image + every layer read, verified, cached)",
            lambda: fresh_dir(cache),
            lambda: run_timed(fetch_argv, env=env),
            follow_up=lambda rec: (
                warm["cnbkit fetch warm (tag)"].append(run_timed(fetch_argv, env=env)) if rec else None
            ),
        ),
    ]
    if importlib.util.find_spec("cnbkit.lifecycle.from_image") is not None:
        saved = work / "lifecycle.tar"
        resolve_argv = [
            *cnbkit_command(),
            "resolve",
            uri,
            "--platform",
            "linux/amd64",
            "--save",
            str(saved),
            "-q",
        ]
        # Warm without --save: what a warm resolve costs (one HEAD). A warm --save also copies
        # the layer the cold --save linked into the cache (300 MB: a few tenths of a second).
        warm_argv = [*cnbkit_command(), "resolve", uri, "--platform", "linux/amd64", "-q"]
        warm["cnbkit resolve warm (tag)"] = []
        contenders.append(
            Contender(
                "cnbkit resolve",
                " ".join(resolve_argv),
                lambda: (fresh_dir(cache), remove(saved)),
                lambda: run_timed(resolve_argv, env=env),
                follow_up=lambda rec: (
                    warm["cnbkit resolve warm (tag)"].append(run_timed(warm_argv, env=env)) if rec else None
                ),
            )
        )
    _log(f"  {size_mb} MB: {blob_bytes / MB:.0f} MB of blobs, {rounds} rounds")
    samples = run_paired(contenders, rounds, log=_log)
    record: dict[str, Any] = {"size_mb": size_mb, "blob_mb": round(blob_bytes / MB, 1), "uri": uri}
    for name, series in {**samples, **warm}.items():
        record[name] = summarize(series, next((c.command for c in contenders if c.name == name), name))
    for c in contenders[1:]:
        record[f"{c.name} / skopeo"] = paired_ratios(samples[c.name], samples["skopeo copy"])
    return record


def _table(cases: list[dict[str, Any]]) -> str:
    rows = ["| image | contender | wall s | / skopeo (paired) | peak RSS MB |", "|---|---|---|---|---|"]
    for case in cases:
        for name, value in case.items():
            if not isinstance(value, dict) or "wall" not in value:
                continue
            wall = Spread(value["wall"]["median"], value["wall"]["min"], value["wall"]["max"])
            ratio = case.get(f"{name} / skopeo")
            ratio_text = Spread(ratio["median"], ratio["min"], ratio["max"]).fmt() if ratio else ""
            rows.append(
                f"| {case['size_mb']} MB ({case['blob_mb']} MB blobs) | {name} | {wall.fmt()} | {ratio_text} "
                f"| {value['peak_rss_mb']} |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table and write benchmarks/results/docker.{md,json}."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/bench_docker.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sizes", default="30,300", help="lifecycle sizes in MB (default 30,300)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per size (default 5)")
    parser.add_argument(
        "--unsorted",
        action="store_true",
        help="phase links after the binaries in the lifecycle layer (default: the packager's order)",
    )
    args = parser.parse_args(argv)
    from tests.services.registry import Registry

    work = fresh_dir(WORK_DIR / "docker-run")
    cases = []
    with Registry(work / "registry", name="bench-registry") as registry:
        for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
            cases.append(
                _case(registry, size, args.rounds, fresh_dir(work / f"case-{size}"), not args.unsorted)
            )
    table = _table(cases)
    command = f"python benchmarks/bench_docker.py --sizes {args.sizes} --rounds {args.rounds}"
    command += " --unsorted" if args.unsorted else ""
    facts = machine_facts(
        {"skopeo": ["skopeo", "--version"], "docker-registry": ["docker-registry", "--version"]}
    )
    markdown = f"# cnbkit benchmark: docker resolver vs skopeo copy\n\nRun with `{command}`.\n\n{table}\n\n"
    markdown += report.machine_table(facts) + "\n"
    report.write_results(
        "docker-unsorted" if args.unsorted else "docker",
        markdown,
        {"command": command, "cases": cases, "machine": facts},
    )
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
