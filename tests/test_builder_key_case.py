"""builder.toml keys match case-insensitively, as pack's decoder (BurntSushi/toml) matches a key
to a struct field: ``[Lifecycle] URI`` is ``[lifecycle] uri``, at every level; errors still name
the key as written and its exact line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.builder_support import builder_project
from tests.conftest import run_cli

_LOWER = """description = "test builder"
[lifecycle]
uri = "lifecycle.tgz"
[[buildpacks]]
uri = "bp"
id = "test/one"
[[order]]
group = [{ id = "test/one", version = "1.0.0" }]
[build]
image = "oci:build:latest"
[[build.env]]
name = "A"
value = "b"
[[run.images]]
image = "cnbs/sample-base-run:jammy"
mirrors = ["mirror.example/run"]
"""

# The same builder, written with keys pack's decoder reads the same (the Kelvin sign, in the
# quoted key, folds to k, as Go's strings.EqualFold has it).
_MIXED = """DESCRIPTION = "test builder"
[LifeCycle]
URI = "lifecycle.tgz"
[["BuildPac\u212as"]]
Uri = "bp"
ID = "test/one"
[[Order]]
Group = [{ Id = "test/one", VERSION = "1.0.0" }]
[Build]
Image = "oci:build:latest"
[[Build.Env]]
NAME = "A"
Value = "b"
[[RUN.images]]
IMAGE = "cnbs/sample-base-run:jammy"
Mirrors = ["mirror.example/run"]
"""


def _create(root: Path, text: str, out: Path) -> tuple[int, str, str]:
    (root / "builder.toml").write_text(text)
    made = run_cli(
        "builder", "create", f"oci:{out}:v1", "--config", str(root / "builder.toml"), "--json",
        env={"CNBKIT_CACHE_DIR": str(root.parent / "cache")},
    )  # fmt: skip
    return made.returncode, made.stdout, made.stderr


def test_keys_in_any_case_make_the_same_builder(tmp_path: Path) -> None:
    root = builder_project(tmp_path / "project")
    code, lower, err = _create(root, _LOWER, tmp_path / "lower")
    assert code == 0, err
    code, upper, err = _create(root, _MIXED, tmp_path / "mixed")
    assert code == 0, err
    assert json.loads(upper)["digest"] == json.loads(lower)["digest"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        # A bad value under a key in another case: at its own line (3).
        (
            _MIXED.replace('URI = "lifecycle.tgz"', 'Version = "x.y"'),
            "lifecycle.version (line 3): 'lifecycle.version' must be a valid semver",
        ),
        # An unknown key under [[RUN.images]]: named as written, at its line (17).
        (_MIXED + "Keep = 1\n", "unknown configuration element 'RUN.images.Keep' in '{path}' (line 17)"),
        # Two keys of one table naming one field: pack keeps either; cnbkit says so.
        (
            _MIXED.replace('Uri = "bp"', 'Uri = "bp"\nuri = "bp"'),
            "keys 'BuildPac\u212as.Uri' (line 5) and 'BuildPac\u212as.uri' (line 6) name the same field",
        ),
    ],
)
def test_errors_name_the_key_as_written_and_its_line(text: str, says: str, tmp_path: Path) -> None:
    root = builder_project(tmp_path / "project")
    out = tmp_path / "out"
    code, _, err = _create(root, text, out)
    assert code == 1, err
    [line] = err.splitlines()
    assert says.format(path=root / "builder.toml") in line, line
    assert not out.exists()
