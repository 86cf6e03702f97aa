"""builder.toml: pack's schema and messages, bare image names, and a reader that never
tracebacks whatever the file holds."""

from __future__ import annotations

from pathlib import Path

import cnbkit
import pytest
from cnbkit.builder.config import parse_config, read_config
from cnbkit.builder.files import build_env_files, order_toml, resolve_order, run_toml, stack_toml, system_toml
from cnbkit.builder.labels import go_json
from hypothesis import given, settings
from hypothesis import strategies as st

PACK_STYLE = """\
description = "Ubuntu jammy base image with buildpacks for Java, Node.js and Golang"

[[buildpacks]]
  uri = "docker://cnbs/sample-package:hello-universe"

[[buildpacks]]
  id = "samples/java-maven"
  uri = "../../buildpacks/java-maven"
  version = "0.0.2"

[lifecycle]
  version = "0.20.5"

[[order]]
  [[order.group]]
    id = "samples/hello-universe"
    version = "0.0.1"
    optional = true

[stack]
  id = "io.buildpacks.samples.stacks.jammy"
  build-image = "cnbs/sample-base-build:jammy"
  run-image = "cnbs/sample-base-run:jammy"
  run-image-mirrors = ["mirror.example/run:jammy"]

[[build.env]]
  name = "JAVA_OPTS"
  value = "-Xmx1g"
  suffix = "append"
  delim = " "

[[targets]]
  os = "linux"
  arch = "amd64"
  [[targets.distros]]
    name = "ubuntu"
    version = "22.04"
"""


def test_a_pack_users_builder_toml_with_bare_image_names_reads_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "builder.toml"
    path.parent.mkdir()
    path.write_text(PACK_STYLE)
    config = read_config(path)
    assert config.base_dir == path.parent
    assert config.build_image == "cnbs/sample-base-build:jammy"  # [stack] build-image merged in
    assert [(r.image, r.mirrors) for r in config.run_images] == [
        ("cnbs/sample-base-run:jammy", ("mirror.example/run:jammy",))
    ]
    assert config.lifecycle.version == "0.20.5" and config.lifecycle.uri == ""
    assert [b.uri for b in config.buildpacks] == [
        "docker://cnbs/sample-package:hello-universe",
        "../../buildpacks/java-maven",
    ]
    assert config.buildpacks[1].line == 8
    assert config.order[0][0].optional and config.order[0][0].version == "0.0.1"
    assert config.targets[0].distros == (("ubuntu", "22.04"),)
    assert build_env_files(config) == {"JAVA_OPTS.append": "-Xmx1g", "JAVA_OPTS.delim": " "}
    assert stack_toml(config) == (
        b'[run-image]\n  image = "cnbs/sample-base-run:jammy"\n  mirrors = ["mirror.example/run:jammy"]\n'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[groups]]\nid = 'a'\nx = 1\n", r"unknown configuration element 'groups' in '.*' \(line 5\)"),
        (
            "[[buildpacks]]\nurl = 'x'\n[lifecycle]\nurl = 'y'\n",
            r"unknown configuration elements 'buildpacks.url', 'lifecycle.url' in '.*' \(line 6\)",
        ),
        ("[lifecycle]\nuri = 1\n", r"lifecycle.uri \(line 6\): expected a string, found an integer"),
        ("[[order]]\ngroup = 'x'\n", r"order.group \(line 6\): expected an array of tables, found a string"),
        ("[lifecycle]\nuri = 'a'\nversion = '1.0.0'\n", r"'lifecycle' can only declare 'version' or 'uri'"),
    ],
)
def test_pack_messages_with_file_key_and_line(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "builder.toml"
    path.write_text("[build]\nimage = 'b'\n[[run.images]]\nimage = 'r'\n" + text)
    with pytest.raises(cnbkit.CnbkitError, match=message) as caught:
        read_config(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_required_images_and_an_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "builder.toml"
    path.write_text("[[run.images]]\nimage = 'r'\n")
    with pytest.raises(cnbkit.BuilderError, match=r"build\.image is required"):
        read_config(path)
    path.write_text("[build]\nimage = 'b'\n")
    with pytest.raises(cnbkit.BuilderError, match=r"run\.images are required"):
        read_config(path)
    with pytest.raises(cnbkit.BuilderError, match="opening config file"):
        read_config(tmp_path / "missing.toml")


def test_order_resolution_and_pack_file_texts(tmp_path: Path) -> None:
    config = parse_config(
        "[build]\nimage='b'\n[[run.images]]\nimage='r'\n[[run.images]]\nimage='s'\nmirrors=['m']\n"
        "[[order]]\n[[order.group]]\nid='a'\n[[order.group]]\nid='b'\nversion='2'\noptional=true\n"
        "[system]\n[[system.pre.buildpacks]]\nid='a'\n",
        tmp_path / "builder.toml",
    )
    available = [("a", "1"), ("b", "2"), ("b", "3")]
    order = resolve_order(config.order, available, "buildpack", "builder.toml: order")
    assert order_toml(order).decode() == (
        '[[order]]\n\n  [[order.group]]\n    id = "a"\n    version = "1"\n\n'
        '  [[order.group]]\n    id = "b"\n    version = "2"\n    optional = true\n'
    )
    pre = resolve_order([config.system_pre], available, "buildpack", "x")[0]
    assert (
        system_toml(pre, [])
        == b'[system]\n  [system.pre]\n\n    [[system.pre.buildpacks]]\n      id = "a"\n      version = "1"\n'
    )
    assert run_toml(config.run_images) == (
        b'[[images]]\n  image = "r"\n\n[[images]]\n  image = "s"\n  mirrors = ["m"]\n'
    )
    with pytest.raises(cnbkit.BuilderError, match="multiple versions of 'b' - must specify"):
        resolve_order([[config.order[0][0].__class__("b")]], available, "buildpack", "x")
    with pytest.raises(cnbkit.BuilderError, match="buildpack 'a' with version '9' was not found"):
        resolve_order([[config.order[0][0].__class__("a", "9")]], available, "buildpack", "x")


def test_build_env_rules(tmp_path: Path) -> None:
    def env(entries: str) -> dict[str, str]:
        text = "[build]\nimage='b'\n[[run.images]]\nimage='r'\n" + entries
        return build_env_files(parse_config(text, tmp_path / "builder.toml"))

    assert env("[[build.env]]\nname='A'\nvalue='1'\n") == {"A": "1"}
    with pytest.raises(cnbkit.BuilderError, match="unknown action type 'later'"):
        env("[[build.env]]\nname='A'\nsuffix='later'\n")
    with pytest.raises(cnbkit.BuilderError, match="env name should not be empty"):
        env("[[build.env]]\nvalue='1'\n")
    with pytest.raises(cnbkit.BuilderError, match=r"'A\.prepend' needs a delim"):
        env("[[build.env]]\nname='A'\nsuffix='prepend'\n")


def test_labels_are_go_json() -> None:
    assert go_json({"a": "<b>&", "n": None, "l": []}) == '{"a":"\\u003cb\\u003e\\u0026","n":null,"l":[]}'


_TOML_BITS = st.sampled_from(
    ["[build]", "image = 'x'", "[[run.images]]", "[lifecycle]", "uri = 1", "version = 'v'", "[[order]]",
     "[[order.group]]", "id = 'a'", "[stack]", "run-image-mirrors = [1]", "[[buildpacks]]", "x = {a = 1}",
     "description = 9" + "9" * 5000, "a = " + "[" * 3000, "]", "\x00", "[system.pre]", "optional = 'yes'",
     "[[targets]]", "distros = 3", "é = 1", "[[build.env]]", "name = ''", "\"quoted\" = 1"]
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(_TOML_BITS, max_size=12), st.text(max_size=40))
def test_the_reader_never_tracebacks(bits: list[str], noise: str) -> None:
    # Whatever the file holds, the result is a config or a one-line CnbkitError.
    text = "\n".join(bits) + "\n" + noise
    try:
        parse_config(text, Path("/x/builder.toml"))
    except cnbkit.CnbkitError as exc:
        assert "\n" not in str(exc).strip() or "invalid TOML" in str(exc)
