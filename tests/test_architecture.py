"""The house keeps its rules: import contracts, a lazy face, small modules, packaged packages."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).parent.parent


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and "Contracts: 6 kept, 0 broken" in result.stdout, result.stdout


@pytest.mark.parametrize("path", sorted((ROOT / "resolvers").glob("*.py")), ids=lambda p: p.name)
def test_builtin_resolvers_import_only_the_public_face(path: Path) -> None:
    # Exactly what a third-party plugin can import: `cnbkit` itself, never its submodules.
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cnbkit"):
            assert node.module == "cnbkit" and node.level == 0, f"{path.name}:{node.lineno}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert not alias.name.startswith("cnbkit."), f"{path.name}:{node.lineno}"


def _loaded_after(code: str) -> tuple[list[str], list[str]]:
    probe = (
        f"{code}\nimport sys\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('cnbkit'))))\n"
        "print(' '.join(m for m in ('pluggy', 'requests', 'docker', 'tarfile', 'tomli', 'urllib3') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    ours, heavy = [*out.splitlines(), "", ""][:2]
    return ours.split(), heavy.split()


def test_import_cnbkit_is_cheap() -> None:
    ours, heavy = _loaded_after("import cnbkit")
    assert len(ours) <= 5, ours
    assert heavy == [], heavy


def test_the_face_still_serves_every_public_name() -> None:
    _, heavy = _loaded_after("import cnbkit\nfor name in cnbkit.__all__: getattr(cnbkit, name)")
    assert "pluggy" in heavy and "requests" not in heavy and "docker" not in heavy


def test_version_imports_no_plugin_machinery() -> None:
    ours, heavy = _loaded_after(
        "import contextlib, io\nfrom cnbkit.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()): main(['--version'])"
    )
    assert heavy == [], heavy
    assert not any(m.startswith(("cnbkit.plugin", "cnbkit.lifecycle", "cnbkit.transport")) for m in ours), (
        ours
    )


def test_loading_the_built_in_plugins_imports_no_image_model_or_transport() -> None:
    # Every resolve loads every plugin: one that imports the image model or a transport at
    # module level makes a warm resolve of a local file pay for it (it once cost 17%).
    ours, heavy = _loaded_after("from cnbkit.plugin.host import PluginHost\nPluginHost.from_entry_points()")
    image_model = ("cnbkit.oci.image", "cnbkit.oci.manifest", "cnbkit.oci.config")  # oci.platform: options
    loaded = [m for m in ours if m.startswith((*image_model, "cnbkit.transport", "cnbkit.builder"))]
    assert loaded == [], loaded
    assert "requests" not in heavy and "docker" not in heavy, heavy


@pytest.mark.parametrize(
    "path", sorted((ROOT / "core").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT / "core"))
)
def test_no_module_is_over_350_lines(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= 350, f"{path} has {lines} lines: split it by job"


def test_every_package_is_packaged() -> None:
    # pip install . installs only the packages pyproject lists: a package missing there works
    # in the editable checkout and breaks for every user.
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        "cnbkit" + "".join(f".{part}" for part in init.parent.relative_to(ROOT / "core").parts)
        for init in (ROOT / "core").rglob("__init__.py")
    } | {"cnbkit.resolvers"}
    assert found == listed


# What sends a request through requests or urllib3: a session's or the module's verbs, a pool's.
_SEND_VERBS = {"request", "get", "post", "put", "patch", "head", "delete", "options", "send", "urlopen"}
_SENDER = re.compile(r"(^|[._])session(\(\))?$|^requests$|^urllib3\b|pool", re.IGNORECASE)


def _senders(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = ast.unparse(node.func.value)
            if node.func.attr in _SEND_VERBS and _SENDER.search(receiver):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {receiver}.{node.func.attr}(...)")
        if isinstance(node, ast.keyword) and node.arg == "allow_redirects":
            found.append(f"{path.relative_to(ROOT)}:{node.value.lineno}: allow_redirects=")
    return found


def test_one_module_sends_http_requests() -> None:
    # One request function (transport/request.py) follows redirects, retries and times out for
    # every HTTP exchange: a second caller of requests would be a second policy to keep in step.
    found = [
        hit
        for base in ("core", "resolvers")
        for path in sorted((ROOT / base).rglob("*.py"))
        for hit in _senders(path)
    ]
    assert found and all(hit.startswith("core/transport/request.py:") for hit in found), found


def _resumers(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("retry_or_raise"):
            return True  # decides whether a broken body is resumed
        if isinstance(node, ast.Dict) and any(
            isinstance(key, ast.Constant) and key.value == "Range" for key in node.keys
        ):
            return True  # asks for the rest of a body
    return False


def test_one_module_writes_a_body_into_the_cache() -> None:
    # One verified, resumable body stream (transport/body.py) for the https download and the
    # registry's blobs: resume, size and digest rules are kept in one place.
    found = [
        str(path.relative_to(ROOT))
        for base in ("core", "resolvers")
        for path in sorted((ROOT / base).rglob("*.py"))
        if _resumers(path)
    ]
    assert found == ["core/transport/body.py"], found
