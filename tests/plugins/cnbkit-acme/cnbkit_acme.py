"""cnbkit-acme: lifecycles from ACME's artifact store, as ``acme://NAME``."""

from __future__ import annotations

import os
import re
from pathlib import Path

import cnbkit


class ArtifactMissingError(cnbkit.CnbkitError):
    """The artifact store has no artifact of that name."""


@cnbkit.hookimpl
def cnbkit_resolvers() -> list[str]:
    return ["acme://NAME"]


@cnbkit.hookimpl
def cnbkit_resolve(locator: cnbkit.Locator, context: cnbkit.Context) -> cnbkit.Blob | None:
    if locator.scheme != "acme":
        return None  # not ours: the next plugin is asked
    store = Path(os.environ.get("ACME_STORE", "/srv/acme-artifacts"))
    path = store / locator.rest
    if not re.fullmatch(r"\w[\w.-]*", locator.rest) or not path.is_file():
        raise ArtifactMissingError(f"{locator}: no such artifact in {store} (ACME_STORE)")
    return cnbkit.FileBlob(path, source=str(locator))


@cnbkit.hookimpl
def cnbkit_check_lifecycle(lifecycle: cnbkit.Lifecycle, context: cnbkit.Context) -> list[str] | None:
    minimum = os.environ.get("ACME_MIN_LIFECYCLE")
    if minimum and _numbers(lifecycle.version) < _numbers(minimum):
        return [f"lifecycle {lifecycle.version} is older than ACME's minimum {minimum}"]
    return None


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version.split("-")[0]))
