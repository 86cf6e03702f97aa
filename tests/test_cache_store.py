"""The cache's store (:class:`cnbkit.Cache`) and local-file stamps, rule by rule, in-process.

Fast on purpose: the mutation run of cache/store.py and cache/stamps.py starts here
(benchmarks/mutation.py); the CLI's view of the same cache is in tests/test_cache.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cnbkit import Cache, CnbkitError
from cnbkit.cache import store
from cnbkit.cache.locks import FileLock
from cnbkit.cache.records import FileStamp, RegistryEndpoint, TagDigest, UrlAnswer
from cnbkit.cache.stamps import remember_digest, remembered_digest
from cnbkit.errors import WriteError

from tests.conftest import digest_of


def _blob(cache: Cache, data: bytes) -> str:
    with cache.writer() as writer:
        writer.write(data)
        writer.commit()
    return digest_of(data)


# -- where things live ---------------------------------------------------------------------


def test_the_cache_dir_is_the_variable_else_the_users_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CNBKIT_CACHE_DIR", "~/cnbkit-cache")
    assert store.default_cache_dir() == tmp_path / "home" / "cnbkit-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for unset in ("", None):
        if unset is None:
            monkeypatch.delenv("CNBKIT_CACHE_DIR")
        else:
            monkeypatch.setenv("CNBKIT_CACHE_DIR", unset)
        assert store.default_cache_dir() == tmp_path / "xdg" / "cnbkit"


def test_paths_under_the_root(tmp_path: Path) -> None:
    cache = Cache(str(tmp_path / "c"))
    digest = "sha256:" + "ab" * 32
    assert cache.root == tmp_path / "c"
    assert cache.blob_path(digest) == tmp_path / "c" / "blobs" / "sha256" / ("ab" * 32)
    assert cache.lifecycle_dir("k-unix") == tmp_path / "c" / "lifecycles" / "k-unix"
    key = "https://example.invalid/a.tgz"
    name = f"url.{hashlib.sha256(key.encode()).hexdigest()}.json"
    assert cache.record_path(UrlAnswer, key) == tmp_path / "c" / "records" / name
    assert not (tmp_path / "c").exists()  # nothing is made until written
    with pytest.raises(CnbkitError):
        cache.blob_path("sha256:../../etc/passwd")


def test_a_key_that_is_not_utf8_is_a_key_like_any_other(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    key = os.fsdecode(b"file:/tmp/\xff.tgz")
    expected = hashlib.sha256(b"file:/tmp/\xff.tgz").hexdigest()
    assert cache.record_path(FileStamp, key).name == f"file.{expected}.json"
    cache.remember(FileStamp(key, stamp="1:2:3:4", digest="sha256:" + "a" * 64, size=1))
    assert cache.recall(FileStamp, key) == FileStamp(
        key, stamp="1:2:3:4", digest="sha256:" + "a" * 64, size=1
    )
    lock = cache.acquire(key, "testing")
    lock.release()


def test_a_blob_is_a_file_at_its_digest(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    digest = digest_of(b"x")
    assert not cache.has_blob(digest)
    cache.blob_path(digest).mkdir(parents=True)  # a directory there is no blob
    assert not cache.has_blob(digest)
    cache.blob_path(digest).rmdir()
    assert _blob(cache, b"x") == digest
    assert cache.has_blob(digest) and cache.blob_path(digest).read_bytes() == b"x"


# -- temp files ----------------------------------------------------------------------------


def test_temp_paths_are_fresh_and_swept(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    first, second = cache.new_temp_path(".part"), cache.new_temp_path()
    assert first.parent == second.parent == tmp_path / "c" / "tmp" and first.parent.is_dir()
    assert first.name.startswith(f"{os.getpid()}-") and first.name.endswith(".part")
    assert first != second and not first.exists()
    assert {first, second} <= store._TEMPS
    first.write_bytes(b"left behind")
    store._sweep()
    assert not first.exists() and not second.exists()


def test_a_temp_file_left_at_exit_is_removed(tmp_path: Path) -> None:
    # The first temp path of a process registers the sweep; the file goes when it exits.
    code = (
        "import sys; from cnbkit import Cache\n"
        "p = Cache(sys.argv[1]).new_temp_path('.part'); p.write_bytes(b'x'); print(p)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "c")], capture_output=True, text=True, check=True
    )
    left = Path(done.stdout.strip())
    assert left.parent == tmp_path / "c" / "tmp" and not left.exists()


# -- locks ---------------------------------------------------------------------------------


def test_a_lock_held_elsewhere_is_waited_for_with_one_notice(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")  # its root does not exist yet: acquire makes locks/
    first = cache.acquire("https://u:secret@example.invalid/x", "downloading x")
    lock_files = list((tmp_path / "c" / "locks").iterdir())
    assert len(lock_files) == 1 and "secret" not in lock_files[0].name
    assert not FileLock(lock_files[0]).acquire(blocking=False)  # it is really held
    notices: list[str] = []
    got: list[object] = []
    waiter = threading.Thread(
        target=lambda: got.append(
            cache.acquire("https://u:secret@example.invalid/x", "downloading x", notices.append)
        ),
        daemon=True,  # a failing test must not wait for it at exit
    )
    waiter.start()
    deadline = time.monotonic() + 30
    while not notices and time.monotonic() < deadline:
        time.sleep(0.01)
    assert notices == ["waiting for another cnbkit process that is downloading x"]
    assert got == []  # still waiting
    first.release()
    waiter.join(60)
    assert len(got) == 1
    # Held by the waiter now; one without a notice callback waits silently.
    silent: list[object] = []
    other = threading.Thread(
        target=lambda: silent.append(cache.acquire("https://u:secret@example.invalid/x", "x")), daemon=True
    )
    other.start()
    time.sleep(0.05)
    assert silent == []
    got[0].release()  # type: ignore[attr-defined]
    other.join(60)
    assert len(silent) == 1
    silent[0].release()  # type: ignore[attr-defined]


def test_a_free_lock_is_taken_without_a_notice(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    notices: list[str] = []
    lock = cache.acquire("a", "doing a", notices.append)
    other = cache.acquire("b", "doing b", notices.append)  # another key, another lock
    assert notices == []
    lock.release()
    other.release()


# -- records -------------------------------------------------------------------------------


def test_a_url_answer_is_stored_redacted_with_its_time(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    digest = _blob(cache, b"an archive")
    url = "https://user:secret@example.invalid/a.tgz?token=abc123"
    cache.remember(UrlAnswer(url, digest=digest, size=10, etag='"e"', fetched=12.5))
    found = cache.recall(UrlAnswer, url)
    assert found is not None and found.fetched == 12.5 and found.etag == '"e"'
    assert "secret" not in found.key and "abc123" not in found.key
    assert "secret" not in cache.record_path(UrlAnswer, url).read_text()
    before = time.time()
    cache.remember(UrlAnswer(url, digest=digest, size=10))
    found = cache.recall(UrlAnswer, url)
    assert found is not None and before <= found.fetched <= time.time()
    # Other kinds keep their key as given.
    cache.remember(RegistryEndpoint("u:secret@host", scheme="https"))
    assert cache.recall(RegistryEndpoint, "u:secret@host") == RegistryEndpoint(
        "u:secret@host", scheme="https"
    )


def test_a_record_is_found_only_while_its_blob_is_there(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    digest = _blob(cache, b"a manifest")
    record = TagDigest("docker://r/app:1", digest=digest, size=10)
    cache.remember(record)
    assert cache.recall(TagDigest, "docker://r/app:1") == record
    cache.blob_path(digest).unlink()
    assert cache.recall(TagDigest, "docker://r/app:1") is None
    # A record that names no blob needs none.
    stamp = FileStamp("file:/x", stamp="s", digest=digest, size=1)
    cache.remember(stamp)
    assert cache.recall(FileStamp, "file:/x") == stamp


def test_an_unreadable_or_damaged_record_is_a_miss(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    assert cache.recall(TagDigest, "never written") is None
    cache.record_path(TagDigest, "a dir").mkdir(parents=True)  # OSError on read
    assert cache.recall(TagDigest, "a dir") is None
    # A digest that is not one (a hand edit): a miss, not an error escaping.
    path = cache.record_path(TagDigest, "bad")
    path.write_text(json.dumps({"kind": "tag", "format": 1, "key": "bad", "digest": "sha256:zz", "size": 1}))
    assert cache.recall(TagDigest, "bad") is None


def test_write_json_is_atomic_sorted_and_indented(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    path = tmp_path / "c" / "lifecycles" / "k" / "lifecycle.json"
    cache.write_json(path, {"b": [2], "a": 1})
    assert path.read_text() == '{\n "a": 1,\n "b": [\n  2\n ]\n}'
    cache.write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["lifecycle.json"]


def test_a_directory_that_cannot_be_made_is_a_write_error(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    for name in ("records", "tmp", "blobs", "lifecycles"):
        (root / name).write_text("a file in the way")
    cache = Cache(root)
    with pytest.raises(WriteError, match=f"cannot write {root}/records"):
        cache.remember(RegistryEndpoint("h", scheme="https"))
    with pytest.raises(WriteError, match=f"cannot write {root}/tmp"):
        cache.new_temp_path()
    with pytest.raises(WriteError, match=f"cannot write {root}/lifecycles/k"):
        cache.write_json(root / "lifecycles" / "k" / "x.json", {})
    (root / "tmp").unlink()
    with pytest.raises(WriteError, match=f"cannot write {root}/blobs/sha256"), cache.writer() as writer:
        writer.write(b"x")
        writer.commit()


# -- local file stamps (cache/stamps.py) -----------------------------------------------------


def test_a_local_files_digest_is_remembered_until_it_changes(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    local = tmp_path / "l.tgz"
    local.write_bytes(b"one")
    assert remembered_digest(cache, local) is None
    remember_digest(cache, local, digest_of(b"one"), 3)
    assert remembered_digest(cache, local) == digest_of(b"one")
    # Found by its resolved path: another spelling of the same file is the same file.
    assert remembered_digest(cache, tmp_path / "." / "l.tgz") == digest_of(b"one")
    stamp = cache.recall(FileStamp, f"file:{local.resolve()}")
    st = local.stat()
    assert stamp is not None and stamp.size == 3
    assert stamp.stamp == f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"
    # Any change to its stat (here only the mtime, same size) and it is read again: a newer
    # mtime, or an older one (an older copy put back with its times, `cp -p`).
    os.utime(local, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert remembered_digest(cache, local) is None
    remember_digest(cache, local, digest_of(b"one"), 3)
    assert remembered_digest(cache, local) == digest_of(b"one")
    os.utime(local, ns=(st.st_atime_ns, st.st_mtime_ns - 10**9))
    assert remembered_digest(cache, local) is None
    local.unlink()
    assert remembered_digest(cache, local) is None  # gone: a miss, not an OSError


def test_stamps_are_an_optimisation_only(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    inside = tmp_path / "c" / "blobs" / "f"
    inside.parent.mkdir(parents=True)
    inside.write_bytes(b"x")
    remember_digest(cache, inside, digest_of(b"x"), 1)  # the cache's own files: never stamped
    assert not (tmp_path / "c" / "records").exists()
    remember_digest(cache, tmp_path / "missing", digest_of(b"x"), 1)  # OSError: nothing
    (tmp_path / "c" / "records").write_text("a file in the way")  # WriteError: nothing
    outside = tmp_path / "o"
    outside.write_bytes(b"x")
    remember_digest(cache, outside, digest_of(b"x"), 1)
    assert remembered_digest(cache, outside) is None
