"""The human output of ``cnbkit builder inspect`` and ``builder diff``, laid out as
``pack builder inspect`` lays it out, plus what pack does not show (digests, layers, sizes).

The text is made of label values, which are whatever the builder's maker wrote: the CLI
escapes every line (``cli._print``) before it reaches a terminal."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["diff_text", "inspect_text"]

_NONE = "(none)"


def _apis(title: str, apis: dict[str, list[str]]) -> list[str]:
    return [
        f"  {title}:",
        f"    Deprecated: {', '.join(apis['deprecated']) or _NONE}",
        f"    Supported: {', '.join(apis['supported']) or _NONE}",
    ]


def _layer(layer: dict[str, Any] | None) -> str:
    if layer is None:
        return "(not found)"
    where = f", layer {layer['index']}" if "index" in layer else ""
    size = f", {layer['size']} bytes" if layer.get("size") is not None else ""
    made = f", made by {layer['created_by']}" if layer.get("created_by") else ""
    return f"{layer.get('digest') or '(not in the image)'} (diff ID {layer['diff_id']}{size}{where}{made})"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def _modules(title: str, modules: list[dict[str, Any]]) -> list[str]:
    if not modules:
        return [f"{title}:", f"  {_NONE}"]
    rows = [["ID", "NAME", "VERSION", "HOMEPAGE", "LAYER DIFF ID", "SIZE"]]
    for m in modules:
        layer = m["layer"] or {}
        size = layer.get("size")
        rows.append(
            [m["id"], m["name"] or "-", m["version"], m["homepage"] or "-", layer.get("diff_id") or "-",
             "-" if size is None else str(size)]
        )  # fmt: skip
    return [f"{title}:", *_table(rows)]


def _tree(groups: list[dict[str, Any]], indent: str) -> list[str]:
    """pack's detection order tree: ``├ Group #1:``, ``│  └ id@version    (optional)``."""
    lines = []
    for number, group in enumerate(groups, 1):
        last_group = number == len(groups)
        lines.append(f"{indent}{'└' if last_group else '├'} Group #{number}:")
        inner = indent + ("   " if last_group else "│  ")
        refs = group["group"]
        for position, ref in enumerate(refs, 1):
            last = position == len(refs)
            name = f"{ref['id']}@{ref['version']}" if ref["version"] else ref["id"]
            optional = "    (optional)" if ref["optional"] else ""
            lines.append(f"{inner}{'└' if last else '├'} {name}{optional}")
            if ref.get("order"):
                lines += _tree(ref["order"], inner + ("   " if last else "│  "))
    return lines


def _order(title: str, groups: list[dict[str, Any]]) -> list[str]:
    return [f"{title}:", *(_tree(groups, " ") if groups else [f"  {_NONE}"])]


def _extensions(report: dict[str, Any]) -> list[str]:
    """As pack: the extension sections only for a builder that has extensions."""
    if not (report["extensions"] or report["order_extensions"]):
        return []
    return [
        *_modules("Extensions", report["extensions"]),
        "",
        *_order("Detection Order (Extensions)", report["order_extensions"]),
        "",
    ]


def inspect_text(report: dict[str, Any]) -> str:
    """The report of :func:`cnbkit.inspect_api.inspect_builder_image` for a person: a
    multi-platform builder's other platforms follow, each in full."""
    return "\n\n".join(_one(r) for r in [report, *report.get("others", [])])


def _one(report: dict[str, Any]) -> str:
    lifecycle, stack = report["lifecycle"], report["stack"]
    lines = [
        f"Inspecting builder: {report['reference']!r}",
        "",
        f"Digest: {report['digest']} ({report['platform']})",
        *([f"Platforms: {', '.join(report['platforms'])}"] if len(report["platforms"]) > 1 else []),
        "",
        *([f"Description: {report['description']}", ""] if report["description"] else []),
        "Created By:",
        f"  Name: {report['created_by']['name']}",
        f"  Version: {report['created_by']['version']}",
        "",
        "Stack:",
        f"  ID: {stack['id'] or _NONE}",
        *(["  Mixins:", *(f"    {m}" for m in stack["mixins"])] if stack["mixins"] else []),
        "",
        "Lifecycle:",
        f"  Version: {lifecycle['version']}",
        *_apis("Buildpack APIs", lifecycle["apis"]["buildpack"]),
        *_apis("Platform APIs", lifecycle["apis"]["platform"]),
        f"  Layer: {_layer(lifecycle['layer'])}",
        "",
        "Run Images:",
        *(f"  {name}" for run in report["run_images"] for name in [run["image"], *run["mirrors"]]),
        *([] if report["run_images"] else [f"  {_NONE}"]),
        "",
        *_modules("Buildpacks", report["buildpacks"]),
        "",
        *_order("Detection Order", report["order"]),
        "",
        *_extensions(report),
        "Build Image Layers:",
        *(f"  {_layer(layer)}" for layer in report["build_image"]["layers"]),
        *([] if report["build_image"]["layers"] else [f"  {_NONE}"]),
    ]
    return "\n".join(lines)


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))


def diff_text(changes: list[dict[str, Any]]) -> str:
    """One line per change: ``+ subject``, ``- subject``, or ``~ subject: field a -> b; ...``."""
    lines = []
    for change in changes:
        if change["change"] == "added":
            lines.append(f"+ {change['subject']}")
        elif change["change"] == "removed":
            lines.append(f"- {change['subject']}")
        elif isinstance(change["from"], dict) and isinstance(change["to"], dict):
            fields = "; ".join(
                f"{key} {_value(change['from'][key])} -> {_value(change['to'][key])}"
                for key in change["from"]
            )
            lines.append(f"~ {change['subject']}: {fields}")
        else:
            lines.append(f"~ {change['subject']}: {_value(change['from'])} -> {_value(change['to'])}")
    return "\n".join(lines)
