"""What changed between two builders: two :func:`.inspect.inspect_builder` reports in, a list
of changes out (``cnbkit builder diff``), for an upgrade review.

Each change is ``{"subject", "change", "from", "to"}``: ``change`` is ``added``, ``removed`` or
``changed``; ``from``/``to`` hold only the fields that differ (for ``changed``) or the whole
item (``null`` on the side that lacks it). The subjects: ``lifecycle``, ``buildpack ID``,
``extension ID``, ``order``, ``order-extensions``, ``system``, ``run images``, ``stack``,
``build image``, ``label NAME``. The manifest digest and the reference are not compared: they
differ whenever anything does.
"""

from __future__ import annotations

from typing import Any

__all__ = ["diff_builders"]

_PLAIN = (
    ("order", "order"),
    ("order-extensions", "order_extensions"),
    ("system", "system"),
    ("run images", "run_images"),
    ("stack", "stack"),
    ("build image", "build_image"),
    ("description", "description"),
    ("created by", "created_by"),
    ("platforms", "platforms"),
)


def _fields(a: dict[str, Any], b: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]
    return {k: a.get(k) for k in keys}, {k: b.get(k) for k in keys}


def _change(subject: str, a: Any, b: Any) -> dict[str, Any]:
    kind = "added" if a is None else "removed" if b is None else "changed"
    return {"subject": subject, "change": kind, "from": a, "to": b}


def _key(module: dict[str, Any]) -> str:
    return f"{module['id']}@{module['version']}"


def _modules(kind: str, a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Modules matched by ``id@version``; an id left with one version on each side changed
    version; the rest were added or removed."""
    left, right = {_key(m): m for m in a}, {_key(m): m for m in b}
    changes = []
    for ref in left.keys() & right.keys():
        if left[ref] != right[ref]:
            changes.append(_change(f"{kind} {ref}", *_fields(left[ref], right[ref])))
    gone = [left[r] for r in left.keys() - right.keys()]
    new = [right[r] for r in right.keys() - left.keys()]
    for module in list(gone):
        same = [m for m in new if m["id"] == module["id"]]
        if len(same) == 1 and sum(1 for m in gone if m["id"] == module["id"]) == 1:
            gone.remove(module)
            new.remove(same[0])
            changes.append(_change(f"{kind} {module['id']}", *_fields(module, same[0])))
    changes += [_change(f"{kind} {_key(m)}", m, None) for m in gone]
    changes += [_change(f"{kind} {_key(m)}", None, m) for m in new]
    return sorted(changes, key=lambda c: c["subject"])


def diff_builders(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """The changes from builder report ``a`` to ``b`` (empty: the same builder contents)."""
    changes = []
    if a["lifecycle"] != b["lifecycle"]:
        changes.append(_change("lifecycle", *_fields(a["lifecycle"], b["lifecycle"])))
    changes += _modules("buildpack", a["buildpacks"], b["buildpacks"])
    changes += _modules("extension", a["extensions"], b["extensions"])
    changes += [_change(subject, a[key], b[key]) for subject, key in _PLAIN if a[key] != b[key]]
    for name in sorted(a["labels"].keys() | b["labels"].keys()):
        if a["labels"].get(name) != b["labels"].get(name):
            changes.append(_change(f"label {name}", a["labels"].get(name), b["labels"].get(name)))
    return changes
