"""The cache's upkeep (``cache ls``, ``prune``, ``clear``), rule by rule, in-process.

The clock is fixed (``upkeep.time``) and every file's times are set, so each bound is tested
at the exact second either side. Fast on purpose: the mutation run of cache/upkeep.py starts
here (benchmarks/mutation.py); the CLI's view is in tests/test_cache.py and tests/test_disk.py.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import types
from pathlib import Path

import pytest
from cnbkit import Cache
from cnbkit.archive.atomic import beside
from cnbkit.cache import upkeep
from cnbkit.cache.records import FileStamp, LayerGzip, RegistryEndpoint, TagDigest, UrlAnswer

from tests.conftest import digest_of
from tests.test_disk import _TMPFS, in_namespace

NOW = 2_000_000_000  # seconds: the fixed clock of prune
DAY = 86400


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cache:
    monkeypatch.setattr(upkeep, "time", types.SimpleNamespace(time=lambda: float(NOW)))
    return Cache(tmp_path / "c")


def _aged(path: Path, seconds: int, atime: int | None = None) -> Path:
    """``path`` with its mtime (and atime, unless given) ``seconds`` before NOW."""
    os.utime(path, (NOW - (seconds if atime is None else atime), NOW - seconds))
    return path


def _blob(cache: Cache, data: bytes) -> Path:
    with cache.writer() as writer:
        writer.write(data)
        return writer.commit()


def _file(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _names(cache: Cache, removed: list[str]) -> list[str]:
    return sorted(str(Path(p).relative_to(cache.root)) for p in removed)


# -- cache ls ------------------------------------------------------------------------------


def test_listing_names_each_blob_by_its_urls_or_layer(cache: Cache) -> None:
    data = {name: _blob(cache, name.encode()) for name in ("shared", "layer", "alone", "stamped")}
    digest = {name: digest_of(name.encode()) for name in data}
    # Two URLs naming one blob: listed in the order of their record files (sha256 of the URL),
    # which for these two is not their alphabetical order.
    urls = ["https://example.invalid/b.tgz", "https://example.invalid/a.tgz?token=s3cret"]
    for url in urls:
        cache.remember(UrlAnswer(url, digest=digest["shared"], size=6, fetched=1.0))
    in_file_order = sorted(urls, key=lambda url: cache.record_path(UrlAnswer, url).name)
    assert in_file_order != sorted(urls)
    cache.remember(LayerGzip("z:sha256:" + "d" * 64, compressor="z", diff_id="sha256:" + "d" * 64,
                             digest=digest["layer"], size=5))  # fmt: skip
    cache.remember(FileStamp("file:/x", stamp="1:2:3:4", digest=digest["stamped"], size=7))
    cache.remember(RegistryEndpoint("registry.example", scheme="https"))
    damaged = cache.record_path(TagDigest, "docker://r/app:1")
    damaged.write_text("{")
    _file(beside(damaged), b"{")  # a record being written: not read
    _file(cache.root / "records" / "notes.json")  # not cnbkit's
    _file(cache.root / "blobs" / "thumbnails" / "a.png")  # not cnbkit's: never listed as a blob
    _file(cache.root / "blobs" / "sha256" / "notes")

    listed = upkeep.listing(cache)
    assert listed["root"] == str(cache.root)
    blobs = {blob["digest"]: blob for blob in listed["blobs"]}
    assert [blob["digest"] for blob in listed["blobs"]] == sorted(blobs)
    assert sorted(blobs) == sorted(digest.values())
    redacted = {"https://example.invalid/b.tgz": urls[0], "https://example.invalid/a.tgz?token=***": urls[1]}
    assert [redacted[url] for url in blobs[digest["shared"]]["urls"]] == in_file_order
    assert blobs[digest["shared"]] == {
        "digest": digest["shared"],
        "size": 6,
        "urls": blobs[digest["shared"]]["urls"],
    }
    assert blobs[digest["layer"]] == {
        "digest": digest["layer"],
        "size": 5,
        "urls": [],
        "compressed_layers": [{"diff_id": "sha256:" + "d" * 64, "compressor": "z"}],
    }
    assert blobs[digest["alone"]] == {"digest": digest["alone"], "size": 5, "urls": []}
    assert blobs[digest["stamped"]]["urls"] == []  # a file stamp names no blob
    assert upkeep.blob_names(blobs[digest["layer"]]) == [f"gzip (z) of layer sha256:{'d' * 64}"]
    assert upkeep.blob_names(blobs[digest["shared"]]) == blobs[digest["shared"]]["urls"]
    assert upkeep.blob_names({"urls": ["u"], "compressed_layers": [{"compressor": "c", "diff_id": "i"}]}) == [
        "u",
        "gzip (c) of layer i",
    ]


def test_the_size_counts_the_caches_own_folders_files_only(cache: Cache, tmp_path: Path) -> None:
    assert upkeep.listing(cache) == {"root": str(cache.root), "blobs": [], "size": 0}
    _blob(cache, b"12345")
    _file(cache.root / "tmp" / "deep" / "f", b"123")
    _file(cache.root / "other-tool" / "big", b"0" * 1000)  # not in the layout
    _file(tmp_path / "outside", b"0" * 1000)
    os.symlink(tmp_path / "outside", cache.root / "tmp" / "link")  # counted as itself, never its target
    (cache.root / "locks").write_text("12")  # a file where a folder is: no folder, nothing counted
    assert upkeep.listing(cache)["size"] == 8


# -- prune ---------------------------------------------------------------------------------


def test_prune_removes_temp_files_over_an_hour_old(cache: Cache) -> None:
    old = _aged(_file(cache.root / "tmp" / "1-ab.part"), 3601)
    hour = _aged(_file(cache.root / "tmp" / "2-ab.part"), 3600)
    old_dir = cache.root / "tmp" / "3-cd.lifecycle"
    _file(old_dir / "sub" / "f")
    _aged(old_dir, 7200)
    foreign = _aged(_file(cache.root / "tmp" / "session.sqlite"), 7200)
    # dated ahead of the clock (a shared cache written from a machine whose clock runs fast):
    # not an hour old, so another process may still be writing it
    ahead = _aged(_file(cache.root / "tmp" / "4-ef.part"), -600)
    removed = upkeep.prune(cache)
    assert _names(cache, removed) == ["tmp/1-ab.part", "tmp/3-cd.lifecycle"]
    assert not old.exists() and not old_dir.exists() and hour.exists() and foreign.exists()
    assert ahead.exists()


def test_prune_removes_records_that_are_damaged_or_lost_their_blob(cache: Cache) -> None:
    kept_blob = _blob(cache, b"kept")
    gone_blob = _blob(cache, b"gone")
    cache.remember(TagDigest("docker://r/a:1", digest=digest_of(b"kept"), size=4))
    cache.remember(TagDigest("docker://r/a:2", digest=digest_of(b"gone"), size=4))
    cache.remember(RegistryEndpoint("registry.example", scheme="https"))
    gone_blob.unlink()
    damaged = cache.record_path(UrlAnswer, "https://x.invalid/")
    damaged.write_text("{")
    writing = _file(beside(damaged), b"{")
    old = [_file(cache.root / folder / f"{'a' * 64}.json") for folder in ("index", "stamps")]
    removed = upkeep.prune(cache)
    assert sorted(removed) == sorted(
        [str(cache.record_path(TagDigest, "docker://r/a:2")), str(damaged), *map(str, old)]
    )
    assert writing.exists()  # a record being written is left to its writer
    assert cache.recall(TagDigest, "docker://r/a:1") is not None and kept_blob.exists()
    assert cache.recall(RegistryEndpoint, "registry.example") is not None


def test_prune_removes_unnamed_blobs_unused_for_the_days_given(cache: Cache) -> None:
    blobs = {
        name: _blob(cache, name.encode())
        for name in ("old", "read30", "modified30", "read", "modified", "named")
    }
    _aged(blobs["old"], 30 * DAY + 1)
    _aged(blobs["read30"], 30 * DAY + 1, atime=30 * DAY)  # each time exactly at the bound: kept
    _aged(blobs["modified30"], 30 * DAY, atime=30 * DAY + 1)
    _aged(blobs["read"], 90 * DAY, atime=5)  # read recently
    _aged(blobs["modified"], 5, atime=90 * DAY)
    _aged(blobs["named"], 90 * DAY)
    cache.remember(TagDigest("docker://r/a:1", digest=digest_of(b"named"), size=5))
    assert upkeep.prune(cache) == [str(blobs["old"])]  # 30 days by default
    assert upkeep.prune(cache, older_than_days=30) == []
    assert sorted(upkeep.prune(cache, older_than_days=29.5)) == sorted(
        [str(blobs["read30"]), str(blobs["modified30"])]
    )
    assert all(blobs[name].exists() for name in ("read", "modified", "named"))
    assert sorted(upkeep.prune(cache, older_than_days=0)) == sorted(
        [str(blobs["read"]), str(blobs["modified"])]
    )


def test_prune_removes_lifecycles_unused_for_the_days_given(cache: Cache) -> None:
    def lifecycle(name: str, *ages: int) -> Path:
        directory = cache.root / "lifecycles" / f"{name * 64}-unix"
        _file(directory / "layer.tar")
        for number, age in enumerate(ages):
            _aged(_file(directory / f"{number}.json"), age)
        return directory

    stale = lifecycle("a", 30 * DAY + 1)
    day30 = lifecycle("b", 30 * DAY)
    mixed = lifecycle("c", 90 * DAY, 10)  # the newest of its metadata counts
    empty = lifecycle("d")
    foreign = _file(cache.root / "lifecycles" / "README")
    assert _names(cache, upkeep.prune(cache)) == sorted(
        str(p.relative_to(cache.root)) for p in (stale, empty)
    )
    assert day30.exists() and mixed.exists() and foreign.exists()


def test_prune_looks_only_at_the_caches_own_blob_names(cache: Cache, tmp_path: Path) -> None:
    real = _aged(_blob(cache, b"real"), 90 * DAY)
    foreign = [
        _file(cache.root / "blobs" / "thumbnails" / "a.png"),
        _file(cache.root / "blobs" / "sha256" / "short"),
        _file(cache.root / "blobs" / "sha512" / ("a" * 64)),  # a sha256 length under sha512
        _file(cache.root / "blobs" / "sha256" / ("a" * 128)),
    ]
    sha512 = _file(cache.root / "blobs" / "sha512" / ("b" * 128))
    for path in (*foreign, sha512):
        _aged(path, 90 * DAY)
    _file(tmp_path / "elsewhere" / ("c" * 128))
    _aged(tmp_path / "elsewhere" / ("c" * 128), 90 * DAY)
    assert sorted(upkeep.prune(cache)) == sorted([str(real), str(sha512)])
    assert all(p.exists() for p in foreign)
    # A layout folder (or an algorithm's) that is a link is not followed.
    shutil.rmtree(cache.root / "blobs" / "sha512")
    os.symlink(tmp_path / "elsewhere", cache.root / "blobs" / "sha512")
    os.rmdir(cache.root / "tmp")
    _aged(_file(tmp_path / "other-tmp" / "1-ab.part"), 7200)
    os.symlink(tmp_path / "other-tmp", cache.root / "tmp")
    assert upkeep.prune(cache) == []
    assert (tmp_path / "elsewhere" / ("c" * 128)).exists() and (tmp_path / "other-tmp" / "1-ab.part").exists()


# -- clear ---------------------------------------------------------------------------------


def test_clear_removes_the_caches_own_and_the_emptied_folders(cache: Cache, tmp_path: Path) -> None:
    blob = _blob(cache, b"x")
    _blob(cache, b"y")
    cache.remember(RegistryEndpoint("registry.example", scheme="https"))
    lifecycle = _file(cache.root / "lifecycles" / f"{'a' * 64}-windows" / "layer.tar").parent
    lock = _file(cache.root / "locks" / f"{'b' * 64}.lock")
    tmp = _file(cache.root / "tmp" / "1-ab.part")
    sha512 = _file(cache.root / "blobs" / "sha512" / ("c" * 128))
    old = _file(cache.root / "index" / f"{'d' * 64}.json")
    removed = upkeep.clear(cache)
    assert blob.parent.as_posix() + "/" + blob.name in removed
    for path in (lifecycle, lock, tmp, sha512, old):
        assert str(path) in removed and not path.exists()
    assert len(removed) == 8
    assert not cache.root.exists() or list(cache.root.iterdir()) == []
    assert upkeep.clear(cache) == []  # nothing left, nothing to fail on


def test_clear_keeps_what_is_not_the_caches_and_the_folders_holding_it(cache: Cache, tmp_path: Path) -> None:
    _blob(cache, b"x")
    _file(cache.root / "blobs" / "sha256" / "notes")
    _file(cache.root / "records" / "notes.json")
    (cache.root / "records" / "sha256").mkdir()  # another tool's (empty) folder: kept
    _file(tmp_path / "elsewhere" / f"{'a' * 64}.lock")
    os.symlink(tmp_path / "elsewhere", cache.root / "locks")
    (tmp_path / "empty").mkdir()
    os.symlink(tmp_path / "empty", cache.root / "lifecycles")
    link = cache.root / "tmp"
    os.symlink(tmp_path / "elsewhere" / f"{'a' * 64}.lock", cache.root / "stamps")
    _file(tmp_path / "tmpdir" / "keep")
    link.mkdir(exist_ok=True)
    os.symlink(tmp_path / "tmpdir", link / "1-ab.part")  # one of its names, but a link: unlinked only
    removed = upkeep.clear(cache)
    assert _names(cache, removed) == sorted(["tmp/1-ab.part", f"blobs/sha256/{digest_of(b'x')[7:]}"])
    assert sorted(str(p.relative_to(cache.root)) for p in cache.root.rglob("*")) == [
        "blobs",
        "blobs/sha256",
        "blobs/sha256/notes",
        "lifecycles",
        "locks",
        "records",
        "records/notes.json",
        "records/sha256",
        "stamps",
    ]
    assert (tmp_path / "tmpdir" / "keep").exists() and (tmp_path / "elsewhere" / f"{'a' * 64}.lock").exists()
    assert (tmp_path / "empty").is_dir()


def test_removing_what_is_already_gone_is_no_error(tmp_path: Path) -> None:
    assert upkeep._remove(tmp_path / "gone") == str(tmp_path / "gone")


def test_an_entry_that_cannot_be_removed_does_not_stop_the_rest(cache: Cache, tmp_path: Path) -> None:
    # A lifecycle folder holding a busy mount point (rmdir fails: EBUSY): clear removes what it
    # can there and goes on with the rest. The mount exists only in the subprocess's namespace.
    blob = _blob(cache, b"x")
    lifecycle = cache.root / "lifecycles" / f"{'a' * 64}-unix"
    busy = lifecycle / "busy"
    busy.mkdir(parents=True)
    _file(lifecycle / "layer.tar")
    code = (
        "import json, sys; from cnbkit import Cache; from cnbkit.cache import upkeep\n"
        "print(json.dumps(upkeep.clear(Cache(sys.argv[1]))))"
    )
    done = in_namespace(_TMPFS, "1m", str(busy), sys.executable, "-c", code, str(cache.root))
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(done.stdout)) == sorted([str(blob), str(lifecycle)])
    assert not blob.exists() and not (lifecycle / "layer.tar").exists()
