"""plugins.md is tested against the code it describes (as datasette tests its hook docs).

Each check fails with a message saying what to add or fix in plugins.md (or in the code).
"""

from __future__ import annotations

import gzip
import hashlib
import inspect
import io
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cnbkit
import pytest
from cnbkit.options import Options
from cnbkit.plugin import hookspecs
from cnbkit.plugin.context import Context
from cnbkit.plugin.host import PluginHost
from cnbkit.plugin.loader import new_plugin_manager

from tests.lifecycles import make_lifecycle

ROOT = Path(__file__).resolve().parent.parent
PLUGINS_MD = ROOT / "plugins.md"
ACME = ROOT / "tests" / "plugins" / "cnbkit-acme"


@dataclass(frozen=True)
class Block:
    """A fenced code block of a Markdown file."""

    lang: str
    code: str
    marker: str  # the `<!-- tested: ... -->` comment right before the fence, or ""
    line: int


def code_blocks(text: str) -> list[Block]:
    """Every fenced code block, with the ``<!-- tested: ... -->`` marker that precedes it."""
    blocks = []
    fence = re.compile(r"^(?P<indent> *)```(?P<lang>\w*)\n(?P<code>.*?)^(?P=indent)```$", re.M | re.S)
    for m in fence.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = re.fullmatch(r"<!-- tested: (.*) -->", before.strip())
        code = "".join(line[len(m["indent"]) :] for line in m["code"].splitlines(keepends=True))
        blocks.append(Block(m["lang"], code, marker[1] if marker else "", text.count("\n", 0, m.start()) + 1))
    return blocks


def marked(blocks: list[Block], prefix: str) -> Block:
    """The one block whose marker starts with ``prefix``."""
    found = [b for b in blocks if b.marker.startswith(prefix)]
    assert len(found) == 1, f"plugins.md needs exactly one block marked '<!-- tested: {prefix}...' ({found})"
    return found[0]


def section(text: str, heading: str) -> str:
    """The body of the Markdown section titled ``heading`` (up to the next heading of its level)."""
    m = re.search(rf"^(#+) {re.escape(heading)}\n(.*?)(?=^\1 |\Z)", text, re.M | re.S)
    assert m, f"plugins.md has no section {heading!r}"
    return m[2]


def hooks() -> dict[str, Callable[..., Any]]:
    """The hookspecs, by name."""
    return {
        name: fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if getattr(fn, "cnbkit_spec", None) is not None
    }


@pytest.fixture(scope="module")
def doc() -> str:
    """plugins.md's text."""
    return PLUGINS_MD.read_text(encoding="utf-8")


def test_hookspecs_are_found() -> None:
    assert set(hooks()) >= {
        "cnbkit_resolve",
        "cnbkit_resolvers",
        "cnbkit_check_lifecycle",
        "cnbkit_resolve_image",
        "cnbkit_export",
    }


@pytest.mark.parametrize("name", sorted(hooks()))
def test_every_hook_is_documented_with_its_exact_signature(doc: str, name: str) -> None:
    fn = hooks()[name]
    sig = inspect.signature(fn)
    plain = f"def {name}({', '.join(sig.parameters)}):"
    typed_params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    typed = f"def {name}({typed_params}) -> {sig.return_annotation}:"
    body = section(doc, name)  # one section per hook, titled with its name
    code = [b.code for b in code_blocks(body) if b.lang == "python"]
    assert any(c.strip().endswith(plain) for c in code), f"plugins.md section {name} needs `{plain}`"
    assert any(typed in c for c in code), f"plugins.md section {name} needs `{typed}`"
    firstresult = bool(getattr(fn, "cnbkit_spec")["firstresult"])  # noqa: B009 - set by pluggy
    expected = f"**firstresult: {'yes' if firstresult else 'no'}.**"
    assert expected in body, f"plugins.md section {name} must say {expected}"


def test_no_documented_hook_is_missing_from_the_code(doc: str) -> None:
    documented = set(re.findall(r"^### (cnbkit_\w+)$", doc, re.M))
    assert documented == set(hooks()), "plugins.md's hook sections and core/hookspecs.py differ"


def test_the_example_is_the_acme_plugin(doc: str) -> None:
    blocks = code_blocks(doc)
    example = marked(blocks, "tests/plugins/cnbkit-acme/cnbkit_acme.py")
    assert example is blocks[0], "the worked example must be the first code block of plugins.md"
    source = (ACME / "cnbkit_acme.py").read_text(encoding="utf-8")
    assert example.code == source, (
        f"the example at plugins.md line {example.line} differs from {ACME / 'cnbkit_acme.py'}: "
        "change both together"
    )


def test_the_packaging_example_matches_the_acme_pyproject(doc: str) -> None:
    block = marked(code_blocks(doc), "tests/plugins/cnbkit-acme/pyproject.toml")
    real = {line.strip() for line in (ACME / "pyproject.toml").read_text(encoding="utf-8").splitlines()}
    missing = [line for line in block.code.splitlines() if line.strip() and line.strip() not in real]
    assert missing == [], f"plugins.md line {block.line}: not in cnbkit-acme's pyproject.toml: {missing}"
    assert '[project.entry-points.cnbkit]\nacme = "cnbkit_acme"' in block.code


def test_names_said_to_be_exported_are_exported(doc: str) -> None:
    # The section's list: "* errors: `CnbkitError` (the base), ..." (continuation lines indented).
    items = re.findall(r"^\* .*?(?=^\* |^$|\Z)", section(doc, "What `cnbkit` exports"), re.M | re.S)
    listed = {name for item in items for name in re.findall(r"`(\w+)`", item)}
    assert listed, "the section 'What `cnbkit` exports' lists no names"
    assert sorted(listed - set(cnbkit.__all__)) == [], "plugins.md lists names cnbkit does not export"
    # ... and every `cnbkit.NAME` the page uses (other than a submodule) is exported too.
    used = set(re.findall(r"\bcnbkit\.([A-Za-z_]\w*)", doc))
    submodules = {"plugin", "resolvers", "api", "options", "lifecycle", "archive", "oci", "transport"}
    assert sorted(used - submodules - set(cnbkit.__all__)) == [], "plugins.md uses unexported cnbkit names"
    for block in code_blocks(doc):
        for names in re.findall(r"^from cnbkit import (.+)$", block.code, re.M):
            imported = {n.strip() for n in names.split(",")}
            assert imported <= set(cnbkit.__all__), f"plugins.md line {block.line} imports {imported}"


def test_context_attributes_exist(doc: str, tmp_path: Path) -> None:
    context = Context(Options.build(cache_dir=tmp_path / "cache"), PluginHost(new_plugin_manager()))
    documented = set(re.findall(r"`context\.(\w+)", section(doc, "The context")))
    required = {
        "platform", "pull_policy", "offline", "cache", "options", "notice", "progress",
        "http_session", "download", "docker_client", "resolve", "resolve_image",
    }  # fmt: skip
    assert required <= documented, f"plugins.md's context table lacks {sorted(required - documented)}"
    for name in set(re.findall(r"`context\.(\w+)", doc)):
        assert hasattr(context, name), f"plugins.md mentions context.{name}, which Context does not have"


def test_the_blob_subclass_example_works(doc: str, tmp_path: Path) -> None:
    block = marked(code_blocks(doc), "tests/test_docs.py runs this class")
    namespace: dict[str, Any] = {}
    exec(compile(block.code, f"plugins.md:{block.line}", "exec"), namespace)
    data = make_lifecycle(tmp_path / "l.tgz").read_bytes()
    blob = namespace["BytesBlob"](data, "vendor://user:secret@host/l.tgz")
    assert isinstance(blob, cnbkit.Blob)
    assert "secret" not in blob.source
    stream = blob.open()
    raw = b""
    while chunk := stream.read(65536):
        raw += chunk
    getattr(stream, "close", lambda: None)()
    assert raw == gzip.decompress(data)  # the core undid the gzip ...
    assert blob.digest == "sha256:" + hashlib.sha256(data).hexdigest()  # ... and hashed what was fetched
    assert blob.size == len(data)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        assert "lifecycle.toml" in tar.getnames()


def test_every_tested_block_is_run(doc: str) -> None:
    # A block marked as tested that no test picks up would be a false promise.
    known = (
        "tests/plugins/cnbkit-acme/cnbkit_acme.py",
        "tests/plugins/cnbkit-acme/pyproject.toml",
        "tests/test_docs.py runs this class",
        "tests/test_plugins.py runs this file",
        "tests/test_doc_archives.py runs this image source",
        "tests/test_doc_archives.py runs this exporter",
    )
    markers = [b.marker for b in code_blocks(doc) if b.marker]
    assert all(m.startswith(known) for m in markers), markers
    assert sorted(next(k for k in known if m.startswith(k)) for m in markers) == sorted(known)
