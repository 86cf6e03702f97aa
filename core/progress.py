"""Progress reporting for long transfers: a bar on a terminal, nothing elsewhere."""

from __future__ import annotations

import sys
from typing import Protocol

from .redact import printable

__all__ = ["Progress", "Silent", "new_progress"]


class Progress(Protocol):
    """What a download tells as it goes."""

    def update(self, n: int) -> None:
        """``n`` more bytes were transferred."""

    def close(self) -> None:
        """The transfer ended (successfully or not)."""


class Silent:
    """A progress that reports nothing (no terminal, or nobody asked)."""

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


class _Bar:
    def __init__(self, description: str, total: int | None) -> None:
        from tqdm import tqdm  # only on a terminal: keeps the import off every other path

        self._bar = tqdm(
            total=total,
            desc=printable(description),  # a URL can hold ESC: it must not drive the terminal
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            leave=False,
        )

    def update(self, n: int) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()


def new_progress(description: str, total: int | None, *, enabled: bool) -> Progress:
    """A tqdm bar on stderr when ``enabled`` and stderr is a terminal, else a silent one."""
    if not enabled or not sys.stderr.isatty():
        return Silent()
    return _Bar(description, total)
