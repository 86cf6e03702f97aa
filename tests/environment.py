"""The environment variables that change what cnbkit does: tests and benchmarks run without them."""

from __future__ import annotations

# TLS trust and proxies of whoever runs the suite: never the tests' business.
NETWORK_ENV = (
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
)
