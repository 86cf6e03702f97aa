"""Bytes and tar, shared by everyone: digests, hashing, decompression, read-ahead threads, the
safe tar reader, the deterministic tar writer and atomic writes.

It imports nothing of cnbkit but :mod:`cnbkit.errors` and :mod:`cnbkit.redact` (see
docs/architecture.md).
"""
