"""Assembly invariants: the same inputs give the same builder digest, whatever the content;
a changed input changes it; base layers are referenced as stored."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import cnbkit
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builder_support import build_image, builder_toml, buildpack
from tests.lifecycles import make_lifecycle


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("project")
    make_lifecycle(root / "lifecycle.tgz")
    buildpack(root / "bp")
    build_image(root / "build")
    builder_toml(root / "builder.toml", lifecycle='uri = "lifecycle.tgz"')
    yield root


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000), st.sampled_from([0o644, 0o755, 0o600]))
def test_same_inputs_same_digest_and_content_matters(project: Path, data: bytes, mode: int) -> None:
    work = project.parent / "work"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(project, work, symlinks=True)
    payload = work / "bp" / "data.bin"
    payload.write_bytes(data)
    payload.chmod(mode)
    cache = {"cache_dir": str(project.parent / "cache"), "quiet": True}
    first = cnbkit.create_builder(work / "builder.toml", f"oci:{work / 'a'}:t", **cache)
    second = cnbkit.create_builder(work / "builder.toml", f"oci:{work / 'b'}:t", **cache)
    assert first.digest == second.digest
    payload.write_bytes(data + b"!")
    third = cnbkit.create_builder(work / "builder.toml", f"oci:{work / 'c'}:t", **cache)
    assert third.digest != first.digest
    # The build image's layer is referenced with its own digest, never recompressed.
    assert first.image.records[0].digest == first.image.base.manifest.layers[0].digest
