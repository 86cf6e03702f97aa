"""Deeply nested or malformed JSON from every untrusted source, through the CLI: a manifest in a
real registry, a layout's ``index.json``, a token server's answer, a registry's error body, a
Docker daemon's inspect answer and ``docker save``'s ``manifest.json``, a build image's module
label. Each is one line naming the document and what is wrong with it, never a
``RecursionError`` or a ``TypeError`` reported as a plugin's failure."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from cnbkit.oci import mediatypes as mt

from tests.builder_support import build_image, builder_project, builder_toml
from tests.canned_server import Route, serve_tcp, serve_unix
from tests.conftest import one_line_error, run_cli
from tests.docker_images import lifecycle_spec
from tests.images import Entry, ImageSpec, write_image
from tests.raw_registry import put_blob, put_manifest, tiny_image
from tests.services.registry import Registry

# Deeper than Python's recursion limit, shallower than Go's 10,000 (the registry's parser).
DEEP = b"[" * 5000 + b"]" * 5000
TOO_DEEP = "is not valid JSON: nesting deeper than 64"
NO_HANG = 60


def _deep_object(data: bytes) -> bytes:
    """``data`` (a JSON object) with one more field nested ``DEEP``."""
    return data[:-1] + b', "x": ' + DEEP + b"}"


def _resolve(uri: str, *extra: str, env: dict[str, str] | None = None) -> str:
    return one_line_error(run_cli("resolve", uri, *extra, env=env, timeout=NO_HANG))


def test_a_deep_manifest_in_a_real_registry(registry: Registry) -> None:
    repo = registry.unique_repo("deep")
    layer, config, manifest = tiny_image()
    put_blob(registry, repo, layer)
    put_blob(registry, repo, config)
    deep = _deep_object(manifest)
    put_manifest(registry, repo, "deep", deep, mt.OCI_MANIFEST)
    error = _resolve(f"docker://{registry.ref(repo, 'deep')}", "--pull-policy", "always")
    assert f"{registry.host}/{repo}" in error and TOO_DEEP in error


def test_a_deep_index_json_in_a_layout(tmp_path: Path) -> None:
    write_image(tmp_path / "L", ImageSpec([[Entry("f", b"x")]]), tag="v1")
    index = tmp_path / "L" / "index.json"
    index.write_bytes(_deep_object(index.read_bytes()))
    error = _resolve(f"oci:{tmp_path / 'L'}:v1")
    assert f"{tmp_path / 'L'}/index.json {TOO_DEEP}" in error


def test_a_deep_token_answer() -> None:
    answers: list[Route] = []
    with serve_tcp(answers) as host:
        challenge = {"WWW-Authenticate": f'Bearer realm="http://{host}/token",service="test"'}
        answers += [
            Route("GET", "/token", DEEP),
            Route("GET", "/v2/.*", b'{"errors": []}', 401, {**challenge, "Content-Type": "application/json"}),
            Route("HEAD", "/v2/.*", b"", 401, challenge),
        ]
        error = _resolve(f"docker://{host}/app:1", "--pull-policy", "always")
    assert "token server" in error and TOO_DEEP in error


def test_a_deep_error_body() -> None:
    digest = "sha256:" + "b" * 64  # by digest: no HEAD, the GET's error body is read
    answers = [Route("GET", "/v2/", b"{}"), Route("GET", f"/v2/app/manifests/{digest}", DEEP, 400)]
    with serve_tcp(answers) as host:
        error = _resolve(f"docker://{host}/app@{digest}", "--pull-policy", "always")
    assert "HTTP 400" in error and "plugin" not in error


_VERSION = Route("GET", "/version", json.dumps({"ApiVersion": "1.41", "Version": "24.0.0"}).encode())
_INSPECT = r"/v[0-9.]+/images/.+/json"


def _daemon(tmp_path: Path, answers: list[Route]) -> tuple[Path, list[Route]]:
    return tmp_path / "docker.sock", [_VERSION, *answers]


def test_a_deep_inspect_answer_from_the_daemon(tmp_path: Path) -> None:
    sock, answers = _daemon(tmp_path, [Route("GET", _INSPECT, DEEP)])
    with serve_unix(sock, answers) as docker_host:
        error = _resolve(
            "docker://x.invalid/app:1", "--pull-policy", "never", env={"DOCKER_HOST": docker_host}
        )
    assert "Docker daemon" in error and "inspect" in error and TOO_DEEP in error


def _save_archive(manifest_json: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest_json)
        tar.addfile(info, io.BytesIO(manifest_json))
    return out.getvalue()


def test_a_deep_manifest_json_in_docker_save(tmp_path: Path) -> None:
    info = {"Id": "sha256:" + "a" * 64, "Os": "linux", "Architecture": "amd64", "RootFS": {"Layers": []}}
    sock, answers = _daemon(
        tmp_path,
        [
            Route("GET", _INSPECT, json.dumps(info).encode()),
            Route(
                "GET",
                r"/v[0-9.]+/images/.+/get",
                _save_archive(DEEP),
                200,
                {"Content-Type": "application/x-tar"},
            ),
        ],
    )
    with serve_unix(sock, answers) as docker_host:
        error = _resolve(
            "docker://x.invalid/app:1", "--pull-policy", "never", env={"DOCKER_HOST": docker_host}
        )
    assert "manifest.json" in error and TOO_DEEP in error


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """builder.toml, a lifecycle and a buildpack; the build image is each test's."""
    return builder_project(tmp_path / "project", with_build_image=False)


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ('{"test/one": "1.0.0"}', "must map each buildpack id to its versions"),
        ('{"test/one": {"1.0.0": []}}', "must map each buildpack id to its versions"),
        ("[1, 2]", "must map each buildpack id to its versions"),
        (DEEP.decode(), TOO_DEEP),
    ],
    ids=["versions-a-string", "entry-a-list", "a-list", "deep"],
)
def test_a_malformed_module_label_on_the_build_image(
    project: Path, tmp_path: Path, label: str, message: str
) -> None:
    build_image(project / "build", labels={"io.buildpacks.buildpack.layers": label})
    config = str(project / "builder.toml")
    result = run_cli("builder", "create", f"oci:{tmp_path / 'out'}:t", "--config", config, timeout=NO_HANG)
    error = one_line_error(result)
    assert "build image" in error and "io.buildpacks.buildpack.layers" in error and message in error
    assert not (tmp_path / "out").exists()


def test_a_deep_module_label_on_a_buildpackage(project: Path, tmp_path: Path) -> None:
    build_image(project / "build")
    labels = {
        "io.buildpacks.buildpackage.metadata": '{"id": "test/pkg", "version": "2.0.0"}',
        "io.buildpacks.buildpack.layers": DEEP.decode(),
    }
    write_image(tmp_path / "pkg", ImageSpec([[Entry("f", b"x")]], labels=labels), "v1")
    builder_toml(
        project / "builder.toml",
        lifecycle='uri = "lifecycle.tgz"',
        buildpacks=("bp", f"oci:{tmp_path / 'pkg'}:v1"),
    )
    config = str(project / "builder.toml")
    result = run_cli("builder", "create", f"oci:{tmp_path / 'out'}:t", "--config", config, timeout=NO_HANG)
    error = one_line_error(result)
    assert f"{tmp_path / 'pkg'}:v1: label io.buildpacks.buildpack.layers {TOO_DEEP}" in error


def test_a_deep_apis_label_on_a_lifecycle_image(tmp_path: Path) -> None:
    spec = lifecycle_spec()
    spec.labels["io.buildpacks.lifecycle.apis"] = DEEP.decode()
    write_image(tmp_path / "L", spec, "v1")
    error = _resolve(f"oci:{tmp_path / 'L'}:v1")
    assert f"label io.buildpacks.lifecycle.apis {TOO_DEEP}" in error
