"""``python -m bench findings``: finding power, per case, tool and variant.

For every case of every ``--cases`` folder (loaded with
``jostle.load_cases``, so any folder in the bugzoo format works and no case
is special-cased) and every available ``--tool``, the Buggy variant is
measured, then the Fixed one, each in a fresh subprocess within
``--budget`` seconds (``_isolate``).  Measurements run one at a time, so
they never compete for the CPU.

The JSON (``--json FILE``) is the interface issue 4 fixes, consumed by other
checks: ``{"rows": [...], "summary": {...}}``.  Each row has exactly the keys
``case, kind, tool, variant, detected, seconds_to_first, executions,
failure, shrunk, minimal``.  The summary has one entry per measured tool:

* ``found``, ``total``: detected Buggy rows, and all Buggy rows the tool
  was run on;
* ``false_positives``: detected Fixed rows;
* ``median_seconds_to_first``: median over the detected Buggy rows
  (``null`` if none);
* ``shrunk_to_minimal``: the share of detected Buggy rows whose
  counterexample is no bigger than the case's ``MINIMAL``: its ``workers``
  at most ``MINIMAL["workers"]`` and its ``ops`` at most
  ``MINIMAL["ops_per_worker"]`` (the largest entry when that is a list,
  as in ``[1, 2]``).  A detected row without a counterexample (``shrunk``
  is ``null``) counts as not minimal.  Preemptions are not compared: stress
  and naive runs do not count them.  ``null`` when nothing was detected.

A tool that cannot express a case's kind (detangle on a thread case, say)
gets *skipped rows* for it, Buggy and Fixed: ``detected`` false, no
executions, and a ``failure`` starting with ``"skipped: "`` that says why
(``_tools``).  No child process is started for them.  **Skipped rows count
nowhere in the summary**: not in ``found``, not in ``total``, not as false
positives, so a skip is neither a miss nor a find, and ``found/total`` is
over the cases the tool could run.  A tool that is not installed gets no
rows at all, only a note.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from jostle import Case, load_cases

from ._isolate import run_isolated
from ._measure import SKIPPED, Variant, is_minimal, is_skipped
from ._table import format_summary, format_table
from ._tools import skip_reason, stand_in_note, unavailable

__all__ = ["ROW_KEYS", "SUMMARY_KEYS", "run_findings", "summarize"]

ROW_KEYS = ("case", "kind", "tool", "variant", "detected", "seconds_to_first", "executions",
            "failure", "shrunk", "minimal")
SUMMARY_KEYS = ("found", "total", "false_positives", "median_seconds_to_first",
                "shrunk_to_minimal")
VARIANTS: tuple[Variant, ...] = ("buggy", "fixed")


def summarize(rows: Sequence[dict[str, Any]], tools: Sequence[str]) -> dict[str, Any]:
    """The per-tool summary of ``rows`` (see the module docstring)."""
    summary: dict[str, Any] = {}
    measured = [r for r in rows if not is_skipped(r)]
    for tool in tools:
        buggy = [r for r in measured if r["tool"] == tool and r["variant"] == "buggy"]
        fixed = [r for r in measured if r["tool"] == tool and r["variant"] == "fixed"]
        found = [r for r in buggy if r["detected"]]
        times = [r["seconds_to_first"] for r in found if r["seconds_to_first"] is not None]
        summary[tool] = {
            "found": len(found),
            "total": len(buggy),
            "false_positives": sum(bool(r["detected"]) for r in fixed),
            "median_seconds_to_first": round(statistics.median(times), 6) if times else None,
            "shrunk_to_minimal": (round(sum(is_minimal(r["shrunk"], r["minimal"])
                                            for r in found) / len(found), 4)
                                  if found else None),
        }
    return summary


def _row(case: Case, tool: str, variant: Variant, measured: dict[str, Any]) -> dict[str, Any]:
    row = {"case": case.id, "kind": case.kind, "tool": tool, "variant": variant,
           **measured, "minimal": case.minimal}
    return {key: row[key] for key in ROW_KEYS}


def _skipped(why: str) -> dict[str, Any]:
    return {"detected": False, "seconds_to_first": None, "executions": 0, "failure": why,
            "shrunk": None}


def _progress_line(n: int, total: int, row: dict[str, Any]) -> str:
    if is_skipped(row):
        return f"[{n}/{total}] {row['case']} {row['tool']} {row['variant']}: {row['failure']}"
    if row["detected"]:
        what = f"detected in {row['seconds_to_first']:.3f} s: {row['failure']}"
    else:
        what = "not detected" + (f" ({row['failure']})" if row["failure"] else "")
    return (f"[{n}/{total}] {row['case']} {row['tool']} {row['variant']}: {what} "
            f"({row['executions']} executions)")


def run_findings(folders: Sequence[str], tools: Sequence[str], *, budget: float, seed: int,
                 json_path: str | None, out: TextIO = sys.stdout,
                 err: TextIO = sys.stderr) -> dict[str, Any]:
    """Measure every case of ``folders`` with every available tool.

    Args:
        folders: case packages in the bugzoo format.
        tools: tool names, in the order asked; unavailable ones are skipped
            with a note and get neither rows nor a summary entry; cases of a
            kind a tool cannot express get skipped rows and a note.
        budget: seconds per (case, tool, variant).
        seed: base seed for every random choice.
        json_path: where to write the JSON, or ``None``.
        out: where the tables go.
        err: where notes and progress go.

    Returns:
        The JSON document.
    """
    measured_tools: list[str] = []
    notes: list[str] = []
    for tool in dict.fromkeys(tools):
        why = unavailable(tool)
        if why is None:
            measured_tools.append(tool)
        else:
            notes.append(f"note: tool {tool!r} skipped: {why}")
            print(notes[-1], file=err, flush=True)
    cases = [(folder, case) for folder in folders for case in load_cases(folder)]
    total = len(cases) * len(measured_tools) * len(VARIANTS)
    rows: list[dict[str, Any]] = []
    for folder, case in cases:
        for tool in measured_tools:
            why = skip_reason(tool, case.kind)
            stand_in = stand_in_note(tool, case.kind)
            if why is not None:
                skipped = f"note: tool {tool!r} skipped {case.kind} cases: {why[len(SKIPPED):]}"
                if skipped not in notes:
                    notes.append(skipped)
            elif stand_in is not None and f"note: {stand_in}" not in notes:
                notes.append(f"note: {stand_in}")
            for variant in VARIANTS:
                measured = (_skipped(why) if why is not None else
                            run_isolated(folder, case.id, tool, variant, budget=budget,
                                         seed=seed).to_json())
                rows.append(_row(case, tool, variant, measured))
                print(_progress_line(len(rows), total, rows[-1]), file=err, flush=True)
    summary = summarize(rows, measured_tools)
    document: dict[str, Any] = {"rows": rows, "summary": summary}
    if json_path is not None:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=2)
            f.write("\n")
    print(format_table(rows), file=out)
    print(file=out)
    print(format_summary(summary, budget=budget), file=out)
    for note in notes:
        print(note, file=out)
    return document
