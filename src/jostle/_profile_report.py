"""A profile as a terminal table and as a report page with plots.

The page is one self-contained HTML file with PNG plots beside it and the
raw runs in ``profile.json``: the scaling curve (where the resource stops
scaling is the first thing to see), the latency distribution of each
operation, and a ranking of the places workers were blocked.  Plots need
matplotlib (``pip install 'jostle[profile]'``); without it the page has the
tables only and says how to get the plots.  The plots use the Agg backend
and never open a window.
"""

from __future__ import annotations

import html
import json
import linecache
import math
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._profile_data import Profile, Spread, WaitSite, percentile_of

__all__ = ["format_table", "write_profile_report"]

_KIND_COLOURS = {"thread": "#1f77b4", "task": "#2ca02c", "process": "#d62728",
                 "mixed": "#9467bd", "other": "#7f7f7f"}
PLOTS_HINT = "pip install 'jostle[profile]' (matplotlib) for the plots"


# -- numbers -----------------------------------------------------------------


def _rate(x: float) -> str:
    if math.isnan(x):
        return "-"
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if x >= 0.9995 * scale:  # 999,700 is 1M, not 1e+03k
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _dur(seconds: float, micro: str = "us") -> str:
    if math.isnan(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), (micro, 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g}{unit}"
    return f"{seconds * 1e9:.3g}ns"


def _spread_text(s: Spread) -> str:
    return f"{_rate(s.median)} [{_rate(s.low)}-{_rate(s.high)}]"


def source(where: str) -> str:
    """The stripped source line at ``file:line`` (empty if it cannot be read)."""
    path, _, line = where.rpartition(":")
    if not line.isdigit():
        return ""
    return linecache.getline(path, int(line)).strip()


def _ops(profile: Profile, kind: str) -> tuple[str, ...]:
    if kind == "mixed":
        return tuple(dict.fromkeys(op for ops in profile.operations.values() for op in ops))
    return tuple(profile.operations.get(kind, ()))


def _all_ops(profile: Profile) -> tuple[str, ...]:
    return tuple(dict.fromkeys(op for ops in profile.operations.values() for op in ops))


def headline(profile: Profile) -> list[str]:
    """One line per kind: the peak, and where scaling stops."""
    out = []
    for kind in profile.kinds:
        best, s = profile.peak(kind)
        limit = profile.scaling_limit(kind)
        counts = profile.worker_counts(kind)
        if len(counts) == 1:
            scale = "one worker count profiled"
        elif limit is None:
            scale = f"still scaling at {counts[-1]} workers"
        elif limit == counts[0]:
            scale = (f"does not scale: more than {limit} worker(s) never gained 10 %"
                     if limit == 1 else f"does not scale past {limit} workers")
        else:
            scale = f"stops scaling after {limit} workers (more gained under 10 %)"
        out.append(f"{kind}: peak {_rate(s.median)} calls/s at {best} worker(s); {scale}")
    return out


def overhead_lines(profile: Profile) -> list[str]:
    """What the measuring itself cost, as measured."""
    out = []
    if profile.harness_ns:
        parts = ", ".join(f"{_dur(ns / 1e9)} a call on a {kind}"
                          for kind, ns in profile.harness_ns.items())
        out.append(f"harness: {parts} (an empty operation through the same loop, "
                   "fastest of 5 runs)")
    costs = [c for kind in profile.kinds for n in profile.worker_counts(kind)
             if (c := profile.instrumentation_cost(kind, n)) is not None]
    if costs:
        costs.sort()
        med = costs[len(costs) // 2]
        direction = "lower" if med >= 0 else "higher"
        out.append(f"wait instrumentation: the instrumented runs' throughput was "
                   f"{abs(med):.0%} {direction} than the plain runs' (median over {len(costs)} "
                   f"configuration(s); per configuration from {-costs[-1]:+.0%} to "
                   f"{-costs[0]:+.0%}, which is also how far apart runs are on this machine)")
    return out


LOOP_NOTE = ("a task blocked on a threading primitive or a file lock blocks the whole "
             "event loop, not just itself")


def blocks_loop(site: WaitSite) -> bool:
    """Whether a task waited in a way that stops its event loop."""
    return site.kind == "task" and site.primitive.startswith(("threading.", "queue.", "fcntl."))


def _error_lines(profile: Profile) -> list[str]:
    totals: dict[tuple[str, str], int] = {}
    for r in profile.runs:
        for op, errors in r.raised.items():
            for name, count in errors.items():
                totals[(op, name)] = totals.get((op, name), 0) + count
    return [f"{op} raised {name} {count:,} time(s)" for (op, name), count in sorted(totals.items())]


def format_table(profile: Profile) -> str:
    """The terminal report: throughput, latency percentiles, top wait sites."""
    counts = sorted({n for k in profile.kinds for n in profile.worker_counts(k)})
    lines = [f"jostle profile: {profile.spec_name}",
             f"  {_settings_line(profile)}", ""]
    lines += [f"  {h}" for h in headline(profile)]
    lines += ["", "Throughput, calls/s: median [min-max] of "
              f"{profile.repeats} run(s) of {profile.run_seconds:.2g} s"]
    width = 22
    lines.append("  " + "kind".ljust(8) + "".join(f"{n} worker(s)".ljust(width) for n in counts))
    for kind in profile.kinds:
        cells = [(_spread_text(profile.throughput(kind, n)) if n in profile.worker_counts(kind)
                  else "").ljust(width) for n in counts]
        lines.append("  " + kind.ljust(8) + "".join(cells).rstrip())
    lines += ["", "Latency per call: p50 / p95 / p99 (medians over the runs)"]
    ops = _all_ops(profile)
    col = max(30, *(len(o) + 2 for o in ops))
    lines.append("  " + "kind".ljust(8) + "workers".ljust(9) + "".join(o.ljust(col) for o in ops))
    for kind in profile.kinds:
        for n in profile.worker_counts(kind):
            cells = []
            for op in ops:
                if op in _ops(profile, kind) and profile.calls(kind, n, op):
                    cells.append(" / ".join(_dur(profile.latency(kind, n, op, q).median)
                                            for q in (50, 95, 99)).ljust(col))
                else:
                    cells.append("-".ljust(col))
            lines.append("  " + kind.ljust(8) + str(n).ljust(9) + "".join(cells).rstrip())
    sites = profile.waits()
    if sites:
        total = profile.worker_seconds()
        lines += ["", "Where workers waited (instrumented runs; share = blocked time / "
                  "worker time)"]
        lines.append("  " + "  ".join(["#".rjust(2), "primitive".ljust(26), "waited at".ljust(30),
                                       "made at".ljust(26), "kind".ljust(7), "waits".rjust(7),
                                       "blocked".rjust(8), "mean".rjust(8), "max".rjust(8),
                                       "share".rjust(6)]))
        for i, w in enumerate(sites[:8], start=1):
            lines.append("  " + "  ".join([
                str(i).rjust(2), w.primitive.ljust(26), w.waited_at.ljust(30),
                w.created_at.ljust(26), w.kind.ljust(7), f"{w.waits:,}".rjust(7),
                _dur(w.total_s).rjust(8), _dur(w.mean_s).rjust(8), _dur(w.max_s).rjust(8),
                f"{w.total_s / total:.1%}".rjust(6) if total else "-".rjust(6)]))
        if len(sites) > 8:
            lines.append(f"  ... {len(sites) - 8} more in the report")
        if any(blocks_loop(w) for w in sites):
            lines.append(f"  {LOOP_NOTE}")
    elif any(r.instrumented for r in profile.runs):
        lines += ["", "Where workers waited: no blocked waits on primitives the operations made"]
    errors = _error_lines(profile)
    if errors:
        lines += ["", f"Operations that raised, over all {len(profile.runs)} runs (counted as "
                  "calls):"] + [f"  {e}" for e in errors]
    lines += ["", "Overhead of measuring:"] + [f"  {o}" for o in overhead_lines(profile)]
    return "\n".join(lines)


def _settings_line(profile: Profile) -> str:
    configs = sum(len(profile.worker_counts(k)) for k in profile.kinds)
    env = profile.environment
    return (f"budget {profile.budget:g} s: {configs} configuration(s), each a warm-up and "
            f"{profile.repeats} measured run(s) of {profile.run_seconds:.2g} s"
            f"{' (and as many instrumented)' if any(r.instrumented for r in profile.runs) else ''}"
            f"; {env.get('python', '')}, {env.get('cpus usable', env.get('cpus', '?'))} CPU(s)"
            f"{', load average ' + env['load average'] if 'load average' in env else ''}"
            f"{', under pytest-xdist ' + env['pytest-xdist'] if 'pytest-xdist' in env else ''}")


# -- plots -------------------------------------------------------------------


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _plot_scaling(plt, profile: Profile, path: Path) -> None:  # type: ignore[no-untyped-def]
    fig, ax = plt.subplots(figsize=(8.3, 4.6), dpi=110)
    top = 0.0
    for kind in profile.kinds:
        counts = profile.worker_counts(kind)
        spreads = [profile.throughput(kind, n) for n in counts]
        med = [s.median for s in spreads]
        colour = _KIND_COLOURS[kind]
        ax.fill_between(counts, [s.low for s in spreads], [s.high for s in spreads],
                        color=colour, alpha=0.15, linewidth=0)
        ax.plot(counts, med, "-o", color=colour, label=kind, linewidth=2, markersize=5)
        if counts[0] == 1 and len(counts) > 1:
            ax.plot(counts, [med[0] * n for n in counts], ":", color=colour, alpha=0.6,
                    linewidth=1)
        best = max(range(len(counts)), key=lambda i: med[i])
        ax.annotate(f"{_rate(med[best])}/s", (counts[best], med[best]),
                    textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8,
                    color=colour, bbox={"boxstyle": "round,pad=0.15", "facecolor": "white",
                                        "edgecolor": "none", "alpha": 0.85})
        top = max(top, *(s.high for s in spreads), *med)
    every = sorted({n for k in profile.kinds for n in profile.worker_counts(k)})
    cpus = profile.environment.get("cpus usable", profile.environment.get("cpus", ""))
    if cpus.isdigit() and every[0] < int(cpus) < every[-1]:
        ax.axvline(int(cpus), color="grey", linewidth=0.8, linestyle="--")
        ax.text(int(cpus), top * 0.02, f" {cpus} CPUs", fontsize=8, color="grey", va="bottom")
    ax.set_xscale("log", base=2)
    ax.set_xticks(every)
    ax.set_xticklabels([str(n) for n in every])
    ax.set_ylim(0, top * 1.25 if top else 1)
    ax.set_xlabel("workers")
    ax.set_ylabel("calls per second")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda y, _pos: _rate(y)))
    ax.set_title(f"{profile.spec_name}: throughput against workers\n"
                 "median of runs, band = min to max, dotted = linear scaling from 1 worker",
                 fontsize=10)
    ax.grid(alpha=0.3)
    # Outside the axes: inside, it would cover a curve's peak label.
    ax.legend(title="worker kind", fontsize=8, title_fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


_NINES = (0.5, 0.9, 0.99, 0.999, 0.9999)


def _plot_latency(plt, profile: Profile, path: Path) -> None:  # type: ignore[no-untyped-def]
    """Latency by percentile (HdrHistogram's plot): the x axis counts nines."""
    ops = _all_ops(profile)
    cols = min(len(ops), 3)
    rows = math.ceil(len(ops) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.5 * rows), dpi=110,
                             squeeze=False)
    for ax, op in zip(axes.flat, ops, strict=False):
        deepest = 0.0
        for kind in profile.kinds:
            if op not in _ops(profile, kind):
                continue
            counts = profile.worker_counts(kind)
            shown = sorted({counts[0], counts[-1]})
            for n in shown:
                hist: dict[int, int] = {}
                for r in profile.measured(kind, n):
                    for b, c in r.latency.get(op, ()):
                        hist[b] = hist.get(b, 0) + c
                if not hist:
                    continue
                pairs = sorted(hist.items())
                total = sum(c for _, c in pairs)
                # Percentiles up to the last one the sample size supports.
                top = min(0.9999, 1 - 1 / total) if total > 1 else 0.5
                xs = [0.0]
                while xs[-1] < -math.log10(1 - top):
                    xs.append(xs[-1] + 0.05)
                qs = [100 * (1 - 10 ** -x) for x in xs]
                ys = [percentile_of(pairs, q) for q in qs]
                deepest = max(deepest, xs[-1])
                ax.plot(xs, ys, color=_KIND_COLOURS[kind],
                        linestyle="-" if n == shown[-1] else "--",
                        alpha=1.0 if n == shown[-1] else 0.65, linewidth=1.6,
                        label=f"{kind} x{n}: p50 {_dur(percentile_of(pairs, 50), 'µs')}, "
                              f"p99 {_dur(percentile_of(pairs, 99), 'µs')}")
        nines = [q for q in _NINES if -math.log10(1 - q) <= deepest + 1e-9]
        ax.set_xticks([-math.log10(1 - q) for q in nines])
        ax.set_xticklabels([f"{q * 100:g}%" for q in nines], fontsize=7)
        ax.set_yscale("log")
        ax.set_title(op, fontsize=10)
        ax.set_xlabel("percentile of calls", fontsize=8)
        ax.set_ylabel("latency per call", fontsize=8)
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda y, _pos: _dur(y, "µs")))
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6.5, loc="upper left", framealpha=0.85)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(ops):]:
        ax.set_visible(False)
    fig.suptitle(f"{profile.spec_name}: latency by percentile, per operation, all runs' calls "
                 "together (solid = most workers, dashed = fewest)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _wait_label(site: WaitSite) -> str:
    code = source(site.waited_at)
    code = code if len(code) <= 42 else code[:40] + "..."
    made = (site.created_at if site.created_at.startswith("(")
            else f"made at {site.created_at.rsplit('/', 1)[-1]}")
    return f"{site.waited_at}  {code}\n{site.primitive} {made}"


def _plot_waits(plt, profile: Profile, path: Path, sites: Sequence[WaitSite]) -> None:  # type: ignore[no-untyped-def]
    sites = list(sites[:10])[::-1]
    total = profile.worker_seconds() or 1.0
    fig, ax = plt.subplots(figsize=(8.5, 0.5 * len(sites) + 1.4), dpi=110)
    shares = [100 * s.total_s / total for s in sites]
    ax.barh(range(len(sites)), shares, color=[_KIND_COLOURS.get(s.kind, "#7f7f7f")
                                              for s in sites])
    ax.set_yticks(range(len(sites)))
    ax.set_yticklabels([_wait_label(s) for s in sites], fontsize=7)
    for i, s in enumerate(sites):
        loop = ", blocks the loop" if blocks_loop(s) else ""
        waits = f"{s.waits:,} wait{'s' if s.waits != 1 else ''}"
        ax.text(shares[i], i, f" {_dur(s.total_s, 'µs')}, {waits} ({s.kind}{loop})",
                va="center", fontsize=7)
    ax.set_xlim(0, max(shares) * 1.7 if shares else 1)
    ax.set_xlabel("share of worker time spent blocked here (%)", fontsize=8)
    ax.set_title(f"{profile.spec_name}: most contended locks, conditions and queues",
                 fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- the page ----------------------------------------------------------------


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222} h1{font-size:1.5em} h2{font-size:1.15em;margin-top:1.8em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left} .headline{font-size:1.05em;background:#f6f8fa;
padding:.6em 1em;border-left:4px solid #1f77b4} img{max-width:100%;border:1px solid #eee}
.note{color:#555;font-size:.85em} code{background:#f4f4f4;padding:0 3px}
"""


def _slug(name: str) -> str:
    name = name.replace(".py::", "-").replace("::", "-")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "profile"


def write_profile_report(profile: Profile, directory: str | os.PathLike[str]) -> Path:
    """Write the report page for ``profile`` into ``directory``.

    Writes ``index.html``, ``profile.json`` (every run) and, with matplotlib
    installed, ``scaling.png``, ``latency.png`` and ``waits.png``.

    Args:
        profile: from :func:`jostle.profile`.
        directory: where to write (created if missing).

    Returns:
        The path of ``index.html``.

    Example:
        >>> import jostle, tempfile
        >>> from hypothesis import strategies as st
        >>> def add(s, x): s.add(x)
        >>> spec = jostle.spec(set, jostle.operation(add, st.integers()), model=None)
        >>> result = jostle.profile(spec, budget=0.1, max_workers=1, repeats=1, waits=False)
        >>> jostle.write_profile_report(result, tempfile.mkdtemp()).name
        'index.html'
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / "profile.json").write_text(json.dumps(profile.to_json(), indent=1), encoding="utf-8")
    sites = profile.waits()
    plt = _pyplot()
    images = []
    if plt is not None:
        _plot_scaling(plt, profile, out / "scaling.png")
        images.append(("Throughput against workers", "scaling.png"))
        _plot_latency(plt, profile, out / "latency.png")
        images.append(("Latency distribution per operation", "latency.png"))
        if sites:
            _plot_waits(plt, profile, out / "waits.png", sites)
            images.append(("Where workers waited", "waits.png"))
    else:
        for stale in ("scaling.png", "latency.png", "waits.png"):
            (out / stale).unlink(missing_ok=True)
    (out / "index.html").write_text(_page(profile, images, sites, plots=plt is not None),
                                    encoding="utf-8")
    return out / "index.html"


def _page(profile: Profile, images: list[tuple[str, str]], sites: Sequence[WaitSite], *,
          plots: bool) -> str:
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>jostle profile: "
             f"{esc(profile.spec_name)}</title><style>{_CSS}</style></head><body>",
             f"<h1>jostle profile: {esc(profile.spec_name)}</h1>",
             f"<p class='note'>{esc(_settings_line(profile))}; written "
             f"{esc(time.strftime('%Y-%m-%d %H:%M'))}</p>",
             "<div class='headline'>" + "<br>".join(esc(h) for h in headline(profile))
             + "</div>"]
    if not plots:
        parts.append(f"<p><b>No plots</b>: matplotlib is not installed; {esc(PLOTS_HINT)}.</p>")
    by_file = {f: t for t, f in images}
    if "scaling.png" in by_file:
        parts.append(f"<h2>{by_file['scaling.png']}</h2><img src='scaling.png' alt='scaling'>")
    rows = []
    for kind in profile.kinds:
        for n in profile.worker_counts(kind):
            s = profile.throughput(kind, n)
            one = profile.throughput(kind, profile.worker_counts(kind)[0]).median
            cost = profile.instrumentation_cost(kind, n)
            rows.append([kind, str(n), f"{s.median:,.0f}", f"{s.q1:,.0f} - {s.q3:,.0f}",
                         f"{s.low:,.0f} - {s.high:,.0f}",
                         f"{s.median / one:.2f}x" if one else "-",
                         f"{cost:+.0%}" if cost is not None else "-"])
    parts.append("<h2>Throughput</h2>" + _table(
        ["kind", "workers", "calls/s (median)", "IQR", "min - max",
         "vs fewest workers", "instrumentation cost"], rows))
    if "latency.png" in by_file:
        parts.append(f"<h2>{by_file['latency.png']}</h2><img src='latency.png' alt='latency'>")
    rows = []
    for kind in profile.kinds:
        for n in profile.worker_counts(kind):
            for op in _ops(profile, kind):
                if not profile.calls(kind, n, op):
                    continue
                cells = []
                for q in (50, 95, 99):
                    s = profile.latency(kind, n, op, q)
                    cells.append(f"{_dur(s.median, 'µs')} ({_dur(s.low, 'µs')}-"
                                 f"{_dur(s.high, 'µs')})")
                rows.append([kind, str(n), op, f"{profile.calls(kind, n, op):,}", *cells])
    parts.append("<h2>Latency per operation</h2><p class='note'>median over the runs "
                 "(min-max across runs)</p>" + _table(
                     ["kind", "workers", "operation", "calls", "p50", "p95", "p99"], rows))
    if "waits.png" in by_file:
        parts.append(f"<h2>{by_file['waits.png']}</h2><img src='waits.png' alt='waits'>")
    if sites:
        total = profile.worker_seconds()
        rows = []
        for w in sites:
            acq = profile.acquisitions(w.primitive, w.created_at)
            rows.append([w.primitive, w.waited_at, source(w.waited_at), w.created_at, w.kind,
                         f"{w.waits:,}",
                         f"{acq:,}" if acq else "-", _dur(w.total_s, "µs"),
                         _dur(w.mean_s, "µs"), _dur(w.max_s, "µs"),
                         f"{w.total_s / total:.2%}" if total else "-"])
        loop = f" ({LOOP_NOTE})" if any(blocks_loop(w) for w in sites) else ""
        parts.append("<h2>Wait sites</h2><p class='note'>instrumented runs only; acquisitions "
                     "count every acquire or get of primitives made at that line; share = "
                     f"blocked time / (workers x run time){esc(loop)}</p>" + _table(
                         ["primitive", "waited at", "code", "made at", "kind", "blocked waits",
                          "acquisitions", "blocked", "mean", "max", "share"], rows))
    elif any(r.instrumented for r in profile.runs):
        parts.append("<h2>Wait sites</h2><p>No blocked waits on primitives the operations "
                     "made.</p>")
    errors = _error_lines(profile)
    if errors:
        parts.append("<h2>Operations that raised</h2><ul>" + "".join(
            f"<li>{esc(e)}</li>" for e in errors) + "</ul>")
    parts.append("<h2>Overhead of measuring</h2><ul>" + "".join(
        f"<li>{esc(o)}</li>" for o in overhead_lines(profile)) + "</ul>")
    ops = "".join(f"<li>{esc(k)}: {esc(', '.join(v))}</li>" for k, v in profile.operations.items())
    env = "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in profile.environment.items())
    notes = "".join(f"<li>{esc(n)}</li>" for n in profile.notes)
    parts.append(f"<h2>How this was measured</h2><ul><li>operations by worker kind:<ul>{ops}"
                 f"</ul></li><li>arguments drawn from the operations' strategies with seed "
                 f"{profile.seed}</li>{notes}<li>environment:<ul>{env}</ul></li>"
                 "<li>every run: <a href='profile.json'>profile.json</a></li></ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_index(directory: str | os.PathLike[str],
                entries: Sequence[tuple[str, Path, Profile]]) -> Path:
    """An ``index.html`` in ``directory`` linking each test's page with its headline."""
    out = Path(directory)
    rows = []
    for test_id, page, profile in entries:
        link = html.escape(os.path.relpath(page, out))
        lines = "<br>".join(html.escape(h) for h in headline(profile))
        rows.append(f"<tr><td><a href='{link}'>{html.escape(test_id)}</a><br>"
                    f"<span class='note'>{html.escape(profile.spec_name)}</span></td>"
                    f"<td style='text-align:left'>{lines}</td></tr>")
    page_text = (f"<!doctype html><html><head><meta charset='utf-8'><title>jostle profile"
                 f"</title><style>{_CSS}</style></head><body><h1>jostle profile</h1>"
                 "<table><thead><tr><th>test</th><th>where it stops scaling</th></tr></thead>"
                 f"<tbody>{''.join(rows)}</tbody></table></body></html>")
    (out / "index.html").write_text(page_text, encoding="utf-8")
    return out / "index.html"


def report_dir(base: str | os.PathLike[str], name: str) -> Path:
    """A sub-folder of ``base`` for one profile, named after it."""
    return Path(base) / _slug(name)
