"""cnbkit's built-in resolver plugins, one module each.

They are registered through the ``cnbkit`` entry-point group exactly as a third-party plugin
is, and import only what :mod:`cnbkit` exports.
"""
