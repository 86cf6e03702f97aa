"""What a real build needs, made on the spot: tiny build and run images from Debian's static
busybox, sample buildpacks in shell, the sample app and the builder.toml naming them all.

The images: one busybox layer (``/bin/busybox`` and its applets as symlinks) and one with
``/etc/passwd``/``/etc/group`` for ``root`` and the CNB user ``cnb`` (1000:1000), ``/tmp`` and the
user's home; ``CNB_USER_ID``/``CNB_GROUP_ID`` and the stack id label, as a platform's base
images carry them.

The buildpacks (Buildpack API 0.10, any linux target):

* ``test/system`` 0.0.1, a ``[system]`` pre buildpack: writes ``system-pre ran`` into a launch
  layer.
* ``test/hello`` 0.0.1: detects ``hello.txt``, copies it into a launch layer with the value of the
  ``SAMPLE_GREETING`` build variable (``[[build.env]]``), and declares the default ``web``
  process printing both and the system buildpack's line.
* ``test/optional`` 0.0.1, optional in the order: detects only an ``optional.txt`` the app lacks,
  so the build goes on without it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.docker_images import BASE_LAYERS, push_spec
from tests.images import Entry, ImageSpec
from tests.services.peers import Peers
from tests.services.registry import Registry

__all__ = [
    "APP_OUTPUT",
    "BUSYBOX",
    "GREETING",
    "STACK_ID",
    "base_spec",
    "builder_toml",
    "push_lifecycle_image",
    "sample_app",
    "sample_buildpacks",
]

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static (tools/setup-tests installs it)
STACK_ID = "io.cnbkit.tiny"
GREETING = "greetings from [[build.env]]"
APP_OUTPUT = "hello from the sample app"
_APPLETS = ("sh", "cat", "cp", "echo", "env", "id", "ls", "mkdir", "printf", "test", "[")
_CNB = (1000, 1000)


def base_spec(*, user: str = "1000:1000") -> ImageSpec:
    """A busybox image as a CNB build or run image (amd64: busybox-static is the host's)."""
    tools = [
        Entry("bin/", kind="dir"),
        Entry("bin/busybox", BUSYBOX.read_bytes(), mode=0o755),
        *(Entry(f"bin/{name}", kind="symlink", mode=0o777, target="busybox") for name in _APPLETS),
    ]
    system = [
        Entry("etc/", kind="dir"),
        Entry(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000:cnb:/home/cnb:/bin/sh\n",
            mode=0o644,
        ),
        Entry("etc/group", b"root:x:0:\ncnb:x:1000:\n", mode=0o644),
        Entry("home/", kind="dir"),
        Entry("home/cnb/", kind="dir", owner=_CNB),
        Entry("tmp/", kind="dir", mode=0o1777),
    ]
    return ImageSpec(
        [tools, system],
        env=("PATH=/bin", "CNB_USER_ID=1000", "CNB_GROUP_ID=1000", f"CNB_STACK_ID={STACK_ID}"),
        labels={"io.buildpacks.stack.id": STACK_ID},
        user=user,
    )


def _buildpack(root: Path, ident: str, detect: str, build: str) -> Path:
    """A buildpack directory ``root/<id with _>`` with ``bin/detect`` and ``bin/build``."""
    path = root / ident.replace("/", "_")
    (path / "bin").mkdir(parents=True)
    (path / "buildpack.toml").write_text(
        f'api = "0.10"\n\n[buildpack]\n  id = "{ident}"\n  version = "0.0.1"\n\n[[targets]]\n  os = "linux"\n'
    )
    for name, body in (("detect", detect), ("build", build)):
        script = path / "bin" / name
        script.write_text(f"#!/bin/sh\nset -eu\n{body}\n")
        script.chmod(0o755)
    return path


def sample_buildpacks(root: Path) -> dict[str, Path]:
    """The three sample buildpacks under ``root``, by id."""
    system = _buildpack(
        root,
        "test/system",
        'echo "system-pre detect"',
        'mkdir -p "$CNB_LAYERS_DIR/mark"\n'
        'printf "[types]\\n  launch = true\\n" > "$CNB_LAYERS_DIR/mark.toml"\n'
        'echo "system-pre ran" > "$CNB_LAYERS_DIR/mark/line"',
    )
    command = json.dumps(["/bin/sh", "-c", "cat /layers/test_hello/app/out /layers/test_system/mark/line"])
    hello = _buildpack(
        root,
        "test/hello",
        "test -f hello.txt",
        'mkdir -p "$CNB_LAYERS_DIR/app"\n'
        'printf "[types]\\n  launch = true\\n" > "$CNB_LAYERS_DIR/app.toml"\n'
        'cat hello.txt > "$CNB_LAYERS_DIR/app/out"\n'
        'echo "SAMPLE_GREETING=${SAMPLE_GREETING:-unset}" >> "$CNB_LAYERS_DIR/app/out"\n'
        'echo "test/hello built as $(id -u):$(id -g)"\n'
        "cat > \"$CNB_LAYERS_DIR/launch.toml\" <<'TOML'\n"
        f'[[processes]]\n  type = "web"\n  command = {command}\n  default = true\nTOML',
    )
    optional = _buildpack(root, "test/optional", "test -f optional.txt || exit 100", "exit 1")
    return {"test/system": system, "test/hello": hello, "test/optional": optional}


def sample_app(root: Path) -> Path:
    """The app: ``hello.txt`` only."""
    root.mkdir(parents=True)
    (root / "hello.txt").write_text(APP_OUTPUT + "\n")
    return root


def builder_toml(
    path: Path,
    *,
    lifecycle: str,
    build_image: str,
    run_image: str,
    buildpacks: Mapping[str, Path | str],
    stack: bool = False,
) -> Path:
    """A builder.toml: the sample buildpacks (``test/system`` as a pre system buildpack, then
    ``test/hello`` and the optional ``test/optional``), ``[[build.env]]`` and the images (with
    ``stack``, in the deprecated ``[stack]`` table instead of ``[build]`` and ``[[run.images]]``)."""
    modules = "".join(f'[[buildpacks]]\n  uri = "{p}"\n\n' for p in buildpacks.values())
    if stack:
        images = f'[stack]\n  id = "{STACK_ID}"\n  build-image = "{build_image}"\n'
        images += f'  run-image = "{run_image}"\n\n[build]\n'
    else:
        images = f'[[run.images]]\n  image = "{run_image}"\n\n[build]\n  image = "{build_image}"\n'
    path.write_text(
        f'[lifecycle]\n  uri = "{lifecycle}"\n\n{modules}'
        "[[order]]\n"
        '  [[order.group]]\n    id = "test/hello"\n    version = "0.0.1"\n'
        '  [[order.group]]\n    id = "test/optional"\n    version = "0.0.1"\n    optional = true\n\n'
        "[system]\n  [system.pre]\n"
        '    buildpacks = [{ id = "test/system", version = "0.0.1", optional = false }]\n\n'
        f"{images}"
        f'  [[build.env]]\n    name = "SAMPLE_GREETING"\n    value = "{GREETING}"\n'
    )
    return path


def push_lifecycle_image(peers: Peers, registry: Registry, work: Path, arch: str = "amd64") -> str:
    """The lifecycle image as the lifecycle's ``tools/image`` makes it (the archive's ``/cnb``
    layer and the ``io.buildpacks.lifecycle.*`` labels on a base image: distroless in a release,
    a distroless-like one from the loopback registry here), pushed by it; returns the reference."""
    base = push_spec(ImageSpec(BASE_LAYERS), registry, registry.unique_repo("distroless"), "t", work)
    tag = registry.ref(registry.unique_repo("lifecycle"), peers.lifecycle_version)
    argv = [str(peers.image_tool), "-lifecyclePath", str(peers.archive(arch)), "-baseImage", base]
    argv += ["-tag", tag, "-os", "linux", "-arch", arch]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and "Digest: sha256:" in result.stdout, (result.stdout, result.stderr)
    return tag
