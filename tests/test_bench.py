"""``python -m bench findings`` keeps the JSON interface issue 4 fixes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
# bench/ sits at the repo root, next to src/; `pytest` (unlike `python -m
# pytest`) does not put the root on sys.path.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._findings import ROW_KEYS, SUMMARY_KEYS, summarize  # noqa: E402
from bench._measure import Progress  # noqa: E402

from _case_support import ASYNC_CASE as CASE, SUPPORT  # noqa: E402

BUDGET = "2"  # the Fixed twin uses all of it, per tool; less is flaky on a loaded machine


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """Run the CLI once on a one-case folder; its JSON and stdout."""
    root = tmp_path_factory.mktemp("bench")
    pkg = root / "benchtest_cases"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_support.py").write_text(SUPPORT)
    (pkg / "x01_double_session.py").write_text(textwrap.dedent(CASE))
    out = root / "out.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "findings", "--cases", str(pkg),
         "--tool", "jostle-stress", "--tool", "naive", "--tool", "jostle-controlled",
         "--budget", BUDGET, "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text()), proc.stdout


@pytest.mark.slow
def test_rows_have_exactly_the_issue_4_keys(run: tuple[dict[str, Any], str]) -> None:
    """The JSON is {rows, summary}; each row has exactly the documented keys."""
    document, _ = run
    assert list(document) == ["rows", "summary"]
    assert len(document["rows"]) == 6
    for row in document["rows"]:
        assert tuple(row) == ROW_KEYS
        assert row["variant"] in ("buggy", "fixed")
        assert isinstance(row["detected"], bool)
        assert isinstance(row["executions"], int)
        assert row["minimal"]["workers"] == 2
        if row["shrunk"] is not None:
            assert set(row["shrunk"]) == {"workers", "ops", "preemptions"}


@pytest.mark.slow
def test_stress_finds_buggy_and_passes_fixed(run: tuple[dict[str, Any], str]) -> None:
    """jostle-stress detects the Buggy twin, reports a counterexample, and passes Fixed.

    How far the shrink gets depends on the wall-clock budget (a loaded
    machine shrinks less in 0.5 s), so only its bounds are checked here; the
    shrink itself is tested without a clock in test_controlled_mode.py.
    """
    document, _ = run
    rows = {(r["tool"], r["variant"]): r for r in document["rows"]}
    buggy, fixed = rows["jostle-stress", "buggy"], rows["jostle-stress", "fixed"]
    assert buggy["detected"] and buggy["seconds_to_first"] > 0
    assert "sessions created" in buggy["failure"]
    shrunk = buggy["shrunk"]
    assert 2 <= shrunk["workers"] <= 3 and 1 <= shrunk["ops"] <= 3
    assert shrunk["preemptions"] is None
    assert not fixed["detected"] and fixed["failure"] is None and fixed["executions"] > 0
    assert not rows["naive", "fixed"]["detected"]


@pytest.mark.slow
def test_summary_per_measured_tool(run: tuple[dict[str, Any], str]) -> None:
    """The summary has one entry per measured tool, in the order asked."""
    document, _ = run
    summary = document["summary"]
    assert list(summary) == ["jostle-stress", "naive", "jostle-controlled"]
    for entry in summary.values():
        assert tuple(entry) == SUMMARY_KEYS
    stress = summary["jostle-stress"]
    assert (stress["found"], stress["total"], stress["false_positives"]) == (1, 1, 0)
    assert stress["shrunk_to_minimal"] in (0.0, 1.0)  # one row; how far depends on the clock


@pytest.mark.slow
def test_controlled_finds_buggy_with_preemptions_and_passes_fixed(
        run: tuple[dict[str, Any], str]) -> None:
    """jostle-controlled detects the Buggy twin with a preemption count, and passes Fixed."""
    document, _ = run
    rows = {(r["tool"], r["variant"]): r for r in document["rows"]}
    buggy, fixed = rows["jostle-controlled", "buggy"], rows["jostle-controlled", "fixed"]
    assert buggy["detected"]
    assert 2 <= buggy["shrunk"]["workers"] <= 3 and buggy["shrunk"]["preemptions"] is not None
    assert not fixed["detected"]


def test_shrunk_to_minimal_compares_with_the_largest_ops_per_worker() -> None:
    """A counterexample within MINIMAL's workers and max(ops_per_worker) counts as minimal."""
    minimal = {"workers": 2, "ops_per_worker": [1, 2]}

    def row(variant: str, detected: bool, shrunk: dict[str, Any] | None) -> dict[str, Any]:
        return {"tool": "t", "variant": variant, "detected": detected,
                "seconds_to_first": 1.0 if detected else None, "shrunk": shrunk,
                "minimal": minimal}

    rows = [
        row("buggy", True, {"workers": 2, "ops": 2, "preemptions": None}),
        row("buggy", True, {"workers": 3, "ops": 1, "preemptions": None}),
        row("buggy", True, None),
        row("buggy", False, None),
        row("fixed", True, {"workers": 1, "ops": 1, "preemptions": None}),
    ]
    assert summarize(rows, ["t"])["t"] == {
        "found": 3, "total": 4, "false_positives": 1, "median_seconds_to_first": 1.0,
        "shrunk_to_minimal": 0.3333,
    }


def test_progress_keeps_the_first_failure_of_a_killed_child(tmp_path: Path) -> None:
    """A child killed mid-write still yields its first failure; the cut line is skipped."""
    path = tmp_path / "progress.jsonl"
    Progress(path).first(0.5, 7, "invariant failed")
    with open(path, "a") as f:
        f.write('{"event": "done", "detec')
    first, done = Progress.read(path)
    assert done is None
    assert first == {"event": "first", "seconds_to_first": 0.5, "executions": 7,
                     "failure": "invariant failed"}
