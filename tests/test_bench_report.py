"""``python -m bench report`` renders the page and plots from the JSON files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
# bench/ sits at the repo root, next to src/; `pytest` (unlike `python -m
# pytest`) does not put the root on sys.path.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._findings import summarize  # noqa: E402
from bench._markdown import page_text  # noqa: E402
from bench._report import render  # noqa: E402

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

def _canned() -> dict[str, Any]:
    minimal = {"workers": 2, "ops_per_worker": 1}

    def row(case: str, kind: str, tool: str, variant: str, **kw: Any) -> dict[str, Any]:
        base = {"case": case, "kind": kind, "tool": tool, "variant": variant,
                "detected": False, "seconds_to_first": None, "executions": 10,
                "failure": None, "shrunk": None, "minimal": minimal}
        return {**base, **kw}

    rows = [
        row("t01", "thread", "naive", "buggy", detected=True, seconds_to_first=0.25,
            failure="not linearizable (4 ops)", shrunk={"workers": 3, "ops": 40,
                                                       "preemptions": None}),
        row("t01", "thread", "naive", "fixed"),
        row("t01", "thread", "detangle", "buggy", executions=0,
            failure="skipped: detangle simulates asyncio only"),
        row("t01", "thread", "detangle", "fixed", executions=0,
            failure="skipped: detangle simulates asyncio only"),
        row("a01", "asyncio", "naive", "buggy"),
        row("a01", "asyncio", "naive", "fixed", detected=True, seconds_to_first=1.5,
            failure="hang"),
        row("a01", "asyncio", "detangle", "buggy", detected=True, seconds_to_first=0.01,
            failure="leak", shrunk={"workers": 2, "ops": 1, "preemptions": 0}),
        row("a01", "asyncio", "detangle", "fixed"),
    ]
    return {
        "meta": {"date": "2000-01-01 00:00 UTC", "command": "python -m bench report",
                 "budget": 5.0, "seed": 0, "case_dirs": ["cases"],
                 "machine": {"cpu": "a CPU", "cpus": 2, "os": "Linux"}, "python": "CPython 3",
                 "versions": {"jostle": "0.1.0"}, "unavailable": {"frontrun": "not installed"},
                 "commit": "abc1234", "steps": {"findings": 1.0},
                 "load_average": {"min": 0.5, "max": 4.25}},
        "findings": {"rows": rows, "summary": summarize(rows, ["naive", "detangle"])},
        "throughput": {"controlled": {"threads_2x5": 100.0}, "uncontrolled": {"threads_2x5": 400.0},
                       "hypothesis_empty_rate": 1000.0, "jostle_examples_per_s": 50.0},
        "checker": {"settings": {"time_limit": 60.0, "max_steps": 100, "seed": 0},
                    "cases": [{"ops": 100, "workers": 2, "partitioned": True, "model": "map",
                               "ok": True, "timed_out": False, "limit": None,
                               "skipped": False, "seconds": 0.01, "peak_bytes": 2**20,
                               "steps": 5},
                              {"ops": 1000, "workers": 2, "partitioned": True,
                               "model": "map", "ok": None, "timed_out": True,
                               "limit": "time_limit", "skipped": False, "seconds": None,
                               "peak_bytes": None, "steps": None}],
                    "summary": {"cases": 2, "ok": 1, "timed_out": 1, "skipped": 0,
                                "not_linearizable": 0, "total_seconds": 61.0}},
        "scaling": {"settings": {"seconds": 20.0, "repetitions": 1, "campaigns": ["fuzz/c.py"],
                                 "cpus": 2},
                    "modes": {m: {"executions_per_s": r, "runs": [
                        {"executions": int(r * 20), "seconds": 20.0, "executions_per_s": r,
                         "workers": w, "tests": 4}]} for m, r, w in (("0", 100.0, 1),
                                                                    ("auto", 180.0, 2))},
                    "ratio": 1.8},
    }


def test_report_page_has_every_table_from_the_json() -> None:
    """The page shows each tool's summary, skips as skipped, a false positive, and the ratios."""
    text = page_text(_canned(), {})
    assert "- **Findings budget**: 5 s per case" in text
    assert "- **Load average** (1 min, sampled around each step): 0.5 to 4.25;" in text
    assert "| `naive` | 1/2 | 1 | 0.250 | 0% | 0 |" in text
    assert "| `detangle` | 1/1 | 0 | 0.010 | 100% | 1 |" in text
    assert "| `t01` | thread | 2x1 | 0.250 s, 3x40 | skipped |" in text
    assert "missed **FALSE POSITIVE**" in text
    assert "`frontrun` was not measured: not installed." in text
    assert "| `threads_2x5` | 100 | 400 | 0.25 |" in text
    assert "timeout (time_limit)" in text
    assert "`-n auto` / `-n 0`: 1.80x on 2 CPU(s)." in text
    assert "![" not in text  # no plots given


def test_report_leaves_out_a_missing_step(tmp_path: Path) -> None:
    """A step without its JSON is named as not measured; the rest renders."""
    canned = _canned()
    (tmp_path / "findings.json").write_text(json.dumps(canned["findings"]))
    page = tmp_path / "benchmark.md"
    assert render(tmp_path, page, draw=False) == []
    text = page.read_text()
    assert "## Finding power" in text
    assert "_Not measured in this run (no `scaling.json`)._" in text
    assert "_No `meta.json`: machine and versions unknown._" in text


@pytest.mark.slow
@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed (the bench env "
                                               "has it)")
def test_report_writes_a_plot_per_step_and_links_them(tmp_path: Path) -> None:
    """With matplotlib, every step gets its SVG, linked from the page by a relative path."""
    data = tmp_path / "benchmark"
    data.mkdir()
    for name, value in _canned().items():
        (data / f"{name}.json").write_text(json.dumps(value))
    page = tmp_path / "benchmark.md"
    plots = render(data, page)
    assert sorted(p.name for p in plots) == ["checker.svg", "findings-found.svg",
                                             "findings-time-to-first.svg", "scaling.svg",
                                             "throughput.svg"]
    text = page.read_text()
    for plot in plots:
        assert plot.read_text().lstrip().startswith("<?xml")
        assert f"](benchmark/{plot.name})" in text
    first = {p.name: p.read_bytes() for p in plots}
    render(data, page)
    assert {p.name: p.read_bytes() for p in plots} == first  # deterministic SVGs


@pytest.mark.parametrize("nested", [False, True])
def test_default_case_dirs_find_bugzoo_and_bench_cases(tmp_path: Path, nested: bool) -> None:
    """bugzoo beside the checkout, then bench/cases, or the packages inside it."""
    from bench._report import default_case_dirs

    repo = tmp_path / "checkout"
    assert default_case_dirs(repo) == []
    bugzoo = tmp_path / "shared" / "bugzoo" / "cases"
    local = repo / "bench" / "cases" / "sctbench" if nested else repo / "bench" / "cases"
    for pkg in (bugzoo, local):
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
    (repo / "bench" / "cases" / "_private").mkdir()
    (repo / "bench" / "cases" / "_private" / "__init__.py").write_text("")
    assert default_case_dirs(repo) == [bugzoo, local]
