"""The download cache: ``cnbkit cache ls | clear | prune`` and the :class:`cnbkit.Cache` API."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from cnbkit import Cache, CnbkitError, DigestMismatchError

from tests.conftest import cli_json, digest_of, run_cli
from tests.https_server import (  # noqa: F401 - fixtures
    HTTPSServer,
    ca_bundle_fixture,
    https_server_fixture,
    test_ca_fixture,
)
from tests.lifecycles import make_lifecycle

PATH = "/dl/lifecycle.tgz"


def resolved(server: HTTPSServer, ca_bundle: Path, tmp_path: Path, url: str | None = None) -> bytes:
    """Serve a lifecycle at PATH and resolve it once (through ``url`` if given)."""
    content = make_lifecycle(tmp_path / "served.tgz").read_bytes()
    server.add(PATH, content)
    result = run_cli("resolve", url or server.url(PATH), "--ca-cert", str(ca_bundle), "--quiet")
    assert result.returncode == 0, result.stderr
    return content


def listing() -> dict[str, Any]:
    """``cnbkit cache ls --json``, parsed."""
    data: dict[str, Any] = cli_json("cache", "ls", "--json")
    return data


def test_cache_ls_lists_the_blob_with_its_redacted_url(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    url = https_server.url(PATH, userinfo="ci:hunter22") + "?token=abcdef123"
    content = resolved(https_server, ca_bundle, tmp_path, url)
    data = listing()
    assert data["root"] == str(cache_dir)
    assert data["blobs"] == [
        {"digest": digest_of(content), "size": len(content), "urls": [https_server.url(PATH) + "?token=***"]}
    ]
    lifecycles = data["lifecycles"]
    assert isinstance(lifecycles, list) and len(lifecycles) == 1
    assert lifecycles[0]["source_digest"] == digest_of(content)
    assert lifecycles[0]["version"] == "0.21.0"
    assert isinstance(data["size"], int) and data["size"] >= len(content)
    human = run_cli("cache", "ls")
    assert human.returncode == 0
    assert digest_of(content) in human.stdout and "lifecycle 0.21.0" in human.stdout
    for output in (json.dumps(data), human.stdout):
        assert "hunter22" not in output and "abcdef123" not in output


def test_cache_clear_empties_it(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = resolved(https_server, ca_bundle, tmp_path)
    assert (cache_dir / "blobs").exists()
    result = run_cli("cache", "clear")
    assert result.returncode == 0, result.stderr
    assert str(cache_dir) in result.stdout
    assert not cache_dir.exists() or list(cache_dir.rglob("*")) == []
    assert listing()["blobs"] == []
    # The next resolve downloads again, unconditionally (nothing left to revalidate).
    https_server.clear_log()
    again = run_cli("resolve", https_server.url(PATH), "--ca-cert", str(ca_bundle), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["digest"] == digest_of(content)
    assert [r.status for r in https_server.log] == [200]
    assert "if-none-match" not in https_server.log[0].headers


def test_cache_prune_removes_stale_leftovers_only(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = resolved(https_server, ca_bundle, tmp_path)
    tmp = cache_dir / "tmp"
    tmp.mkdir(exist_ok=True)
    old_part = tmp / "12345-deadbeef.part"
    old_part.write_bytes(b"half a download")
    old_dir = tmp / "12345-cafe.lifecycle"
    (old_dir / "sub").mkdir(parents=True)
    two_hours_ago = time.time() - 7200
    for path in (old_part, old_dir):
        os.utime(path, (two_hours_ago, two_hours_ago))
    fresh = tmp / "99999-fresh.part"
    fresh.write_bytes(b"being written right now")

    result = run_cli("cache", "prune")
    assert result.returncode == 0, result.stderr
    assert "removed 2 entries" in result.stdout
    assert not old_part.exists() and not old_dir.exists()
    assert fresh.exists()
    data = listing()
    assert [blob["digest"] for blob in data["blobs"]] == [digest_of(content)]
    assert len(data["lifecycles"]) == 1

    # Still served from the cache: a revalidation, no body.
    https_server.clear_log()
    again = run_cli("resolve", https_server.url(PATH), "--ca-cert", str(ca_bundle), "--quiet")
    assert again.returncode == 0, again.stderr
    assert [r.status for r in https_server.log] == [304]


def test_cache_prune_drops_index_entries_without_blob_and_old_unreferenced_blobs(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = resolved(https_server, ca_bundle, tmp_path)
    cache = Cache(cache_dir)
    stray = b"an artifact no URL names any more"
    with cache.writer() as writer:
        writer.write(stray)
        stray_path = writer.commit()
    month_ago = time.time() - 40 * 86400
    os.utime(stray_path, (month_ago, month_ago))
    cache.blob_path(digest_of(content)).unlink()  # the URL's blob vanished (disk cleanup)

    result = run_cli("cache", "prune", "--days", "30")
    assert result.returncode == 0, result.stderr
    assert not stray_path.exists()
    assert list((cache_dir / "records").glob("url.*.json")) == []
    assert listing()["blobs"] == []
    # With the index entry gone, the next resolve is a plain download again.
    https_server.clear_log()
    again = run_cli("resolve", https_server.url(PATH), "--ca-cert", str(ca_bundle), "--quiet")
    assert again.returncode == 0, again.stderr
    assert [r.status for r in https_server.log] == [200]
    assert "if-none-match" not in https_server.log[0].headers


def test_blob_writer_commits_only_verified_content(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    data = b"lifecycle bytes"
    with cache.writer(expected=digest_of(b"other bytes")) as writer:
        writer.write(data)
        with pytest.raises(DigestMismatchError) as info:
            writer.commit()
    assert digest_of(data) in str(info.value) and digest_of(b"other bytes") in str(info.value)
    assert not cache.has_blob(digest_of(data))
    assert list((tmp_path / "c" / "tmp").iterdir()) == []

    with cache.writer(expected=digest_of(data)) as writer:
        writer.write(data)
        path = writer.commit()
    assert path == cache.blob_path(digest_of(data)) and path.read_bytes() == data
    assert list((tmp_path / "c" / "tmp").iterdir()) == []


def test_blob_writer_left_without_commit_leaves_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    with pytest.raises(RuntimeError), cache.writer() as writer:
        writer.write(b"partial")
        raise RuntimeError("the download broke")
    assert list((tmp_path / "c" / "tmp").iterdir()) == []
    assert not (tmp_path / "c" / "blobs").exists() or list((tmp_path / "c" / "blobs").rglob("*")) == []


def test_blob_path_refuses_a_malformed_digest(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    for bad in ("sha256:../../etc/passwd", "sha256:" + "A" * 64, "md5:" + "a" * 32):
        with pytest.raises(CnbkitError):
            cache.blob_path(bad)


def test_cache_ls_shows_a_builders_compressed_layers_by_diff_id(tmp_path: Path, cache_dir: Path) -> None:
    examples = Path(__file__).resolve().parent.parent / "examples"
    made = cli_json(
        "builder",
        "create",
        f"oci:{tmp_path / 'out'}:v1",
        "--config",
        str(examples / "builder.toml"),
        "--json",
    )
    new = {
        layer["digest"]: layer["diff_id"]
        for layer in made["layers"]
        if not layer["source"].startswith("layer ")
    }
    blobs = {blob["digest"]: blob for blob in listing()["blobs"]}
    for digest, diff_id in new.items():
        assert blobs[digest]["urls"] == []  # not a URL: the layer it compresses
        assert [entry["diff_id"] for entry in blobs[digest]["compressed_layers"]] == [diff_id]
    human = run_cli("cache", "ls").stdout
    assert "layer-gzip:" not in human and f"of layer {next(iter(new.values()))}" in human


def test_a_temp_file_left_by_an_interrupted_write_is_the_caches_own(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    # A process killed between writing a record's temp file and renaming it leaves the temp
    # file (named by cnbkit.archive.atomic.beside); the cache knows it as its own and clears it.
    from cnbkit.archive.atomic import beside

    resolved(https_server, ca_bundle, tmp_path)
    records = cache_dir / "records"
    left = beside(next(records.iterdir()))
    left.write_bytes(b"{")
    stranger = records / "not-cnbkits.txt"
    stranger.write_bytes(b"x")
    result = run_cli("cache", "clear")
    assert result.returncode == 0, result.stderr
    assert not left.exists() and stranger.exists()
