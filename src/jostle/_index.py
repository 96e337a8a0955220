"""All findings at once: the table ``jostle report`` prints and the index page.

Both read the ``report.json`` of every failure folder, so they show what any
run wrote (pytest, ``jostle fuzz``, another machine's folder copied over).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from ._findings import FailureStore, _atomic_write

__all__ = ["findings_table", "write_index"]

_COLUMNS = ("id", "test", "failure", "mode", "status", "reproduces", "found", "first seen",
            "last seen")


def _cells(r: dict[str, Any]) -> list[str]:
    rep = r.get("reproduces")
    if isinstance(rep, dict):
        rep = f"{rep.get('failed')} of {rep.get('runs')}"
    mode = r.get("mode", "?")
    if r.get("preemption_model"):
        mode += f" ({r['preemption_model']})"
    return [str(r.get("id", "?")), str(r.get("test_id", "?")), str(r.get("failure", "?")),
            mode, str(r.get("status", "?")), str(rep or "-"),
            f"{r.get('times_found', 1)}x", str(r.get("first_seen", "?")),
            str(r.get("last_seen", "?"))]


def findings_table(store: FailureStore) -> str:
    """Every finding as an aligned text table (newest first)."""
    records = store.records()
    if not records:
        return f"no findings in {store.failures}"
    rows = [list(_COLUMNS)] + [_cells(r) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_index(store: FailureStore) -> Path:
    """Write ``<dir>/index.html`` linking every finding's report page."""
    records = store.records()
    head = "".join(f"<th>{html.escape(c)}</th>" for c in _COLUMNS)
    body = []
    for r in records:
        cells = _cells(r)
        link = f"failures/{html.escape(cells[0])}/report.html"
        first = f"<td><a href='{link}'>{html.escape(cells[0])}</a></td>"
        body.append("<tr>" + first + "".join(f"<td>{html.escape(c)}</td>" for c in cells[1:])
                    + "</tr>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>jostle findings</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
td, th {{ padding: .2em .8em; text-align: left; }}
tr:nth-child(even) {{ background: #f6f6f6; }}
</style></head><body>
<h1>jostle findings ({len(records)})</h1>
<table><tr>{head}</tr>
{chr(10).join(body)}
</table>
<p>Rerun one with <code>jostle replay ID</code> or <code>python failures/ID/repro.py</code>.</p>
</body></html>
"""
    store.root.mkdir(parents=True, exist_ok=True)
    path = store.root / "index.html"
    _atomic_write(path, page)
    return path
