"""The picture of a failure: ``timeline.svg``, and ``report.html`` around it.

One lane per worker (the sequential part is ``main``), each operation a bar
from its invoke to its return, so overlapping operations are visible at a
glance, in the style of Porcupine's and Jepsen's history plots.  Marked on
top:

* operations the sequential model cannot explain (the linearizability
  checker's *stuck* operations, each with what the model expected), and a
  red line where linearizability breaks: at the first such result, just
  after the longest linearizable prefix; the prefix's operations carry their
  place in that linearization;
* preemptions of a controlled run: where a worker lost the baton in the
  middle of an operation, labelled with the scheduling point (``file:line``)
  from the decision log;
* injected cancellations and kills, and operations that never returned.

The horizontal axis is the order of events, not their duration: invoke and
return events are evenly spaced in time order, because in a controlled run
real durations mean nothing and in a stress run microsecond gaps would make
most bars invisible.  Stress timelines label each event with its time.

Hand-written SVG: no dependency, opens in any browser, embeds in HTML.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from ._execution import Execution
from ._history import OpRecord, Raised, Returned
from ._linearizability import LinearizabilityResult

__all__ = ["report_html", "timeline_svg"]

_LEFT, _SLOT, _LANE, _TOP = 200, 132, 72, 64
_FONT = "font-family='ui-monospace,SFMono-Regular,Menlo,Consolas,monospace'"
_COLOURS = {
    "ok": ("#d9efd9", "#3f7f3f"),
    "bad": ("#f9c9c4", "#c0392b"),
    "raised": ("#fde3bf", "#c76b00"),
    "unknown": ("#e9e9e9", "#8a8a8a"),
}


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fit(text: str, px: float) -> str:
    chars = max(int(px / 7.3), 3)
    return text if len(text) <= chars else text[: chars - 1] + "\u2026"


def _worker_of(entity: str) -> int | None:
    if entity == "main":
        return 0
    parts = entity.split()
    if len(parts) >= 2 and parts[0] == "worker" and parts[1].isdigit():
        return int(parts[1])
    return None


def _lanes(execution: Execution) -> tuple[list[int], dict[int, str]]:
    names: dict[int, str] = {}
    for r in execution.history.ops:
        names.setdefault(r.worker, "main" if r.worker == 0 else f"worker {r.worker} ({r.kind})")
    for plan_index, plan in enumerate(execution.scenario.workers, start=1):
        names.setdefault(plan_index, f"worker {plan_index} ({plan.kind})")
    return sorted(names), names


def timeline_svg(execution: Execution, linearizability: LinearizabilityResult | None = None
                 ) -> str:
    """The execution as an SVG timeline (see the module docstring)."""
    ops = execution.history.ops
    lanes, names = _lanes(execution)
    row = {w: i for i, w in enumerate(lanes)}
    events: list[tuple[int, int, int]] = []  # (time, 0 invoke / 1 return, op index)
    for r in ops:
        events.append((r.invoke, 0, r.index))
        if r.response is not None:
            events.append((r.response, 1, r.index))
    events.sort()
    slot = {(kind, index): i for i, (_t, kind, index) in enumerate(events)}
    end_slot = len(events)
    by_index = {r.index: r for r in ops}
    stuck: dict[int, str] = {}
    prefix: dict[int, int] = {}
    if linearizability is not None and not linearizability.ok:
        stuck = {m.index: m.expected for m in linearizability.stuck}
        prefix = {index: n for n, index in enumerate(linearizability.longest_prefix, start=1)}

    def x(s: float) -> float:
        return _LEFT + 24 + s * _SLOT

    width = max(int(x(end_slot) + 40), 1080)
    height = _TOP + len(lanes) * _LANE + 132
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
           f"viewBox='0 0 {width} {height}' {_FONT} font-size='12'>",
           "<rect width='100%' height='100%' fill='white'/>"]
    title = (f"{execution.resource_name or 'resource'}: {len(ops)} operation(s), "
             f"{len(execution.scenario.workers)} worker(s) [{execution.scheduler}]")
    out.append(f"<text x='12' y='20' font-size='14' font-weight='bold'>{_esc(title)}</text>")
    axis = ("horizontal axis: order of events (controlled run: widths are not durations)"
            if execution.controlled else "horizontal axis: order of events; "
            "time since the first invoke under each tick")
    out.append(f"<text x='12' y='38' fill='#555'>{_esc(axis)}</text>")
    t0 = events[0][0] if events else 0
    for i, (t, _k, _index) in enumerate(events):
        out.append(f"<line x1='{x(i)}' y1='{_TOP - 6}' x2='{x(i)}' "
                   f"y2='{_TOP + len(lanes) * _LANE}' stroke='#eee'/>")
        if not execution.controlled:
            out.append(f"<text x='{x(i)}' y='{_TOP - 10}' fill='#777' font-size='10' "
                       f"text-anchor='middle'>{(t - t0) / 1000:.1f} \u00b5s</text>")
    for w in lanes:
        y = _TOP + row[w] * _LANE
        out.append(f"<rect x='0' y='{y}' width='{width}' height='{_LANE}' "
                   f"fill='{'#fafafa' if row[w] % 2 else 'white'}'/>")
        out.append(f"<text x='12' y='{y + 38}' font-weight='bold'>{_esc(names[w])}</text>")
    # Break line first, so bars and labels draw over it.
    if stuck:
        first_bad = min((slot.get((1, i), end_slot) for i in stuck), default=end_slot)
        bx = x(first_bad) + 0.5
        out.append(f"<line x1='{bx}' y1='{_TOP - 4}' x2='{bx}' y2='{_TOP + len(lanes) * _LANE}' "
                   "stroke='#c0392b' stroke-width='2' stroke-dasharray='6 4'/>")
        anchor = "end" if bx > width - 420 else "start"
        out.append(f"<text x='{bx + (-4 if anchor == 'end' else 4)}' "
                   f"y='{_TOP + len(lanes) * _LANE + 16}' fill='#c0392b' font-weight='bold' "
                   f"text-anchor='{anchor}'>linearizability breaks here: no order of the "
                   "operations explains this result</text>")
    for r in ops:
        out.extend(_bar(r, row[r.worker], slot, end_slot, x, stuck, prefix))
    out.extend(_preemptions(execution, events, by_index, row, x))
    out.extend(_legend(_TOP + len(lanes) * _LANE + 40, bool(stuck), execution.controlled))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _bar(r: OpRecord, lane: int, slot: Mapping[tuple[int, int], int], end_slot: int,
         x: Any, stuck: Mapping[int, str], prefix: Mapping[int, int]) -> list[str]:
    y = _TOP + lane * _LANE
    start = x(slot[(0, r.index)])
    open_ended = r.response is None
    stop = x(end_slot) if open_ended else x(slot[(1, r.index)])
    if r.index in stuck:
        style = "bad"
    elif isinstance(r.outcome, Raised):
        style = "raised"
    elif isinstance(r.outcome, Returned):
        style = "ok"
    else:
        style = "unknown"
    fill, stroke = _COLOURS[style]
    dash = " stroke-dasharray='5 3'" if open_ended else ""
    w = max(stop - start, 8)
    out = [f"<g><title>{_esc(f'#{r.index} {r.call_repr()} {r.outcome_repr()}')}</title>",
           f"<rect x='{start}' y='{y + 24}' width='{w}' height='24' rx='4' fill='{fill}' "
           f"stroke='{stroke}' stroke-width='{2 if style == 'bad' else 1.2}'{dash}/>",
           f"<text x='{start + 3}' y='{y + 18}'>{_esc(_fit(r.call_repr(), w + _SLOT - 20))}"
           "</text>",
           f"<text x='{start + 5}' y='{y + 40}'>{_esc(_fit(r.outcome_repr(), w - 8))}</text>"]
    badge = prefix.get(r.index)
    if badge is not None:
        out.append(f"<text x='{start + w - 4}' y='{y + 61}' fill='#3f7f3f' font-size='10' "
                   f"text-anchor='end'>linearized #{badge}</text>")
    if r.index in stuck:
        out.append(f"<text x='{start + w - 4}' y='{y + 62}' fill='#c0392b' font-weight='bold' "
                   f"text-anchor='end'>{_esc(_fit('model: ' + stuck[r.index], w + 120))}</text>")
    if open_ended and not isinstance(r.outcome, (Returned, Raised)):
        reason = r.outcome.reason
        mark = "\u2715" if reason in ("cancelled", "worker died") else "\u2026"
        out.append(f"<text x='{stop - 14}' y='{y + 41}' fill='#8a1f11' font-size='15' "
                   f"font-weight='bold'>{mark}</text>")
    out.append("</g>")
    return out


def _preemptions(execution: Execution, events: list[tuple[int, int, int]],
                 by_index: Mapping[int, OpRecord], row: Mapping[int, int], x: Any) -> list[str]:
    """Mark where a worker lost the baton inside an operation (controlled runs),
    labelled with the matching switch of the decision log, and injections."""
    if not execution.controlled:
        return []
    switches = [d for d in execution.decisions if d.kind == "switch"]
    injected = [d for d in execution.decisions if d.kind == "pick"
                and d.label.startswith("inject") and d.target]
    out: list[str] = []
    open_ops: dict[int, int] = {}
    used = 0
    previous_worker: int | None = None
    for i, (_t, kind, index) in enumerate(events):
        rec = by_index[index]
        if (previous_worker is not None and previous_worker != rec.worker
                and previous_worker in open_ops):
            label = ""
            for k in range(used, len(switches)):
                d = switches[k]
                src = _worker_of(execution.entities[d.source]) if d.source < len(
                    execution.entities) else None
                if src == previous_worker:
                    label, used = d.label, k + 1
                    break
            px, py = x(i) - _SLOT / 2, _TOP + row[previous_worker] * _LANE + 24
            out.append(f"<g><title>{_esc('preempted' + (' at ' + label if label else ''))}"
                       "</title>")
            out.append(f"<path d='M{px - 7},{py - 1} L{px + 7},{py - 1} L{px},{py + 10} Z' "
                       "fill='#7d3c98'/>")
            if label:
                short = label.rsplit("/", 1)[-1]
                out.append(f"<text x='{px - 8}' y='{py + 40}' fill='#7d3c98' font-size='10'>"
                           f"{_esc(_fit('preempted at ' + short, _SLOT * 1.9))}</text>")
            out.append("</g>")
        if kind == 0:
            open_ops[rec.worker] = index
        else:
            open_ops.pop(rec.worker, None)
        previous_worker = rec.worker
    if injected:
        text = "; ".join(d.label for d in injected)
        out.append(f"<text x='12' y='54' fill='#8a1f11'>{_esc(_fit('injected: ' + text, 900))}"
                   "</text>")
    return out


def _legend(y: float, has_break: bool, controlled: bool) -> list[str]:
    items: list[tuple[str, str]] = [("ok", "operation: invoke \u2192 return"),
                                    ("bad", "result the model cannot explain"),
                                    ("raised", "raised an exception"),
                                    ("unknown", "no response (\u2715 cancelled/killed, "
                                                "\u2026 hung)")]
    out = []
    cx = 12.0
    for style, label in items:
        fill, stroke = _COLOURS[style]
        out.append(f"<rect x='{cx}' y='{y}' width='26' height='14' rx='3' fill='{fill}' "
                   f"stroke='{stroke}'/>")
        out.append(f"<text x='{cx + 32}' y='{y + 11}'>{_esc(label)}</text>")
        cx += 40 + 7.3 * len(label)
    y2 = y + 30
    cx = 12.0
    if controlled:
        out.append(f"<path d='M{cx + 6},{y2} L{cx + 20},{y2} L{cx + 13},{y2 + 11} Z' "
                   "fill='#7d3c98'/>")
        out.append(f"<text x='{cx + 32}' y='{y2 + 10}'>preemption inside an operation</text>")
        cx += 300
    if has_break:
        out.append(f"<line x1='{cx}' y1='{y2 + 6}' x2='{cx + 26}' y2='{y2 + 6}' "
                   "stroke='#c0392b' stroke-width='2' stroke-dasharray='6 4'/>")
        out.append(f"<text x='{cx + 32}' y='{y2 + 10}'>where linearizability breaks</text>")
    return out


def _pre(text: object) -> str:
    return f"<pre>{_esc(text)}</pre>"


def report_html(record: Mapping[str, Any], svg: str) -> str:
    """A self-contained HTML page for one failure record, the timeline inline."""
    rows = [
        ("test", record.get("test_id")), ("failure", record.get("failure")),
        ("origin", record.get("origin") or "(none: a linearizability failure)"),
        ("mode", record.get("scheduler")),
        ("preemption model", record.get("preemption_model") or "-"),
        ("status", record.get("status")), ("reproduces", record.get("reproduces")),
        ("seed", record.get("seed")), ("profile", record.get("profile")),
        ("first seen", record.get("first_seen")), ("last seen", record.get("last_seen")),
        ("times found", record.get("times_found")),
        ("executions before found", record.get("executions_before_found")),
        ("found by", record.get("found_by")),
        ("versions", ", ".join(f"{k} {v}" for k, v in (record.get("versions") or {}).items())),
    ]
    table = "\n".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows
                      if v is not None)
    findings = "\n".join(
        f"<h3>{_esc(f['kind'])}: {_esc(f['summary'])}</h3>" + (_pre(f["detail"]) if f.get(
            "detail") else "") for f in record.get("findings", []))
    decisions = [d for d in record.get("decisions", []) if not d.get("default")]
    entities = record.get("entities") or []

    def who(i: int) -> str:
        return entities[i] if 0 <= i < len(entities) else f"entity {i}"

    decision_lines = "\n".join(
        f"point {d['step']}" + (f" at {d['label']}" if d.get("label") else "")
        + f": {d['kind']} {who(d['source'])} -> "
        + (str(d["target"]) if d["kind"] == "pick" else who(d["target"]))
        for d in decisions)
    blob = record.get("reproduce_blob")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>jostle {_esc(record.get('id'))}: {_esc(record.get('failure'))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
pre {{ background: #f6f6f6; padding: .8em; overflow-x: auto; }}
th {{ text-align: left; padding-right: 1em; vertical-align: top; }}
.svg {{ overflow-x: auto; border: 1px solid #ddd; }}
</style></head><body>
<h1>{_esc(record.get('failure'))} in {_esc(record.get('test_id'))}</h1>
<ul>{''.join(f'<li>{_esc(s)}</li>' for s in record.get('summary', []))}</ul>
<div class="svg">{svg}</div>
<h2>Reproduce</h2>
{_pre('python repro.py   # or: jostle replay ' + str(record.get('id')))}
{_pre('@reproduce_failure blob: ' + str(blob)) if blob else ''}
<h2>Scenario</h2>
{_pre(record.get('scenario', {}).get('code', ''))}
<h2>Interleaving (controlled decisions)</h2>
{_pre(decision_lines or '(none: stress run, or no preemptions)')}
<h2>Findings</h2>
{findings}
<h2>Details</h2>
<table>{table}</table>
<h2>Message</h2>
{_pre(record.get('message', ''))}
</body></html>
"""
