"""``cnbkit builder inspect`` and ``cnbkit builder diff``: builders made by cnbkit, read back
from an OCI layout, the registry (its access log shows no layer fetched), the daemon and a third
party's image source; the labels written and read back equal; non-builders, missing images and
hostile labels as one line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import cnbkit
import pytest
from cnbkit.builder.config import read_config
from cnbkit.builder.labels_read import read_builder_labels
from cnbkit.builder_api import create_builder

from tests.builder_support import LayoutImages, build_image, builder_toml, buildpack
from tests.conftest import cli_json, digest_of, one_line_error, run_cli
from tests.lifecycles import descriptor, make_lifecycle
from tests.services.dockerd import Dockerd
from tests.services.registry import Registry
from tests.services.skopeo import copy

TWO_GROUPS = """
[[order]]
[[order.group]]
id = "test/two"
[[order.group]]
id = "test/one"
optional = true

[[run.images]]
image = "second.example/run"
"""


def _project(root: Path, *, lifecycle: str = "0.21.0", one: str = "1.0.0", description: str = "") -> Path:
    """A builder project: a lifecycle of version ``lifecycle``, ``test/one`` at version ``one``
    and ``test/two`` 2.0.0, an order of one group and one with both, two run images."""
    root.mkdir()
    make_lifecycle(root / "lifecycle.tgz", desc=descriptor(lifecycle))
    buildpack(root / "bp", version=one)
    buildpack(root / "bp2", ident="test/two", version="2.0.0")
    build_image(root / "build", labels={"a.label": "kept", "io.buildpacks.stack.id": "test.stack"})
    config = builder_toml(
        root / "builder.toml", lifecycle='uri = "lifecycle.tgz"', buildpacks=("bp", "bp2"), extra=TWO_GROUPS
    )
    if description:
        text = config.read_text().replace('description = "test builder"', f"description = {description}")
        config.write_text(text)
    return config


def _builder(root: Path, **kwargs: Any) -> str:
    config = _project(root, **kwargs)
    created = run_cli("builder", "create", f"oci:{root / 'out'}:b", "--config", str(config), "-q")
    assert created.returncode == 0, created.stderr
    return f"oci:{root / 'out'}:b"


def _facts(report: dict[str, Any]) -> dict[str, Any]:
    """What the acceptance names: lifecycle version, each buildpack at its version, run images, stack."""
    return {
        "lifecycle": report["lifecycle"]["version"],
        "buildpacks": sorted(f"{b['id']}@{b['version']}" for b in report["buildpacks"]),
        "run": [r["image"] for r in report["run_images"]],
        "stack": report["stack"]["id"],
    }


EXPECTED = {
    "lifecycle": "0.21.0",
    "buildpacks": ["test/one@1.0.0", "test/two@2.0.0"],
    "run": ["cnbs/sample-base-run:jammy", "second.example/run"],
    "stack": "test.stack",
}


def _check_text(text: str) -> None:
    """The human output names the same facts, in pack's sections."""
    for section in ("Created By:", "Stack:", "Lifecycle:", "Run Images:", "Buildpacks:", "Detection Order:"):
        assert f"\n{section}\n" in text, text
    assert "  Version: 0.21.0\n" in text
    assert re.search(r"\n  test/one +One +1\.0\.0 ", text) and re.search(r"\n  test/two +One +2\.0\.0 ", text)
    assert "\n  cnbs/sample-base-run:jammy\n  mirror.example/run\n  second.example/run\n" in text
    assert "\n  ID: test.stack\n" in text
    assert (
        " ├ Group #1:\n │  └ test/one\n └ Group #2:\n    ├ test/two\n    └ test/one    (optional)\n" in text
    )


def test_the_labels_written_are_read_back_equal(tmp_path: Path, cache_dir: Path) -> None:
    config_path = _project(tmp_path / "p")
    labels = {"io.buildpacks.stack.id": "test.stack", "io.buildpacks.stack.mixins": '["gcc", "build:git"]'}
    build_image(tmp_path / "p" / "build", labels=labels)
    system = '\n[system.pre]\nbuildpacks = [{ id = "test/two", version = "2.0.0" }]\n'
    config_path.write_text(config_path.read_text() + system)
    result = create_builder(config_path, f"oci:{tmp_path / 'out'}:b")
    config = read_config(config_path)
    read = read_builder_labels(result.image.config.labels, where="the builder")
    assert read.description == config.description
    assert read.created_by == {"name": "cnbkit", "version": cnbkit.__version__}
    assert read.stack_id == "test.stack"
    assert read.lifecycle_version == result.lifecycle.version
    assert read.apis == {k: dict(sorted(v.items())) for k, v in result.lifecycle.apis.to_json().items()}
    assert read.run_images == [{"image": r.image, "mirrors": list(r.mirrors)} for r in config.run_images]
    assert read.buildpacks == [
        {"id": "test/one", "name": "One", "version": "1.0.0", "homepage": ""},
        {"id": "test/two", "name": "One", "version": "2.0.0", "homepage": ""},
    ]
    assert read.order == [
        [{"id": r.id, "version": r.version, "optional": r.optional} for r in group] for group in config.order
    ]
    diff_ids = {
        r.source.split(" ")[1]: r.diff_id for r in result.image.records if r.source.startswith("buildpack ")
    }
    assert {
        f"{i}@{v}": e["layerDiffID"] for i, vs in read.layers["buildpack"].items() for v, e in vs.items()
    } == diff_ids
    assert read.mixins == ["gcc", "build:git"]
    assert read.system == {"pre": [{"id": "test/two", "version": "2.0.0", "optional": False}], "post": []}
    assert read.layers["extension"] == {} and read.extensions == [] and read.order_extensions == []


def test_inspect_a_builder_in_an_oci_layout(tmp_path: Path) -> None:
    ref = _builder(tmp_path / "p")
    report = cli_json("builder", "inspect", ref, "--json")
    assert _facts(report) == EXPECTED
    layout = json.loads((tmp_path / "p" / "out" / "index.json").read_text())
    assert report["digest"] == layout["manifests"][0]["digest"]
    # What pack does not show: each module's layer, the lifecycle layer and the build image's.
    manifest = json.loads((tmp_path / "p" / "out" / "blobs" / "sha256" / report["digest"][7:]).read_text())
    digests = [layer["digest"] for layer in manifest["layers"]]
    assert [b["layer"]["digest"] in digests for b in report["buildpacks"]] == [True, True]
    assert report["lifecycle"]["layer"]["created_by"] == "cnbkit: lifecycle"
    assert report["lifecycle"]["layer"]["digest"] == digests[report["lifecycle"]["layer"]["index"]]
    assert [layer["digest"] for layer in report["build_image"]["layers"]] == digests[:1]
    shown = run_cli("builder", "inspect", ref)
    assert shown.returncode == 0, shown.stderr
    _check_text(shown.stdout)


def test_inspect_through_a_third_party_image_source(tmp_path: Path, cache_dir: Path) -> None:
    from cnbkit.inspect_api import inspect_builder_image

    ref = _builder(tmp_path / "p")
    plugin = LayoutImages("vendor-store")
    cnbkit.register_plugin(plugin, "vendor-store")
    try:
        report = inspect_builder_image(ref.replace("oci:", "vendor-store:", 1))
    finally:
        cnbkit.unregister_plugin("vendor-store")
    assert _facts(report) == EXPECTED


def test_inspect_a_builder_in_the_registry_fetches_no_layer(
    registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    config = _project(tmp_path / "p")
    repo = registry.unique_repo("inspect")
    created = run_cli(
        "builder", "create", f"docker://{registry.ref(repo, 't')}", "--config", str(config), "-q"
    )
    assert created.returncode == 0, created.stderr
    mark = registry.mark()
    fresh = {"CNBKIT_CACHE_DIR": str(tmp_path / "fresh-cache")}  # nothing known: all from the registry
    ref = f"docker://{registry.ref(repo, 't')}"
    report = cli_json("builder", "inspect", ref, "--json", "--pull-policy", "always", env=fresh)
    assert _facts(report) == EXPECTED
    shown = run_cli("builder", "inspect", ref, "--pull-policy", "always", env=fresh)
    assert shown.returncode == 0, shown.stderr
    _check_text(shown.stdout)
    fetched = {
        e.path.rsplit("/", 1)[1] for e in registry.log_requests("GET", rf"/v2/{repo}/blobs/.+", since=mark)
    }
    layers = {b["layer"]["digest"] for b in report["buildpacks"]} | {report["lifecycle"]["layer"]["digest"]}
    assert fetched and not fetched & layers, fetched  # the config, never a layer
    assert len(fetched) == 1


def test_inspect_a_builder_in_the_daemon(docker_host: Dockerd, tmp_path: Path, cache_dir: Path) -> None:
    config = _project(tmp_path / "p")
    created = run_cli(
        "builder", "create", "docker-daemon:cnbkit-test/inspect:t", "--config", str(config), "-q"
    )
    assert created.returncode == 0, created.stderr
    for ref, extra in (
        ("docker-daemon:cnbkit-test/inspect:t", ()),
        ("docker://cnbkit-test/inspect:t", ("--pull-policy", "never")),
    ):
        report = cli_json("builder", "inspect", ref, "--json", *extra)
        assert _facts(report) == EXPECTED, ref
        shown = run_cli("builder", "inspect", ref, *extra)
        assert shown.returncode == 0, shown.stderr
        _check_text(shown.stdout)


def test_diff_names_exactly_the_lifecycle_and_the_buildpack_that_changed(tmp_path: Path) -> None:
    old = _builder(tmp_path / "old")
    new = _builder(tmp_path / "new", lifecycle="0.21.1", one="1.0.1")
    found = run_cli("builder", "diff", old, new, "--json")
    assert found.returncode == 1, found.stderr
    changes = json.loads(found.stdout)["changes"]
    assert [(c["subject"], c["change"]) for c in changes] == [
        ("lifecycle", "changed"),
        ("buildpack test/one", "changed"),
    ]
    assert changes[0]["from"]["version"] == "0.21.0" and changes[0]["to"]["version"] == "0.21.1"
    assert changes[1]["from"]["version"] == "1.0.0" and changes[1]["to"]["version"] == "1.0.1"
    assert set(changes[1]["from"]) == {"version", "layer"}
    text = run_cli("builder", "diff", old, new)
    assert text.returncode == 1
    lines = text.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("~ lifecycle: version 0.21.0 -> 0.21.1; layer ")
    assert lines[1].startswith("~ buildpack test/one: version 1.0.0 -> 1.0.1; layer ")


def test_diff_of_a_builder_with_itself_is_nothing(tmp_path: Path) -> None:
    ref = _builder(tmp_path / "p")
    same = run_cli("builder", "diff", ref, ref)
    assert (same.returncode, same.stdout, same.stderr) == (0, "", "")
    assert json.loads(run_cli("builder", "diff", ref, ref, "--json").stdout)["changes"] == []


def test_diff_needs_two_builders() -> None:
    bad = run_cli("builder", "diff", "oci:one")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and len(bad.stderr.splitlines()) == 1


def test_a_plain_image_is_one_line_naming_the_missing_label(tmp_path: Path) -> None:
    build_image(tmp_path / "plain")
    for args in (
        ("inspect", f"oci:{tmp_path / 'plain'}"),
        ("diff", f"oci:{tmp_path / 'plain'}", f"oci:{tmp_path / 'plain'}"),
    ):
        line = one_line_error(run_cli("builder", *args))
        assert "is not a builder: it has no io.buildpacks.builder.metadata label" in line, line


def test_a_missing_image_is_one_line_naming_it(registry: Registry, tmp_path: Path) -> None:
    line = one_line_error(run_cli("builder", "inspect", f"oci:{tmp_path / 'nowhere'}"))
    assert str(tmp_path / "nowhere") in line, line
    missing = registry.ref(registry.unique_repo("missing"), "t")
    line = one_line_error(run_cli("builder", "inspect", f"docker://{missing}", "--pull-policy", "always"))
    assert missing in line, line


@pytest.mark.parametrize(
    ("label", "value", "said"),
    [
        ("io.buildpacks.builder.metadata", '{"lifecycle": 5}', "lifecycle must be an object"),
        (
            "io.buildpacks.builder.metadata",
            '{"buildpacks": [{"id": ["x"]}]}',
            "buildpacks id must be a string",
        ),
        ("io.buildpacks.builder.metadata", "[" * 100_000, "io.buildpacks.builder.metadata"),
        ("io.buildpacks.buildpack.order", '[{"group": 1}]', "group must be a list of objects"),
        ("io.buildpacks.stack.mixins", '"all"', "io.buildpacks.stack.mixins: the label must be a list"),
    ],
)
def test_a_malformed_label_is_one_line_naming_it(label: str, value: str, said: str, tmp_path: Path) -> None:
    labels = {"io.buildpacks.builder.metadata": "{}", label: value}
    build_image(tmp_path / "odd", labels=labels)
    line = one_line_error(run_cli("builder", "inspect", f"oci:{tmp_path / 'odd'}"))
    assert said in line and label in line, line


def test_untrusted_label_text_is_escaped(tmp_path: Path) -> None:
    evil = json.dumps({"description": "x\x1b]0;owned\x07\x1b[2Jy", "lifecycle": {"version": "1\r\x1b[31m"}})
    build_image(tmp_path / "evil", labels={"io.buildpacks.builder.metadata": evil})
    shown = run_cli("builder", "inspect", f"oci:{tmp_path / 'evil'}")
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\r" not in shown.stdout and "\x07" not in shown.stdout
    assert "Description: x\\x1b]0;owned\\x07\\x1b[2Jy" in shown.stdout


def test_the_order_tree_expands_a_meta_buildpack_to_the_depth_asked(tmp_path: Path) -> None:
    config = _project(tmp_path / "p")
    meta = tmp_path / "p" / "meta"
    meta.mkdir()
    (meta / "buildpack.toml").write_text(
        'api = "0.10"\n[buildpack]\n  id = "test/meta"\n  version = "3.0.0"\n\n'
        '[[order]]\n[[order.group]]\n  id = "test/two"\n  version = "2.0.0"\n'
    )
    text = config.read_text().replace('uri = "bp2"', 'uri = "bp2"\n\n[[buildpacks]]\nuri = "meta"')
    config.write_text(
        text.replace('[[order.group]]\nid = "test/two"', '[[order.group]]\nid = "test/meta"', 1)
    )
    created = run_cli("builder", "create", f"oci:{tmp_path / 'out'}:b", "--config", str(config), "-q")
    assert created.returncode == 0, created.stderr
    ref = f"oci:{tmp_path / 'out'}:b"
    full = run_cli("builder", "inspect", ref).stdout
    assert " ├ Group #1:\n │  └ test/one\n └ Group #2:\n    ├ test/meta\n    │  └ Group #1:\n" in full, full
    assert "    │     └ test/two@2.0.0\n    └ test/one    (optional)\n" in full, full
    flat = run_cli("builder", "inspect", ref, "--depth", "0").stdout
    assert "test/two@2.0.0" not in flat and "    ├ test/meta\n    └ test/one    (optional)\n" in flat, flat
    nested = cli_json("builder", "inspect", ref, "--json")["order"][1]["group"][0]
    assert nested["order"] == [{"group": [{"id": "test/two", "version": "2.0.0", "optional": False}]}]
    assert (
        "order" not in cli_json("builder", "inspect", ref, "--json", "--depth", "0")["order"][1]["group"][0]
    )
    bad = run_cli("builder", "inspect", ref, "--depth", "-2")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")


def _multi_arch(root: Path) -> str:
    """Builders for linux/amd64 and linux/arm64 under one index, tagged ``multi``."""
    config = _project(root)
    build_image(
        root / "build", platform="linux/arm64", tag="arm", labels={"io.buildpacks.stack.id": "arm.stack"}
    )
    arm = root / "arm.toml"
    arm.write_text(config.read_text().replace("oci:build:latest", "oci:build:arm"))
    entries = []
    for name, toml, platform in (("amd", config, "linux/amd64"), ("arm", arm, "linux/arm64")):
        made = run_cli(
            "builder", "create", f"oci:{root / 'out'}:{name}", "--config", str(toml), "--platform", platform
        )
        assert made.returncode == 0, made.stderr
        listed = json.loads((root / "out" / "index.json").read_text())["manifests"]
        entry = next(e for e in listed if e["annotations"]["org.opencontainers.image.ref.name"] == name)
        os_, arch = platform.split("/")
        entries.append(
            {k: entry[k] for k in ("mediaType", "digest", "size")}
            | {"platform": {"os": os_, "architecture": arch}}
        )
    data = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}
    ).encode()
    digest = digest_of(data)
    (root / "out" / "blobs" / "sha256" / digest[7:]).write_bytes(data)
    index = json.loads((root / "out" / "index.json").read_text())
    index["manifests"].append(
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": len(data),
         "annotations": {"org.opencontainers.image.ref.name": "multi"}}
    )  # fmt: skip
    (root / "out" / "index.json").write_text(json.dumps(index))
    return f"oci:{root / 'out'}:multi"


def test_a_multi_arch_builder_shows_every_platform_and_platform_picks_one(tmp_path: Path) -> None:
    ref = _multi_arch(tmp_path / "p")
    report = cli_json("builder", "inspect", ref, "--json", "--platform", "linux/amd64")
    assert report["platforms"] == ["linux/amd64", "linux/arm64"] and report["others"] == []
    assert (report["platform"], report["stack"]["id"]) == ("linux/amd64", "test.stack")
    picked = cli_json("builder", "inspect", ref, "--json", "--platform", "linux/arm64")
    assert (picked["platform"], picked["stack"]["id"], picked["others"]) == ("linux/arm64", "arm.stack", [])
    every = cli_json("builder", "inspect", ref, "--json")
    shown = {every["platform"], *(o["platform"] for o in every["others"])}
    assert shown == {"linux/amd64", "linux/arm64"} and len(every["others"]) == 1
    assert {o["stack"]["id"] for o in [every, *every["others"]]} == {"test.stack", "arm.stack"}
    text = run_cli("builder", "inspect", ref).stdout
    assert text.count("Inspecting builder:") == 2 and "(linux/arm64)" in text and "(linux/amd64)" in text
    assert "Platforms: linux/amd64, linux/arm64" in text


def test_a_multi_arch_builder_in_the_registry_shows_every_platform(
    registry: Registry, tmp_path: Path
) -> None:
    layout = _multi_arch(tmp_path / "p")
    ref = copy(layout, registry, registry.unique_repo("multi"), "t", workdir=tmp_path, extra=("--all",))
    mark = registry.mark()
    every = cli_json("builder", "inspect", f"docker://{ref}", "--json", "--pull-policy", "always")
    assert every["platforms"] == ["linux/amd64", "linux/arm64"] and len(every["others"]) == 1
    assert {o["stack"]["id"] for o in [every, *every["others"]]} == {"test.stack", "arm.stack"}
    layers = {b["layer"]["digest"] for o in [every, *every["others"]] for b in o["buildpacks"]}
    fetched = {e.path.rsplit("/", 1)[1] for e in registry.log_requests("GET", r"/v2/.+/blobs/.+", since=mark)}
    assert not fetched & layers and len(fetched) == 2  # the two configs


def test_meta_buildpacks_naming_each_other_over_and_over_are_one_line(tmp_path: Path) -> None:
    # 40 meta-buildpacks, each naming the next twice: 2**40 entries in a full tree.
    layers = {
        f"m/{n}": {
            "1": {
                "api": "0.10",
                "layerDiffID": "sha256:" + "0" * 64,
                "order": [{"group": [{"id": f"m/{n + 1}", "version": "1"}] * 2}],
            }
        }
        for n in range(40)
    }
    labels = {
        "io.buildpacks.builder.metadata": "{}",
        "io.buildpacks.buildpack.layers": json.dumps(layers),
        "io.buildpacks.buildpack.order": json.dumps([{"group": [{"id": "m/0", "version": "1"}]}]),
    }
    build_image(tmp_path / "deep", labels=labels)
    line = one_line_error(run_cli("builder", "inspect", f"oci:{tmp_path / 'deep'}", timeout=60))
    assert "expands to more than 100,000 entries; give a smaller --depth" in line, line
    shallow = run_cli("builder", "inspect", f"oci:{tmp_path / 'deep'}", "--depth", "3", timeout=60)
    assert shallow.returncode == 0, shallow.stderr
    assert shallow.stdout.count("m/3@1") == 8 and "m/4@1" not in shallow.stdout


def test_diff_names_a_buildpack_added_and_a_run_image_changed(tmp_path: Path) -> None:
    old = _builder(tmp_path / "old")
    config = _project(tmp_path / "new")
    buildpack(tmp_path / "new" / "bp3", ident="test/three", version="3.0.0")
    text = config.read_text().replace('uri = "bp2"', 'uri = "bp2"\n\n[[buildpacks]]\nuri = "bp3"')
    config.write_text(text.replace('image = "second.example/run"', 'image = "third.example/run"'))
    made = run_cli("builder", "create", f"oci:{tmp_path / 'new' / 'out'}:b", "--config", str(config), "-q")
    assert made.returncode == 0, made.stderr
    found = run_cli("builder", "diff", old, f"oci:{tmp_path / 'new' / 'out'}:b")
    assert found.returncode == 1, found.stderr
    lines = found.stdout.splitlines()
    assert lines[0] == "+ buildpack test/three@3.0.0", lines
    assert lines[1].startswith("~ run images: [") and "third.example/run" in lines[1], lines
    assert len(lines) == 2, lines
    back = run_cli("builder", "diff", f"oci:{tmp_path / 'new' / 'out'}:b", old).stdout.splitlines()
    assert back[0] == "- buildpack test/three@3.0.0", back


def test_extensions_are_listed_with_their_layers_and_order(tmp_path: Path) -> None:
    config = _project(tmp_path / "p")
    ext = tmp_path / "p" / "ext"
    (ext / "bin").mkdir(parents=True)
    (ext / "extension.toml").write_text(
        'api = "0.10"\n[extension]\n  id = "test/ext"\n  version = "1.2.3"\n  homepage = "https://ext.example"\n'
    )
    for name in ("detect", "generate"):
        (ext / "bin" / name).write_text("#!/bin/sh\nexit 0\n")
        (ext / "bin" / name).chmod(0o755)
    extra = (
        '\n[[extensions]]\nuri = "ext"\n\n[[order-extensions]]\n[[order-extensions.group]]\nid = "test/ext"\n'
        "optional = true\n"  # the order-extensions label drops it, as pack's does
    )
    config.write_text(config.read_text() + extra)
    made = run_cli("builder", "create", f"oci:{tmp_path / 'out'}:b", "--config", str(config), "-q")
    assert made.returncode == 0, made.stderr
    ref = f"oci:{tmp_path / 'out'}:b"
    report = cli_json("builder", "inspect", ref, "--json")
    (extension,) = report["extensions"]
    assert (extension["id"], extension["version"], extension["homepage"]) == (
        "test/ext",
        "1.2.3",
        "https://ext.example",
    )
    assert extension["layer"]["digest"] and extension["layer"]["size"] > 0
    assert report["order_extensions"] == [{"group": [{"id": "test/ext", "version": "", "optional": False}]}]
    assert _facts(report) == EXPECTED
    assert report["lifecycle"]["layer"]["created_by"] == "cnbkit: lifecycle"  # found below the modules
    text = run_cli("builder", "inspect", ref).stdout
    assert re.search(r"\nExtensions:\n  ID .*\n  test/ext +- +1\.2\.3 +https://ext\.example ", text), text
    assert "\nDetection Order (Extensions):\n └ Group #1:\n    └ test/ext\n" in text, text
