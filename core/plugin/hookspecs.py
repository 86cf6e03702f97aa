"""The hooks a cnbkit plugin can implement; each docstring is the hook's reference page.

Implement them with :data:`cnbkit.hookimpl` in a module named by an entry point in the
``cnbkit`` group. Every hook's exact signature is also in ``plugins.md`` (a test checks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from ..blob import Blob
    from ..lifecycle.model import Lifecycle
    from ..locator import Locator
    from ..oci.image import Image
    from ..oci.image_index import ImageIndex
    from .context import Context

__all__ = [
    "hookimpl",
    "hookspec",
    "cnbkit_resolve",
    "cnbkit_resolvers",
    "cnbkit_check_lifecycle",
    "cnbkit_resolve_image",
    "cnbkit_export",
    "cnbkit_exporters",
]

hookspec = pluggy.HookspecMarker("cnbkit")
hookimpl = pluggy.HookimplMarker("cnbkit")


@hookspec(firstresult=True)
def cnbkit_resolve(locator: Locator, context: Context) -> Blob | None:
    """Claim a locator and return the artifact it names, or ``None`` to pass.

    Called once per URI to resolve (the lifecycle ``uri``, a ``--lifecycle-version`` URL, or
    any URI a plugin sends through ``context.resolve``). Plugins are asked one at a time in
    pluggy's order: ``tryfirst`` implementations, then plain ones, each the most recently
    registered first (so third-party plugins come before the built-ins, which are registered
    first), then ``trylast`` ones, the earliest registered first (the built-in bare-path
    ``file`` resolver is one). The first one to return a Blob claims the URI and no other is
    asked. This is a ``firstresult`` hook.

    Args:
        locator: the parsed URI: ``scheme`` (``None`` for a bare path), ``rest``,
            ``base_dir`` and ``raw`` (the one place a password in the URI stays).
        context: platform, pull policy, cache, HTTP session, progress, offline flag and
            ``context.resolve(uri)``.

    Returns:
        A :class:`cnbkit.Blob` (for example ``cnbkit.FileBlob(path)``) to claim the URI, or
        ``None`` when the plugin does not handle it. Raise a :class:`cnbkit.CnbkitError`
        subclass with a one-line message when the URI is yours but cannot be resolved; any
        other exception is reported with the plugin's name.
    """


@hookspec
def cnbkit_resolvers() -> list[str] | None:
    """Describe the URIs this plugin claims, for ``cnbkit plugins`` and error messages.

    Called when ``cnbkit plugins`` lists plugins and when no plugin claims a URI (the error
    then lists every claim). Not a ``firstresult`` hook: every plugin is asked.

    Returns:
        A list of short patterns such as ``["s3://BUCKET/KEY"]`` or ``["file://PATH",
        "PATH"]``, or ``None`` for a plugin that claims no URIs. A plugin that raises here is
        listed with its error in place of its claims.
    """


@hookspec
def cnbkit_check_lifecycle(lifecycle: Lifecycle, context: Context) -> list[str] | None:
    """Apply extra policy to a validated lifecycle; return the problems found.

    Called once per resolve, after the built-in validator accepted a lifecycle (also one
    served from the cache), whichever plugin resolved it; every implementation is called. Use
    it for organisation rules: a minimum version, an allow-list of digests, a required
    Platform API.

    Args:
        lifecycle: the validated :class:`cnbkit.Lifecycle` (version, apis, binaries, blob).
        context: the same context the resolvers saw.

    Returns:
        A list of one-line problems (the resolve fails and shows them all, each prefixed with
        the plugin's name; a lone string counts as one), or ``None`` or an empty list when the
        lifecycle is acceptable.
    """


@hookspec(firstresult=True)
def cnbkit_resolve_image(locator: Locator, context: Context) -> Image | None:
    """Supply a whole container image for a locator, or ``None`` to pass.

    Image sources are plugins (a registry, the Docker daemon, an OCI layout, a third party's
    store); what is done with the image is the core's. Called in two places: when no
    ``cnbkit_resolve`` plugin claimed a lifecycle URI (the core then finds the lifecycle in the
    image's final filesystem and validates it like any other), and for the build and
    buildpackage images of a builder (``context.resolve_image(uri)``). Plugins are asked in
    the same order as for ``cnbkit_resolve``; the first to return an image claims the URI.

    Args:
        locator: the parsed image reference (``docker://REF``, ``oci:DIR:tag``, ...).
        context: the shared context; ``context.platform`` is the platform to pick from a
            multi-platform index and ``context.pull_policy`` says where an image may come from.

    Returns:
        A single-platform :class:`cnbkit.Image` whose manifest and config were read and
        verified, or ``None`` when the locator is not this plugin's. Layers are streamed only
        when the core reads them (:meth:`cnbkit.Image.open_blob`), each verified against its
        digest. Raise a :class:`cnbkit.CnbkitError` subclass with a one-line message when the
        reference is yours but the image cannot be had.
    """


@hookspec(firstresult=True)
def cnbkit_export(
    target: str, image: Image, context: Context, tags: tuple[str, ...], index: ImageIndex | None
) -> str | None:
    """Write a built image to ``target`` and return a description of where it went.

    Called once by ``cnbkit builder create`` (and ``cnbkit.create_builder``) for the output
    reference (``oci:DIR:tag``, or a plugin's own scheme), after every check passed and every
    layer was made. A ``firstresult`` hook: the first plugin that returns a string handles the
    export; when none does, the command fails naming the target. The built-in ``oci-export``
    plugin handles ``oci:DIR[:TAG]`` with :func:`cnbkit.export_layout`; ``docker-export``
    handles ``docker://REF`` (``context.push_image``) and ``docker-daemon:REF``
    (``context.load_image``). Each layer's ``origin`` is the image whose store holds its blob.

    Args:
        target: the output reference as the user wrote it (relative paths are the user's
            working directory's).
        image: the image to write: a :class:`cnbkit.Image` (manifest, config, and
            ``layers()`` whose ``open()`` streams each blob verified; ``open_blob`` for the rest).
        context: the shared context.
        tags: more names for the same image at the target (``--tag``, as the user wrote them;
            empty when none). Optional: an implementation that does not name it is not asked
            when there are tags (it would drop them).
        index: a multi-platform image (``[[targets]]``/``--target`` with more than one
            platform), of which ``image`` is the first; ``None`` for a single image. Write every
            image of ``index.images``, then ``index.index`` (its bytes and digest are final)
            where the target's name points (:func:`cnbkit.export_layout`,
            ``context.push_image`` and ``context.load_image`` take an :class:`cnbkit.ImageIndex`
            too). Optional: an implementation that does not name it is not asked when there is
            an index (it would write one platform only).

    Returns:
        A short description of what was written (``"oci:out:tag sha256:..."``), or ``None``
        when the target is not this plugin's.
    """


@hookspec
def cnbkit_exporters() -> list[str] | None:
    """Describe the targets this plugin's ``cnbkit_export`` writes, for ``cnbkit plugins`` and
    the "no plugin exports to" error (as :func:`cnbkit_resolvers` describes what is claimed).

    Not a ``firstresult`` hook: every plugin is asked.

    Returns:
        A list of short patterns such as ``["s3://BUCKET/KEY"]``, or ``None`` for a plugin
        that exports nothing. A plugin that raises here is listed with its error instead.
    """
