"""The OCI distribution (registry) client: references, authentication, manifests and blobs.

Importing this package imports neither ``requests`` nor ``docker``: both load when a request
is made, and ``docker`` only when a registry asks for credentials.
"""

from __future__ import annotations

from .auth import clear_token_cache
from .client import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MANIFEST_MAX,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryClient,
)
from .credentials import Credentials, CredentialsProvider, DockerConfigCredentials
from .reference import Reference, parse_reference
from .wire import RegistryError

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
