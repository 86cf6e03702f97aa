"""The ``cnbkit`` command line's grammar: commands, options and their help (``cli`` runs them)."""

from __future__ import annotations

import argparse
from typing import NoReturn

from .errors import UsageError
from .oci.platform import TARGET_SYNTAX
from .options import DEFAULT_PULL_POLICY, DEFAULT_TIMEOUT, PULL_POLICIES

__all__ = ["Parser", "build_parser"]


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are :class:`UsageError` s (exit 2, one line)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


_PULL_POLICY_HELP = (
    "where docker:// images come from: the registry (always), the Docker daemon and else the "
    "registry (if-not-present, the default), the daemon only (never)"
)


def _pull_policy(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    # The names and the default are Options' (one list); argparse shows them in --help.
    parser.add_argument("--pull-policy", choices=PULL_POLICIES, default=DEFAULT_PULL_POLICY, help=help)


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
        help=f"connect and per-read timeout (env CNBKIT_TIMEOUT, default {DEFAULT_TIMEOUT:g})",
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
        "--registry-mirror",
        action="append",
        default=[],
        metavar="REGISTRY=MIRROR",
        help="fetch REGISTRY's images from MIRROR (host[:port][/path]; REGISTRY '*' is every "
        "registry; repeatable; env CNBKIT_REGISTRY_MIRRORS=REG=MIRROR,...; pack's registry-mirrors)",
    )
    group.add_argument(
        "--max-size",
        metavar="SIZE",
        help="most bytes a download or a layer may hold: 512M, 4G (env CNBKIT_MAX_SIZE, default 4G)",
    )
    group.add_argument(
        "--offline",
        action="store_true",
        default=None,
        help="resolve from the cache only (env CNBKIT_OFFLINE=1)",
    )


def _image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--platform", metavar="OS/ARCH[/VARIANT]", help="the platform to pick from a multi-arch builder"
    )
    _pull_policy(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    _network_options(parser)


def _depth(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < -1:
        raise argparse.ArgumentTypeError("give -1 (all) or a depth of 0 or more")
    return value


def _labels(text: str) -> dict[str, str]:
    # pack's (cobra's StringToString): KEY=VALUE pairs, several separated by commas.
    labels: dict[str, str] = {}
    for pair in text.split(","):
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise argparse.ArgumentTypeError(f"{pair!r} is not KEY=VALUE (as in --label org.example.a=b)")
        labels[key.strip()] = value
    return labels


def _inspect_commands(builder_commands: argparse._SubParsersAction[Parser]) -> None:
    inspect = builder_commands.add_parser(
        "inspect",
        help="show what is in a builder (manifest, config and labels only)",
        description="Show a builder's lifecycle, buildpacks, order, run images and stack, from any "
        "image source, without downloading a layer.",
    )
    inspect.add_argument("image", help="oci:DIR[:TAG], docker://REF, docker-daemon:REF or a plugin's image")
    inspect.add_argument(
        "--depth", type=_depth, default=-1, metavar="N", help="order tree depth (default -1: all)"
    )
    _image_options(inspect)
    diff = builder_commands.add_parser(
        "diff",
        help="what changed between two builders (exit 0 equal, 1 different)",
        description="Compare two builders: lifecycle, buildpacks, order, run images, stack, labels.",
    )
    diff.add_argument("old", help="the builder before (any image source)")
    diff.add_argument("new", help="the builder after (any image source)")
    _image_options(diff)


def build_parser(version: str) -> Parser:
    """The whole command line: commands, their options and help texts."""
    parser = Parser(
        prog="cnbkit", description="Get a Cloud Native Buildpacks lifecycle from wherever it lives."
    )
    parser.add_argument("--version", action="version", version=f"cnbkit {version}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
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
    _pull_policy(resolve, help=_PULL_POLICY_HELP)
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
    cache_commands = cache.add_subparsers(dest="cache_command", metavar="ACTION", parser_class=Parser)
    cache_commands.required = True
    ls = cache_commands.add_parser("ls", help="list what the cache holds")
    ls.add_argument("--json", action="store_true")
    prune = cache_commands.add_parser("prune", help="remove leftovers and entries unused for a while")
    prune.add_argument("--days", type=float, default=30.0, help="unused for this many days (default 30)")
    cache_commands.add_parser("clear", help="remove everything the cache holds")

    builder = commands.add_parser("builder", help="make, inspect and compare builder images")
    builder_commands = builder.add_subparsers(dest="builder_command", metavar="ACTION", parser_class=Parser)
    builder_commands.required = True
    create = builder_commands.add_parser(
        "create",
        help="create a builder image from builder.toml",
        description="Create a builder image from a pack-style builder.toml and write it to TARGET.",
    )
    create.add_argument("target", help="where the builder goes: oci:DIR[:TAG], or a plugin's target")
    create.add_argument("--config", "-c", required=True, metavar="builder.toml", help="the builder config")
    create.add_argument(
        "--platform",
        metavar="OS/ARCH[/VARIANT]",
        help="one builder for this platform (default: builder.toml's [[targets]], else the build "
        "image's own platform, else the host's from an index)",
    )
    create.add_argument(
        "--target",
        "-t",
        dest="targets",
        action="append",
        default=[],
        metavar="OS/ARCH[/VARIANT][:DISTRO@VERSION...]",
        help="a builder for this target (repeatable; replaces builder.toml's [[targets]]); several "
        f"make an image index. Syntax: {TARGET_SYNTAX}",
    )
    _pull_policy(create, help=_PULL_POLICY_HELP)
    create.add_argument(
        "--lifecycle-mirror",
        metavar="URL",
        help="replaces the GitHub releases prefix (env CNBKIT_LIFECYCLE_MIRROR)",
    )
    create.add_argument(
        "--label",
        "-l",
        type=_labels,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a label on the builder's config (repeatable, or KEY=VALUE,KEY=VALUE as pack takes it)",
    )
    create.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="REF",
        help="another name for the builder at the target (repeatable): a reference for docker:// "
        "and docker-daemon:, a tag for oci:DIR",
    )
    create.add_argument(
        "--flatten",
        action="append",
        default=[],
        metavar="<id>@<version>,...",
        help="these modules share one layer (repeatable: one layer per --flatten)",
    )
    create.add_argument(
        "--buildpack-registry",
        "-R",
        metavar="DIR|URL",
        help="the buildpack registry index urn:cnb:registry: entries are looked up in: a copy of "
        "the registry-index repository, or an https URL serving its files (env CNBKIT_BUILDPACK_REGISTRY)",
    )
    create.add_argument("--json", action="store_true", help="print one JSON object")
    create.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors (and --json)")
    _network_options(create)

    _inspect_commands(builder_commands)

    plugins = commands.add_parser("plugins", help="list the plugins and what they claim")
    plugins.add_argument("--json", action="store_true")
    plugins.add_argument("--strict", action="store_true", help="exit 1 when a plugin failed to load")
    return parser
