"""Locators: every scheme parses, and no password ever shows in str(), repr() or messages."""

from __future__ import annotations

from pathlib import Path

import cnbkit
import pytest


@pytest.mark.parametrize(
    ("uri", "scheme", "rest"),
    [
        ("lifecycle.tgz", None, "lifecycle.tgz"),
        ("/abs/l.tgz", None, "/abs/l.tgz"),
        ("C:\\\\l.tgz", None, "C:\\\\l.tgz"),
        ("file:///abs/l.tgz", "file", "/abs/l.tgz"),
        ("file://rel/l.tgz", "file", "rel/l.tgz"),
        ("https://h/x.tgz#sha256=ab", "https", "h/x.tgz#sha256=ab"),
        ("docker://buildpacksio/lifecycle:0.21.0", "docker", "buildpacksio/lifecycle:0.21.0"),
        ("docker:/buildpacksio/lifecycle", "docker", "buildpacksio/lifecycle"),
        ("docker:///buildpacksio/lifecycle", "docker", "buildpacksio/lifecycle"),
        ("oci:layout:tag", "oci", "layout:tag"),
        ("ACME://thing", "acme", "thing"),
    ],
)
def test_parse(uri: str, scheme: str | None, rest: str) -> None:
    loc = cnbkit.parse_locator(uri, "/base")
    assert (loc.raw, loc.scheme, loc.rest, loc.base_dir) == (uri, scheme, rest, Path("/base"))


def test_local_paths_resolve_against_base_dir() -> None:
    assert cnbkit.parse_locator("sub/l.tgz", "/base").local_path() == Path("/base/sub/l.tgz")
    assert cnbkit.parse_locator("file://sub/l.tgz", "/base").local_path() == Path("/base/sub/l.tgz")
    assert cnbkit.parse_locator("file:///abs/l.tgz", "/base").local_path() == Path("/abs/l.tgz")


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://alice:hunter2@h/l.tgz", "https://alice:***@h/l.tgz"),
        ("https://ghp_T0KEN@h/l.tgz", "https://***@h/l.tgz"),
        ("https://h/l.tgz?X-Amz-Signature=abc&x=1", "https://h/l.tgz?X-Amz-Signature=***&x=1"),
        ("https://h/l.tgz?token=abc", "https://h/l.tgz?token=***"),
    ],
)
def test_secrets_are_redacted(uri: str, shown: str) -> None:
    loc = cnbkit.parse_locator(uri)
    assert str(loc) == shown
    assert "hunter2" not in repr(loc) and "T0KEN" not in repr(loc) and "abc" not in repr(loc)
    assert loc.raw == uri  # kept for the resolver that needs it


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", cnbkit.Platform("linux", "amd64")),
        ("linux/x86_64", cnbkit.Platform("linux", "amd64")),
        ("linux/aarch64", cnbkit.Platform("linux", "arm64")),
        ("linux/arm64/v8", cnbkit.Platform("linux", "arm64", "v8")),
        ("Windows/AMD64", cnbkit.Platform("windows", "amd64")),
    ],
)
def test_platforms(text: str, expected: cnbkit.Platform) -> None:
    assert cnbkit.parse_platform(text) == expected


def test_platform_matching_follows_containerd() -> None:
    arm64 = cnbkit.parse_platform("linux/arm64")
    assert arm64.matches(cnbkit.parse_platform("linux/arm64/v8"))
    assert cnbkit.parse_platform("linux/arm64/v8").matches(cnbkit.Platform("linux", "arm64"))
    assert not arm64.matches(cnbkit.parse_platform("linux/arm64/v9"))
    assert not arm64.matches(cnbkit.parse_platform("linux/amd64"))
    with pytest.raises(cnbkit.UsageError):
        cnbkit.parse_platform("linux")
