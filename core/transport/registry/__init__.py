"""The OCI distribution (registry) client: references, authentication, manifests and blobs.

Importing this package imports neither ``requests`` nor ``docker`` (nor, until a name is
used, any of its modules): both load when a request is made, and ``docker`` only when a
registry asks for credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...oci.mediatypes import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST
    from ...oci.mediatypes import MANIFEST_ACCEPT as MANIFEST_TYPES
    from .auth import clear_token_cache
    from .client import MANIFEST_MAX, RegistryClient
    from .credentials import Credentials, CredentialsProvider, DockerConfigCredentials
    from .reference import Reference, parse_reference
    from .wire import RegistryError

# Lazily: importing a submodule (the warm path needs only ``image``, ``quick`` and
# ``reference``) must not import the client, its authentication and their helpers.
# name -> its home module, or "module:its own name". The media types live in the image model
# (cnbkit.oci.mediatypes); they are served here too, as they always were.
_LAZY = {
    "clear_token_cache": ".auth",
    "DOCKER_MANIFEST": "...oci.mediatypes",
    "DOCKER_MANIFEST_LIST": "...oci.mediatypes",
    "MANIFEST_MAX": ".client",
    "MANIFEST_TYPES": "...oci.mediatypes:MANIFEST_ACCEPT",
    "OCI_INDEX": "...oci.mediatypes",
    "OCI_MANIFEST": "...oci.mediatypes",
    "RegistryClient": ".client",
    "Credentials": ".credentials",
    "CredentialsProvider": ".credentials",
    "DockerConfigCredentials": ".credentials",
    "Reference": ".reference",
    "parse_reference": ".reference",
    "RegistryError": ".wire",
}


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module, _, own = home.partition(":")
    value = getattr(importlib.import_module(module, __name__), own or name)
    globals()[name] = value
    return value


__all__ = [
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "MANIFEST_MAX",
    "MANIFEST_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Credentials",
    "CredentialsProvider",
    "DockerConfigCredentials",
    "Reference",
    "RegistryClient",
    "RegistryError",
    "clear_token_cache",
    "parse_reference",
]
