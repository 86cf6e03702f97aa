"""pack's ``--flatten "<id>@<version>,..."``: the modules of each group share one layer."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..archive.tarwrite import END_MARKER
from ..errors import BuilderError, UsageError
from .buildpack import Module
from .layers import NewLayer

__all__ = ["flattened_layer", "parse_flatten"]

_FORM = "please use '<buildpack-id>@<buildpack-version>' to add buildpacks to be flattened"


def parse_flatten(groups: Sequence[str]) -> tuple[frozenset[str], ...]:
    """Each ``--flatten`` value as the set of ``id@version`` it names.

    Raises:
        UsageError: an entry that is not ``<id>@<version>`` (pack's message, with the form).
    """
    parsed = []
    for group in groups:
        refs = [entry.strip() for entry in group.split(",")]
        for ref in refs:
            ident, at, version = ref.partition("@")
            if not (ident and at and version) or "@" in version:
                raise UsageError(f"--flatten: invalid format {ref!r}; {_FORM}")
        parsed.append(frozenset(refs))
    return tuple(parsed)


def flattened_layer(modules: Sequence[Module]) -> NewLayer:
    """One layer holding every module of ``modules`` (each normalised as on its own).

    Raises:
        BuilderError: a module of a buildpackage image, whose layer is referenced as stored.
    """
    for module in modules:
        if module.blob is None:
            raise BuilderError(
                f"--flatten: {module.ref} comes from {module.origin}, whose layer is referenced as "
                "stored; flatten only modules given as directories or archives"
            )

    def chunks() -> Iterator[bytes]:
        for module in modules:
            yield from module.entry_chunks()
        yield END_MARKER

    return NewLayer(f"flattened {', '.join(m.ref for m in modules)}", chunks)
