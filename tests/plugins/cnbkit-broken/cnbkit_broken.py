"""cnbkit-broken: a plugin module that fails on import (as one with a missing dependency does)."""

from __future__ import annotations

raise RuntimeError("cnbkit-broken cannot start: the ACME SDK is not installed")
