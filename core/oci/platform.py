"""Target platforms (``OS/ARCH[/VARIANT]``) and matching them as containerd does."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

from ..errors import UsageError

__all__ = ["TARGET_SYNTAX", "Platform", "host_platform", "parse_platform"]

# pack's --target syntax (a platform, then the distributions a builder's target names).
TARGET_SYNTAX = "[os][/arch][/variant][:distro@version[@version...]][;distro@version...]"

# Aliases folded to the OCI image-index spelling.
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm"}
# The variant an architecture means when none is written (containerd's normalisation).
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}
_PART = re.compile(r"^[a-z0-9_.-]+\Z")


@dataclass(frozen=True)
class Platform:
    """An image platform: ``os``, ``architecture`` and an optional ``variant``."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        parts = [self.os, self.architecture] + ([self.variant] if self.variant else [])
        return "/".join(parts)

    @property
    def is_windows(self) -> bool:
        """True for ``windows/*``: phase binaries then carry ``.exe``."""
        return self.os == "windows"

    def matches(self, other: Platform) -> bool:
        """Whether an index entry ``other`` satisfies this requested platform.

        A request without a variant matches an entry whose variant is empty or the
        architecture's default (``arm64`` = ``v8``, ``arm`` = ``v7``). An entry that names its
        OS but no architecture fits every architecture of that OS: ``pack buildpack package``
        writes buildpackages of shell buildpacks so (``linux/``), and pack uses them anywhere.
        """
        if other.os == self.os and not other.architecture:
            return True
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        default = _DEFAULT_VARIANT.get(self.architecture, "")
        return (self.variant or default) == (other.variant or default)


def _normalise_arch(arch: str) -> str:
    return _ARCH_ALIASES.get(arch, arch)


def parse_platform(text: str) -> Platform:
    """Parse ``OS/ARCH[/VARIANT]``; ``x86_64`` and ``aarch64`` are accepted as aliases.

    Raises:
        UsageError: when the text is not of that form.
    """
    parts = text.strip().lower().split("/")
    if not 2 <= len(parts) <= 3 or not all(_PART.match(p) for p in parts):
        raise UsageError(
            f"invalid platform {text!r}: expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8"
        )
    os_name, arch = parts[0], _normalise_arch(parts[1])
    variant = parts[2] if len(parts) == 3 else ""
    return Platform(os_name, arch, variant)


def host_platform() -> Platform:
    """The platform of this machine, as a container image would name it (always ``linux``
    for the OS: lifecycles run in Linux or Windows containers, and Linux is the default)."""
    machine = os.uname().machine if hasattr(os, "uname") else os.environ.get("PROCESSOR_ARCHITECTURE", "")
    os_name = "windows" if sys.platform == "win32" else "linux"
    return Platform(os_name, _normalise_arch(machine.lower() or "amd64"))
