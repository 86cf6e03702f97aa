"""``python -m cnbkit``: the same as the ``cnbkit`` command."""

from cnbkit.cli import run

run()
