"""Put images into the test registries with the real tools: ``umoci`` builds, ``skopeo`` copies.

``tiny_layout()`` makes a small OCI image layout (one layer per file) in a few milliseconds; ``copy()`` and
``inspect()`` run skopeo with the right transport flags for a ``Registry`` (``--tls-verify=false``
for plain HTTP, ``--cert-dir`` with the test CA for HTTPS, ``--creds`` for the auth variants and
``--no-creds`` otherwise), never reading the machine's auth files or registries.conf.

(``tests/services/images.py``, written separately, builds richer OCI layouts.)
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Literal

from .proc import require_tool, service_env
from .registry import Registry

__all__ = ["copy", "inspect", "registry_flags", "skopeo", "tiny_layout"]


def _isolated_env(workdir: Path) -> dict[str, str]:
    empty_auth = workdir / ".skopeo-auth.json"
    if not empty_auth.exists():
        empty_auth.write_text('{"auths": {}}\n')
    empty_conf = workdir / ".skopeo-registries.conf"
    if not empty_conf.exists():
        empty_conf.write_text("")
    return service_env(
        {
            "REGISTRY_AUTH_FILE": str(empty_auth),
            "CONTAINERS_REGISTRIES_CONF": str(empty_conf),
            "DOCKER_CONFIG": str(workdir / ".skopeo-docker-config"),
        }
    )


def skopeo(
    *args: str, workdir: Path, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``skopeo --insecure-policy ARGS`` (isolated from the machine's auth files)."""
    binary = require_tool("skopeo", "skopeo")
    result = subprocess.run(
        [binary, "--insecure-policy", *args],
        capture_output=True,
        text=True,
        env=_isolated_env(workdir),
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def registry_flags(
    registry: Registry, role: Literal["src", "dest", ""], *, creds: str | Literal[False] | None = None
) -> list[str]:
    """skopeo flags to reach ``registry`` (``role`` "src"/"dest" for copy, "" for inspect).

    ``creds``: None uses the registry's own credentials, False sends none, a string is sent as is.
    """
    prefix = f"--{role}-" if role else "--"
    flags = []
    if registry.scheme == "http":
        flags.append(f"{prefix}tls-verify=false")
    elif registry.cert_dir is not None:
        flags.append(f"{prefix}cert-dir={registry.cert_dir}")
    sent = registry.creds if creds is None else creds
    flags.append(f"{prefix}creds={sent}" if sent else f"{prefix}no-creds")
    return flags


def copy(
    source: str,
    registry: Registry,
    repo: str,
    tag: str = "latest",
    *,
    workdir: Path,
    creds: str | Literal[False] | None = None,
    extra: tuple[str, ...] = (),
) -> str:
    """``skopeo copy SOURCE docker://registry/repo:tag``; returns the image reference pushed.

    ``source`` is any skopeo source (``oci:LAYOUT:TAG``, ``docker-archive:...``).
    """
    ref = registry.ref(repo, tag)
    skopeo(
        "copy",
        *registry_flags(registry, "dest", creds=creds),
        *extra,
        source,
        f"docker://{ref}",
        workdir=workdir,
    )
    return ref


def inspect(
    registry: Registry,
    ref: str,
    *,
    workdir: Path,
    raw: bool = False,
    creds: str | Literal[False] | None = None,
) -> Any:
    """``skopeo inspect [--raw] docker://REF`` against ``registry``, parsed from JSON."""
    args = ["inspect", *registry_flags(registry, "", creds=creds)]
    if raw:
        args.append("--raw")
    return json.loads(skopeo(*args, f"docker://{ref}", workdir=workdir).stdout)


def tiny_layout(directory: Path, tag: str = "latest", *, files: dict[str, bytes] | None = None) -> str:
    """An OCI image layout at ``directory`` (umoci, one layer per file); returns ``oci:DIR:TAG``.

    ``files`` maps paths in the image to contents (default: ``/hello.txt``).
    """
    umoci = require_tool("umoci", "umoci")
    files = files if files is not None else {"/hello.txt": b"hello from cnbkit tests\n"}
    env = service_env()

    def run(*args: str) -> None:
        subprocess.run([umoci, *args], check=True, capture_output=True, env=env, timeout=60)

    if not (directory / "oci-layout").exists():
        run("init", "--layout", str(directory))
    run("new", "--image", f"{directory}:{tag}")
    staging = directory.parent / f".{directory.name}-{tag}-files"
    for i, (target, content) in enumerate(sorted(files.items())):
        source = staging / str(i)
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(content)
        run("insert", "--image", f"{directory}:{tag}", str(source), target)
    return f"oci:{directory}:{tag}"
