"""The benchmark's plots, drawn with matplotlib as SVG for ``docs/benchmark.md``.

Each function takes the JSON of one subcommand and writes one figure.  The
SVGs are written deterministically (fixed hash salt, no date), so
regenerating unchanged numbers does not change the files.  matplotlib is
imported when a plot is drawn, never at import time: the ``bench`` tox env
installs it, the test env need not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._measure import is_skipped

__all__ = ["KINDS", "PLOTS", "checker_plot", "found_plot", "scaling_plot", "throughput_plot",
           "time_to_first_plot"]

#: Case kinds, in the order shown.
KINDS = ("thread", "asyncio", "process", "mixed")
#: One colour per tool, the same in every figure (matplotlib's tab10).
_COLOURS = {"jostle-controlled": "tab:blue", "jostle-stress": "tab:cyan", "naive": "tab:gray",
            "frontrun": "tab:orange", "detangle": "tab:green"}
_MARKERS = {"jostle-controlled": "o", "jostle-stress": "s", "naive": "x", "frontrun": "^",
            "detangle": "D"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "jostle-bench", "font.size": 10,
                         "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, format=path.suffix.lstrip("."), metadata={"Date": None}
                if path.suffix == ".svg" else None)
    import matplotlib.pyplot as plt

    plt.close(fig)


def _tools(rows: Sequence[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["tool"] for r in rows))


def found_plot(findings: dict[str, Any], path: Path) -> None:
    """Share of Buggy cases found, per tool and case kind; skipped kinds say so."""
    plt = _pyplot()
    rows = [r for r in findings["rows"] if r["variant"] == "buggy"]
    tools = _tools(rows)
    kinds = [k for k in KINDS if any(r["kind"] == k for r in rows)]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(kinds) + 2), 3.6))
    width = 0.8 / max(len(tools), 1)
    labelled: set[str] = set()
    for t, tool in enumerate(tools):
        for k, kind in enumerate(kinds):
            mine = [r for r in rows if r["tool"] == tool and r["kind"] == kind]
            measured = [r for r in mine if not is_skipped(r)]
            x = k - 0.4 + width * (t + 0.5)
            if not measured:
                ax.text(x, 0.02, "skipped", rotation=90, ha="center", va="bottom", fontsize=7,
                        color=_COLOURS.get(tool, "black"))
                continue
            found = sum(bool(r["detected"]) for r in measured)
            ax.bar(x, found / len(measured), width, color=_COLOURS.get(tool),
                   label=None if tool in labelled else tool)
            labelled.add(tool)
            ax.text(x, found / len(measured) + 0.02, f"{found}/{len(measured)}", ha="center",
                    va="bottom", fontsize=7)
    ax.set_xticks(range(len(kinds)), kinds)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("Buggy cases found")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.legend(fontsize=8, ncols=min(len(tools), 5), loc="upper center",
              bbox_to_anchor=(0.5, -0.12), frameon=False)
    ax.set_title("Finding power: Buggy cases found, per case kind")
    _save(fig, path)


def time_to_first_plot(findings: dict[str, Any], path: Path, *, budget: float) -> None:
    """Seconds to the first failure per case and tool (log scale); misses at the budget."""
    plt = _pyplot()
    rows = [r for r in findings["rows"] if r["variant"] == "buggy"]
    tools = _tools(rows)
    cases = list(dict.fromkeys(r["case"] for r in rows))
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(cases) + 1.6))
    floor = 1e-3
    for t, tool in enumerate(tools):
        offset = (t - (len(tools) - 1) / 2) * 0.12
        hit_x, hit_y, miss_y = [], [], []
        for y, case in enumerate(cases):
            row = next((r for r in rows if r["tool"] == tool and r["case"] == case), None)
            if row is None or is_skipped(row):
                continue
            if row["detected"] and row["seconds_to_first"] is not None:
                hit_x.append(max(row["seconds_to_first"], floor))
                hit_y.append(y + offset)
            else:
                miss_y.append(y + offset)
        colour = _COLOURS.get(tool)
        ax.scatter(hit_x, hit_y, marker=_MARKERS.get(tool, "o"), color=colour, s=22,
                   label=tool, zorder=3)
        ax.scatter([budget * 1.6] * len(miss_y), miss_y, marker="|", color=colour, s=60,
                   zorder=3)
    ax.axvline(budget, color="black", linewidth=0.8, linestyle=":")
    ax.text(budget * 1.6, -0.9, "missed", ha="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_xlim(floor / 1.5, budget * 3)
    ax.set_yticks(range(len(cases)), cases, fontsize=8)
    ax.set_ylim(len(cases) - 0.5, -1.3)
    ax.set_xlabel(f"seconds to the first failure (log; dotted line: the {budget:g} s budget)")
    ax.grid(axis="x", which="major", linewidth=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08 - 2.0 / (len(cases) + 6)),
              ncols=min(len(tools), 5), frameon=False)
    ax.set_title("Time to the first failure, per Buggy case")
    _save(fig, path)


def throughput_plot(throughput: dict[str, Any], path: Path) -> None:
    """Executions/s per workload, controlled and uncontrolled, with Hypothesis's rates."""
    plt = _pyplot()
    workloads = list(throughput["controlled"])
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for m, (mode, colour) in enumerate((("uncontrolled", "tab:cyan"),
                                        ("controlled", "tab:blue"))):
        xs = [w + (m - 0.5) * 0.38 for w in range(len(workloads))]
        values = [throughput[mode][w] for w in workloads]
        ax.bar(xs, values, 0.36, color=colour, label=f"{mode} (jostle.execute)")
        for x, v in zip(xs, values, strict=True):
            ax.text(x, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=7)
    for key, label, style in (("hypothesis_empty_rate", "Hypothesis empty @given test", "--"),
                              ("jostle_examples_per_s", "jostle controlled examples/s", ":")):
        ax.axhline(throughput[key], color="black", linestyle=style, linewidth=0.9,
                   label=f"{label}: {throughput[key]:,.0f}/s")
    ax.set_xticks(range(len(workloads)), workloads)
    top = max(*(max(throughput[m].values()) for m in ("controlled", "uncontrolled")),
              throughput["hypothesis_empty_rate"], throughput["jostle_examples_per_s"])
    ax.set_ylim(0, top * 1.45)
    ax.set_ylabel("per second")
    ax.legend(fontsize=8, loc="upper right", frameon=False)
    ax.set_title("Throughput: executions/s of one fixed scenario (median)")
    _save(fig, path)


def checker_plot(checker: dict[str, Any], path: Path) -> None:
    """Checker seconds against history length, per model and workers (log-log)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    series: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for case in checker["cases"]:
        if not case["skipped"]:
            series.setdefault((case["model"], case["workers"]), []).append(case)
    limit = checker["settings"]["time_limit"]
    styles = {"map": "-", "register": "--"}
    colours = {2: "tab:blue", 4: "tab:orange", 8: "tab:red"}
    for (model, workers), cases in sorted(series.items()):
        done = [c for c in cases if not c["timed_out"] and c["seconds"] is not None]
        colour = colours.get(workers, "black")
        ax.plot([c["ops"] for c in done], [c["seconds"] for c in done],
                linestyle=styles.get(model, "-"), marker="o", markersize=3, color=colour,
                label=f"{model}{' (partitioned)' if model == 'map' else ''}, {workers} workers")
        timeouts = [c for c in cases if c["timed_out"]]
        ax.scatter([c["ops"] for c in timeouts], [limit] * len(timeouts), marker="x",
                   color=colour, zorder=3)
    ax.axhline(limit, color="black", linewidth=0.8, linestyle=":")
    ax.text(0.01, limit * 1.25, f"time limit {limit:g} s (x: timed out)", fontsize=7,
            transform=ax.get_yaxis_transform())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(top=limit * 4)
    ax.set_xlabel("operations in the history (log)")
    ax.set_ylabel("seconds to check (log)")
    ax.legend(fontsize=7, loc="lower right", frameon=False, ncols=2)
    ax.set_title("Linearizability checker: time against history length")
    _save(fig, path)


def scaling_plot(scaling: dict[str, Any], path: Path) -> None:
    """Campaign executions/s with pytest -n 0 and -n auto: medians, and each run."""
    plt = _pyplot()
    modes = list(scaling["modes"])
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    ticks = []
    for m, mode in enumerate(modes):
        data = scaling["modes"][mode]
        workers = "/".join(str(w) for w in sorted({r["workers"] for r in data["runs"]}))
        ticks.append(f"-n {mode}\n({workers} worker{'s' if workers != '1' else ''})")
        ax.bar(m, data["executions_per_s"], 0.6, color=("tab:blue", "tab:orange")[m % 2])
        ax.scatter([m] * len(data["runs"]), [r["executions_per_s"] for r in data["runs"]],
                   color="black", s=12, zorder=3)
        ax.text(m + 0.32, data["executions_per_s"], f"{data['executions_per_s']:,.0f}",
                ha="left", va="center", fontsize=8)
    ax.set_xticks(range(len(modes)), ticks)
    ratio = scaling.get("ratio")
    ax.set_ylabel("executions/s (bar: median; dots: runs)")
    top = max(r["executions_per_s"] for d in scaling["modes"].values() for r in d["runs"])
    ax.set_ylim(0, top * 1.25 if top > 0 else 1)
    ax.set_title("Fuzz campaign under pytest" + ("" if ratio is None or math.isnan(ratio)
                                                  else f": -n auto = {ratio:.2f}x -n 0"),
                 fontsize=10)
    _save(fig, path)


#: File name (under the data folder) of each plot, in the order the page shows them.
PLOTS = {
    "found": "findings-found.svg",
    "time": "findings-time-to-first.svg",
    "throughput": "throughput.svg",
    "checker": "checker.svg",
    "scaling": "scaling.svg",
}
