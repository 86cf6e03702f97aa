"""Hostile OCI layouts through the CLI: symlinks under an export target, FIFOs where files
should be, and an index fan-out. Each is refused in one line (or answered) quickly, nothing
written outside the target."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cnbkit.transport.layout import LayoutWriter

from tests.builder_support import builder_project
from tests.conftest import one_line_error, run_cli
from tests.images import Entry, ImageSpec, write_image

# A hang would never end: a bound that a correct run meets by far.
NO_HANG = 60


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A builder.toml with a file lifecycle, one buildpack and a build image in a layout."""
    return builder_project(tmp_path / "project")


def _create(target: Path, project: Path) -> str:
    config = str(project / "builder.toml")
    result = run_cli("builder", "create", f"oci:{target}:t", "--config", config, timeout=NO_HANG)
    return one_line_error(result)


@pytest.mark.parametrize("linked", ["blobs", "blobs/sha256"])
def test_export_never_writes_through_a_symlinked_blobs_directory(
    tmp_path: Path, project: Path, linked: str
) -> None:
    target = tmp_path / "out"
    LayoutWriter(target)  # an existing, empty layout
    elsewhere = tmp_path / "elsewhere"
    (target / linked).rename(elsewhere)
    (target / linked).symlink_to(elsewhere, target_is_directory=True)
    before = sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*"))
    error = _create(target, project)
    assert f"{linked} is a symlink" in error and str(target) in error
    assert sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*")) == before


@pytest.mark.parametrize("name", ["index.json", "oci-layout"])
def test_export_reads_no_symlinked_index_or_marker(tmp_path: Path, project: Path, name: str) -> None:
    target = tmp_path / "out"
    LayoutWriter(target)
    outside = tmp_path / name
    (target / name).rename(outside)
    (target / name).symlink_to(outside)
    kept = outside.read_bytes()
    error = _create(target, project)
    assert f"{name} is a symlink" in error
    assert outside.read_bytes() == kept


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":", 1)[1]


@pytest.mark.parametrize("which", ["oci-layout", "index.json", "manifest", "config", "layer"])
def test_a_fifo_in_a_layout_is_refused_not_waited_on(tmp_path: Path, which: str) -> None:
    layout = tmp_path / "L"
    manifest = write_image(layout, ImageSpec([[Entry("cnb/lifecycle.toml", b"x")]]), tag="v1")
    body = json.loads(_blob(layout, manifest.digest).read_bytes())
    paths = {
        "oci-layout": layout / "oci-layout",
        "index.json": layout / "index.json",
        "manifest": _blob(layout, manifest.digest),
        "config": _blob(layout, body["config"]["digest"]),
        "layer": _blob(layout, body["layers"][0]["digest"]),
    }
    _fifo(paths[which])
    error = one_line_error(run_cli("resolve", f"oci:{layout}:v1", timeout=NO_HANG))
    assert "not a regular file" in error and "FIFO" in error


def test_export_into_a_layout_with_a_fifo_index_is_refused(tmp_path: Path, project: Path) -> None:
    target = tmp_path / "out"
    LayoutWriter(target)
    _fifo(target / "index.json")
    error = _create(target, project)
    assert "index.json is not a regular file (a FIFO)" in error
