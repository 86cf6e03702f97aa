"""What an error quotes of a hostile list or text is capped (cnbkit.redact.listing and clip):
a 10,000-entry index, a layout of 10,000 tags, an archive of 10,000 top directories each give
one short line ("a, b, c ... and 9,990 more"), not one line of a hundred kilobytes.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import one_line_error, run_cli
from tests.images import ImageSpec, write_image
from tests.lifecycles import Entry, descriptor, write_tar

MANY = 10_000
# A capped line: the start of the message, ten items of at most 256 characters, the count.
SHORT = 4_000


def _layout_of_many(tmp_path: Path, entry: object) -> Path:
    """A layout whose index.json lists one image ``MANY`` times, each entry made by ``entry(i)``."""
    layout = tmp_path / "L"
    image = write_image(layout, ImageSpec([[]], "linux/arm64"), tag=None)
    base = image.to_json()
    manifests = [{**base, **entry(i)} for i in range(MANY)]  # type: ignore[operator]
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))
    return layout


def test_an_index_of_ten_thousand_platforms_is_refused_in_a_short_line(tmp_path: Path) -> None:
    layout = _layout_of_many(
        tmp_path, lambda i: {"platform": {"os": "linux", "architecture": "arm64", "variant": f"v{i}"}}
    )
    line = one_line_error(run_cli("resolve", f"oci:{layout}", "--platform", "linux/s390x"))
    assert len(line) < SHORT, len(line)
    assert "has no linux/s390x; it has linux/arm64/v0, linux/arm64/v1," in line, line[:300]
    assert f"linux/arm64/v9 and {MANY - 10:,} more (choose one with --platform)" in line, line[-300:]


def test_a_layout_of_ten_thousand_tags_is_refused_in_a_short_line(tmp_path: Path) -> None:
    layout = _layout_of_many(
        # the first tag is 5,000 characters long: it is quoted cut short too
        tmp_path,
        lambda i: {
            "annotations": {"org.opencontainers.image.ref.name": f"t{i}" + ("x" * 5000 if i == 0 else "")}
        },
    )
    line = one_line_error(run_cli("resolve", f"oci:{layout}:missing"))
    assert len(line) < SHORT, len(line)
    assert "no image tagged 'missing' in the layout (tags: t0xxx" in line, line[:300]
    assert f"xxx..., t1, t2, t3, t4, t5, t6, t7, t8, t9 and {MANY - 10:,} more)" in line, line[-300:]


def test_an_archive_of_ten_thousand_top_directories_is_refused_in_a_short_line(tmp_path: Path) -> None:
    tops = [Entry(f"top{i:05}/", "dir") for i in range(MANY)]
    archive = write_tar(tmp_path / "l.tgz", [Entry("lifecycle.toml", data=descriptor()), *tops])
    line = one_line_error(run_cli("resolve", str(archive)))
    assert len(line) < SHORT, len(line)
    assert "(top00000/, top00001/, top00002/, top00003/, top00004/, top00005/, top00006/, " in line
    assert f"top00009/ and {MANY - 10:,} more)" in line, line
