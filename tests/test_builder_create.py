"""``cnbkit builder create`` end to end through the CLI: builders read back by skopeo and umoci,
lifecycles from a file, over https and from a third party's scheme, and broken inputs refused
with one line and nothing written at the target."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cnbkit
import pytest
from cnbkit.cli import main

from tests.builder_support import (
    EXAMPLES,
    LayoutImages,
    build_image,
    builder_project,
    builder_toml,
    buildpack,
)
from tests.https_server import (  # noqa: F401 - fixtures
    HTTPSServer,
    ca_bundle_fixture,
    https_server_fixture,
    test_ca_fixture,
)
from tests.lifecycles import lifecycle_entries, write_tar
from tests.services.skopeo import skopeo

MTIME_1980 = 315532801
PHASES = ("analyzer", "builder", "creator", "detector", "exporter", "launcher", "restorer")


@pytest.fixture(autouse=True)
def layouts() -> Iterator[None]:
    """Images for ``thirdparty:`` (a third party's image scheme); ``oci:`` is the built-in
    oci-layout plugin's."""
    cnbkit.register_plugin(LayoutImages("thirdparty"), "test-thirdparty-images")
    yield
    cnbkit.unregister_plugin("test-thirdparty-images")


def cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in this process (so the in-code plugins above are registered)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def create_json(target: str, config: Path, *extra: str) -> dict[str, Any]:
    code, out, err = cli("builder", "create", target, "--config", str(config), "--json", *extra)
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A builder.toml with a file lifecycle, one buildpack and a build image in a layout."""
    return builder_project(tmp_path / "project")


def _unpack(layout: Path, tag: str, dest: Path) -> Path:
    umoci = shutil.which("umoci")
    assert umoci, "umoci is needed (CI installs it)"
    subprocess.run(
        [umoci, "unpack", "--image", f"{layout}:{tag}", str(dest)], check=True, capture_output=True
    )
    return dest / "rootfs"


def _inspect(layout: Path, tag: str, workdir: Path) -> Any:
    return json.loads(skopeo("inspect", f"oci:{layout}:{tag}", workdir=workdir).stdout)


def test_the_bundled_example_makes_a_builder_skopeo_and_umoci_read(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = create_json(f"oci:{out}:v1", EXAMPLES / "builder.toml")
    assert result["target"] == f"oci:{out}:v1" and result["digest"].startswith("sha256:")
    assert [layer["source"].split(" ")[0] for layer in result["layers"]] == [
        "layer", "directories", "lifecycle", "buildpack", "cnb/order.toml", "cnb/stack.toml",
        "cnb/run.toml", "platform/env",
    ]  # fmt: skip
    info = _inspect(out, "v1", tmp_path)
    assert info["Digest"] == result["digest"]
    metadata = json.loads(info["Labels"]["io.buildpacks.builder.metadata"])
    assert metadata["lifecycle"]["version"] == "0.21.0"
    assert metadata["lifecycle"]["apis"]["buildpack"]["supported"][-1] == "0.12"
    assert metadata["lifecycle"]["apis"]["platform"]["supported"][-1] == "0.15"
    # pack's lifecycle.api: the earliest API of each (CompatDescriptor), not the newest, and by
    # number (0.7 before 0.10)
    assert metadata["lifecycle"]["api"] == {"buildpack": "0.7", "platform": "0.7"}
    assert metadata["buildpacks"] == [
        {
            "id": "examples/hello",
            "name": "Hello",
            "version": "0.0.1",
            "homepage": "https://github.com/buildpacks/spec",
        }
    ]
    assert info["Labels"]["io.buildpacks.stack.id"] == "io.buildpacks.examples.tiny"  # the base's own
    assert "CNB_USER_ID=1000" in info["Env"]
    rootfs = _unpack(out, "v1", tmp_path / "bundle")
    for phase in PHASES:
        assert (rootfs / "cnb" / "lifecycle" / phase).exists(), phase
    assert (rootfs / "cnb" / "lifecycle.toml").read_bytes() == (
        EXAMPLES / "lifecycle" / "lifecycle.toml"
    ).read_bytes()
    build = rootfs / "cnb" / "buildpacks" / "examples_hello" / "0.0.1" / "bin" / "build"
    assert build.stat().st_mode & 0o777 == 0o755
    order = rootfs / "cnb" / "order.toml"
    assert (
        order.read_text()
        == '[[order]]\n\n  [[order.group]]\n    id = "examples/hello"\n    version = "0.0.1"\n'
    )
    for path, owner, mode in (
        ("workspace", 1000, 0o755),
        ("layers", 1000, 0o755),
        ("cnb", 0, 0o755),
        ("cnb/order.toml", 0, 0o644),
        ("cnb/lifecycle/lifecycle", 0, 0o755),
        ("platform/env", 0, 0o755),
    ):
        st = (rootfs / path).lstat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777, int(st.st_mtime)) == (
            owner,
            owner,
            mode,
            MTIME_1980,
        ), path
    assert os.readlink(rootfs / "lifecycle") == "/cnb/lifecycle"


def test_building_twice_gives_the_same_digest_and_compresses_nothing(project: Path, tmp_path: Path) -> None:
    first = create_json(f"oci:{tmp_path / 'a'}:x", project / "builder.toml")
    second = create_json(f"oci:{tmp_path / 'b'}:x", project / "builder.toml")
    assert first["digest"] == second["digest"]
    assert all(layer["reused"] for layer in second["layers"])
    assert not all(layer["reused"] for layer in first["layers"])
    # Same layout again: the tag moves to the same manifest; blobs are not written twice.
    third = create_json(f"oci:{tmp_path / 'a'}:y", project / "builder.toml")
    assert third["digest"] == first["digest"]
    index = json.loads((tmp_path / "a" / "index.json").read_text())
    assert {m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]} == {"x", "y"}


def test_build_image_config_is_kept_and_the_checks_pass(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    create_json(f"oci:{out}:t", project / "builder.toml")
    info = _inspect(out, "t", tmp_path)
    assert info["Labels"]["a.label"] == "kept"
    config_digest = json.loads(skopeo("inspect", "--raw", f"oci:{out}:t", workdir=tmp_path).stdout)["config"]
    config = json.loads((out / "blobs" / "sha256" / config_digest["digest"].split(":")[1]).read_bytes())
    assert config["config"]["WorkingDir"] == "/layers"
    assert "Entrypoint" not in config["config"] and "Cmd" not in config["config"]
    assert config["created"] == "1980-01-01T00:00:01Z"
    layers = json.loads(info["Labels"]["io.buildpacks.buildpack.layers"])
    assert layers["test/one"]["1.0.0"]["api"] == "0.10"
    assert json.loads(info["Labels"]["io.buildpacks.buildpack.order"]) == [{"group": [{"id": "test/one"}]}]
    rootfs = _unpack(out, "t", tmp_path / "bundle")
    assert (rootfs / "workspace").stat().st_gid == 1001
    assert (rootfs / "cnb" / "run.toml").read_text() == (
        '[[images]]\n  image = "cnbs/sample-base-run:jammy"\n  mirrors = ["mirror.example/run"]\n'
    )
    assert (rootfs / "cnb" / "buildpacks" / "test_one" / "1.0.0" / "README").stat().st_mode & 0o777 == 0o644


def test_labels_are_json_as_go_writes_it(project: Path, tmp_path: Path) -> None:
    # pack's labels come from Go's encoding/json: compact, and <, > and & escaped, so a
    # description holding them gives the same label bytes (and image digest) as pack's.
    config = project / "builder.toml"
    config.write_text(config.read_text().replace('"test builder"', '"builds <apps> & more, caf\u00e9"'))
    out = tmp_path / "out"
    create_json(f"oci:{out}:t", config)
    labels = _inspect(out, "t", tmp_path)["Labels"]
    raw = labels["io.buildpacks.builder.metadata"]
    assert raw.startswith(
        '{"description":"builds \\u003capps\\u003e \\u0026 more, caf\u00e9","buildpacks":[{'
    )
    assert json.loads(raw)["description"] == "builds <apps> & more, caf\u00e9"
    assert labels["io.buildpacks.buildpack.order"] == '[{"group":[{"id":"test/one"}]}]'


@pytest.mark.parametrize(
    ("extra", "run_image"),
    [
        ("", {"image": "", "mirrors": None}),  # no [stack] id: pack writes an empty one
        (
            '[stack]\nid = "x.stack"\nrun-image = "stack/run"\nrun-image-mirrors = ["m.example/run"]',
            {"image": "stack/run", "mirrors": ["m.example/run"]},
        ),
        (
            '[stack]\nid = "x.stack"\n\n[[run.images]]\nimage = "second/run"',
            {"image": "cnbs/sample-base-run:jammy", "mirrors": ["mirror.example/run"]},
        ),
    ],
    ids=["no-stack", "stack-run-image", "first-run-image"],
)
def test_the_metadata_label_names_packs_stack_run_image_and_the_mixins(
    tmp_path: Path, extra: str, run_image: dict[str, Any]
) -> None:
    project = builder_project(tmp_path / "project", with_build_image=False)
    mixins = '["build:git","curl"]'
    build_image(
        project / "build", labels={"io.buildpacks.stack.mixins": mixins, "io.buildpacks.stack.id": "x.stack"}
    )
    config = builder_toml(project / "builder.toml", lifecycle='uri = "lifecycle.tgz"', extra=extra)
    out = tmp_path / "out"
    create_json(f"oci:{out}:t", config)
    labels = _inspect(out, "t", tmp_path)["Labels"]
    assert json.loads(labels["io.buildpacks.builder.metadata"])["stack"] == {"runImage": run_image}
    assert labels["io.buildpacks.stack.mixins"] == mixins  # the build image's, as pack copies them


def test_mixins_that_are_not_a_list_are_none(tmp_path: Path) -> None:
    project = builder_project(tmp_path / "project", with_build_image=False)
    build_image(project / "build", labels={"io.buildpacks.stack.mixins": '{"not": "a list"}'})
    out = tmp_path / "out"
    create_json(f"oci:{out}:t", project / "builder.toml")
    assert _inspect(out, "t", tmp_path)["Labels"]["io.buildpacks.stack.mixins"] == "null"


@pytest.mark.parametrize(("uid", "gid"), [(0, 0), (0, 1000), (1000, 0), (1000, 1001), (1, 0), (0, 1)])
def test_the_directories_layer_holds_packs_entries_owned_by_the_cnb_user(
    tmp_path: Path, uid: int, gid: int
) -> None:
    # /workspace and /layers belong to CNB_USER_ID:CNB_GROUP_ID, whichever of them is root;
    # everything else is root's, 0755 (the /lifecycle compat link 0644, as pack writes it).
    project = builder_project(tmp_path / "project", with_build_image=False)
    build_image(project / "build", env=("PATH=/usr/bin:/bin", f"CNB_USER_ID={uid}", f"CNB_GROUP_ID={gid}"))
    out = tmp_path / "out"
    result = create_json(f"oci:{out}:t", project / "builder.toml")
    (layer,) = [layer for layer in result["layers"] if layer["source"].startswith("directories ")]
    assert layer["source"].startswith(f"directories (/workspace and /layers owned by {uid}:{gid}, ")
    blob = out / "blobs" / "sha256" / layer["digest"].split(":")[1]
    with tarfile.open(blob) as tar:
        entries = [(m.name, m.type, m.mode, m.uid, m.gid, m.linkname, m.mtime) for m in tar.getmembers()]
    root = [(name, tarfile.DIRTYPE, 0o755, 0, 0, "", MTIME_1980) for name in (
        "cnb", "cnb/buildpacks", "cnb/extensions", "platform", "platform/env", "cnb/build-config",
        "cnb/build-config/env",
    )]  # fmt: skip
    assert entries == [
        ("workspace", tarfile.DIRTYPE, 0o755, uid, gid, "", MTIME_1980),
        ("layers", tarfile.DIRTYPE, 0o755, uid, gid, "", MTIME_1980),
        *root,
        ("lifecycle", tarfile.SYMTYPE, 0o644, 0, 0, "/cnb/lifecycle", MTIME_1980),
    ]


def test_a_lifecycle_over_https(
    tmp_path: Path, https_server: HTTPSServer, ca_bundle: Path, project: Path
) -> None:
    url = https_server.add("/lc.tgz", (project / "lifecycle.tgz").read_bytes())
    builder_toml(project / "builder.toml", lifecycle=f'uri = "{url}"')
    result = create_json(f"oci:{tmp_path / 'out'}:t", project / "builder.toml", "--ca-cert", str(ca_bundle))
    assert any(layer["source"].startswith(f"lifecycle 0.21.0 from {url}") for layer in result["layers"])


class _AcmeLifecycles:
    """A third party's lifecycle scheme, ``acme://NAME``, from a directory."""

    def __init__(self, store: Path, platform: str | None = None) -> None:
        self.store = store
        self.platform = cnbkit.parse_platform(platform) if platform else None

    @cnbkit.hookimpl
    def cnbkit_resolve(self, locator: cnbkit.Locator, context: cnbkit.Context) -> cnbkit.Blob | None:
        if locator.scheme != "acme":
            return None
        return cnbkit.FileBlob(self.store / locator.rest, source=str(locator), platform=self.platform)


def test_a_third_party_lifecycle_scheme_and_image_scheme(project: Path, tmp_path: Path) -> None:
    cnbkit.register_plugin(_AcmeLifecycles(project), "acme-lifecycles")
    try:
        builder_toml(
            project / "builder.toml",
            lifecycle='uri = "acme://lifecycle.tgz"',
            image=f"thirdparty://{project / 'build'}:latest",
        )
        result = create_json(f"oci:{tmp_path / 'out'}:t", project / "builder.toml")
    finally:
        cnbkit.unregister_plugin("acme-lifecycles")
    info = _inspect(tmp_path / "out", "t", tmp_path)
    assert json.loads(info["Labels"]["io.buildpacks.builder.metadata"])["lifecycle"]["version"] == "0.21.0"
    assert result["layers"][2]["source"].startswith("lifecycle 0.21.0 from acme://lifecycle.tgz")


def _broken(project: Path, case: str) -> None:
    toml = project / "builder.toml"
    if case == "missing lifecycle file":
        builder_toml(toml, lifecycle='uri = "nope.tgz"')
    elif case == "both uri and version":
        builder_toml(toml, lifecycle='uri = "lifecycle.tgz"\nversion = "0.21.0"')
    elif case == "order names an absent buildpack":
        builder_toml(toml, lifecycle='uri = "lifecycle.tgz"', order=("test/absent",))
    elif case == "unsupported buildpack API":
        shutil.rmtree(project / "bp")
        buildpack(project / "bp", api="0.3")
        builder_toml(toml, lifecycle='uri = "lifecycle.tgz"')
    elif case == "build image without CNB_USER_ID":
        shutil.rmtree(project / "build")
        build_image(project / "build", env=("CNB_GROUP_ID=1000",))
    elif case == "unreachable build image":
        builder_toml(toml, lifecycle='uri = "lifecycle.tgz"', image="oci:no-such-layout:latest")
    elif case == "lifecycle for another platform":
        cnbkit.register_plugin(_AcmeLifecycles(project, "linux/arm64"), "acme-lifecycles")
        builder_toml(toml, lifecycle='uri = "acme://lifecycle.tgz"')
    elif case == "windows lifecycle for a linux build image":
        write_tar(project / "lifecycle.tgz", lifecycle_entries(windows=True))
    elif case == "malformed TOML":
        toml.write_text('description = "x"\n[build]\nimage = \n')
    elif case == "hostile TOML: deep nesting":
        toml.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    elif case == "hostile TOML: huge integer":
        toml.write_text("description = 1" + "9" * 100_000 + "\n")
    elif case == "unknown key":
        builder_toml(toml, lifecycle='uri = "lifecycle.tgz"', extra='[[groups]]\nid = "x"')
    elif case == "buildpack id differs from builder.toml":
        builder_toml(
            toml, lifecycle='uri = "lifecycle.tgz"', extra='[[buildpacks]]\nuri = "bp"\nid = "other"'
        )
    else:  # pragma: no cover
        raise AssertionError(case)


BROKEN = {
    "missing lifecycle file": r"nope\.tgz: no such file",
    "both uri and version": r"line \d+\): 'lifecycle' can only declare 'version' or 'uri', not both",
    "order names an absent buildpack": r"no versions of buildpack 'test/absent' were found on the builder",
    "unsupported buildpack API": (
        r"buildpack 'test/one@1.0.0' \(Buildpack API 0.3\) is incompatible with lifecycle '0.21.0' "
        r"\(Buildpack API\(s\) 0.7, 0.8, 0.9, 0.10, 0.11, 0.12\)"
    ),
    "build image without CNB_USER_ID": r"image missing required env var 'CNB_USER_ID'",
    "unreachable build image": r"build image oci:no-such-layout:latest: .*no such directory",
    "lifecycle for another platform": r"is for linux/arm64, but build image .* is linux/amd64",
    "windows lifecycle for a linux build image": r"holds Windows phase binaries",
    "malformed TOML": r"builder\.toml: invalid TOML: .*line 3",
    "hostile TOML: deep nesting": r"builder\.toml: invalid TOML",
    "hostile TOML: huge integer": r"builder\.toml: invalid TOML",
    "unknown key": r"unknown configuration element 'groups' in '.*builder\.toml' \(line \d+\)",
    "buildpack id differs from builder.toml": r"has ID 'test/one' which does not match ID 'other'",
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_inputs_fail_with_one_line_and_write_nothing(case: str, project: Path, tmp_path: Path) -> None:
    _broken(project, case)
    target = tmp_path / "out"
    try:
        code, out, err = cli(
            "builder", "create", f"oci:{target}:t", "--config", str(project / "builder.toml")
        )
    finally:
        with contextlib.suppress(Exception):
            cnbkit.unregister_plugin("acme-lifecycles")
    assert code == 1, (out, err)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert re.search(BROKEN[case], errors[0]), errors[0]
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_a_target_no_plugin_writes_is_named(project: Path) -> None:
    code, _, err = cli("builder", "create", "nowhere:x", "--config", str(project / "builder.toml"))
    assert code == 1 and "no plugin exports to 'nowhere:x'" in err


def test_builder_create_needs_config() -> None:
    code, _, err = cli("builder", "create", "oci:x")
    assert code == 2 and "--config" in err


def test_the_readme_first_command_builds_the_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = (EXAMPLES.parent / "README.md").read_text().split("```bash\n", 1)[1].splitlines()[0]
    args = first.split(".venv/bin/cnbkit ", 1)[1].split()
    assert args[:2] == ["builder", "create"]
    (tmp_path / "examples").symlink_to(EXAMPLES)
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(*args)
    assert code == 0, err
    assert out.startswith("Created builder oci:") and "buildpack examples/hello@0.0.1" in out
    assert (tmp_path / "builder" / "index.json").is_file()


def test_a_lifecycle_image_layer_is_passed_through_as_stored(project: Path, tmp_path: Path) -> None:
    from tests.test_resolve_image import official

    official(project / "lifecycle-image", tag="v1")
    builder_toml(project / "builder.toml", lifecycle='uri = "oci:lifecycle-image:v1"')
    index = json.loads((project / "lifecycle-image" / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((project / "lifecycle-image" / "blobs" / "sha256" / manifest_digest).read_text())
    lifecycle_layer = manifest["layers"][-1]["digest"]
    first = create_json(f"oci:{tmp_path / 'a'}:t", project / "builder.toml")
    second = create_json(f"oci:{tmp_path / 'b'}:t", project / "builder.toml")  # warm: from the cache
    assert first["layers"][2]["digest"] == lifecycle_layer == second["layers"][2]["digest"]
    assert first["digest"] == second["digest"]
    rootfs = _unpack(tmp_path / "a", "t", tmp_path / "bundle")
    for phase in PHASES:
        assert (rootfs / "cnb" / "lifecycle" / phase).exists(), phase
    assert (rootfs / "cnb" / "lifecycle.toml").is_file()


def test_a_buildpack_the_build_image_already_has_is_skipped_or_whited_out(
    project: Path, tmp_path: Path
) -> None:
    """pack §4.4: the same id@version with the same layer on the build image is not added again;
    with another layer, a one-entry whiteout layer of its directory goes first."""
    first = create_json(f"oci:{tmp_path / 'first'}:v1", project / "builder.toml")
    layer = next(x for x in first["layers"] if x["source"].startswith("buildpack test/one@1.0.0"))
    for name, diff_id in (("same", layer["diff_id"]), ("other", "sha256:" + "1" * 64)):
        label = json.dumps({"test/one": {"1.0.0": {"api": "0.10", "layerDiffID": diff_id}}})
        build_image(project / "build", labels={"io.buildpacks.buildpack.layers": label})
        result = create_json(f"oci:{tmp_path / name}:v1", project / "builder.toml")
        sources = [x["source"].split(" ")[0] for x in result["layers"]]
        if name == "same":
            assert "buildpack" not in sources and len(result["layers"]) == len(first["layers"]) - 1
        else:
            assert sources[sources.index("buildpack") - 1] == "whiteout"
            rootfs = _unpack(tmp_path / name, "v1", tmp_path / f"bundle-{name}")
            assert (rootfs / "cnb" / "buildpacks" / "test_one" / "1.0.0" / "bin" / "detect").is_file()
        info = _inspect(tmp_path / name, "v1", tmp_path)
        layers_label = json.loads(info["Labels"]["io.buildpacks.buildpack.layers"])
        assert layers_label["test/one"]["1.0.0"]["layerDiffID"] == layer["diff_id"]
