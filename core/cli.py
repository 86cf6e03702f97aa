"""The ``cnbkit`` command line: argument parsing, output, exit codes.

Exit codes: 0 success, 1 any failure (one line ``error: ...`` on stderr), 2 a bad command
line. ``--debug`` (before or after the command) or ``CNBKIT_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

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
        "--save", metavar="PATH", help="write the normalised lifecycle layer (uncompressed tar) to PATH"
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

    builder = commands.add_parser("builder", help="make builder images")
    builder_commands = builder.add_subparsers(dest="builder_command", metavar="ACTION", parser_class=_Parser)
    builder_commands.required = True
    create = builder_commands.add_parser(
        "create",
        help="create a builder image from builder.toml",
        description="Create a builder image from a pack-style builder.toml and write it to TARGET.",
    )
    create.add_argument("target", help="where the builder goes: oci:DIR[:TAG], or a plugin's target")
    create.add_argument("--config", "-c", required=True, metavar="builder.toml", help="the builder config")
    create.add_argument(
        "--platform", metavar="OS/ARCH[/VARIANT]", help="the build image's platform (default: the host's)"
    )
    create.add_argument(
        "--pull-policy", choices=("always", "if-not-present", "never"), default="if-not-present"
    )
    create.add_argument(
        "--lifecycle-mirror",
        metavar="URL",
        help="replaces the GitHub releases prefix (env CNBKIT_LIFECYCLE_MIRROR)",
    )
    create.add_argument("--json", action="store_true", help="print one JSON object")
    create.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors (and --json)")
    _network_options(create)

    plugins = commands.add_parser("plugins", help="list the plugins and what they claim")
    plugins.add_argument("--json", action="store_true")
    plugins.add_argument("--strict", action="store_true", help="exit 1 when a plugin failed to load")
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def _print_json(data: Any) -> None:
    # json.dumps escapes every control character: JSON output is safe as it is.
    print(json.dumps(data, indent=2))


def _print(text: str) -> None:
    """Print lines for a person: whatever came from outside is escaped, line by line."""
    print("\n".join(printable(line) for line in text.split("\n")))


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
    if args.json:
        data = lifecycle.to_json(shown)
        _print_json(data)
    elif not args.quiet:
        _print_lifecycle(shown, lifecycle, saved)
    return 0


def _apis(label: str, supported: Sequence[str], deprecated: Sequence[str]) -> str:
    extra = f" (deprecated: {', '.join(deprecated)})" if deprecated else ""
    return f"  {label:<16}{', '.join(supported)}{extra}"


def _print_lifecycle(shown: str, lifecycle: Any, saved: Any) -> None:
    size = f" ({lifecycle.blob.size} bytes)" if lifecycle.blob.size is not None else ""
    lines = [
        f"Lifecycle {lifecycle.version} for {lifecycle.platform}",
        f"  {'source':<16}{shown} (resolver: {lifecycle.blob.resolver})",
        f"  {'digest':<16}{lifecycle.blob.digest}{size}",
        *_image_lines(lifecycle.blob.image),
        _apis("buildpack APIs", lifecycle.apis.buildpack.supported, lifecycle.apis.buildpack.deprecated),
        _apis("platform APIs", lifecycle.apis.platform.supported, lifecycle.apis.platform.deprecated),
        f"  {'binaries':<16}{', '.join(lifecycle.binaries)}",
    ]
    if saved is not None:
        lines.append(
            f"  {'layer saved to':<16}{saved} ({lifecycle.layer_size} bytes, {lifecycle.layer_digest})"
        )
    _print("\n".join(lines))


def _image_lines(image: Any) -> list[str]:
    """The image a lifecycle came out of: its manifest digest, the platform, a reused layer."""
    if image is None:
        return []
    lines = [f"  {'image':<16}{image.digest} ({image.platform})"]
    if image.layer is not None:
        index = image.layer.index
        lines.append(f"  {'image layer':<16}layer {index} holds the lifecycle alone (reusable as stored)")
    return lines


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
            urls = ", ".join(upkeep.blob_names(blob)) or "-"
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


def _cmd_builder(args: argparse.Namespace) -> int:
    from .builder_api import create_builder

    result = create_builder(
        args.config,
        args.target,
        platform=args.platform,
        pull_policy=args.pull_policy,
        offline=args.offline,
        ca_cert=args.ca_cert,
        timeout=args.timeout,
        allow_http=args.allow_http,
        insecure_registries=args.insecure_registry,
        lifecycle_mirror=args.lifecycle_mirror,
        progress=not (args.json or args.quiet),
        quiet=args.quiet,
    )
    if args.json:
        _print_json(result.to_json())
    elif not args.quiet:
        reused = sum(1 for record in result.image.records if record.reused)
        lines = [
            f"Created builder {result.written}",
            f"  {'lifecycle':<12}{result.lifecycle.version} ({result.lifecycle.platform})",
            f"  {'layers':<12}{len(result.image.records)} ({reused} reused, not compressed again)",
        ]
        lines += [f"  {'':<12}{record.digest[:19]}  {record.source}" for record in result.image.records]
        _print("\n".join(lines))
    return 0


_COMMANDS = {"resolve": _cmd_resolve, "cache": _cmd_cache, "plugins": _cmd_plugins, "builder": _cmd_builder}


def _print_traceback() -> None:
    import traceback  # only on the way out, with --debug

    traceback.print_exc()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (0, 1 or 2)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list or os.environ.get("CNBKIT_DEBUG", "") not in ("", "0")
    args_list = [a for a in args_list if a != "--debug"]
    try:
        args = _parser().parse_args(args_list)
        return _COMMANDS[args.command](args)
    except CnbkitError as exc:
        if debug:
            _print_traceback()
        print(f"error: {printable(redact(str(exc)))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
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
