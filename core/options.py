"""User options with their environment twins, resolved once for the CLI and the API alike."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .archive.tarinput import DEFAULT_MAX_TOTAL
from .errors import UsageError
from .oci.platform import Platform, host_platform, parse_platform

__all__ = [
    "DEFAULT_MAX_SIZE",
    "DEFAULT_PULL_POLICY",
    "DEFAULT_TIMEOUT",
    "PULL_POLICIES",
    "Options",
    "parse_size",
]

PULL_POLICIES = ("always", "if-not-present", "never")
DEFAULT_PULL_POLICY = "if-not-present"  # pack's is "always"; docs/pack-differences.md says why
DEFAULT_MAX_SIZE = DEFAULT_MAX_TOTAL  # 4 GiB: a lifecycle is ~300 MB
DEFAULT_TIMEOUT = 30.0  # seconds to connect and per read; a registry client made without options too
_TRUE = ("1", "true", "yes", "on")
_SIZE = re.compile(r"(\d{1,20})\s*(?:([KMGT])(?:i?B)?|B)?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str, what: str = "--max-size ") -> int:
    """A byte count from ``4G``, ``512M``, ``100K`` or plain bytes (units are powers of 1024).

    Raises:
        UsageError: anything else, or zero.
    """
    match = _SIZE.fullmatch(text.strip())
    if match is None or int(match[1]) == 0:
        raise UsageError(f"{what}{text!r} is not a size: give bytes or a number with K, M, G or T (512M, 4G)")
    return int(match[1]) * _UNITS[(match[2] or "").upper()]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _env_list(name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


def _system_ca() -> str | bool:
    # "else the system store": OpenSSL's default bundle, not the certifi copy requests ships.
    import ssl  # not at import time: a resolve of a local file never needs it

    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return candidate
    return True


@dataclass
class Options:
    """Everything a resolve can be told, after flags and environment are combined.

    Build it with :meth:`build`, which applies the precedence the README documents: an
    explicit argument, then its environment variable, then the default.
    """

    platform: Platform = field(default_factory=host_platform)
    base_dir: Path = field(default_factory=Path.cwd)
    pull_policy: str = DEFAULT_PULL_POLICY
    offline: bool = False
    cache_dir: Path | None = None
    verify: str | bool = True
    timeout: float = DEFAULT_TIMEOUT
    allow_http: bool = False
    insecure_registries: tuple[str, ...] = ()
    registry_mirrors: tuple[str, ...] = ()
    lifecycle_mirror: str | None = None
    buildpack_registry: str | None = None
    progress: bool = False
    quiet: bool = False
    max_size: int = DEFAULT_MAX_SIZE

    @classmethod
    def build(
        cls,
        *,
        platform: str | Platform | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        pull_policy: str | None = None,
        offline: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        ca_cert: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
        allow_http: bool | None = None,
        insecure_registries: tuple[str, ...] | list[str] = (),
        registry_mirrors: tuple[str, ...] | list[str] = (),
        lifecycle_mirror: str | None = None,
        buildpack_registry: str | None = None,
        progress: bool = False,
        quiet: bool = False,
        max_size: int | str | None = None,
    ) -> Options:
        """Combine explicit values with the environment.

        Raises:
            UsageError: a malformed platform, pull policy, timeout or size.
        """
        if max_size is None:
            env_size = os.environ.get("CNBKIT_MAX_SIZE", "").strip()
            max_size = parse_size(env_size, "CNBKIT_MAX_SIZE=") if env_size else DEFAULT_MAX_SIZE
        elif isinstance(max_size, str):
            max_size = parse_size(max_size)
        if max_size <= 0:
            raise UsageError(f"max_size must be a positive number of bytes, got {max_size}")
        if isinstance(platform, str):
            platform = parse_platform(platform)
        policy = pull_policy or DEFAULT_PULL_POLICY
        if policy not in PULL_POLICIES:
            raise UsageError(f"invalid pull policy {policy!r}: use one of {', '.join(PULL_POLICIES)}")
        if timeout is None:
            text = os.environ.get("CNBKIT_TIMEOUT", "30")
            try:
                timeout = float(text)
            except ValueError:
                raise UsageError(f"CNBKIT_TIMEOUT={text!r} is not a number of seconds") from None
        if timeout <= 0:
            raise UsageError(f"timeout must be a positive number of seconds, got {timeout}")
        env_ca = next(
            (
                os.environ[v]
                for v in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
                if os.environ.get(v)
            ),
            None,
        )
        ca = ca_cert or env_ca
        if ca is not None and not os.path.exists(ca):
            raise UsageError(f"CA bundle {ca} does not exist")
        insecure = tuple(insecure_registries) + _env_list("CNBKIT_INSECURE_REGISTRIES")
        # REGISTRY=MIRROR pairs, checked where references are read (transport.registry.reference)
        mirrors = tuple(registry_mirrors) + _env_list("CNBKIT_REGISTRY_MIRRORS")
        return cls(
            platform=platform or host_platform(),
            base_dir=Path(base_dir).absolute() if base_dir is not None else Path.cwd(),
            pull_policy=policy,
            offline=_env_flag("CNBKIT_OFFLINE") if offline is None else offline,
            cache_dir=Path(cache_dir) if cache_dir is not None else None,
            verify=str(ca) if ca is not None else _system_ca(),
            timeout=timeout,
            allow_http=_env_flag("CNBKIT_ALLOW_HTTP") if allow_http is None else allow_http,
            insecure_registries=insecure,
            registry_mirrors=mirrors,
            lifecycle_mirror=lifecycle_mirror or os.environ.get("CNBKIT_LIFECYCLE_MIRROR") or None,
            buildpack_registry=buildpack_registry or os.environ.get("CNBKIT_BUILDPACK_REGISTRY") or None,
            progress=progress,
            quiet=quiet,
            max_size=max_size,
        )
