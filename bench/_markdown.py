"""The text of ``docs/benchmark.md``, from the benchmark's JSON files.

Every number on the page comes from a JSON file in ``docs/benchmark/``;
nothing is typed in by hand.  Missing files leave their section out with a
note.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from ._measure import SKIPPED, is_minimal, is_skipped, largest
from ._peers import SHAPE_ROUNDS, SHAPES
from ._plots import KINDS
from ._tools import stand_in_note

__all__ = ["page_text"]


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"
                 for row in rows)
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def _ratio(a: float, b: float, spec: str = ".2f") -> str:
    return format(a / b, spec) if b else "-"


def _image(plots: dict[str, str], key: str, alt: str) -> str:
    return f"![{alt}]({plots[key]})\n\n" if key in plots else ""


def _header(meta: dict[str, Any] | None) -> str:
    intro = ("# Benchmark\n\n"
             "What jostle exists for, measured side by side with what users use today, "
             "in one run. Regenerate this page with `tox -e bench` (which runs "
             "`python -m bench report`); pass a budget with `tox -e bench -- --budget 10`. "
             "Every number below comes from the JSON files in "
             "[`benchmark/`](benchmark/), written by the same run.\n\n")
    if meta is None:
        return intro + "_No `meta.json`: machine and versions unknown._\n\n"
    versions = ", ".join(f"{p} {v}" for p, v in meta["versions"].items())
    m = meta["machine"]
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in meta["steps"].items())
    return intro + "\n".join([
        f"- **Run**: {meta['date']}, commit {meta['commit']}, command `{meta['command']}`",
        f"- **Machine**: {m['cpu']}, {m['cpus']} CPU(s), {m['os']}",
        f"- **Python**: {meta['python']}; {versions}",
        f"- **Findings budget**: {meta['budget']:g} s per case, tool and variant "
        f"(the `tox -e bench` default is 5 s), seed {meta['seed']}; case folders: "
        + ", ".join(f"`{d}`" for d in meta["case_dirs"]),
        f"- **Time taken**: {steps}",
        *_load_line(meta.get("load_average")),
    ]) + "\n\n"


def _load_line(load: dict[str, float | None] | None) -> list[str]:
    if not load or load.get("max") is None:
        return []
    return [f"- **Load average** (1 min, sampled around each step): {load['min']:g} to "
            f"{load['max']:g}; above the CPU count means other work shared the machine "
            "and slowed every number here"]


def _tools(rows: Sequence[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["tool"] for r in rows))


def _cell(buggy: dict[str, Any] | None, fixed: dict[str, Any] | None) -> str:
    if buggy is None or is_skipped(buggy):
        text = "skipped"
    elif buggy["detected"]:
        text = f"{_seconds(buggy['seconds_to_first'])} s"
        shrunk = buggy["shrunk"]
        if shrunk is not None:
            text += f", {shrunk['workers']}x{shrunk['ops']}"
            if shrunk.get("preemptions") is not None:
                text += f"/{shrunk['preemptions']}p"
            if is_minimal(shrunk, buggy["minimal"]):
                text += " ✓"
    else:
        text = "missed"
    if fixed is not None and fixed["detected"]:
        text += " **FALSE POSITIVE**"
    return text


def _findings(findings: dict[str, Any], plots: dict[str, str],
              unavailable: dict[str, str]) -> str:
    rows = findings["rows"]
    tools = _tools(rows)
    summary = findings["summary"]
    out = ["## Finding power\n",
           "For each case and tool, the Buggy variant runs, then the Fixed one, each in a "
           "fresh process within the budget (`python -m bench findings`). *found* counts "
           "detected Buggy variants; a detected Fixed variant is a *false positive*. Times are "
           "from the start of the measurement to the first failing execution, and the median "
           "is over the cases found. *Shrunk to minimal* is the share of found cases whose "
           "reported counterexample has no more workers and calls per worker than the case's "
           "`MINIMAL`.\n",
           "A tool that cannot express a case's kind is **skipped** on it: its rows say "
           "`skipped: <why>` and count nowhere in the summary (neither found nor missed), so "
           "*found* is over the cases the tool ran.\n",
           "How each tool is driven (no per-case code; details in each `bench/` module):\n",
           "- `jostle-controlled`, `jostle-stress`: `jostle.concurrent_test(case.spec(...))` "
           "with its defaults (up to 3 workers of 3 calls, Hypothesis drawing and shrinking "
           "scenarios), in controlled mode with injected cancellations, or in stress mode.",
           "- `naive`: what a careful user writes without jostle: random plans of 2-4 "
           "workers of 1-200 calls, threads released together with a 1 µs switch interval, "
           "`asyncio.gather`, a process pool; nothing is shrunk, so its counterexample is the "
           "whole plan.",
           "- `frontrun`, `detangle`: each explores the schedules of a scenario it is given "
           "(frontrun: DPOR, preemption bound 2; detangle: 200 schedules of its default "
           "portfolio, then shrinking), so they get scenarios in rounds, small first ("
           + ", ".join(f"{w}x{k}" for w, k in SHAPES) + f", at most {SHAPE_ROUNDS} of each "
           "shape, then random ones of the last), drawn from the case's operations, with "
           "every observer operation called at quiescence.",
           "- Every run of `naive`, `frontrun` and `detangle` is judged by the same code "
           "(`bench/_judge.py`): a hang, an exception the case does not expect, the case's "
           "invariant, and linearizability with jostle's public `check_linearizability` "
           "against the case's model; a deadlock a peer reports by itself counts too.\n"]
    lines = []
    for tool in tools:
        s = summary.get(tool)
        if s is None:
            continue
        skipped = sum(1 for r in rows if r["tool"] == tool and r["variant"] == "buggy"
                      and is_skipped(r))
        shrunk = s["shrunk_to_minimal"]
        lines.append((f"`{tool}`", f"{s['found']}/{s['total']}", s["false_positives"],
                      _seconds(s["median_seconds_to_first"]),
                      "-" if shrunk is None else f"{shrunk:.0%}", skipped))
    out.append(_table(("tool", "found", "false positives", "median s to first",
                       "shrunk to minimal", "cases skipped"), lines) + "\n")
    for tool, why in unavailable.items():
        out.append(f"- `{tool}` was not measured: {why}.")
    if unavailable:
        out.append("")
    kinds = [k for k in KINDS if any(r["kind"] == k for r in rows)]
    per_kind = []
    for tool in tools:
        cells = []
        for kind in kinds:
            mine = [r for r in rows if r["tool"] == tool and r["kind"] == kind
                    and r["variant"] == "buggy"]
            measured = [r for r in mine if not is_skipped(r)]
            cells.append(f"{sum(bool(r['detected']) for r in measured)}/{len(measured)}"
                         if measured else "skipped")
        per_kind.append((f"`{tool}`", *cells))
    out.append("Found per case kind:\n\n" + _table(("tool", *kinds), per_kind) + "\n")
    out.append(_image(plots, "found", "Share of Buggy cases found per tool and kind"))
    out.append(_image(plots, "time", "Seconds to the first failure per case and tool"))
    out.append(_notes(rows))
    out.append("### Per case\n\n"
               "Each cell: seconds to the first failure, then the counterexample the tool "
               "reported as workers x most calls per worker, and `/Np` its preemptions when "
               "the tool counts them; ✓ when it is no bigger than the case's minimal. "
               "`missed`: not found within the budget.\n")
    by_case: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for row in rows:
        by_case.setdefault(row["case"], {})[row["tool"], row["variant"]] = row
    table = []
    for case, by_key in by_case.items():
        any_row = next(iter(by_key.values()))
        minimal = any_row["minimal"]
        wanted = f"{minimal.get('workers')}x{largest(minimal.get('ops_per_worker'))}"
        table.append((f"`{case}`", any_row["kind"], wanted,
                      *(_cell(by_key.get((t, "buggy")), by_key.get((t, "fixed")))
                        for t in tools)))
    out.append(_table(("case", "kind", "minimal", *tools), table) + "\n")
    return "\n".join(out) + "\n"


def _notes(rows: Sequence[dict[str, Any]]) -> str:
    notes = []
    for tool in _tools(rows):
        mine = [r for r in rows if r["tool"] == tool]
        for kind in KINDS:
            of_kind = [r for r in mine if r["kind"] == kind]
            reasons = {r["failure"][len(SKIPPED):] for r in of_kind if is_skipped(r)}
            for why in sorted(reasons):
                notes.append(f"- `{tool}` skipped {kind} cases: {why}.")
            note = stand_in_note(tool, kind)
            if note is not None and any(not is_skipped(r) for r in of_kind):
                notes.append(f"- {note}.")
        inconclusive = [r for r in mine if not r["detected"] and r["failure"]
                        and not is_skipped(r)]
        for r in inconclusive:
            notes.append(f"- `{tool}` on `{r['case']}` ({r['variant']}), not detected: "
                         f"{r['failure']}")
    return ("Notes from this run:\n\n" + "\n".join(notes) + "\n\n") if notes else ""


def _throughput(t: dict[str, Any], plots: dict[str, str]) -> str:
    rows = [(f"`{w}`", _rate(t["controlled"][w]), _rate(t["uncontrolled"][w]),
             _ratio(t["controlled"][w], t["uncontrolled"][w]))
            for w in t["controlled"]]
    ceiling = t["hypothesis_empty_rate"]
    examples = t["jostle_examples_per_s"]
    return ("## Throughput\n\n"
            "Executions per second of one fixed scenario of each workload with "
            "`jostle.execute` (`python -m bench throughput`): under control "
            "(`ControlledScheduler`, no forced switch: the cost of control itself) and "
            "uncontrolled (the default stress scheduler); judging is not included. Each "
            "rate is the median of 5 timed 1 s repetitions after a warm-up.\n\n"
            + _table(("workload", "controlled /s", "uncontrolled /s",
                      "controlled / uncontrolled"), rows)
            + f"\n\n- Hypothesis's own ceiling, an empty `@given` test: {_rate(ceiling)} "
              "examples/s.\n"
            + f"- `jostle.concurrent_test(spec, mode=\"controlled\", schedules=1)` on the "
              f"threads workload: {_rate(examples)} examples/s "
              f"({_ratio(examples, ceiling, '.0%')} of that ceiling), each example one "
              "scenario drawn, "
              "run under control and judged.\n\n"
            + _image(plots, "throughput", "Executions per second, controlled and uncontrolled"))


def _checker(c: dict[str, Any], plots: dict[str, str]) -> str:
    cases = c["cases"]
    columns = list(dict.fromkeys((x["model"], x["workers"]) for x in cases))
    sizes = list(dict.fromkeys(x["ops"] for x in cases))
    rows = []
    for ops in sizes:
        cells = []
        for model, workers in columns:
            x = next((x for x in cases if x["ops"] == ops and x["model"] == model
                      and x["workers"] == workers), None)
            if x is None or x["skipped"]:
                cells.append("skipped")
            elif x["timed_out"]:
                cells.append(f"timeout ({x['limit']})")
            else:
                verdict = "" if x["ok"] else " NOT LINEARIZABLE"
                cells.append(f"{x['seconds']:.4f}{verdict}")
        rows.append((f"{ops:,}", *cells))
    s = c["summary"]
    header = ("ops", *(f"{m}{' (part.)' if m == 'map' else ''}, {w} w" for m, w in columns))
    peak = max((x["peak_bytes"] for x in cases if x["peak_bytes"] is not None), default=None)
    return ("## Linearizability checker\n\n"
            "Seconds to check a generated linearizable history with "
            "`jostle.check_linearizability` (`python -m bench checker`), by history length, "
            "model (a register, or a keyed map checked with `partition=`) and workers; one "
            f"check per case in a child process limited to {c['settings']['time_limit']:g} s "
            f"and {c['settings']['max_steps']:,} model steps.\n\n"
            + _table(header, rows)
            + f"\n\n{s['cases']} cases: {s['ok']} linearizable, {s['timed_out']} timed out, "
              f"{s['skipped']} skipped, {s['not_linearizable']} not linearizable (every "
              f"history is linearizable by construction, so that last count must be 0)"
            + ("" if peak is None else f"; the largest peak of traced memory was "
               f"{peak / 2**20:.1f} MiB") + ".\n\n"
            + _image(plots, "checker", "Checker seconds against history length"))


def _scaling(sc: dict[str, Any], plots: dict[str, str]) -> str:
    rows = []
    for mode, data in sc["modes"].items():
        workers = "/".join(str(w) for w in sorted({r["workers"] for r in data["runs"]}))
        rates = [r["executions_per_s"] for r in data["runs"]]
        rows.append((f"`-n {mode}`", workers, _rate(data["executions_per_s"]),
                     ", ".join(_rate(r) for r in rates),
                     f"{statistics.median(r['seconds'] for r in data['runs']):.1f}"))
    s = sc["settings"]
    ratio = sc["ratio"]
    return ("## Scaling\n\n"
            "Executions per second of the fuzz campaigns ("
            + ", ".join(f"`{f}`" for f in s["campaigns"])
            + ") run under pytest with `-n 0` and with `-n auto` (pytest-xdist), "
              f"`python -m bench scaling`: {s['repetitions']} runs of {s['seconds']:g} s per "
              "mode, alternating; every pytest process reports the executions its jostle "
              "engine made, and a run's rate is their sum over the wall time of the whole "
              "pytest command (startup and worker start included). The median run is "
              "reported.\n\n"
            + _table(("pytest", "workers", "executions/s (median)", "runs",
                      "median wall s"), rows)
            + f"\n\n`-n auto` / `-n 0`: {'-' if ratio is None else f'{ratio:.2f}x'} on "
              f"{s['cpus']} CPU(s).\n\n"
            + _image(plots, "scaling", "Campaign executions per second with -n 0 and -n auto"))


def page_text(loaded: dict[str, Any], plots: dict[str, str]) -> str:
    """The whole page, from the loaded JSON files and the plots' relative paths."""
    meta = loaded.get("meta")
    parts = [_header(meta)]
    unavailable = (meta or {}).get("unavailable", {})
    sections: dict[str, Callable[[dict[str, Any]], str]] = {
        "findings": lambda d: _findings(d, plots, unavailable),
        "throughput": lambda d: _throughput(d, plots),
        "checker": lambda d: _checker(d, plots),
        "scaling": lambda d: _scaling(d, plots),
    }
    for name, section in sections.items():
        if name in loaded:
            parts.append(section(loaded[name]))
        else:
            parts.append(f"## {name.capitalize()}\n\n_Not measured in this run "
                         f"(no `{name}.json`)._\n\n")
    return "".join(parts).rstrip() + "\n"
