"""Turns a failed verdict into the message a user reads.

The message is built to be acted on without reading jostle's code:

1. what was found, one line per finding, then the details (tracebacks,
   stacks, the linearizability explanation in Porcupine's style: the longest
   linearizable prefix and the operations that could not go next);
2. the scenario as code that replays it with jostle's public API (as
   Hypothesis prints a stateful test's steps);
3. the history as a per-worker timeline in text, one column a worker, so
   overlapping operations are visible at a glance.
"""

from __future__ import annotations

from ._checker import Verdict
from ._execution import Execution
from ._history import History

__all__ = ["format_decisions", "format_failure", "format_timeline"]

_COL = 28


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def format_timeline(history: History) -> str:
    """The history as text: one column per worker, one row per event.

    Time runs down, in microseconds from the first invocation; an operation
    is its call on one row and its outcome (``-> value``, ``raised X``, or
    ``? (hung)``) on a later row, so calls whose rows interleave overlapped.
    """
    if not history.ops:
        return "(no operations ran)"
    kinds: dict[int, str] = {}
    for r in history.ops:
        kinds.setdefault(r.worker, "sequential" if r.worker == 0 else r.kind)
    workers = sorted(kinds)
    col = {w: i for i, w in enumerate(workers)}
    t0 = min(r.invoke for r in history.ops)
    events: list[tuple[int, int, int, str]] = []
    for r in history.ops:
        events.append((r.invoke, 0, r.worker, r.call_repr()))
        if r.response is not None:
            events.append((r.response, 1, r.worker, r.outcome_repr()))
        else:
            events.append((2**63, 1, r.worker, r.outcome_repr()))
    events.sort()
    header = "   t(us)  " + "".join(
        f"{f'worker {w} ({kinds[w]})':<{_COL}}" for w in workers)
    lines = [header.rstrip()]
    for t, _o, w, text in events:
        stamp = "     end" if t == 2**63 else f"{(t - t0) / 1000:8.1f}"
        cells = [""] * len(workers)
        cells[col[w]] = _short(text, _COL - 2)
        lines.append((f"{stamp}  " + "".join(f"{c:<{_COL}}" for c in cells)).rstrip())
    return "\n".join(lines)


def format_decisions(ex: Execution) -> str:
    """The decisions of a controlled run that a replay needs, one per line:
    who had the baton, where, and who got it."""
    def name(i: int) -> str:
        return ex.entities[i] if 0 <= i < len(ex.entities) else f"entity {i}"

    lines = []
    for d in ex.decisions:
        if d.default or d.kind == "timeout":
            continue
        where = f" at {d.label}" if d.label else ""
        if d.kind == "pick":
            lines.append(f"  point {d.step}{where}: {name(d.source)} chose option {d.target}")
        elif d.kind == "start":
            lines.append(f"  {name(d.target)} runs first")
        else:
            verb = {"switch": "preempted", "block": "blocked", "finish": "finished"}[d.kind]
            lines.append(f"  point {d.step}{where}: {name(d.source)} {verb}, "
                         f"{name(d.target)} runs")
    return "\n".join(lines) or "  (no preemptions: each worker ran until it blocked or finished)"


def format_failure(verdict: Verdict, *, spec_name: str, attempt: str = "",
                   replay_hint: str = "") -> str:
    """The whole failure message for ``verdict``.

    Args:
        verdict: a verdict with findings.
        spec_name: the resource's name, for the headline.
        attempt: e.g. ``"failed in 2 of 5 runs of this scenario"``.
        replay_hint: how to rerun it (code to paste).
    """
    ex = verdict.execution
    n_workers, n_ops = ex.scenario.size
    head = (f"jostle found a concurrency bug in {spec_name}: {len(verdict.findings)} finding(s) "
            f"with {n_workers} worker(s) x up to {n_ops} operation(s) "
            f"[{ex.scheduler}]" + (f"; {attempt}" if attempt else ""))
    parts = [head, ""]
    for i, f in enumerate(verdict.findings, start=1):
        said = f.summary if f.summary.startswith(f"{f.kind}:") else f"{f.kind}: {f.summary}"
        parts.append(f"{i}. {said}")
    for i, f in enumerate(verdict.findings, start=1):
        if f.detail:
            parts += ["", f"--- {i}. {f.kind} ---", f.detail]
    if ex.controlled:
        parts += ["", f"Interleaving ({ex.preemptions} preemption(s)):", format_decisions(ex)]
    for warning in ex.warnings:
        parts += ["", f"warning: {warning}"]
    parts += ["", "Scenario:", "    scenario = " + ex.scenario.to_code().replace("\n", "\n    ")]
    if replay_hint:
        parts += ["", "Replay it:", "    " + replay_hint.replace("\n", "\n    ")]
    parts += ["", "Timeline:", format_timeline(ex.history)]
    return "\n".join(parts)
