"""The image model every transport speaks: platforms, descriptors, manifests, indexes, configs.

Pure data and parsing, as go-containerregistry's ``pkg/v1`` is: nothing here touches the
network, the Docker daemon or the plugin system. It may import :mod:`cnbkit.archive` and
:mod:`cnbkit.errors` only (see docs/architecture.md).
"""
