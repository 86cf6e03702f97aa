"""The ``cnbkit`` command line: argument parsing, output, exit codes.

Exit codes: 0 success, 1 any failure (one line ``error: ...`` on stderr), 2 a bad command
line, 130 interrupted (SIGINT), 143 terminated (SIGTERM), 141 when whoever reads the output
closed it early (``| head -1``: quietly, like other tools). ``--debug`` (before or after the
command) or ``CNBKIT_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from .arguments import build_parser
from .console import Interrupted, OutputClosed, emit, handle_signals, is_stdout, stdout_closed
from .errors import CnbkitError, UsageError
from .redact import printable, redact

__all__ = ["main"]


def _version() -> str:
    from . import __version__

    return __version__


def _print_json(data: Any, file: TextIO | None = None) -> None:
    # json.dumps escapes every control character: JSON output is safe as it is.
    emit(json.dumps(data, indent=2), file)


def _print(text: str, file: TextIO | None = None) -> None:
    """Print lines for a person: whatever came from outside is escaped, line by line."""
    emit("\n".join(printable(line) for line in text.split("\n")), file)


def _shared_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :meth:`Options.build` keywords that ``resolve`` and ``builder create`` share."""
    return {
        **_image_options(args),
        "lifecycle_mirror": args.lifecycle_mirror,
        "progress": not (args.json or args.quiet),
        # notices (an unverified download) still reach stderr with --json
        "quiet": args.quiet,
    }


def _image_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :meth:`Options.build` keywords of every command that reads images (no progress:
    ``builder inspect`` and ``diff`` read manifests and configs only)."""
    return {
        "platform": args.platform,
        "pull_policy": args.pull_policy,
        "offline": args.offline,
        "ca_cert": args.ca_cert,
        "timeout": args.timeout,
        "allow_http": args.allow_http,
        "insecure_registries": args.insecure_registry,
        "registry_mirrors": args.registry_mirror,
        "max_size": args.max_size,
        "progress": False,
    }


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
    options = Options.build(base_dir=args.base_dir, **_shared_options(args))
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
        *_image_lines(lifecycle.blob.image),
        _apis("buildpack APIs", lifecycle.apis.buildpack.supported, lifecycle.apis.buildpack.deprecated),
        _apis("platform APIs", lifecycle.apis.platform.supported, lifecycle.apis.platform.deprecated),
        f"  {'binaries':<16}{', '.join(lifecycle.binaries)}",
    ]
    if saved is not None:
        lines.append(
            f"  {'layer saved to':<16}{saved} ({lifecycle.layer_size} bytes, {lifecycle.layer_digest})"
        )
    _print("\n".join(lines), out)


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
        exports = f"; exports to {', '.join(row['exports'])}" if row["exports"] else ""
        lines.append(f"{row['name']:<{width}}{row['module']} ({origin}); claims {claims}{exports}")
    for row in failed:
        lines.append(f"{row['name']:<{width}}FAILED TO LOAD ({row['distribution']}): {row['error']}")
    _print("\n".join(lines))
    return status


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect_api import inspect_builder_image
    from .inspect_text import inspect_text

    report = inspect_builder_image(args.image, depth=args.depth, **_image_options(args))
    _print_json(report) if args.json else _print(inspect_text(report))
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from .inspect_api import diff_builder_images
    from .inspect_text import diff_text

    old, new, changes = diff_builder_images(args.old, args.new, **_image_options(args))
    if args.json:
        _print_json({"old": old["reference"], "new": new["reference"], "changes": changes})
    elif changes:
        _print(diff_text(changes))
    return 1 if changes else 0


def _cmd_builder(args: argparse.Namespace) -> int:
    if args.builder_command == "inspect":
        return _cmd_inspect(args)
    if args.builder_command == "diff":
        return _cmd_diff(args)
    from .builder_api import create_builder

    result = create_builder(
        args.config,
        args.target,
        labels={key: value for labels in args.label for key, value in labels.items()},
        tags=args.tag,
        flatten=args.flatten,
        buildpack_registry=args.buildpack_registry,
        targets=args.targets,
        **_shared_options(args),
    )
    # A target streamed to stdout (docker-archive:/dev/stdout:REF | docker load): report on stderr.
    out = sys.stderr if _streams_to_stdout(args.target) else None
    if args.json:
        _print_json(result.to_json(), out)
    elif not args.quiet:
        reused = sum(1 for record in result.image.records if record.reused)
        lines = [
            f"Created builder {result.written}",
            f"  {'lifecycle':<12}{result.lifecycle.version} ({result.lifecycle.platform})",
            f"  {'layers':<12}{len(result.image.records)} ({reused} reused, not compressed again)",
        ]
        lines += [f"  {'':<12}{record.digest[:19]}  {record.source}" for record in result.image.records]
        if len(result.images) > 1:  # the layers above are the first target's
            lines += [f"  {'target':<12}{m['platform']}  {m['digest']}" for m in result.manifests]
        _print("\n".join(lines), out)
    return 0


def _streams_to_stdout(target: str) -> bool:
    """Whether an export target's path (``SCHEME:PATH[:REF]``) is where stdout goes."""
    rest = target.partition(":")[2] if ":" in target else target
    return any(is_stdout(path) for path in {rest, rest.partition(":")[0]} if path)


_COMMANDS = {"resolve": _cmd_resolve, "cache": _cmd_cache, "plugins": _cmd_plugins, "builder": _cmd_builder}


def _print_traceback() -> None:
    import traceback  # only on the way out, with --debug

    # The messages in it carry untrusted text (a registry's words, entry names, URLs): each line
    # is masked and escaped like every other message, so --debug cannot drive the terminal.
    for line in traceback.format_exc().rstrip("\n").split("\n"):
        print(printable(redact(line)), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (0, 1, 2, 130, 141 or 143)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list or os.environ.get("CNBKIT_DEBUG", "") not in ("", "0")
    args_list = [a for a in args_list if a != "--debug"]
    with handle_signals():
        return _run(args_list, debug)


def _run(args_list: list[str], debug: bool) -> int:
    try:
        args = build_parser(_version()).parse_args(args_list)
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
    """Console-script entry point.

    The process ends without the interpreter's teardown (a last full garbage collection and
    the freeing of every object: about 0.1 s of CPU, a tenth of a cold resolve of a small
    image): whatever cnbkit writes is closed and renamed into place before :func:`main`
    returns, and its locks are released by the kernel. Standard streams are flushed and
    ``atexit`` handlers run first; with a non-daemon thread still running, or a stream that
    cannot be flushed, the normal exit runs instead.
    """
    code = main()
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)  # the normal exit reports it as it always did
    import atexit

    atexit._run_exitfuncs()
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
