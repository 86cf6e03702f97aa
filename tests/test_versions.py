"""``--lifecycle-version`` through a mirror: the release URL, its ``.sha256``, the platforms.

The mirror is a real HTTPS server on loopback laid out as GitHub's release downloads are
(``BASE/vX.Y.Z/lifecycle-vX.Y.Z+OS.ARCH.tgz`` and ``.sha256`` beside it).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import cnbkit
import pytest
import trustme
from cnbkit.lifecycle.versions import GITHUB_RELEASES, RELEASE_PLATFORMS, lifecycle_url, parse_version

from tests.builder_support import builder_project, builder_toml
from tests.conftest import cli_json, one_line_error, run_cli
from tests.https_server import (  # noqa: F401 - fixtures
    HTTPSServer,
    ca_bundle_fixture,
    https_server_fixture,
    test_ca_fixture,
)
from tests.lifecycles import descriptor, make_lifecycle

VERSION = "0.19.4"


def archive_path(version: str = VERSION, suffix: str = "linux.x86-64") -> str:
    """Where the mirror holds a release archive."""
    return f"/mirror/v{version}/lifecycle-v{version}+{suffix}.tgz"


def publish(
    server: HTTPSServer,
    tmp_path: Path,
    *,
    version: str = VERSION,
    suffix: str = "linux.x86-64",
    checksum: str | None = "right",
) -> bytes:
    """Put a release archive (and, unless ``checksum`` is None, its .sha256) on the mirror.

    ``checksum``: ``right``, ``wrong`` (another digest) or ``garbage`` (no digest at all).
    """
    path = archive_path(version, suffix)
    archive = make_lifecycle(
        tmp_path / f"lifecycle-{suffix}.tgz", windows=suffix.startswith("windows"), desc=descriptor(version)
    ).read_bytes()
    server.add(path, archive)
    if checksum is not None:
        digest = {
            "right": hashlib.sha256(archive).hexdigest(),
            "wrong": hashlib.sha256(b"something else").hexdigest(),
            "garbage": "<html>not found</html>",
        }[checksum]
        server.add(path + ".sha256", f"{digest}  {path.rsplit('/', 1)[1]}\n".encode())
    return archive


def from_mirror(
    server: HTTPSServer, ca_bundle: Path, *extra: str, version: str = VERSION, platform: str = "linux/amd64"
) -> subprocess.CompletedProcess[str]:
    """``cnbkit resolve --lifecycle-version`` against the server's ``/mirror``."""
    return run_cli(
        "resolve", "--lifecycle-version", version, "--lifecycle-mirror", server.url("/mirror"),
        "--platform", platform, "--ca-cert", str(ca_bundle), *extra,
    )  # fmt: skip


def cache_listing() -> dict[str, Any]:
    """``cnbkit cache ls --json``."""
    data: dict[str, Any] = cli_json("cache", "ls", "--json")
    return data


def test_mirror_gets_exactly_the_archive_and_its_checksum(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    archive = publish(https_server, tmp_path)
    mirror = https_server.url("/mirror")
    args = [
        "resolve",
        "--lifecycle-version",
        VERSION,
        "--lifecycle-mirror",
        mirror,
        "--platform",
        "linux/amd64",
    ]
    result = run_cli(*args, "--json", "--ca-cert", str(ca_bundle))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["version"] == VERSION
    assert data["digest"] == "sha256:" + hashlib.sha256(archive).hexdigest()
    assert data["uri"] == https_server.url(archive_path())
    assert data["resolver"] == "https"
    assert sorted(https_server.paths()) == sorted([archive_path(), archive_path() + ".sha256"])
    assert all(r.status == 200 for r in https_server.log)

    # Again: the checksum is revalidated (304), the pinned archive needs no request at all.
    https_server.clear_log()
    again = run_cli(*args, "--json", "--ca-cert", str(ca_bundle))
    assert again.returncode == 0, again.stderr
    assert [(r.path, r.status) for r in https_server.log] == [(archive_path() + ".sha256", 304)]

    # And offline, with the mirror gone.
    https_server.stop()
    offline = run_cli(*args, "--offline", "--json")
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout)["digest"] == data["digest"]


def test_mirror_from_the_environment(test_ca: trustme.CA, ca_bundle: Path, tmp_path: Path) -> None:
    # A mirror as a plain directory tree, served as it lies on disk.
    site = tmp_path / "site"
    archive = make_lifecycle(tmp_path / "a.tgz", desc=descriptor(VERSION)).read_bytes()
    target = site / archive_path().lstrip("/")
    target.parent.mkdir(parents=True)
    target.write_bytes(archive)
    target.with_name(target.name + ".sha256").write_text(hashlib.sha256(archive).hexdigest() + "\n")
    with HTTPSServer("127.0.0.1", ca=test_ca, directory=site) as server:
        env = {"CNBKIT_LIFECYCLE_MIRROR": server.url("/mirror/"), "SSL_CERT_FILE": str(ca_bundle)}
        args = ["resolve", "--lifecycle-version", VERSION, "--platform", "linux/amd64", "--json"]
        result = run_cli(*args, env=env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["digest"] == "sha256:" + hashlib.sha256(archive).hexdigest()
        assert sorted(server.paths()) == sorted([archive_path(), archive_path() + ".sha256"])
        # The flag wins over the environment.
        server.clear_log()
        other = run_cli(*args, "--lifecycle-mirror", server.url("/elsewhere"), env=env)
        assert other.returncode == 1
        elsewhere = archive_path().replace("/mirror/", "/elsewhere/")
        assert [(r.path, r.status) for r in server.log] == [(elsewhere + ".sha256", 404), (elsewhere, 404)]


def test_api_normalises_the_version_like_pack(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    publish(https_server, tmp_path, version="0.19.0")
    lifecycle = cnbkit.resolve_lifecycle(
        lifecycle_version="v0.19",
        lifecycle_mirror=https_server.url("/mirror"),
        platform="linux/x86_64",
        ca_cert=ca_bundle,
        timeout=5,
    )
    assert lifecycle.version == "0.19.0"
    assert sorted(https_server.paths()) == sorted(
        [archive_path("0.19.0"), archive_path("0.19.0") + ".sha256"]
    )


def test_checksum_mismatch_fails_and_caches_no_archive(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    archive = publish(https_server, tmp_path, checksum="wrong")
    result = from_mirror(https_server, ca_bundle)
    error = one_line_error(result)
    assert "sha256:" + hashlib.sha256(archive).hexdigest() in error
    assert "sha256:" + hashlib.sha256(b"something else").hexdigest() in error
    assert https_server.url(archive_path()) in error
    listing = cache_listing()
    # Only the small .sha256 file may be cached (it is revalidated each time); never the archive.
    assert [blob["urls"] for blob in listing["blobs"]] == [[https_server.url(archive_path()) + ".sha256"]]
    assert listing["lifecycles"] == []
    assert list((cache_dir / "tmp").glob("*")) == []


def test_checksum_that_is_no_digest_is_an_error(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    publish(https_server, tmp_path, checksum="garbage")
    result = from_mirror(https_server, ca_bundle)
    error = one_line_error(result)
    assert ".sha256" in error and "digest" in error
    assert archive_path() not in https_server.paths()


def test_mirror_without_checksums_works_with_a_notice(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    archive = publish(https_server, tmp_path, checksum=None)
    result = from_mirror(https_server, ca_bundle)
    assert result.returncode == 0, result.stderr
    assert f"Lifecycle {VERSION}" in result.stdout
    notices = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(notices) == 1 and ".sha256" in notices[0] and "not verified" in notices[0], result.stderr
    assert hashlib.sha256(archive).hexdigest() in result.stdout
    assert [(r.path, r.status) for r in https_server.log] == [
        (archive_path() + ".sha256", 404),
        (archive_path(), 200),
    ]


def test_mirror_without_checksums_works_offline_after_one_online_resolve(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    archive = publish(https_server, tmp_path, checksum=None)
    args = ["resolve", "--lifecycle-version", VERSION, "--lifecycle-mirror", https_server.url("/mirror")]
    args += ["--platform", "linux/amd64", "--json"]
    online = run_cli(*args, "--ca-cert", str(ca_bundle))
    assert online.returncode == 0, online.stderr
    https_server.stop()
    offline = run_cli(*args, "--offline")
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout)["digest"] == "sha256:" + hashlib.sha256(archive).hexdigest()


@pytest.mark.parametrize(
    ("platform", "suffix"),
    [
        ("linux/arm64", "linux.arm64"),
        ("linux/ppc64le", "linux.ppc64le"),
        ("windows/amd64", "windows.x86-64"),
    ],
)
def test_platform_picks_the_release_archive(
    platform: str, suffix: str, https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    publish(https_server, tmp_path, suffix=suffix)
    result = run_cli(
        "resolve",
        "--lifecycle-version",
        VERSION,
        "--lifecycle-mirror",
        https_server.url("/mirror"),
        "--platform",
        platform,
        "--json",
        "--ca-cert",
        str(ca_bundle),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert f"{data['os']}/{data['arch']}" == platform
    assert sorted(https_server.paths()) == sorted(
        [archive_path(suffix=suffix), archive_path(suffix=suffix) + ".sha256"]
    )
    if platform.startswith("windows"):
        assert "analyzer.exe" in data["binaries"]


def test_unreleased_platform_names_the_released_ones(https_server: HTTPSServer, ca_bundle: Path) -> None:
    # A well-formed request that cannot be met: a failure (1), not a usage error (2).
    line = one_line_error(from_mirror(https_server, ca_bundle, platform="linux/riscv64"))
    assert "linux/riscv64" in line
    for os_name, arch in RELEASE_PLATFORMS:
        assert f"{os_name}/{arch}" in line
    assert https_server.log == []


@pytest.mark.parametrize("version", ["latest", "0.19.4.1", "1.2.x", "v", "0.019.4"])
def test_invalid_version_is_a_usage_error(version: str, https_server: HTTPSServer) -> None:
    result = run_cli(
        "resolve", "--lifecycle-version", version, "--lifecycle-mirror", https_server.url("/mirror")
    )
    assert result.returncode == 2, result.stderr
    assert "invalid lifecycle version" in result.stderr and repr(version) in result.stderr
    assert https_server.log == []


def test_version_and_uri_together_is_a_usage_error(https_server: HTTPSServer) -> None:
    result = run_cli("resolve", https_server.url("/x.tgz"), "--lifecycle-version", VERSION)
    assert result.returncode == 2
    assert https_server.log == []


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("0.19.4", "0.19.4"),
        ("v0.19.4", "0.19.4"),
        ("v0.19", "0.19.0"),
        ("1", "1.0.0"),
        ("0.20.0-rc.1", "0.20.0-rc.1"),
    ],
)
def test_parse_version(text: str, normalised: str) -> None:
    assert parse_version(text) == normalised


def test_default_url_is_github_releases() -> None:
    url = lifecycle_url("0.19.4", cnbkit.Platform("linux", "amd64"))
    assert url == f"{GITHUB_RELEASES}/v0.19.4/lifecycle-v0.19.4+linux.x86-64.tgz"
    assert GITHUB_RELEASES == "https://github.com/buildpacks/lifecycle/releases/download"
    mirrored = lifecycle_url("0.19.4", cnbkit.Platform("linux", "arm64", "v8"), "https://m.example/lc/")
    assert mirrored == "https://m.example/lc/v0.19.4/lifecycle-v0.19.4+linux.arm64.tgz"


def test_mirror_serving_another_version_is_refused(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    path = archive_path()
    https_server.add(path, make_lifecycle(tmp_path / "other.tgz", desc=descriptor("0.20.1")).read_bytes())
    result = run_cli(
        "resolve", "--lifecycle-version", VERSION, "--lifecycle-mirror", https_server.url("/mirror"),
        "--platform", "linux/amd64", "--ca-cert", str(ca_bundle), "--json",
    )  # fmt: skip
    line = one_line_error(result)
    assert "holds lifecycle 0.20.1, not the requested 0.19.4" in line
    assert "has no .sha256" in result.stderr  # the notice reaches stderr even with --json
    assert result.stdout == ""


def test_mirror_with_a_query_string(https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path) -> None:
    publish(https_server, tmp_path)
    mirror = https_server.url("/mirror?token=s3cret")
    result = run_cli(
        "resolve", "--lifecycle-version", VERSION, "--lifecycle-mirror", mirror,
        "--platform", "linux/amd64", "--ca-cert", str(ca_bundle), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    query = "?token=s3cret"  # kept on both requests, after the file name
    assert sorted(https_server.paths()) == sorted(
        [archive_path() + query, archive_path() + ".sha256" + query]
    )
    assert "s3cret" not in result.stdout + result.stderr


def test_offline_with_an_empty_cache_says_only_what_is_missing(tmp_path: Path) -> None:
    # One line naming the archive; no notice first that its .sha256 is absent (it is only not
    # cached, as the archive is not).
    root = builder_project(tmp_path / "project")
    builder_toml(root / "builder.toml", lifecycle=f'version = "{VERSION}"')
    out = tmp_path / "out"
    made = run_cli(
        "builder", "create", f"oci:{out}:v1", "--config", str(root / "builder.toml"), "--offline",
        env={"CNBKIT_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert made.returncode == 1, made.stderr
    [line] = made.stderr.splitlines()
    assert "lifecycle.version (line 4)" in line and "is not in the cache and --offline is set" in line, line
    assert ".sha256" not in line
    assert not out.exists()
