"""The ``oci-layout`` resolver as an image source: what it claims, and what it refuses.

The lifecycle-out-of-an-image path (``cnbkit resolve oci:...``) is tests/test_resolve_image.py;
here the plugin is driven through ``context.resolve_image``, as the builder drives it.
"""

from __future__ import annotations

from pathlib import Path

import cnbkit
import pytest
from cnbkit.api import new_context
from cnbkit.options import Options

from tests.conftest import cli_json
from tests.images import Entry, ImageSpec, write_image, write_index

_HELLO = [Entry("hello.txt", b"hello\n", mode=0o644)]


def _context(cache_dir: Path, base_dir: Path | None = None, platform: str | None = None) -> cnbkit.Context:
    return new_context(Options.build(cache_dir=cache_dir, base_dir=base_dir, platform=platform))


def test_the_plugin_is_built_in_and_lists_its_claims() -> None:
    rows = {row["name"]: row for row in cli_json("plugins", "--json")}
    row = rows["oci-layout"]
    assert row["module"] == "cnbkit.resolvers.oci_layout"
    assert row["distribution"] == "cnbkit"
    assert row["claims"] == ["oci:DIR[:TAG]", "oci:DIR@sha256:HEX", "DIR holding an oci-layout file"]


def test_tag_digest_and_bare_directory_name_the_same_image(tmp_path: Path, cache_dir: Path) -> None:
    manifest = write_image(tmp_path / "lay", ImageSpec([_HELLO]), tag="v1")
    context = _context(cache_dir, base_dir=tmp_path)
    by_tag = context.resolve_image("oci:lay:v1")  # relative to the base directory
    by_digest = context.resolve_image(f"oci:{tmp_path / 'lay'}@{manifest.digest}")
    bare = context.resolve_image(str(tmp_path / "lay"))
    untagged = context.resolve_image("oci:lay")
    assert {by_tag.digest, by_digest.digest, bare.digest, untagged.digest} == {manifest.digest}
    assert by_tag.reference.endswith("lay:v1")


def test_a_plain_directory_is_not_claimed(tmp_path: Path, cache_dir: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(cnbkit.NoResolverError, match=r"no plugin supplies an image for .*plain"):
        _context(cache_dir).resolve_image(str(tmp_path / "plain"))


def test_an_index_is_resolved_to_the_target_platform(tmp_path: Path, cache_dir: Path) -> None:
    specs = [ImageSpec([_HELLO], platform="linux/amd64"), ImageSpec([_HELLO], platform="linux/arm64")]
    write_index(tmp_path / "multi", specs, attestation=True)
    arm = _context(cache_dir, platform="linux/arm64").resolve_image(f"oci:{tmp_path / 'multi'}")
    amd = _context(cache_dir, platform="linux/amd64").resolve_image(f"oci:{tmp_path / 'multi'}")
    assert str(arm.platform) == "linux/arm64" and str(amd.platform) == "linux/amd64"
    with pytest.raises(cnbkit.CnbkitError, match=r"has no linux/s390x; it has linux/amd64, linux/arm64"):
        _context(cache_dir, platform="linux/s390x").resolve_image(f"oci:{tmp_path / 'multi'}")


def test_two_tags_and_none_given_lists_them(tmp_path: Path, cache_dir: Path) -> None:
    write_image(tmp_path / "two", ImageSpec([_HELLO]), tag="a")
    write_image(tmp_path / "two", ImageSpec([_HELLO, _HELLO]), tag="b")
    with pytest.raises(cnbkit.CnbkitError, match=r"holds 2 images; name one with .*\(tags: a, b\)"):
        _context(cache_dir).resolve_image(f"oci:{tmp_path / 'two'}")
    with pytest.raises(cnbkit.CnbkitError, match=r"no image tagged 'c' in the layout \(tags: a, b\)"):
        _context(cache_dir).resolve_image(f"oci:{tmp_path / 'two'}:c")


@pytest.mark.parametrize("digest", ["sha256:../../etc/passwd", "sha256:" + "A" * 64, "md5:abc"])
def test_a_traversal_or_malformed_digest_is_refused_before_any_path(
    tmp_path: Path, cache_dir: Path, digest: str
) -> None:
    # No layout exists at all: the refusal comes before the directory is even looked at.
    with pytest.raises(cnbkit.UsageError, match=r"digest"):
        _context(cache_dir).resolve_image(f"oci:{tmp_path / 'none'}@{digest}")
