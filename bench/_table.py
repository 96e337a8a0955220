"""Plain-text tables for the terminal: one line per (case, tool), then the
per-tool summary.  The JSON is the interface; these are for reading."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._measure import is_minimal, is_skipped, largest

__all__ = ["format_summary", "format_table", "grid"]

_FIXED_CHARS = 48


def grid(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """``lines`` under ``header`` in left-aligned columns, with a rule below the header."""
    widths = [max(len(str(cell)) for cell in col) for col in zip(header, *lines, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out.extend(fmt.format(*line) for line in lines)
    return "\n".join(line.rstrip() for line in out)


def _buggy(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    if is_skipped(row):
        return "skipped"
    if row["detected"]:
        return f"found {row['seconds_to_first']:.3f} s"
    return "missed" + (f" ({row['failure']})" if row["failure"] else "")


def _fixed(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    if is_skipped(row):
        return "skipped"
    if row["detected"]:
        text = f"FALSE POSITIVE: {row['failure']}"
        return text if len(text) <= _FIXED_CHARS else text[: _FIXED_CHARS - 3] + "..."
    return "ok" + (f" ({row['failure']})" if row["failure"] else "")


def _size(workers: object, ops: object) -> str:
    return f"{workers}x{ops}"


def _shrunk(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    minimal = row["minimal"]
    wanted = _size(minimal.get("workers"), largest(minimal.get("ops_per_worker")))
    shrunk = row["shrunk"]
    if shrunk is None:
        return f"- (minimal {wanted})"
    mark = "  = minimal" if is_minimal(shrunk, minimal) else ""
    return f"{_size(shrunk['workers'], shrunk['ops'])} (minimal {wanted}){mark}"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """One line per (case, tool): Buggy's result, Fixed's, and the
    counterexample's workers x ops against the case's minimal."""
    pairs: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in rows:
        pairs.setdefault((row["case"], row["tool"]), {})[row["variant"]] = row
    lines = []
    for (case, tool), by_variant in pairs.items():
        any_row = next(iter(by_variant.values()))
        buggy = by_variant.get("buggy")
        lines.append((case, any_row["kind"], tool, _buggy(buggy), _fixed(by_variant.get("fixed")),
                      _shrunk(buggy) if buggy is not None and buggy["detected"] else "-"))
    return grid(("case", "kind", "tool", "buggy", "fixed", "counterexample (workers x ops)"),
                 lines)


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_summary(summary: dict[str, Any], *, budget: float) -> str:
    """One line per tool: found/total, false positives, median time, shrunk share
    (skipped rows are not counted, see ``_findings``)."""
    lines = [
        (tool, f"{s['found']}/{s['total']}", str(s["false_positives"]),
         _num(s["median_seconds_to_first"], ".3f"), _num(s["shrunk_to_minimal"], ".0%"))
        for tool, s in summary.items()
    ]
    return (f"summary (budget {budget:g} s per case and variant)\n"
            + grid(("tool", "found", "false positives", "median s to first",
                     "shrunk to minimal"), lines))
