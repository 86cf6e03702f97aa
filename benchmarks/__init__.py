"""Side-by-side benchmarks of cnbkit against the tools a person would use instead.

Not part of the test suite and not run in CI. Run them from the repository root with
``python benchmarks/run.py`` (see ``benchmarks/README.md``).
"""
