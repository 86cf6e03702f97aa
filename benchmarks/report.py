"""Tables, targets and result files (``benchmarks/results/<benchmark>.md`` and ``.json``)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import bench_file, bench_https
from .harness import RESULTS_DIR, Spread

__all__ = ["file_report", "https_report", "machine_table", "write_results"]

RSS_LIMIT_MB = 80.0
RSS_FLAT_MB = 10.0  # "flat across sizes": the largest case peaks at most this much above the smallest
FILE_RATIO_LIMIT = 1.5
HTTPS_RATIO_LIMIT = 0.8
WARM_LIMIT_S = 0.3


def _wall(record: Mapping[str, Any]) -> str:
    w = record["wall"]
    return Spread(w["median"], w["min"], w["max"]).fmt(2)


def _ratio(record: Mapping[str, Any]) -> str:
    return Spread(record["median"], record["min"], record["max"]).fmt(2)


def _target(
    name: str, case: str, value: float, limit: float, *, below: bool, unit: str = ""
) -> dict[str, Any]:
    met = value < limit if below else value <= limit
    over = f"MISSED by {value - limit:.2f}{unit} ({(value / limit - 1) * 100:.0f}% over)"
    detail = "met" if met else over
    return {
        "target": name,
        "case": case,
        "value": round(value, 4),
        "limit": limit,
        "met": met,
        "detail": detail,
    }


def _rss_targets(cases: Sequence[Mapping[str, Any]], tool: str) -> list[dict[str, Any]]:
    targets = [
        _target(
            f"{tool} peak RSS < {RSS_LIMIT_MB:.0f} MB",
            c["label"],
            c["contenders"][tool]["peak_rss_mb"],
            RSS_LIMIT_MB,
            below=True,
            unit=" MB",
        )
        for c in cases
    ]
    peaks = [c["contenders"][tool]["peak_rss_mb"] for c in cases]
    if len(peaks) > 1:
        spread = max(peaks) - min(peaks)
        targets.append(
            _target(
                f"{tool} peak RSS flat across sizes (spread <= {RSS_FLAT_MB:.0f} MB)",
                "all sizes",
                spread,
                RSS_FLAT_MB,
                below=False,
                unit=" MB",
            )
        )
    return targets


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _rss(record: Mapping[str, Any]) -> str:
    return f"{record['peak_rss_mb']:.1f}"


def file_report(cases: Sequence[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The ``file`` table (markdown) and its targets."""
    cold, warm, peer = bench_file.COLD, bench_file.WARM, bench_file.PEER
    header = ["input", ".tgz MB", "cnbkit cold s", "tar -xzf s", "ratio cnbkit/tar (paired)"]
    header += ["cnbkit warm s", "peak RSS MB: cnbkit cold / warm / tar"]
    rows = [_row(header), _row(["---"] + ["---:"] * (len(header) - 1))]
    targets: list[dict[str, Any]] = []
    for c in cases:
        t, r = c["contenders"], c["ratios"][f"{cold} / {peer}"]
        cells = [c["label"], f"{c['tgz_bytes'] / 1e6:.1f}", _wall(t[cold]), _wall(t[peer]), _ratio(r)]
        cells += [_wall(t[warm]), f"{_rss(t[cold])} / {_rss(t[warm])} / {_rss(t[peer])}"]
        rows.append(_row(cells))
        name = f"cnbkit cold within {FILE_RATIO_LIMIT}x of tar -xzf (median paired ratio)"
        targets.append(_target(name, c["label"], r["median"], FILE_RATIO_LIMIT, below=False, unit="x"))
    targets += _rss_targets(cases, cold)
    return "\n".join(rows), targets


def https_report(cases: Sequence[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The ``https`` table (markdown) and its targets."""
    cold, warm = bench_https.COLD, bench_https.WARM
    curl_tar, curl = bench_https.CURL_TAR, bench_https.CURL
    header = ["input", "cnbkit cold s", "curl \\| tar s", "curl -o s", "ratio cnbkit/(curl \\| tar)"]
    header += ["ratio cnbkit/curl -o", "cnbkit warm s"]
    header += ["peak RSS MB: cnbkit cold / warm, curl \\| tar, curl -o", "warm run requests"]
    rows = [_row(header), _row(["---"] + ["---:"] * (len(header) - 2) + ["---"])]
    targets: list[dict[str, Any]] = []
    for c in cases:
        t = c["contenders"]
        r_tar, r_curl = c["ratios"][f"{cold} / {curl_tar}"], c["ratios"][f"{cold} / {curl}"]
        warm_log = c["server_log"]["warm"]
        verified = sum(1 for line in warm_log if line.startswith("GET 304"))
        cells = [c["label"], _wall(t[cold]), _wall(t[curl_tar]), _wall(t[curl]), _ratio(r_tar)]
        cells += [_ratio(r_curl), _wall(t[warm])]
        cells += [f"{_rss(t[cold])} / {_rss(t[warm])}, {_rss(t[curl_tar])}, {_rss(t[curl])}"]
        cells += [f"{verified}/{len(warm_log)} runs: exactly one GET, 304"]
        rows.append(_row(cells))
        name = f"cnbkit cold <= {HTTPS_RATIO_LIMIT}x of curl | tar (median paired ratio)"
        targets.append(_target(name, c["label"], r_tar["median"], HTTPS_RATIO_LIMIT, below=False, unit="x"))
        name = f"cnbkit warm < {WARM_LIMIT_S} s (median)"
        median = t[warm]["wall"]["median"]
        targets.append(_target(name, c["label"], median, WARM_LIMIT_S, below=True, unit=" s"))
    targets += _rss_targets(cases, cold)
    targets += _rss_targets(cases, warm)
    return "\n".join(rows), targets


def targets_list(targets: Sequence[Mapping[str, Any]]) -> str:
    """The targets as a markdown list, misses in bold."""
    lines = []
    for t in targets:
        verdict = "met" if t["met"] else f"**{t['detail']}**"
        lines.append(f"- {t['target']} — {t['case']}: {t['value']:g} (limit {t['limit']:g}): {verdict}")
    return "\n".join(lines)


def machine_table(facts: Mapping[str, Any]) -> str:
    """The machine facts as a two-column markdown table."""
    rows = ["| fact | value |", "|---|---|"]
    rows += [f"| {k} | {str(v).replace('|', '/')} |" for k, v in facts.items()]
    return "\n".join(rows)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_results(name: str, markdown: str, data: Mapping[str, Any], results: Path = RESULTS_DIR) -> Path:
    """Write ``results/NAME.md`` and ``results/NAME.json``; return the markdown path."""
    results.mkdir(parents=True, exist_ok=True)
    _atomic_write(results / f"{name}.json", json.dumps(data, indent=1) + "\n")
    md = results / f"{name}.md"
    _atomic_write(md, markdown.rstrip() + "\n")
    return md
