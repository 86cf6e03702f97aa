"""One definition of each constant and helper: a second copy is a second rule to keep in step."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import cnbkit
import pytest

ROOT = Path(__file__).parent.parent
CORE = ROOT / "core"
_SOURCES = sorted([*CORE.rglob("*.py"), *(ROOT / "resolvers").rglob("*.py")])


def _where(pattern: str) -> list[str]:
    found = re.compile(pattern)
    return [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _SOURCES
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if found.search(line)
    ]


def _files(pattern: str) -> list[str]:
    return sorted({hit.rsplit(":", 1)[0] for hit in _where(pattern)})


def test_media_types_are_spelled_in_one_module() -> None:
    assert _files(r"[\"']application/vnd\.") == ["core/oci/mediatypes.py"]


def test_the_silent_progress_is_defined_once() -> None:
    assert _files(r"^\s*class _?Silent\b") == ["core/progress.py"]


def test_the_pull_policies_are_listed_once() -> None:
    # The list and the default (prose, and a plugin comparing a policy, may name one).
    assert _files(r"[\"']always[\"'], [\"']if-not-present") == ["core/options.py"]
    assert _files(r"(default=|[^=!]= |\bor )[\"']if-not-present[\"']") == ["core/options.py"]


def test_one_atomic_write_helper_with_one_durability_rule() -> None:
    # archive/atomic.py holds the helper and says why nothing is fsync'ed; a second helper (the
    # layout writer's fsync'ing one) was a second rule.
    assert _where(r"\bos\.fsync\(") == []
    helpers = _where(r"^\s*def \w*atomic\w*\(")
    assert helpers and all(hit.startswith("core/archive/atomic.py:") for hit in helpers), helpers


def test_versions_are_parsed_by_one_rule_each() -> None:
    # A lifecycle version by lifecycle/versions.py (pack's semver), an API version by the
    # descriptor's api_version: no third pattern, no comparison by stripping a "v".
    patterns = _where(r"r[\"]\^?v\?")
    assert [hit.rsplit(":", 1)[0] for hit in patterns] == [
        "core/lifecycle/descriptor.py",
        "core/lifecycle/versions.py",
    ], patterns
    assert _where(r"\.lstrip\([\"']v[\"']\)") == []


def test_relative_paths_are_resolved_against_the_base_by_one_helper() -> None:
    # locator.local_path (Locator.path_for for a plugin): "~" expanded, relative to base_dir.
    joins = _where(r"(is_absolute\(\)|isabs\(\w+\)) else [(\w].* / ")
    assert [hit.rsplit(":", 1)[0] for hit in joins] == ["core/locator.py"], joins


def test_no_list_of_image_schemes_beside_the_plugins_claims() -> None:
    # A builder.toml image goes to the plugins as written and, unclaimed, as docker://NAME
    # (Context.resolve_image); builder/config.py's own scheme list was a dead second rule.
    assert _where(r"[\"'](oci|docker|docker-daemon):[\"']") == []


def test_plugin_load_failure_is_a_record_not_a_misnamed_exception() -> None:
    from cnbkit.plugin import loader

    assert not hasattr(loader, "PluginLoadError")
    failure = loader.PluginLoadFailure("broken", "dist 1.0", "ImportError: no module")
    assert not isinstance(failure, BaseException) and failure.name == "broken"


@pytest.mark.parametrize(
    "name",
    [
        "OciDescriptor",
        "media_types",
        "ImageError",
        "PlatformNotFoundError",
        "RegistryError",
        "DaemonUnavailableError",
    ],
)
def test_the_face_serves_what_an_image_source_needs(name: str) -> None:
    assert name in cnbkit.__all__ and getattr(cnbkit, name) is not None


def _docstrings() -> list[tuple[str, str]]:
    found = []
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    found.append((str(path.relative_to(ROOT)), doc))
    return found


@pytest.mark.parametrize("gone", ["registry/blobs.py", "open_response", "lifecycle/links.py", "_layer_path"])
def test_docstrings_and_the_map_name_no_module_or_function_that_moved(gone: str) -> None:
    stale = [where for where, doc in _docstrings() if gone in doc]
    architecture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert stale == [] and gone not in architecture, stale
