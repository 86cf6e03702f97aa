"""Typed cache records: an older cnbkit's cache is ignored cleanly, one kind never read as another."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from cnbkit import Cache
from cnbkit.cache.records import (
    _TYPES,
    KINDS,
    FileStamp,
    PushedBlob,
    RegistryEndpoint,
    TagDigest,
    UrlAnswer,
    _annotation,
)

from tests.conftest import cli_json, digest_of, run_cli
from tests.lifecycles import make_lifecycle


def _old_name(key: str) -> str:
    # How cnbkit before typed records named an index/ or stamps/ file: sha256 of the key.
    return hashlib.sha256(key.encode()).hexdigest() + ".json"


def _old_stamp(path: Path, digest: str, size: int) -> dict[str, object]:
    """A stamps/ entry as the old code wrote it: the stat stamp in ``etag``."""
    st = path.stat()
    stamp = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"
    key = f"file:{path.resolve()}"
    return {"url": key, "digest": digest, "size": size, "etag": stamp, "last_modified": None, "fetched": 0.0}


def test_an_old_format_stamp_is_a_miss_never_misread(tmp_path: Path, cache_dir: Path) -> None:
    other = make_lifecycle(tmp_path / "other.tgz", binary=b"#!/bin/sh\necho other\n")
    wanted = make_lifecycle(tmp_path / "wanted.tgz")
    other_digest = cli_json("resolve", str(other), "--json", "--quiet")["digest"]
    # An older cnbkit's stamp, current for wanted.tgz's stat, naming other.tgz's (validated) lifecycle.
    stamps = cache_dir / "stamps"
    stamps.mkdir(exist_ok=True)
    old = _old_stamp(wanted, other_digest, other.stat().st_size)
    (stamps / _old_name(str(old["url"]))).write_text(json.dumps(old))
    index = cache_dir / "index"
    index.mkdir(exist_ok=True)
    (index / _old_name("https://example.invalid/x.tgz")).write_text(
        json.dumps({**old, "url": "https://example.invalid/x.tgz", "etag": '"abc"'})
    )

    resolved = cli_json("resolve", str(wanted), "--json", "--quiet")
    assert resolved["digest"] == digest_of(wanted.read_bytes()) != other_digest
    listed = cli_json("cache", "ls", "--json")
    assert all(blob["urls"] == [] for blob in listed["blobs"])  # the old index names nothing

    pruned = run_cli("cache", "prune")
    assert pruned.returncode == 0, pruned.stderr
    assert list(stamps.iterdir()) == [] and list(index.iterdir()) == []
    # The typed stamp written by the resolve is kept, and serves the next one.
    assert cli_json("resolve", str(wanted), "--json", "--quiet")["digest"] == resolved["digest"]


def test_a_record_of_one_kind_is_never_read_as_another(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    digest = "sha256:" + "a" * 64
    key = "registry.example:5000"
    cache.remember(PushedBlob(key, digest=digest, repository="team/app"))
    cache.remember(RegistryEndpoint(key, scheme="https"))
    pushed_record = cache.recall(PushedBlob, key)
    assert type(pushed_record) is PushedBlob and pushed_record == PushedBlob(
        key, digest=digest, repository="team/app"
    )
    assert cache.recall(RegistryEndpoint, key) == RegistryEndpoint(key, scheme="https")
    assert cache.recall(FileStamp, key) is None

    # Even a file of one kind put where another is looked for is a miss, not a misreading.
    pushed = cache.record_path(PushedBlob, key)
    for kind in (FileStamp, RegistryEndpoint, TagDigest):
        shutil.copyfile(pushed, cache.record_path(kind, key))
        assert cache.recall(kind, key) is None

    # Another format (an older or newer cnbkit), another kind (sorting before or after this
    # one), a damaged file, a field of the wrong type: misses. Each starts from a record that
    # is read back, so only the one change can make it a miss.
    cache.remember(RegistryEndpoint(key, scheme="https"))
    path = cache.record_path(RegistryEndpoint, key)
    data = json.loads(path.read_text())
    assert cache.recall(RegistryEndpoint, key) == RegistryEndpoint(key, scheme="https")
    for damaged in (
        {**data, "format": data["format"] - 1},
        {**data, "format": data["format"] + 1},
        {key: value for key, value in data.items() if key != "format"},
        {**data, "kind": "file"},
        {**data, "kind": "url"},
        {**data, "scheme": 443},
        {"kind": "registry-endpoint"},
    ):
        path.write_text(json.dumps(damaged))
        assert cache.recall(RegistryEndpoint, key) is None, damaged
    path.write_text("{not json")
    assert cache.recall(RegistryEndpoint, key) is None


def test_a_record_naming_a_blob_is_found_only_while_the_blob_is_there(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    with cache.writer() as writer:
        writer.write(b"a manifest")
        blob = writer.commit()
    digest = f"sha256:{blob.name}"
    cache.remember(TagDigest("docker://registry.example/app:1", digest=digest, size=10))
    assert cache.recall(TagDigest, "docker://registry.example/app:1") is not None
    blob.unlink()
    assert cache.recall(TagDigest, "docker://registry.example/app:1") is None


def test_a_url_answer_is_stamped_with_the_time_it_was_remembered(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    with cache.writer() as writer:
        writer.write(b"an archive")
        blob = writer.commit()
    url = "https://user:secret@example.invalid/lifecycle.tgz"
    before = time.time()
    cache.remember(UrlAnswer(url, digest=f"sha256:{blob.name}", size=10))
    after = time.time()
    stored = json.loads(cache.record_path(UrlAnswer, url).read_text())
    assert before <= stored["fetched"] <= after
    assert "secret" not in json.dumps(stored)  # the key is stored redacted


def test_every_field_of_every_kind_has_its_type_checked() -> None:
    # A field whose annotation the decoder does not know would take any value.
    for kind in KINDS.values():
        for name in kind._fields:
            assert _annotation(kind, name) in _TYPES, (kind.__name__, name, _annotation(kind, name))


def test_a_record_written_in_format_1_is_still_read(tmp_path: Path) -> None:
    # The file as cnbkit has written it since typed records began: a warm cache stays warm
    # across upgrades until FORMAT is bumped on purpose (and this test with it).
    cache = Cache(tmp_path / "cache")
    key = "registry.example:5000"
    path = cache.record_path(RegistryEndpoint, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": 1, "key": key, "kind": "registry-endpoint", "scheme": "https"}))
    assert cache.recall(RegistryEndpoint, key) == RegistryEndpoint(key, scheme="https")
