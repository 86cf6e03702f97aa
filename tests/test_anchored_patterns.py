"""Every validating pattern matches the whole string: Python's ``$`` also matches before a
trailing newline (Go's does not), so ``^...$`` let ``sha256:<hex>\\n`` through as a digest, and
with it a newline into a blob's URL and its cache file name. Patterns end in ``\\Z``; this file
checks the source for a ``$`` anchor and drives each validator with a trailing newline."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from cnbkit.archive.digest import validate_digest
from cnbkit.errors import ArchiveError, UsageError
from cnbkit.oci.platform import parse_platform
from cnbkit.transport.layout_writer import validate_tag

ROOT = Path(__file__).resolve().parent.parent


def _compiled_patterns() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted([*ROOT.joinpath("core").rglob("*.py"), *ROOT.joinpath("resolvers").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "re"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.append((str(path.relative_to(ROOT)), node.lineno, node.args[0].value))
    return found


def test_no_pattern_is_anchored_with_a_dollar() -> None:
    patterns = _compiled_patterns()
    assert len(patterns) > 10  # the scan finds the patterns at all
    dollar = [(path, line) for path, line, pattern in patterns if re.search(r"(?<!\\)\$\)*$", pattern)]
    assert dollar == [], "end these patterns with \\Z, not $ (which also matches before a newline)"


DIGEST = "sha256:" + "a" * 64


def test_a_digest_with_a_trailing_newline_is_refused() -> None:
    assert validate_digest(DIGEST) == DIGEST
    for bad in (DIGEST + "\n", "sha512:" + "b" * 128 + "\n"):
        with pytest.raises(ArchiveError, match="invalid digest"):
            validate_digest(bad)


@pytest.mark.parametrize("text", ["linux\n/amd64", "linux/amd64\n/v8"])
def test_a_platform_part_with_a_newline_is_refused(text: str) -> None:
    with pytest.raises(UsageError, match="invalid platform"):
        parse_platform(text)


def test_a_tag_with_a_trailing_newline_is_refused() -> None:
    assert validate_tag("v1") == "v1"
    with pytest.raises(UsageError, match="invalid image tag"):
        validate_tag("v1\n")
