"""pack's checks on ``cnbkit builder create``, with pack's meaning: a run image is required and
must parse, a buildpack's ``[[stacks]]`` must name the build image's stack and its mixins must be
there, extensions need Platform API 0.13. Each refusal is one line, exit 1, nothing written."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.builder_support import build_image, builder_project
from tests.conftest import one_line_error, run_cli
from tests.lifecycles import descriptor, lifecycle_entries, write_tar

STACK = "io.example.stack"
RUN_IMAGE = '[[run.images]]\nimage = "cnbs/sample-base-run:jammy"\nmirrors = ["mirror.example/run"]'


def _stack_image(project: Path, mixins: list[str] | None = None) -> None:
    """The build image labelled with ``STACK`` (and ``mixins``, when given)."""
    labels = {"io.buildpacks.stack.id": STACK}
    if mixins is not None:
        labels["io.buildpacks.stack.mixins"] = json.dumps(mixins)
    shutil.rmtree(project / "build")
    build_image(project / "build", labels=labels)


def _stacks(project: Path, stack_id: str, mixins: tuple[str, ...] = ()) -> None:
    """Give the buildpack ``bp`` one ``[[stacks]]`` entry."""
    toml = project / "bp" / "buildpack.toml"
    entry = f'[[stacks]]\n  id = "{stack_id}"\n  mixins = {json.dumps(list(mixins))}\n'
    toml.write_text(toml.read_text() + entry)


def _extension(project: Path) -> None:
    ext = project / "ext"
    (ext / "bin").mkdir(parents=True)
    (ext / "extension.toml").write_text('api = "0.10"\n[extension]\n  id = "test/ext"\n  version = "1.0.0"\n')
    for name in ("detect", "generate"):
        (ext / "bin" / name).write_text("#!/bin/sh\nexit 0\n")
        (ext / "bin" / name).chmod(0o755)
    toml = project / "builder.toml"
    toml.write_text(toml.read_text() + '\n[[extensions]]\nuri = "ext"\n')


def _replace(project: Path, old: str, new: str) -> None:
    toml = project / "builder.toml"
    text = toml.read_text()
    assert old in text
    toml.write_text(text.replace(old, new))


def _stack_without_run_image(project: Path) -> None:
    _stack_image(project)
    _replace(project, RUN_IMAGE, f'[stack]\nid = "{STACK}"\nbuild-image = "oci:build:latest"')


def _empty_run_with_stack(project: Path) -> None:
    _stack_image(project)
    _replace(project, RUN_IMAGE, f'[run]\nimages = []\n[stack]\nid = "{STACK}"')


def _old_platform_lifecycle(project: Path) -> None:
    old = descriptor(platform=["0.10", "0.11", "0.12"])
    write_tar(project / "lifecycle.tgz", lifecycle_entries(desc=old))
    _extension(project)


def _malformed_mixins(project: Path) -> None:
    shutil.rmtree(project / "build")
    build_image(
        project / "build", labels={"io.buildpacks.stack.id": STACK, "io.buildpacks.stack.mixins": "[1, "}
    )
    _stacks(project, STACK, ("git",))


REFUSED: dict[str, tuple[Callable[[Path], None], str]] = {
    "stack without a run image": (_stack_without_run_image, r"builder\.toml: .*run\.images are required"),
    "empty run images with a stack id": (_empty_run_with_stack, r"builder\.toml: .*run\.images are required"),
    "invalid run image reference": (
        lambda p: _replace(p, "cnbs/sample-base-run:jammy", "Bad Ref!!"),
        r"builder\.toml: run\.images\.image \(line \d+\): invalid image reference 'Bad Ref!!'",
    ),
    "invalid run image mirror": (
        lambda p: _replace(p, "mirror.example/run", "mirror.example/Run:x:y"),
        r"builder\.toml: run\.images\.mirrors \(line \d+\): "
        r"invalid image reference 'mirror\.example/Run:x:y'",
    ),
    "invalid [stack] run-image": (
        lambda p: _replace(p, RUN_IMAGE, f'[stack]\nid = "{STACK}"\nrun-image = "Bad Ref!!"'),
        r"builder\.toml: stack\.run-image \(line 18\): invalid image reference 'Bad Ref!!'",
    ),
    "buildpack for another stack": (
        lambda p: (_stack_image(p), _stacks(p, "io.other.stack")),
        r"buildpack 'test/one@1\.0\.0' does not support stack 'io\.example\.stack'",
    ),
    "buildpack with stacks on an image without a stack id": (
        lambda p: _stacks(p, STACK),
        r"buildpack 'test/one@1\.0\.0' does not support stack ''",
    ),
    "buildpack needing mixins the build image lacks": (
        lambda p: (
            _stack_image(p, ["git", "run:curl"]),
            _stacks(p, STACK, ("git", "build:make", "run:tzdata", "curl")),
        ),
        r"buildpack 'test/one@1\.0\.0' requires missing mixin\(s\): build:make, curl",
    ),
    "malformed mixins label": (
        _malformed_mixins,
        r"label io\.buildpacks\.stack\.mixins",
    ),
    "extension with a lifecycle below Platform API 0.13": (
        _old_platform_lifecycle,
        r"builder config contains image extensions, but the lifecycle Platform API version \(0\.12\) "
        r"is older than 0\.13",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_pack_refuses_and_so_does_cnbkit(case: str, tmp_path: Path) -> None:
    project = builder_project(tmp_path / "project")
    change, expected = REFUSED[case]
    change(project)
    target = tmp_path / "out"
    result = run_cli("builder", "create", f"oci:{target}:t", "--config", str(project / "builder.toml"))
    line = one_line_error(result)
    assert re.search(expected, line), line
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


@pytest.mark.parametrize("stack_id", [STACK, "*"])
def test_a_buildpack_whose_stack_and_build_mixins_the_image_has_builds(stack_id: str, tmp_path: Path) -> None:
    project = builder_project(tmp_path / "project")
    _stack_image(project, ["git", "build:make"])
    # run: mixins are the run image's business: pack ignores them here.
    _stacks(project, stack_id, ("git", "build:make", "run:tzdata"))
    result = run_cli(
        "builder", "create", f"oci:{tmp_path / 'out'}:t", "--config", str(project / "builder.toml")
    )
    assert result.returncode == 0, result.stderr


def test_an_extension_with_a_platform_013_lifecycle_builds(tmp_path: Path) -> None:
    project = builder_project(tmp_path / "project")
    _extension(project)
    result = run_cli(
        "builder", "create", f"oci:{tmp_path / 'out'}:t", "--config", str(project / "builder.toml")
    )
    assert result.returncode == 0, result.stderr


BAD_REFERENCES = {
    "build image": ('image = "oci:build:latest"', 'image = "docker://Bad!!"', r"build image docker://Bad!!"),
    "buildpack": ('uri = "bp"', 'uri = "docker://Bad!!"', r"\[\[buildpacks\]\] uri 'docker://Bad!!'"),
    "lifecycle": ('uri = "lifecycle.tgz"', 'uri = "docker://Bad!!"', r"lifecycle\.uri"),
}


@pytest.mark.parametrize("key", sorted(BAD_REFERENCES))
def test_an_invalid_reference_in_the_file_is_a_failure_not_a_usage_error(key: str, tmp_path: Path) -> None:
    project = builder_project(tmp_path / "project")
    old, new, where = BAD_REFERENCES[key]
    _replace(project, old, new)
    target = tmp_path / "out"
    result = run_cli("builder", "create", f"oci:{target}:t", "--config", str(project / "builder.toml"))
    line = one_line_error(result)  # exit 1: the command line was right, the file was not
    assert re.search(rf"builder\.toml: .*{where}.*invalid image reference 'Bad!!'", line), line
    assert not target.exists()


def test_a_builder_toml_with_a_byte_order_mark_builds(tmp_path: Path) -> None:
    project = builder_project(tmp_path / "project")
    toml = project / "builder.toml"
    toml.write_bytes(b"\xef\xbb\xbf" + toml.read_bytes())  # as Windows editors save UTF-8
    result = run_cli("builder", "create", f"oci:{tmp_path / 'out'}:t", "--config", str(toml))
    assert result.returncode == 0, result.stderr


def test_an_error_names_the_line_of_its_key_not_of_another_key_of_that_name(tmp_path: Path) -> None:
    # paketo's builder-jammy-base: buildpacks with `version` keys come before [lifecycle].
    project = builder_project(tmp_path / "project")
    toml = project / "builder.toml"
    text = toml.read_text().replace('[lifecycle]\nuri = "lifecycle.tgz"\n', "")
    text = text.replace('uri = "bp"', 'uri = "bp"\n  version = "1.0.0"')
    text = text.replace("[build]", '[lifecycle]\n  version = "not-semver"\n\n[build]')
    toml.write_text(text)
    wanted = text.splitlines().index('  version = "not-semver"') + 1
    assert wanted > text.splitlines().index('  version = "1.0.0"') + 1
    line = one_line_error(run_cli("builder", "create", f"oci:{tmp_path / 'out'}:t", "--config", str(toml)))
    assert f"lifecycle.version (line {wanted})" in line, line


def test_a_later_array_entry_and_an_inline_table_get_their_own_lines(tmp_path: Path) -> None:
    project = builder_project(tmp_path / "project")
    toml = project / "builder.toml"
    runs = '[[run.images]]\nimage = "cnbs/ok:1"\n\n[[run.images]]\nimage = "Bad Ref!!"'
    toml.write_text(toml.read_text().replace(RUN_IMAGE, runs))
    wanted = toml.read_text().splitlines().index('image = "Bad Ref!!"') + 1
    line = one_line_error(run_cli("builder", "create", f"oci:{tmp_path / 'out'}:t", "--config", str(toml)))
    assert f"run.images.image (line {wanted})" in line, line

    envs = '[build]\n  env = [\n    { name = "A", value = "1" },\n    { name = "" },\n  ]\n'
    toml.write_text(toml.read_text().replace(runs, RUN_IMAGE).replace("[build]\n", envs))
    wanted = toml.read_text().splitlines().index('    { name = "" },') + 1
    line = one_line_error(run_cli("builder", "create", f"oci:{tmp_path / 'out'}:t", "--config", str(toml)))
    assert f"build.env (line {wanted}): env name should not be empty" in line, line


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("[[buildpacks]]\nuri = 1", r"buildpacks\.uri \(line {line}\): expected a string, found an integer"),
        ('[[buildpacks]]\nuri = "bp"\nsize = 1', r"element 'buildpacks\.size' in '.*' \(line {line}\)"),
    ],
)
def test_a_schema_error_in_a_later_entry_names_that_entry_s_line(
    entry: str, message: str, tmp_path: Path
) -> None:
    project = builder_project(tmp_path / "project")
    toml = project / "builder.toml"
    toml.write_text(toml.read_text() + "\n" + entry + "\n")  # its key is the file's last line
    wanted = len(toml.read_text().splitlines())
    line = one_line_error(run_cli("builder", "create", f"oci:{tmp_path / 'out'}:t", "--config", str(toml)))
    assert re.search(message.format(line=wanted), line), line


def test_deeply_nested_values_are_refused_in_bounded_time(tmp_path: Path) -> None:
    project = builder_project(tmp_path / "project")
    toml = project / "builder.toml"
    nested = "".join(f"x{i} = " + "[" * 200 + "]" * 200 + "\n" for i in range(2000))
    toml.write_text(toml.read_text() + '\n[[buildpacks]]\nuri = "bp"\n' + nested)
    result = run_cli("builder", "create", f"oci:{tmp_path / 'out'}:t", "--config", str(toml), timeout=60)
    assert "unknown configuration elements 'buildpacks.x0'" in one_line_error(result)
