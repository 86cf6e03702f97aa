"""The files a builder carries under ``/cnb`` (cnbkit.builder.files), rule by rule, in pack's
exact text. Fast on purpose: the mutation run of builder/files.py starts here
(benchmarks/mutation.py); tests/test_builder_create.py checks them inside a real builder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import tomli
from cnbkit import BuilderError
from cnbkit.builder.config import BuilderConfig, ModuleRef, RunImage, parse_config
from cnbkit.builder.files import build_env_files, order_toml, resolve_order, run_toml, stack_toml, system_toml
from hypothesis import given, settings
from hypothesis import strategies as st

BASE = "[build]\nimage = 'b'\n[[run.images]]\nimage = 'r'\n"
AVAILABLE = [("a", "1"), ("b", "3"), ("b", "2"), ("c", "1"), ("b", "10"), ("d", "2"), ("d", "1")]


def _config(text: str) -> BuilderConfig:
    return parse_config(BASE + text, Path("/x/builder.toml"))


# -- order -----------------------------------------------------------------------------------


def test_an_omitted_version_is_the_only_one_on_the_builder() -> None:
    extra = {"homepage": "h"}
    order = resolve_order(
        [[ModuleRef("a", optional=True, extra=extra)], [ModuleRef("c"), ModuleRef("b", "2")]],
        AVAILABLE,
        "buildpack",
        "W",
    )
    assert order == [[ModuleRef("a", "1", True, extra)], [ModuleRef("c", "1"), ModuleRef("b", "2")]]
    assert order[0][0].extra == extra
    assert resolve_order([], AVAILABLE, "buildpack", "W") == []
    assert resolve_order([[]], AVAILABLE, "buildpack", "W") == [[]]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (ModuleRef("z"), "W: no versions of extension 'z' were found on the builder"),
        (
            ModuleRef("b"),
            "W: unable to resolve version: multiple versions of 'b' - must specify an explicit version",
        ),
        (
            ModuleRef("d"),
            "W: unable to resolve version: multiple versions of 'd' - must specify an explicit version",
        ),
        (
            ModuleRef("b", "4"),
            "W: extension 'b' with version '4' was not found on the builder (it has 10, 2, 3)",
        ),
        (ModuleRef("a", "2"), "W: extension 'a' with version '2' was not found on the builder (it has 1)"),
    ],
)
def test_a_ref_the_builder_cannot_satisfy_is_named(ref: ModuleRef, message: str) -> None:
    with pytest.raises(BuilderError) as info:
        resolve_order([[ModuleRef("a")], [ModuleRef("c"), ref]], AVAILABLE, "extension", "W")
    assert str(info.value) == message


def test_order_toml_is_packs_text() -> None:
    assert order_toml([]) == b""
    order = [[ModuleRef("a", "1", True), ModuleRef("b", "2")], [ModuleRef('é"\\', "3")]]
    extensions = [[ModuleRef("x", "1", True)]]
    assert order_toml(order).decode() == (
        '[[order]]\n\n  [[order.group]]\n    id = "a"\n    version = "1"\n    optional = true\n\n'
        '  [[order.group]]\n    id = "b"\n    version = "2"\n\n'
        '[[order]]\n\n  [[order.group]]\n    id = "é\\"\\\\"\n    version = "3"\n'
    )
    assert order_toml([], extensions).decode() == (
        '[[order-extensions]]\n\n  [[order-extensions.group]]\n    id = "x"\n    version = "1"\n'
    )
    both = order_toml(order[:1], extensions).decode()
    assert both.endswith('    version = "2"\n\n[[order-extensions]]\n\n  [[order-extensions.group]]\n'
                         '    id = "x"\n    version = "1"\n')  # fmt: skip
    assert tomli.loads(order_toml(order).decode())["order"][1]["group"][0]["id"] == 'é"\\'


def test_system_toml_is_packs_text() -> None:
    assert system_toml([], []) == b""
    pre = [ModuleRef("a", "1"), ModuleRef("b", "2", True)]
    assert system_toml(pre, []).decode() == (
        '[system]\n  [system.pre]\n\n    [[system.pre.buildpacks]]\n      id = "a"\n      version = "1"\n\n'
        '    [[system.pre.buildpacks]]\n      id = "b"\n      version = "2"\n      optional = true\n'
    )
    assert system_toml([], pre[:1]).decode() == (
        '[system]\n  [system.post]\n\n    [[system.post.buildpacks]]\n      id = "a"\n      version = "1"\n'
    )
    both = tomli.loads(system_toml(pre[:1], pre[1:]).decode())
    assert both == {
        "system": {
            "pre": {"buildpacks": [{"id": "a", "version": "1"}]},
            "post": {"buildpacks": [{"id": "b", "version": "2", "optional": True}]},
        }
    }


# -- run images --------------------------------------------------------------------------------


def test_stack_toml_is_the_stacks_run_image_else_the_first() -> None:
    config = _config("[[run.images]]\nimage = 's'\nmirrors = ['m']\n")
    assert stack_toml(config) == b'[run-image]\n  image = "r"\n'
    stack = "[stack]\nid = 'io.s'\nrun-image = 'st'\nrun-image-mirrors = ['m1', 'm2']\n"
    assert stack_toml(_config(stack)) == b'[run-image]\n  image = "st"\n  mirrors = ["m1", "m2"]\n'
    # A [stack] without an id, or without a run image, is not used.
    assert stack_toml(_config("[stack]\nrun-image = 'st'\n")) == b'[run-image]\n  image = "r"\n'
    assert stack_toml(_config("[stack]\nid = 'io.s'\n")) == b'[run-image]\n  image = "r"\n'
    # No run image at all (the reader requires one; stack_toml copes).
    assert stack_toml(dataclasses.replace(_config("[stack]\nid = 'io.s'\n"), run_images=())) == b""


def test_run_toml_is_one_block_per_run_image() -> None:
    assert run_toml([]) == b""
    assert run_toml([RunImage("r")]) == b'[[images]]\n  image = "r"\n'
    assert run_toml([RunImage("r", ("m",)), RunImage("s")]) == (
        b'[[images]]\n  image = "r"\n  mirrors = ["m"]\n\n[[images]]\n  image = "s"\n'
    )


# -- build-config/env ------------------------------------------------------------------------


def _env(entries: list[dict[str, str]]) -> dict[str, str]:
    text = "".join("[[build.env]]\n" + "".join(f"{k} = {v!r}\n" for k, v in e.items()) for e in entries)
    return build_env_files(_config(text))


def test_build_env_files_by_suffix() -> None:
    assert _env([]) == {}
    assert _env(
        [
            {"name": "A", "value": "1"},
            {"name": "B_2-x", "value": "2", "suffix": "default"},
            {"name": "C", "value": "3", "suffix": "override"},
            {"name": "D", "value": "4", "suffix": "append", "delim": ":"},
            {"name": "E", "value": "5", "suffix": "prepend", "delim": ""},
            {"name": "E", "value": "", "delim": ","},
        ]
    ) == {"A": "1", "B_2-x.default": "2", "C.override": "3", "D.append": "4", "D.delim": ":",
          "E.prepend": "5", "E": "", "E.delim": ","}  # fmt: skip


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [{"name": "A"}, {"value": "1"}],
            "/x/builder.toml: build.env (line 7): env name should not be empty",
        ),
        (
            [{"name": "A"}, {"name": "../../etc/motd"}],
            "/x/builder.toml: build.env (line 7): env name '../../etc/motd' is not a variable name: "
            "use ASCII letters, digits, '_' and '-'",
        ),
        ([{"name": "A.b"}], "env name 'A.b' is not a variable name"),
        ([{"name": "é"}], "env name 'é' is not a variable name"),
        ([{"name": "A B"}], "env name 'A B' is not a variable name"),
        (
            [{"name": "A", "suffix": "later"}],
            "unknown action type 'later' for 'A' (use one of default, override, append, prepend)",
        ),
        (
            [{"name": "A", "suffix": "append"}],
            "/x/builder.toml: build.env (line 5): 'A.append' needs a delim: set delim for 'A'",
        ),
        ([{"name": "A", "suffix": "prepend"}, {"name": "B", "delim": ","}], "'A.prepend' needs a delim"),
    ],
)
def test_a_bad_build_env_is_named(entries: list[dict[str, str]], message: str) -> None:
    with pytest.raises(BuilderError) as info:
        _env(entries)
    assert message in str(info.value)


def test_a_long_bad_env_name_is_cut_at_80() -> None:
    name = "x" * 79 + "/" + "y" * 20
    with pytest.raises(BuilderError) as info:
        _env([{"name": name}])
    assert f"env name {name[:80]!r} is not" in str(info.value)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="aZ9_-./é \\", min_size=1, max_size=6))
def test_an_env_file_name_is_one_plain_name(name: str) -> None:
    # Whatever the name, a file written is NAME or NAME.SUFFIX with NAME of the allowed set.
    try:
        files = _env([{"name": name, "value": "v", "suffix": "override"}])
    except BuilderError:
        assert not all(c.isascii() and (c.isalnum() or c in "_-") for c in name)
    else:
        assert files == {f"{name}.override": "v"}
        assert all(c.isascii() and (c.isalnum() or c in "_-") for c in name)
