"""Live progress for ``jostle fuzz``: a table that redraws in place.

rich (a dependency, imported only here) draws it on a terminal: per test its
state, executions, executions per second, distinct interleavings and the
failures found so far, with the budget's countdown on top.  Redrawing a
table in place across terminals, resizes and non-UTF-8 consoles is what a
well-kept library does better than a hand-rolled one.  Off a terminal (CI
logs, pipes, tests) the display prints a line per finding as it arrives and
a one-line heartbeat every 30 seconds, then the summary.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["make_display"]

_HEARTBEAT = 30.0


class _Display:
    """The campaign's state, fed by worker events; draws nothing."""

    def __init__(self, tests: Sequence[str], *, budget: float) -> None:
        self.started = time.monotonic()
        self.budget = budget
        self._rows: dict[str, dict[str, Any]] = {
            t: {"test": t, "state": "waiting", "mode": "", "executions": 0, "interleavings": 0,
                "examples": 0, "elapsed": 0.0, "rate": 0.0, "failures": [], "found": ""}
            for t in tests}
        self._findings: dict[str, dict[str, Any]] = {}

    def __enter__(self) -> _Display:
        return self

    def __exit__(self, *exc: object) -> None:
        self.refresh()

    def event(self, event: dict[str, Any]) -> None:
        row = self._rows.get(str(event.get("test")))
        kind = event.get("type")
        if row is None:
            return
        if kind == "progress":
            for key in ("mode", "executions", "interleavings", "examples", "elapsed",
                        "failures"):
                row[key] = event[key]
            row["rate"] = row["executions"] / row["elapsed"] if row["elapsed"] > 0 else 0.0
        elif kind == "state":
            row["state"] = event["state"]
        elif kind == "found":
            row["found"] = row["found"] or event["failure"]
            if event["id"] not in self._findings:
                self._findings[event["id"]] = {k: event[k] for k in
                                               ("id", "test", "failure", "folder")}
                self.on_found(self._findings[event["id"]], event)

    def on_found(self, finding: dict[str, Any], event: dict[str, Any]) -> None:
        """A new finding arrived."""

    def note(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def refresh(self) -> None:
        """Redraw (if this display draws)."""

    def rows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._rows.values()]

    def findings(self) -> list[dict[str, Any]]:
        return list(self._findings.values())

    def clock(self) -> str:
        spent = time.monotonic() - self.started
        return f"{spent:,.0f} s of {self.budget:,.0f} s"


class _Plain(_Display):
    def __init__(self, tests: Sequence[str], *, budget: float) -> None:
        super().__init__(tests, budget=budget)
        self._beat = time.monotonic()

    def on_found(self, finding: dict[str, Any], event: dict[str, Any]) -> None:
        print(f"  [{self.clock()}] FOUND {finding['failure']} in {finding['test']} after "
              f"{event['executions']} executions -> {finding['folder']}", flush=True)

    def refresh(self) -> None:
        if time.monotonic() - self._beat < _HEARTBEAT:
            return
        self._beat = time.monotonic()
        execs = sum(r["executions"] for r in self._rows.values())
        print(f"  [{self.clock()}] {execs} executions, {len(self._findings)} finding(s)",
              flush=True)


class _Rich(_Display):
    def __init__(self, tests: Sequence[str], *, budget: float) -> None:
        super().__init__(tests, budget=budget)
        from rich.console import Console
        from rich.live import Live

        self.console = Console()
        self.live = Live(self._table(), console=self.console, refresh_per_second=4,
                         transient=False)

    def __enter__(self) -> _Rich:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(self._table())
        self.live.__exit__(None, None, None)

    def note(self, text: str) -> None:
        self.console.print(text)

    def on_found(self, finding: dict[str, Any], event: dict[str, Any]) -> None:
        self.console.print(f"[bold red]FOUND[/] {finding['failure']} in {finding['test']} "
                           f"after {event['executions']} executions -> {finding['folder']}")

    def refresh(self) -> None:
        self.live.update(self._table())

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=f"jostle fuzz: {self.clock()}, {len(self._findings)} finding(s)",
                      title_justify="left")
        for name, justify in (("test", "left"), ("state", "left"), ("mode", "left"),
                              ("executions", "right"), ("exec/s", "right"),
                              ("interleavings", "right"), ("failures", "right")):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for r in self._rows.values():
            fails = len(r["failures"])
            table.add_row(r["test"], r["state"], r["mode"], f"{r['executions']:,}",
                          f"{r['rate']:,.0f}", f"{r['interleavings']:,}",
                          f"[bold red]{fails}[/]" if fails else "0")
        return table


def make_display(tests: Sequence[str], *, budget: float, mode: str = "auto") -> _Display:
    """``rich`` on a terminal (or when ``mode="rich"``), plain lines otherwise."""
    if mode == "rich" or (mode == "auto" and sys.stdout.isatty()):
        return _Rich(tests, budget=budget)
    return _Plain(tests, budget=budget)
