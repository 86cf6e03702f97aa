"""``urn:cnb:registry:NS/NAME[@VERSION]`` entries through a buildpack registry index
(``--buildpack-registry DIR|URL``): pack's ``IndexPath`` layout, JSON-lines entries, the newest
version not yanked, ``addr`` a digest reference, the package image it names in the loopback
registry."""

from __future__ import annotations

import json
from pathlib import Path

import cnbkit
import pytest
from cnbkit.resolvers.buildpack_registry import index_path
from cnbkit.transport.layout import open_layout

from tests.builder_support import builder_project, builder_toml, package_spec
from tests.conftest import run_cli
from tests.docker_images import push_spec
from tests.https_server import HTTPSServer, ca_bundle_fixture, https_server_fixture, test_ca_fixture  # noqa: F401
from tests.services.registry import Registry
from tests.services.skopeo import skopeo


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("a", "1/ns_a"),
        ("ab", "2/ns_ab"),
        ("abc", "3/ab/ns_abc"),
        ("abcd", "ab/cd/ns_abcd"),
        ("python", "py/th/ns_python"),
    ],
)
def test_index_path_is_pack_s(name: str, path: str) -> None:
    assert index_path("ns", name) == path


def _digest_ref(registry: Registry, tmp_path: Path) -> str:
    """The package image pushed to the loopback registry, as ``REGISTRY/REPO@sha256:...``."""
    ref = push_spec(package_spec(), registry, registry.unique_repo("package"), "v1", tmp_path)
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{ref}", workdir=tmp_path).stdout)
    return f"{ref.rpartition(':')[0]}@{info['Digest']}"


def _index(root: Path, lines: list[dict[str, object]]) -> Path:
    """A registry index at ``root`` holding ``test/pkg``'s file."""
    file = root / index_path("test", "pkg")
    file.parent.mkdir(parents=True)
    file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root


def _entry(version: str, addr: str, *, yanked: bool = False) -> dict[str, object]:
    return {"ns": "test", "name": "pkg", "version": version, "yanked": yanked, "addr": addr}


def _create(
    root: Path, out: Path, uri: str, *extra: str, env: dict[str, str] | None = None
) -> tuple[int, str]:
    builder_toml(
        root / "builder.toml",
        lifecycle='uri = "lifecycle.tgz"',
        buildpacks=("bp", uri),
        order=("test/one", "test/pkg"),
    )
    made = run_cli(
        "builder", "create", f"oci:{out}:v1", "--config", str(root / "builder.toml"), *extra,
        env={"CNBKIT_CACHE_DIR": str(root.parent / "cache"), **(env or {})},
    )  # fmt: skip
    return made.returncode, made.stderr


def _modules(out: Path) -> list[str]:
    image = open_layout(out, tag="v1", platform=cnbkit.parse_platform("linux/amd64"))
    return sorted(json.loads(image.config.labels["io.buildpacks.buildpack.layers"]))


@pytest.mark.parametrize(
    ("uri", "how"),
    [
        ("urn:cnb:registry:test/pkg", "flag"),
        ("urn:cnb:registry:test/pkg@1.0.0", "env"),
        ("test/pkg", "flag"),  # pack's naked registry id: no path of that name
    ],
)
def test_a_registry_entry_is_the_package_image_its_addr_names(
    registry: Registry, tmp_path: Path, uri: str, how: str
) -> None:
    addr = _digest_ref(registry, tmp_path)
    bogus = f"{registry.host}/nothing-here@sha256:{'0' * 64}"
    # The newest version is yanked and 1.10.0 > 1.9.0 (semver, not text order): 1.10.0 is taken
    # without a version; 1.0.0 when named.
    wanted = "1.0.0" if "@" in uri else "1.10.0"
    index = _index(
        tmp_path / "index",
        [
            _entry("1.0.0", addr if wanted == "1.0.0" else bogus),
            _entry("1.10.0", addr if wanted == "1.10.0" else bogus),
            _entry("1.9.0", bogus),
            _entry("2.0.0", bogus, yanked=True),
        ],
    )
    root = builder_project(tmp_path / "project")
    flags, env = (
        (["--buildpack-registry", str(index)], {})
        if how == "flag"
        else ([], {"CNBKIT_BUILDPACK_REGISTRY": str(index)})
    )
    code, err = _create(root, tmp_path / "out", uri, *flags, env=env)
    assert code == 0, err
    assert _modules(tmp_path / "out") == ["test/dep", "test/one", "test/pkg"]


def test_an_https_index_serves_the_entries(
    registry: Registry, https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    addr = _digest_ref(registry, tmp_path)
    https_server.add(
        f"/index/{index_path('test', 'pkg')}", (json.dumps(_entry("1.0.0", addr)) + "\n").encode()
    )
    root = builder_project(tmp_path / "project")
    index_url = https_server.url("/index/")
    code, err = _create(
        root, tmp_path / "out", "urn:cnb:registry:test/pkg", "--buildpack-registry", index_url,
        "--ca-cert", str(ca_bundle),
    )  # fmt: skip
    assert code == 0, err
    assert _modules(tmp_path / "out") == ["test/dep", "test/one", "test/pkg"]
    assert [r.path for r in https_server.log] == [f"/index/{index_path('test', 'pkg')}"]


@pytest.mark.parametrize(
    ("addr", "flags", "says"),
    [
        ("127.0.0.1:5000/pkg:1.0.0", "index", "addr '127.0.0.1:5000/pkg:1.0.0' is not a digest reference"),
        ("", "none", "give --buildpack-registry DIR|URL"),
        ("", "missing", "the buildpack is not in the registry index"),
    ],
)
def test_refusals_are_one_line(addr: str, flags: str, says: str, tmp_path: Path) -> None:
    index = _index(tmp_path / "index", [_entry("1.0.0", addr)])
    root = builder_project(tmp_path / "project")
    extra = {
        "index": ["--buildpack-registry", str(index)],
        "none": [],
        "missing": ["--buildpack-registry", str(root)],
    }
    out = tmp_path / "out"
    code, err = _create(root, out, "urn:cnb:registry:test/pkg", *extra[flags])
    assert code == 1, err
    [line] = err.splitlines()
    assert line.startswith("error: ") and "urn:cnb:registry:test/pkg" in line and says in line, line
    assert not out.exists()
