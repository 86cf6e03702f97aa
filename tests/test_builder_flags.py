"""``cnbkit builder create``'s pack flags through the CLI: ``--label`` (read back by skopeo)
and ``--tag`` (more names for one builder at the target)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.builder_support import builder_project, builder_toml, buildpack
from tests.services.skopeo import skopeo
from tests.test_builder_create import cli, create_json


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A builder.toml with a file lifecycle, one buildpack and a build image in a layout."""
    return builder_project(tmp_path / "project")


def _inspect(ref: str, workdir: Path) -> Any:
    return json.loads(skopeo("inspect", ref, workdir=workdir).stdout)


def _usage_error(project: Path, out: Path, *flags: str) -> str:
    """The one-line usage error (exit 2) of ``builder create oci:OUT FLAGS``; nothing written."""
    code, _, err = cli("builder", "create", f"oci:{out}", "--config", str(project / "builder.toml"), *flags)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert not out.exists()
    return err


def test_labels_are_in_the_builder_config(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    create_json(
        f"oci:{out}:v1",
        project / "builder.toml",
        "--label", "org.example.team=builders",
        "-l", "empty=",
        "--label", "with=equals=inside",
        "--label", "a=1,b=2",
    )  # fmt: skip
    labels = _inspect(f"oci:{out}:v1", tmp_path)["Labels"]
    assert labels["org.example.team"] == "builders"
    assert labels["empty"] == "" and labels["with"] == "equals=inside"
    assert (labels["a"], labels["b"]) == ("1", "2")  # pack's comma-separated form
    assert labels["a.label"] == "kept"  # the build image's own
    # pack sets the user's labels first: the builder's own labels are not overridden by one.
    code, _, err = cli(
        "builder", "create", f"oci:{tmp_path / 'o2'}:v1", "--config", str(project / "builder.toml"),
        "--label", "io.buildpacks.builder.metadata=mine", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    metadata = _inspect(f"oci:{tmp_path / 'o2'}:v1", tmp_path)["Labels"]["io.buildpacks.builder.metadata"]
    assert json.loads(metadata)["lifecycle"]


@pytest.mark.parametrize("value", ["novalue", "=v", ""])
def test_a_malformed_label_is_a_usage_error_showing_the_form(
    value: str, project: Path, tmp_path: Path
) -> None:
    assert "KEY=VALUE" in _usage_error(project, tmp_path / "out", "--label", value)


def test_tags_are_more_names_for_one_manifest_in_a_layout(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = create_json(f"oci:{out}:v1", project / "builder.toml", "--tag", "v2", "--tag", "latest")
    index = json.loads((out / "index.json").read_text())
    named = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in index["manifests"]}
    assert named == dict.fromkeys(("v1", "v2", "latest"), result["digest"])
    assert _inspect(f"oci:{out}:latest", tmp_path)["Digest"] == result["digest"]


@pytest.mark.parametrize("scheme", ["docker-archive", "oci-archive"])
def test_a_tag_on_an_archive_is_a_usage_error(scheme: str, project: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.tar"
    code, _, err = cli(
        "builder", "create", f"{scheme}:{out}:org/b:1", "--config", str(project / "builder.toml"),
        "--tag", "org/b:2",
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and "--tag" in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    ("target", "tag", "says"),
    [
        ("oci:{out}:v1", "a/b", "takes a tag name"),
        ("docker://127.0.0.1:9/cnbkit/b:v1", "Not A Reference", "Not A Reference"),
        ("docker://127.0.0.1:9/cnbkit/b:v1", "cnbkit/b@sha256:" + "a" * 64, "not a digest"),
    ],
)
def test_a_bad_tag_is_a_usage_error_before_anything_is_written(
    target: str, tag: str, says: str, project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, _, err = cli(
        "builder", "create", target.format(out=out), "--config", str(project / "builder.toml"),
        "--tag", tag, "--quiet",
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and says in err, err
    assert not out.exists()  # (port 9 has no registry: nothing was tried there either)


def _three_buildpacks(project: Path) -> Path:
    buildpack(project / "bp2", "test/two", "2.0.0")
    buildpack(project / "bp3", "test/three", "3.0.0")
    return builder_toml(
        project / "builder.toml",
        lifecycle='uri = "lifecycle.tgz"',
        buildpacks=("bp", "bp2", "bp3"),
        order=("test/one", "test/two", "test/three"),
    )


def test_flattened_modules_share_one_layer_and_the_label_says_so(project: Path, tmp_path: Path) -> None:
    config = _three_buildpacks(project)
    plain = create_json(f"oci:{tmp_path / 'plain'}:v1", config)
    out = tmp_path / "flat"
    flat = create_json(f"oci:{out}:v1", config, "--flatten", "test/one@1.0.0,test/two@2.0.0")
    assert len(flat["layers"]) == len(plain["layers"]) - 1
    label = json.loads(_inspect(f"oci:{out}:v1", tmp_path)["Labels"]["io.buildpacks.buildpack.layers"])
    one = label["test/one"]["1.0.0"]["layerDiffID"]
    assert label["test/two"]["2.0.0"]["layerDiffID"] == one
    assert label["test/three"]["3.0.0"]["layerDiffID"] != one
    shared = [layer for layer in flat["layers"] if layer["diff_id"] == one]
    assert len(shared) == 1
    # The one layer holds both modules (read back from the layout).
    blob = out / "blobs" / "sha256" / shared[0]["digest"].split(":")[1]
    with tarfile.open(blob) as tar:
        names = tar.getnames()
    assert "cnb/buildpacks/test_one/1.0.0/bin/build" in names
    assert "cnb/buildpacks/test_two/2.0.0/bin/build" in names
    assert not any("test_three" in name for name in names)


@pytest.mark.parametrize("value", ["test/one", "test/one@1.0.0,@2", "test/one@", ""])
def test_a_malformed_flatten_entry_is_a_usage_error_showing_the_form(
    value: str, project: Path, tmp_path: Path
) -> None:
    err = _usage_error(project, tmp_path / "out", "--flatten", value)
    assert "'<buildpack-id>@<buildpack-version>'" in err, err
