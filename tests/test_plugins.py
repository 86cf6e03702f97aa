"""The plugin system, driven the way users meet it: real distributions, pip-installed.

Every distribution under ``tests/plugins/`` is built and installed once per session with
``pip install --no-deps --no-build-isolation --no-index --target DIR`` (a private directory,
never the main environment); the CLI then runs with ``PYTHONPATH=DIR``, so
``importlib.metadata`` finds their ``cnbkit`` entry points exactly as it finds an installed
plugin's. ``CNBKIT_DISABLE_PLUGINS`` picks which of them each test sees.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import cnbkit
import cnbkit.plugin.hookspecs
import pytest
from cnbkit import Blob, CnbkitError, Context, FileBlob, Lifecycle, Locator, NoResolverError, hookimpl
from cnbkit.api import new_context, resolve_with
from cnbkit.options import Options
from cnbkit.plugin.host import PluginHost

from tests.conftest import one_line_error, run_cli
from tests.lifecycles import descriptor, make_lifecycle

PLUGIN_SOURCES = Path(__file__).parent / "plugins"
# Every entry point the test distributions declare; a test enables some, the rest are disabled.
THIRD_PARTY = ("acme", "takeover", "broken", "raiser", "notblob", "halfbad", "typo", "wrapper")
TRACE = re.compile(
    r"^cnbkit: trace: (?P<hook>\w+)\((?P<what>.*)\) -> (?P<plugin>[\w-]+): (?P<outcome>.+) in [\d.]+ ms$"
)


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test plugin distributions, built and installed into a private ``--target`` dir.

    Each source tree is copied first: setuptools builds in place and would leave ``build/``
    and ``*.egg-info`` in the repository.
    """
    copies = tmp_path_factory.mktemp("plugin-src")
    site = tmp_path_factory.mktemp("plugin-site")
    sources = []
    for src in sorted(PLUGIN_SOURCES.iterdir()):
        if (src / "pyproject.toml").is_file():
            dst = copies / src.name
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
            sources.append(str(dst))
    assert len(sources) == 4, sources
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"]
    result = subprocess.run(
        [*pip, "--quiet", "--target", str(site), *sources],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            "building the test plugins failed (setuptools needs the 'wheel' package to build "
            f"without isolation before setuptools 70.1):\n{result.stdout}\n{result.stderr}"
        )
    return site


def cli(
    site: Path, *args: str, plugins: tuple[str, ...] = ("acme",), env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``cnbkit ARGS`` with the test distributions importable and only ``plugins`` enabled."""
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    disabled = [name for name in THIRD_PARTY if name not in plugins]
    full = {"PYTHONPATH": path, "CNBKIT_DISABLE_PLUGINS": ",".join(disabled), **(env or {})}
    return run_cli(*args, env=full)


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a successful run printed."""
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return json.loads(result.stdout)


def traces(stderr: str) -> list[tuple[str, str, str, str]]:
    """The ``CNBKIT_TRACE_HOOKS`` lines: (hook, argument, plugin, outcome)."""
    return [
        (m["hook"], m["what"], m["plugin"], m["outcome"])
        for line in stderr.splitlines()
        if (m := TRACE.match(line))
    ]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """ACME's artifact store, holding lifecycle 0.21.0."""
    path = tmp_path / "acme-store"
    path.mkdir()
    make_lifecycle(path / "lifecycle-0.21.0.tgz")
    return path


# -- cnbkit plugins -----------------------------------------------------------------------


def test_plugins_json_lists_builtins_then_third_parties(plugin_site: Path) -> None:
    result = cli(plugin_site, "plugins", "--json", plugins=THIRD_PARTY)
    rows = ok_json(result)
    by_name = {row["name"]: row for row in rows}
    # Built-ins first; then by distribution name (cnbkit-acme, cnbkit-faulty, cnbkit-takeover),
    # entry-point name within one; then the ones that failed to load, with their error.
    builtins = [row["name"] for row in rows if row["distribution"] == "cnbkit"]
    assert {"file", "https"} <= set(builtins)
    loaded = [row["name"] for row in rows if not row.get("failed")]
    assert loaded == [*builtins, "acme", "notblob", "raiser", "takeover"]
    failed = {row["name"]: row for row in rows if row.get("failed")}
    assert sorted(failed) == ["broken", "halfbad", "typo", "wrapper"]
    assert failed["broken"]["distribution"] == "cnbkit-broken" and failed["broken"]["error"]
    assert "not a cnbkit hook" in failed["typo"]["error"]
    assert by_name["acme"] == {
        "name": "acme",
        "claims": ["acme://NAME"],
        "exports": [],
        "module": "cnbkit_acme",
        "distribution": "cnbkit-acme",
        "version": "1.2.0",
    }
    assert by_name["file"] == {
        "name": "file",
        "claims": ["PATH", "file://PATH"],
        "exports": [],
        "module": "cnbkit.resolvers.file",
        "distribution": "cnbkit",
        "version": by_name["https"]["version"],
    }
    assert by_name["https"]["module"] == "cnbkit.resolvers.https"
    assert any(c.startswith("https://") for c in by_name["https"]["claims"])
    assert by_name["raiser"]["distribution"] == "cnbkit-faulty"
    assert by_name["takeover"]["claims"] == ["PATH", "file://PATH"]
    for name in ("broken", "halfbad", "typo", "wrapper"):
        assert f"plugin {name!r} (from cnbkit-" in result.stderr, result.stderr


def test_plugins_strict_fails_when_a_plugin_failed_to_load(plugin_site: Path) -> None:
    # CI can see a broken plugin: --strict turns a failed load into exit 1.
    broken = cli(plugin_site, "plugins", "--json", "--strict", plugins=("acme", "broken"))
    assert broken.returncode == 1, broken.stderr
    assert [row["name"] for row in json.loads(broken.stdout) if row.get("failed")] == ["broken"]
    healthy = cli(plugin_site, "plugins", "--strict", plugins=("acme",))
    assert healthy.returncode == 0, healthy.stderr


def test_plugins_human_listing(plugin_site: Path) -> None:
    result = cli(plugin_site, "plugins", plugins=("acme", "broken"))
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert {"file", "https", "acme", "broken"} <= set(lines)
    assert "takeover" not in lines  # disabled
    assert "acme://NAME" in lines["acme"] and "cnbkit_acme (cnbkit-acme 1.2.0)" in lines["acme"]
    assert "FAILED TO LOAD (cnbkit-broken)" in lines["broken"]
    assert "file://PATH" in lines["file"]


def test_disabled_plugins_are_not_loaded(plugin_site: Path) -> None:
    rows = ok_json(
        cli(plugin_site, "plugins", "--json", plugins=(), env={"CNBKIT_DISABLE_PLUGINS": "https,acme"})
    )
    # CNBKIT_DISABLE_PLUGINS replaces the helper's list here: every other third party loads.
    assert "https" not in {r["name"] for r in rows} and "acme" not in {r["name"] for r in rows}
    assert {"file", "takeover", "raiser"} <= {r["name"] for r in rows}


# -- the acme example plugin --------------------------------------------------------------


def test_acme_resolves_from_its_store(plugin_site: Path, store: Path) -> None:
    artifact = store / "lifecycle-0.21.0.tgz"
    result = cli(
        plugin_site, "resolve", "acme://lifecycle-0.21.0.tgz", "--json", env={"ACME_STORE": str(store)}
    )
    data = ok_json(result)
    assert data["resolver"] == "acme"
    assert data["uri"] == "acme://lifecycle-0.21.0.tgz"
    assert data["version"] == "0.21.0"
    assert data["digest"] == "sha256:" + hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert data["size"] == artifact.stat().st_size


def test_acme_human_output_names_the_resolver(plugin_site: Path, store: Path) -> None:
    result = cli(plugin_site, "resolve", "acme://lifecycle-0.21.0.tgz", env={"ACME_STORE": str(store)})
    assert result.returncode == 0, result.stderr
    assert "(resolver: acme)" in result.stdout and "0.21.0" in result.stdout


@pytest.mark.parametrize("name", ["nope.tgz", "../acme-store/lifecycle-0.21.0.tgz"])
def test_acme_missing_artifact_is_one_line(plugin_site: Path, store: Path, name: str) -> None:
    # A name that climbs out of the store is no artifact either, even when the file exists.
    line = one_line_error(cli(plugin_site, "resolve", f"acme://{name}", env={"ACME_STORE": str(store)}))
    assert line == f"error: acme://{name}: no such artifact in {store} (ACME_STORE)"


def test_acme_policy_refuses_old_lifecycles(plugin_site: Path, store: Path) -> None:
    env = {"ACME_STORE": str(store), "ACME_MIN_LIFECYCLE": "0.22.0"}
    line = one_line_error(cli(plugin_site, "resolve", "acme://lifecycle-0.21.0.tgz", env=env))
    assert "was refused" in line
    assert "acme: lifecycle 0.21.0 is older than ACME's minimum 0.22.0" in line
    # The policy is the plugin's, not the resolver's: it holds for a plain file too.
    line = one_line_error(cli(plugin_site, "resolve", str(store / "lifecycle-0.21.0.tgz"), env=env))
    assert "acme: lifecycle 0.21.0 is older" in line


def test_refused_lifecycle_is_not_saved_and_loses_nothing(
    plugin_site: Path, store: Path, tmp_path: Path
) -> None:
    env = {"ACME_STORE": str(store), "ACME_MIN_LIFECYCLE": "0.22.0"}
    out = tmp_path / "out" / "layer.tar"
    out.parent.mkdir()
    one_line_error(cli(plugin_site, "resolve", "acme://lifecycle-0.21.0.tgz", "--save", str(out), env=env))
    assert list(out.parent.iterdir()) == []
    out.write_bytes(b"the user's earlier layer")
    one_line_error(cli(plugin_site, "resolve", "acme://lifecycle-0.21.0.tgz", "--save", str(out), env=env))
    assert out.read_bytes() == b"the user's earlier layer"  # a refusal replaces nothing
    assert list(out.parent.iterdir()) == [out]


def test_acme_policy_accepts_recent_lifecycles(plugin_site: Path, store: Path, tmp_path: Path) -> None:
    make_lifecycle(store / "lifecycle-0.21.10.tgz", desc=descriptor("0.21.10"))
    env = {"ACME_STORE": str(store), "ACME_MIN_LIFECYCLE": "0.21.9"}  # numeric, not text, order
    assert (
        ok_json(cli(plugin_site, "resolve", "acme://lifecycle-0.21.10.tgz", "--json", env=env))["version"]
        == "0.21.10"
    )
    one_line_error(cli(plugin_site, "resolve", "acme://lifecycle-0.21.0.tgz", env=env))


def test_the_plugin_testing_example_of_the_docs_passes(plugin_site: Path, tmp_path: Path) -> None:
    # plugins.md's "Testing a plugin" file, run by pytest as a plugin author would run it.
    from tests.test_docs import PLUGINS_MD, code_blocks, marked

    block = marked(
        code_blocks(PLUGINS_MD.read_text(encoding="utf-8")), "tests/test_plugins.py runs this file"
    )
    project = tmp_path / "cnbkit-acme-tests"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")  # its own rootdir: not cnbkit's conftest
    (project / "test_acme.py").write_text(block.code)
    make_lifecycle(project / "lifecycle-0.21.0.tgz")
    path = os.pathsep.join(p for p in (str(plugin_site), os.environ.get("PYTHONPATH", "")) if p)
    disabled = ",".join(name for name in THIRD_PARTY if name != "acme")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_acme.py"],
        cwd=project,
        env={**os.environ, "PYTHONPATH": path, "CNBKIT_DISABLE_PLUGINS": disabled},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^3 passed\b", result.stdout, re.M), result.stdout


# -- ordering and overriding --------------------------------------------------------------


@pytest.mark.parametrize("form", ["bare", "file-uri"])
def test_takeover_is_asked_before_the_builtin_file_resolver(
    plugin_site: Path, tmp_path: Path, form: str
) -> None:
    archive = make_lifecycle(tmp_path / "lifecycle.tgz")
    uri = str(archive) if form == "bare" else archive.as_uri()
    marker = tmp_path / "asked"
    env = {"TAKEOVER_MARKER": str(marker), "CNBKIT_TRACE_HOOKS": "1"}
    result = cli(plugin_site, "resolve", uri, "--json", plugins=("acme", "takeover"), env=env)
    assert ok_json(result)["resolver"] == "takeover"
    assert marker.read_text() == f"{uri}\n"
    asked = [
        (plugin, outcome) for hook, _, plugin, outcome in traces(result.stderr) if hook == "cnbkit_resolve"
    ]
    # Registered last (third parties by distribution name: cnbkit-acme, cnbkit-takeover), asked
    # first; the built-in file resolver is never asked.
    assert asked == [("takeover", "answered")]

    marker.unlink()
    # Every test plugin installed, only the takeover disabled: the built-in answers again.
    env["CNBKIT_DISABLE_PLUGINS"] = "takeover"
    result = run_cli("resolve", uri, "--json", env={"PYTHONPATH": str(plugin_site), **env})
    assert ok_json(result)["resolver"] == "file"
    assert not marker.exists()
    assert ("cnbkit_resolve", uri, "file", "answered") in traces(result.stderr)


def test_trace_hooks_names_the_plugin_that_answered(plugin_site: Path, store: Path) -> None:
    uri = "acme://lifecycle-0.21.0.tgz"
    quiet = cli(plugin_site, "resolve", uri, "--json", env={"ACME_STORE": str(store)})
    assert quiet.returncode == 0 and traces(quiet.stderr) == []
    env = {"ACME_STORE": str(store), "CNBKIT_TRACE_HOOKS": "1"}
    result = cli(plugin_site, "resolve", uri, "--json", env=env)
    assert ok_json(result)["resolver"] == "acme"
    lines = traces(result.stderr)
    assert ("cnbkit_resolve", uri, "acme", "answered") in lines
    # firstresult: nobody after the plugin that answered is asked.
    assert [p for h, _, p, _ in lines if h == "cnbkit_resolve"] == ["acme"]
    assert ("cnbkit_check_lifecycle", "0.21.0", "acme", "passed") in lines


# -- broken plugins -----------------------------------------------------------------------


def test_broken_plugin_is_reported_and_the_rest_work(plugin_site: Path, tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "lifecycle.tgz")
    result = cli(plugin_site, "resolve", str(archive), "--json", plugins=("broken", "acme"))
    assert ok_json(result)["resolver"] == "file"
    assert (
        "cnbkit: plugin 'broken' (from cnbkit-broken) failed to load and is skipped: "
        "RuntimeError: cnbkit-broken cannot start: the ACME SDK is not installed"
    ) in result.stderr.splitlines()
    assert "Traceback" not in result.stderr


def test_unclaimed_scheme_lists_what_is_claimed(plugin_site: Path) -> None:
    line = one_line_error(cli(plugin_site, "resolve", "ftp://x/l.tgz"))
    assert line.startswith("error: no plugin claims 'ftp://x/l.tgz'; claimed: ")
    for claim in ("acme://NAME (acme)", "file://PATH (file)", "PATH (file)", "https://URL"):
        assert claim in line


def test_plugin_exception_is_one_line_naming_the_plugin(plugin_site: Path) -> None:
    result = cli(plugin_site, "resolve", "raise://no-such-key", plugins=("raiser",))
    line = one_line_error(result)
    assert (
        line
        == "error: plugin 'raiser' failed in cnbkit_resolve(raise://no-such-key): KeyError: 'no-such-key'"
    )

    debug = cli(plugin_site, "--debug", "resolve", "raise://no-such-key", plugins=("raiser",))
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "cnbkit_faulty/raiser.py" in debug.stderr  # the plugin's own frame, for its author
    assert debug.stderr.splitlines()[-1] == line


def test_plugin_returning_a_non_blob_is_named(plugin_site: Path) -> None:
    line = one_line_error(cli(plugin_site, "resolve", "notblob:///srv/l.tgz", plugins=("notblob",)))
    assert line == "error: plugin 'notblob' returned str for notblob:///srv/l.tgz, expected a cnbkit.Blob"


def test_plugin_that_fails_validation_never_runs(plugin_site: Path, tmp_path: Path) -> None:
    # halfbad's cnbkit_resolve is valid, its cnbkit_resolvers is not: pluggy had registered the
    # first before rejecting the second; a plugin reported as skipped must not answer.
    archive = make_lifecycle(tmp_path / "lifecycle.tgz")
    result = cli(plugin_site, "resolve", f"halfbad://{archive}", plugins=("halfbad",))
    line = one_line_error(result)
    assert line.startswith("error: no plugin claims 'halfbad://")
    report, error = [x for x in result.stderr.splitlines() if x.strip()]  # pluggy's message, on one line
    assert report.startswith("cnbkit: plugin 'halfbad' (from cnbkit-faulty) failed to load and is skipped: ")
    assert "PluginValidationError" in report and "cnbkit_resolvers" in report
    assert error == line


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("typo", "cnbkit_reslove is not a cnbkit hook (the hooks are cnbkit_check_lifecycle, "),
        ("wrapper", "cnbkit_resolve is a hook wrapper, which cnbkit does not support"),
    ],
)
def test_misdeclared_hooks_are_reported(plugin_site: Path, tmp_path: Path, name: str, reason: str) -> None:
    archive = make_lifecycle(tmp_path / "lifecycle.tgz")
    result = cli(plugin_site, "resolve", str(archive), "--json", plugins=(name,))
    assert ok_json(result)["resolver"] == "file"
    assert (
        f"cnbkit: plugin {name!r} (from cnbkit-faulty) failed to load and is skipped: {reason}"
        in result.stderr
    )
    rows = ok_json(cli(plugin_site, "plugins", "--json", plugins=(name,)))
    assert name not in {row["name"] for row in rows if not row.get("failed")}


# -- plugins registered in code (the Python API) -------------------------------------------


class _InCode:
    """A plugin object registered in code: a policy that answers with a bare string."""

    def __init__(self, store: Path) -> None:
        self.store = store

    @hookimpl
    def cnbkit_resolvers(self) -> str:
        return "mem://NAME"

    @hookimpl
    def cnbkit_resolve(self, locator: Locator, context: Context) -> Blob | None:
        if locator.scheme != "mem":
            return None
        return context.resolve(str(self.store / locator.rest))  # rewrite, then resolve again

    @hookimpl
    def cnbkit_check_lifecycle(self, lifecycle: Lifecycle, context: Context) -> str:
        return f"no {lifecycle.version} on Fridays"


class _Mute:
    """A plugin whose cnbkit_resolvers fails."""

    @hookimpl
    def cnbkit_resolvers(self) -> list[str]:
        raise OSError("claims file unreadable")


def _host(*plugins: object) -> PluginHost:
    host = PluginHost.from_entry_points()  # the built-ins of this environment only
    assert host.failed == []
    for plugin in plugins:
        host.register(plugin, name=type(plugin).__name__.strip("_").lower())
    return host


def test_plugin_registered_in_code_through_the_api(store: Path, cache_dir: Path) -> None:
    host = _host(_InCode(store))
    context = new_context(Options.build(cache_dir=cache_dir), host)
    with pytest.raises(CnbkitError) as info:
        resolve_with(context, "mem://lifecycle-0.21.0.tgz")
    # A lone string is one problem, not one per character.
    assert str(info.value).endswith("was refused: incode: no 0.21.0 on Fridays")
    blob = context.resolve("mem://lifecycle-0.21.0.tgz")
    # The plugin that claimed the URI is its resolver, though it handed the work on.
    assert (
        isinstance(blob, FileBlob)
        and blob.resolver == "incode"
        and blob.path == store / "lifecycle-0.21.0.tgz"
    )
    rows = {row["name"]: row for row in host.describe()}
    assert rows["incode"] == {
        "name": "incode",
        "claims": ["mem://NAME"],
        "exports": [],
        "module": rows["incode"]["module"],
        "distribution": None,
        "version": None,
    }
    assert rows["file"]["distribution"] == "cnbkit"


class _Late:
    """A ``trylast`` claim on bare paths, registered after the built-ins."""

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self.asked = 0

    @hookimpl(trylast=True)
    def cnbkit_resolve(self, locator: Locator, context: Context) -> Blob | None:
        self.asked += 1
        return FileBlob(self.archive)


def test_trylast_implementations_are_asked_oldest_first(tmp_path: Path, cache_dir: Path) -> None:
    # pluggy's order, as plugins.md tells it: newest first, except that trylast ones come
    # last and oldest first; so a trylast plugin cannot take over from the built-in file one.
    archive = make_lifecycle(tmp_path / "l.tgz")
    late = _Late(archive)
    context = new_context(Options.build(cache_dir=cache_dir), _host(late))
    assert context.resolve(str(archive)).resolver == "file"
    assert late.asked == 0
    assert context.resolve("ftp://x/l.tgz").resolver == "late"  # nobody else claims it
    assert late.asked == 1


def test_failing_claims_do_not_hide_the_others(cache_dir: Path) -> None:
    host = _host(_Mute())
    claims = host.claims()
    assert claims["mute"] == [
        "(unknown: plugin 'mute' failed in cnbkit_resolvers(): OSError: claims file unreadable)"
    ]
    assert claims["file"] == ["PATH", "file://PATH"]
    context = new_context(Options.build(cache_dir=cache_dir), host)
    with pytest.raises(NoResolverError, match=r"claimed: .*file://PATH \(file\)"):
        context.resolve("ftp://x/l.tgz")


# -- the public surface a plugin relies on -------------------------------------------------


class _Forward:
    """Forwards ``fwd://X`` to the URI X (a mirror plugin), so a chain can loop."""

    @hookimpl
    def cnbkit_resolve(self, locator: Locator, context: Context) -> Blob | None:
        return context.resolve(locator.rest) if locator.scheme == "fwd" else None


def test_register_plugin_in_code_serves_the_public_api(tmp_path: Path, cache_dir: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    cnbkit.register_plugin(_Forward(), "forward")
    try:
        lifecycle = cnbkit.resolve_lifecycle(f"fwd://{archive}")
        assert lifecycle.blob.resolver == "forward" and lifecycle.version == "0.21.0"
        with pytest.raises(cnbkit.UsageError, match="registered already"):
            cnbkit.register_plugin(_Forward(), "forward")
    finally:
        cnbkit.unregister_plugin("forward")
    with pytest.raises(NoResolverError):
        cnbkit.resolve_lifecycle(f"fwd://{archive}")


class _Loop:
    """``loop://X`` forwards to itself: a mirror configured to point at itself."""

    @hookimpl
    def cnbkit_resolve(self, locator: Locator, context: Context) -> Blob | None:
        return context.resolve(locator.raw) if locator.scheme == "loop" else None


def test_a_forwarding_loop_is_one_clear_error(cache_dir: Path) -> None:
    context = new_context(Options.build(cache_dir=cache_dir), _host(_Forward(), _Loop()))
    with pytest.raises(
        CnbkitError, match=r"^URIs forward to each other in a loop: loop://a -> loop://a$"
    ) as info:
        context.resolve("loop://a")
    assert not isinstance(info.value, cnbkit.UsageError)  # the command line was right
    with pytest.raises(CnbkitError, match="loop"):  # too deep counts as a loop too
        context.resolve("fwd://" * 20 + "x")


# The CLI with one plugin registered in code: a mirror that forwards loop://X to itself.
_LOOPING_CLI = """
import sys
import cnbkit

class Loop:
    @cnbkit.hookimpl
    def cnbkit_resolve(self, locator, context):
        return context.resolve(locator.raw) if locator.scheme == "loop" else None

cnbkit.register_plugin(Loop(), "loop")
from cnbkit.cli import main
sys.exit(main())
"""


def test_a_forwarding_loop_through_the_cli_exits_1_not_as_a_usage_error() -> None:
    # A plugin's configuration is at fault, not the command line: 1, as any failure (2 would
    # tell a script to fix its arguments).
    result = subprocess.run(
        [sys.executable, "-c", _LOOPING_CLI, "resolve", "loop://a"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert one_line_error(result) == "error: URIs forward to each other in a loop: loop://a -> loop://a"


def test_an_error_behind_a_forward_names_the_uri_the_user_gave(tmp_path: Path, cache_dir: Path) -> None:
    context = new_context(Options.build(cache_dir=cache_dir), _host(_Forward()))
    missing = tmp_path / "nope.tgz"
    with pytest.raises(CnbkitError) as info:
        context.resolve(f"fwd://{missing}")
    assert str(info.value).startswith(f"fwd://{missing} (forwarded as {missing}): ")
    assert "no such file" in str(info.value)


class _Strict:
    """A policy that refuses by raising a CnbkitError instead of returning problems."""

    @hookimpl
    def cnbkit_check_lifecycle(self, lifecycle: Lifecycle) -> None:
        raise cnbkit.LifecycleError(f"lifecycle {lifecycle.version} is not signed")


def test_a_policy_error_keeps_the_plugin_name(tmp_path: Path, cache_dir: Path) -> None:
    context = new_context(Options.build(cache_dir=cache_dir), _host(_Strict()))
    with pytest.raises(cnbkit.PluginError, match=r"^plugin 'strict': lifecycle 0.21.0 is not signed$"):
        resolve_with(context, str(make_lifecycle(tmp_path / "l.tgz")))


class _Defaults:
    """A hook with an extra parameter that has a default: pluggy would never pass it."""

    @hookimpl
    def cnbkit_resolve(self, locator: Locator, context: Context, mirror: str = "x") -> Blob | None:
        return None


def test_hook_parameters_with_defaults_are_refused() -> None:
    with pytest.raises(
        cnbkit.PluginError, match=r"parameters with defaults \(mirror\), which are never passed"
    ):
        _host(_Defaults())
    assert _host().claims()  # nothing half-registered stays behind


def test_what_builtin_resolvers_use_is_exported() -> None:
    # A third-party plugin can reach everything a built-in one uses.
    assert cnbkit.Readable is not None
    assert cnbkit.DownloadError("x", 404).status == 404
    assert "cnbkit_resolve" in cnbkit.plugin.hookspecs.__all__
