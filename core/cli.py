"""The ``cnbkit`` command line: argument parsing, output, exit codes.

Exit codes: 0 success, 1 any failure (one line ``error: ...`` on stderr), 2 a bad command
line, 130 interrupted (SIGINT), 143 terminated (SIGTERM), 141 when whoever reads the output
closed it early (``| head -1``: quietly, like other tools). ``--debug`` (before or after the
command) or ``CNBKIT_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from .console import Interrupted, OutputClosed, emit, handle_signals, is_stdout, stdout_closed
from .errors import CnbkitError, UsageError
from .redact import printable, redact

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _network_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("network")
    group.add_argument(
        "--ca-cert",
        metavar="FILE",
        help="CA bundle for TLS (else REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE, the system store)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="connect and per-read timeout (env CNBKIT_TIMEOUT, default 30)",
    )
    group.add_argument(
        "--allow-http",
        action="store_true",
        default=None,
        help="permit http:// to non-loopback hosts (env CNBKIT_ALLOW_HTTP=1)",
    )
    group.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="a plain-HTTP registry (repeatable; env CNBKIT_INSECURE_REGISTRIES)",
    )
    group.add_argument(
        "--offline",
        action="store_true",
        default=None,
        help="resolve from the cache only (env CNBKIT_OFFLINE=1)",
    )


def _parser() -> _Parser:
    parser = _Parser(
        prog="cnbkit", description="Get a Cloud Native Buildpacks lifecycle from wherever it lives."
    )
    parser.add_argument("--version", action="version", version=f"cnbkit {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    resolve = commands.add_parser(
        "resolve",
        help="resolve and validate a lifecycle",
        description="Resolve a lifecycle URI (or release version) through the plugins and validate it.",
    )
    resolve.add_argument(
        "uri", nargs="?", help="a path, or a URI of a scheme some plugin claims (see 'cnbkit plugins')"
    )
    resolve.add_argument("--lifecycle-version", metavar="X.Y.Z", help="resolve this release instead of a URI")
    resolve.add_argument(
        "--lifecycle-mirror",
        metavar="URL",
        help="replaces the GitHub releases prefix (env CNBKIT_LIFECYCLE_MIRROR)",
    )
    resolve.add_argument(
        "--base-dir",
        metavar="DIR",
        help="what relative paths resolve against (default: the working directory)",
    )
    resolve.add_argument(
        "--platform", metavar="OS/ARCH[/VARIANT]", help="target platform (default: the host's)"
    )
    resolve.add_argument(
        "--pull-policy", choices=("always", "if-not-present", "never"), default="if-not-present"
    )
    resolve.add_argument(
        "--save",
        metavar="PATH",
        help="write the normalised lifecycle layer (uncompressed tar) to PATH: a file (replaced "
        "atomically), or a FIFO or device such as /dev/stdout (streamed into, never replaced)",
    )
    resolve.add_argument("--json", action="store_true", help="print one JSON object")
    resolve.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors (and --json)")
    _network_options(resolve)

    cache = commands.add_parser("cache", help="inspect or empty the cache")
    cache_commands = cache.add_subparsers(dest="cache_command", metavar="ACTION", parser_class=_Parser)
    cache_commands.required = True
    ls = cache_commands.add_parser("ls", help="list what the cache holds")
    ls.add_argument("--json", action="store_true")
    prune = cache_commands.add_parser("prune", help="remove leftovers and entries unused for a while")
    prune.add_argument("--days", type=float, default=30.0, help="unused for this many days (default 30)")
    cache_commands.add_parser("clear", help="remove everything the cache holds")

    plugins = commands.add_parser("plugins", help="list the plugins and what they claim")
    plugins.add_argument("--json", action="store_true")
    plugins.add_argument("--strict", action="store_true", help="exit 1 when a plugin failed to load")
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def _print_json(data: Any, file: TextIO | None = None) -> None:
    # json.dumps escapes every control character: JSON output is safe as it is.
    emit(json.dumps(data, indent=2), file)


def _print(text: str, file: TextIO | None = None) -> None:
    """Print lines for a person: whatever came from outside is escaped, line by line."""
    emit("\n".join(printable(line) for line in text.split("\n")), file)


def _cmd_resolve(args: argparse.Namespace) -> int:
    from .api import new_context, resolve_with
    from .options import Options

    if args.uri is None and args.lifecycle_version is None:
        raise UsageError("give a lifecycle URI or --lifecycle-version (see 'cnbkit resolve --help')")
    if args.uri is not None and args.lifecycle_version is not None:
        raise UsageError("give a lifecycle URI or --lifecycle-version, not both")
    if args.lifecycle_version is not None:
        from .lifecycle.versions import parse_version

        parse_version(args.lifecycle_version)  # a bad version is a usage error, before any I/O
    options = Options.build(
        platform=args.platform,
        base_dir=args.base_dir,
        pull_policy=args.pull_policy,
        offline=args.offline,
        ca_cert=args.ca_cert,
        timeout=args.timeout,
        allow_http=args.allow_http,
        insecure_registries=args.insecure_registry,
        lifecycle_mirror=args.lifecycle_mirror,
        progress=not (args.json or args.quiet),
        quiet=args.quiet,  # notices (an unverified download) still reach stderr with --json
    )
    shown, lifecycle = resolve_with(new_context(options), args.uri, args.lifecycle_version, args.save)
    saved = os.path.abspath(args.save) if args.save else None
    out = sys.stderr if args.save and is_stdout(args.save) else sys.stdout
    if args.json:
        data = lifecycle.to_json(shown)
        _print_json(data, out)
    elif not args.quiet:
        _print_lifecycle(shown, lifecycle, saved, out)
    return 0


def _apis(label: str, supported: Sequence[str], deprecated: Sequence[str]) -> str:
    extra = f" (deprecated: {', '.join(deprecated)})" if deprecated else ""
    return f"  {label:<16}{', '.join(supported)}{extra}"


def _print_lifecycle(shown: str, lifecycle: Any, saved: Any, out: TextIO) -> None:
    size = f" ({lifecycle.blob.size} bytes)" if lifecycle.blob.size is not None else ""
    lines = [
        f"Lifecycle {lifecycle.version} for {lifecycle.platform}",
        f"  {'source':<16}{shown} (resolver: {lifecycle.blob.resolver})",
        f"  {'digest':<16}{lifecycle.blob.digest}{size}",
        _apis("buildpack APIs", lifecycle.apis.buildpack.supported, lifecycle.apis.buildpack.deprecated),
        _apis("platform APIs", lifecycle.apis.platform.supported, lifecycle.apis.platform.deprecated),
        f"  {'binaries':<16}{', '.join(lifecycle.binaries)}",
    ]
    if saved is not None:
        lines.append(
            f"  {'layer saved to':<16}{saved} ({lifecycle.layer_size} bytes, {lifecycle.layer_digest})"
        )
    _print("\n".join(lines), out)


def _cmd_cache(args: argparse.Namespace) -> int:
    from .cache import Cache, default_cache_dir, upkeep

    cache = Cache(default_cache_dir())
    if args.cache_command == "ls":
        from .lifecycle.metadata import cached_lifecycles

        listing = {**upkeep.listing(cache), "lifecycles": cached_lifecycles(cache)}
        if args.json:
            _print_json(listing)
            return 0
        lines = [f"cache {listing['root']}: {listing['size']} bytes"]
        for blob in listing["blobs"]:
            urls = ", ".join(blob["urls"]) or "-"
            lines.append(f"  blob {blob['digest']}  {blob['size']:>12}  {urls}")
        for item in listing["lifecycles"]:
            lines.append(
                f"  lifecycle {item['version']} ({item['os']})  {item['layer_size']:>12}  {item['source']}"
            )
        _print("\n".join(lines))
    elif args.cache_command == "prune":
        removed = upkeep.prune(cache, args.days)
        _print(f"removed {len(removed)} entries from {cache.root}")
    else:
        upkeep.clear(cache)
        _print(f"removed the cache's contents from {cache.root}")
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    from .plugin.host import PluginHost

    host = PluginHost.from_entry_points()
    rows = host.describe()
    failed = [
        {"name": f.name, "distribution": f.distribution, "error": f.error, "failed": True}
        for f in host.failed
    ]
    status = 1 if args.strict and failed else 0
    if args.json:
        _print_json(rows + failed)
        return status
    width = max((len(row["name"]) for row in rows + failed), default=4) + 2
    lines = []
    for row in rows:
        origin = f"{row['distribution']} {row['version']}" if row["distribution"] else "registered in code"
        claims = ", ".join(row["claims"]) or "nothing"
        lines.append(f"{row['name']:<{width}}{row['module']} ({origin}); claims {claims}")
    for row in failed:
        lines.append(f"{row['name']:<{width}}FAILED TO LOAD ({row['distribution']}): {row['error']}")
    _print("\n".join(lines))
    return status


_COMMANDS = {"resolve": _cmd_resolve, "cache": _cmd_cache, "plugins": _cmd_plugins}


def _print_traceback() -> None:
    import traceback  # only on the way out, with --debug

    traceback.print_exc()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (0, 1, 2, 130, 141 or 143)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list or os.environ.get("CNBKIT_DEBUG", "") not in ("", "0")
    args_list = [a for a in args_list if a != "--debug"]
    with handle_signals():
        return _run(args_list, debug)


def _run(args_list: list[str], debug: bool) -> int:
    try:
        args = _parser().parse_args(args_list)
        return _COMMANDS[args.command](args)
    except OutputClosed:
        return stdout_closed()
    except CnbkitError as exc:
        if debug:
            _print_traceback()
        print(f"error: {printable(redact(str(exc)))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        if debug:
            _print_traceback()
        what = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
        print(f"error: {what}", file=sys.stderr)
        return 128 + signum
    except Exception as exc:  # noqa: BLE001 - one line for the user, the traceback on request
        if debug:
            _print_traceback()
        message = printable(redact(f"{type(exc).__name__}: {exc}"))
        hint = "" if debug else " (run with --debug for the traceback)"
        print(f"error: unexpected {message}{hint}", file=sys.stderr)
        return 1


def run() -> NoReturn:
    """Console-script entry point."""
    sys.exit(main())
