"""Issue 22, item 5: exporters say what they write (``cnbkit_exporters``): ``cnbkit plugins``
and its ``--json`` list every exporter's targets, and the "no plugin exports to" error lists
every installed target kind, a third party's too."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import cnbkit

from tests.builder_support import builder_project
from tests.conftest import in_process


class _Tarballs:
    """A third party's exporter that only describes itself (the test never writes with it)."""

    @cnbkit.hookimpl
    def cnbkit_exporters(self) -> list[str]:
        return ["tarball:PATH"]

    @cnbkit.hookimpl
    def cnbkit_export(self, target: str, image: cnbkit.Image, context: cnbkit.Context) -> str | None:
        return None


@contextlib.contextmanager
def _tarballs():  # type: ignore[no-untyped-def]
    cnbkit.register_plugin(_Tarballs(), "tarballs")
    try:
        yield
    finally:
        cnbkit.unregister_plugin("tarballs")


def test_plugins_json_lists_every_exporters_targets() -> None:
    with _tarballs():
        code, out, _ = in_process("plugins", "--json")
        text_code, text, _ = in_process("plugins")
    assert code == 0 and text_code == 0
    exports = {row["name"]: row["exports"] for row in json.loads(out)}
    assert exports["tarballs"] == ["tarball:PATH"]
    assert exports["oci-export"] == ["oci:DIR[:TAG] (an OCI image layout)"]
    assert any(t.startswith("docker://") for t in exports["docker-export"])
    assert any(t.startswith("docker-daemon:") for t in exports["docker-export"])
    assert exports["archives"] == ["docker-archive:PATH[:REF]", "oci-archive:PATH[:REF]"]
    assert exports["file"] == []
    assert "exports to tarball:PATH" in text and "exports to oci:DIR[:TAG]" in text


def test_the_export_error_lists_every_installed_target(tmp_path: Path) -> None:
    project = builder_project(tmp_path / "project")
    with _tarballs():
        code, _, err = in_process("builder", "create", "nowhere:x", "--config", str(project / "builder.toml"))
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 1 and len(errors) == 1, err
    for target in ("tarball:PATH (tarballs)", "oci:DIR[:TAG]", "docker-daemon:", "docker-archive:PATH[:REF]"):
        assert target in errors[0], errors[0]
