"""Issue 17, items 2, 8 and 16, through the CLI: ``[[build.env]]`` names that would leave
``/cnb/build-config/env/``, a builder.toml with 20,000 unknown keys, and numbers that Python's
``int()`` reads but the lifecycle does not (``CNB_USER_ID=1_000``, Arabic-Indic digits)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.builder_support import build_image, builder_project, builder_toml
from tests.conftest import one_line_error, run_cli


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return builder_project(tmp_path / "project")


def _create(project: Path, target: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    config = project / "builder.toml"
    return run_cli("builder", "create", f"oci:{target}:t", "--config", str(config), timeout=timeout)


def _line_of(path: Path, needle: str, nth: int = 0) -> int:
    lines = [i for i, line in enumerate(path.read_text().splitlines(), 1) if line.strip() == needle]
    return lines[nth]


# -- item 2: [[build.env]] names ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../../etc/motd", ".", "..", "a/b", "PATH.append", "A=B", "é", "A B"])
def test_a_build_env_name_that_is_no_variable_name_is_refused(
    name: str, project: Path, tmp_path: Path
) -> None:
    env = f'[[build.env]]\nname = "OK"\nvalue = "1"\n\n[[build.env]]\nname = "{name}"\nvalue = "owned"\n'
    config = builder_toml(project / "builder.toml", lifecycle='uri = "lifecycle.tgz"', extra=env)
    target = tmp_path / "out"
    line = one_line_error(_create(project, target))
    where = f"{config}: build.env (line {_line_of(config, '[[build.env]]', 1)})"
    assert line == (
        f"error: {where}: env name {name!r} is not a variable name: use ASCII letters, digits, '_' and '-'"
    ), line
    assert not target.exists()


def test_plain_build_env_names_still_make_their_files(project: Path, tmp_path: Path) -> None:
    env = '[[build.env]]\nname = "JAVA_OPTS"\nvalue = "-Xmx1g"\nsuffix = "append"\ndelim = " "\n'
    env += '\n[[build.env]]\nname = "my-var_2"\nvalue = "x"\n'
    builder_toml(project / "builder.toml", lifecycle='uri = "lifecycle.tgz"', extra=env)
    result = _create(project, tmp_path / "out")
    assert result.returncode == 0, result.stderr


# -- item 8: 20,000 unknown keys ------------------------------------------------------------------


def test_twenty_thousand_unknown_keys_are_refused_at_once_naming_a_few(project: Path, tmp_path: Path) -> None:
    config = project / "builder.toml"
    keys = "\n".join(f"unknown{i} = 1" for i in range(20_000))
    config.write_text(keys + "\n" + config.read_text())
    # bounded, not timed: the quadratic report took 21 s; this is a "does not hang" bound
    line = one_line_error(_create(project, tmp_path / "out", timeout=15))
    assert line == (
        f"error: parse contents of '{config}': unknown configuration elements 'unknown0', 'unknown1', "
        f"'unknown2', 'unknown3', 'unknown4' and 19,995 more in '{config}' (line 1)"
    ), line[:300]


def test_repeated_unknown_keys_are_listed_once_as_pack_does(project: Path, tmp_path: Path) -> None:
    builder_toml(
        project / "builder.toml",
        lifecycle='uri = "lifecycle.tgz"',
        extra='[[groups]]\nid = "a"\n[[groups]]\nid = "b"\n[[buildpacks]]\nuri = "bp"\nx = 1\n'
        '[[buildpacks]]\nuri = "bp"\nx = 2\n',
    )
    line = one_line_error(_create(project, tmp_path / "out"))
    assert "unknown configuration elements 'buildpacks.x', 'groups' in" in line, line


# -- item 16: ASCII digits only -------------------------------------------------------------------

NOT_ASCII_NUMBERS = ["1_000", "\u0661\u0660\u0660\u0660", " 1000", "1000 ", "+1000", "-1", "1" * 5000]


@pytest.mark.parametrize("value", NOT_ASCII_NUMBERS)
@pytest.mark.parametrize("name", ["CNB_USER_ID", "CNB_GROUP_ID"])
def test_cnb_ids_are_ascii_digits(name: str, value: str, project: Path, tmp_path: Path) -> None:
    ids = {"CNB_USER_ID": "1000", "CNB_GROUP_ID": "1001", name: value}
    shutil.rmtree(project / "build")
    build_image(project / "build", env=("PATH=/bin", *(f"{k}={v}" for k, v in ids.items())))
    target = tmp_path / "out"
    line = one_line_error(_create(project, target))
    assert f"failed to parse '{name}', value '{value[:40]}' should be an integer" in line, line
    assert not target.exists()


@pytest.mark.parametrize("api", ["\u0660.\u0661\u0660", "0.10\n", "0." + "9" * 5000])
def test_a_buildpack_api_is_ascii_digits(api: str, project: Path, tmp_path: Path) -> None:
    toml = project / "bp" / "buildpack.toml"
    toml.write_text(toml.read_text().replace('api = "0.10"', f"api = {api!r}".replace("'", '"')))
    line = one_line_error(_create(project, tmp_path / "out"))
    assert "buildpack.toml: api: invalid api" in line and "expected a string like" in line, line
