"""The peer adapters and skipped rows keep the findings contract."""

from __future__ import annotations

import importlib.util
import io
import json
import random
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

from bench import _findings, _tools  # noqa: E402
from bench._findings import ROW_KEYS, SUMMARY_KEYS, run_findings, summarize  # noqa: E402
from bench._measure import Measurement, Progress, Shrunk, is_skipped  # noqa: E402
from bench._peers import SHAPE_ROUNDS, SHAPES, observations, preemptions, scenarios  # noqa: E402
from bench._table import format_table  # noqa: E402

from _case_support import ASYNC_CASE, SUPPORT  # noqa: E402

HAS_FRONTRUN = importlib.util.find_spec("frontrun") is not None
HAS_DETANGLE = importlib.util.find_spec("detangle") is not None

THREAD_CASE = '''
"""y01 -- lost update: incr() reads, calls out, then writes."""
import threading

from ._support import Op

KIND = "thread"


class Buggy:
    def __init__(self):
        self.n = 0

    def _log(self):
        return None

    def incr(self):
        value = self.n
        self._log()
        self.n = value + 1


class Fixed(Buggy):
    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()

    def incr(self):
        with self._lock:
            super().incr()


def incr(r):
    r.incr()


def get(r):
    return r.n


OPERATIONS = [Op(incr, (), "add one"), Op(get, (), "the count", observer=True)]


class Model:
    def __init__(self):
        self.n = 0

    def incr(self):
        self.n += 1

    def get(self):
        return self.n


MINIMAL = {"workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 1,
           "interleaving": "both read 0, both write 1"}


def self_check():
    return "ok"
'''

MIXED_CASE = '''
"""y03 -- a mixed case: a loop op and a thread op (nothing wrong)."""
from ._support import Op

KIND = "mixed"


class Buggy:
    def __init__(self):
        self.items = set()

    async def add(self, x):
        self.items.add(x)

    def has(self, x):
        return x in self.items


Fixed = Buggy


async def add(r, x):
    await r.add(x)


def has(r, x):
    return r.has(x)


OPERATIONS = [Op(add, ((1,),), "add", where="loop"), Op(has, ((1,),), "has", where="thread")]


class Model:
    def __init__(self):
        self.items = set()

    def add(self, x):
        self.items.add(x)

    def has(self, x):
        return x in self.items


MINIMAL = {"workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 1,
           "interleaving": "none"}


def self_check():
    return "ok"
'''


def _package(root: Path, name: str, cases: dict[str, str]) -> Path:
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_support.py").write_text(SUPPORT)
    for case_id, text in cases.items():
        (pkg / f"{case_id}.py").write_text(textwrap.dedent(text))
    return pkg


@pytest.fixture(scope="module")
def skip_pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A thread case and a mixed case, imported in this process by one test module only."""
    return _package(tmp_path_factory.mktemp("peers"), "peertest_skip_cases",
                    {"y01_lost_update": THREAD_CASE, "y03_mixed": MIXED_CASE})


class _RecordingIsolate:
    """Stands in for ``run_isolated``: records each call, answers a fixed measurement."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, folder: str, case_id: str, tool: str, variant: str, *, budget: float,
                 seed: int) -> Measurement:
        self.calls.append((case_id, tool, variant))
        found = variant == "buggy"
        return Measurement(detected=found, seconds_to_first=0.5 if found else None,
                           executions=3, failure="lost update" if found else None,
                           shrunk=Shrunk(2, 1, 1) if found else None)


def test_a_peer_that_is_not_installed_gets_a_note_and_no_rows(
        skip_pkg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An uninstalled peer is skipped with a note, without rows or a summary entry."""
    monkeypatch.setattr(_tools.importlib.util, "find_spec", lambda name: None)
    out, err = io.StringIO(), io.StringIO()
    document = run_findings([str(skip_pkg)], ["frontrun"], budget=1.0, seed=0, json_path=None,
                            out=out, err=err)
    assert document == {"rows": [], "summary": {}}
    assert "note: tool 'frontrun' skipped: not installed" in out.getvalue()


def test_a_kind_a_peer_cannot_express_gets_skipped_rows(
        skip_pkg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """detangle gets skipped rows for thread and mixed cases; no child process starts."""
    monkeypatch.setattr(_findings, "unavailable", lambda tool: None)
    fake = _RecordingIsolate()
    monkeypatch.setattr(_findings, "run_isolated", fake)
    out = io.StringIO()
    document = run_findings([str(skip_pkg)], ["detangle"], budget=1.0, seed=0, json_path=None,
                            out=out, err=io.StringIO())
    assert fake.calls == []
    rows = document["rows"]
    assert [(r["case"], r["variant"]) for r in rows] == [
        ("y01_lost_update", "buggy"), ("y01_lost_update", "fixed"),
        ("y03_mixed", "buggy"), ("y03_mixed", "fixed")]
    for row in rows:
        assert tuple(row) == ROW_KEYS
        assert is_skipped(row)
        assert row["failure"].startswith("skipped: detangle simulates asyncio only")
        assert (row["detected"], row["executions"], row["shrunk"]) == (False, 0, None)
    assert document["summary"]["detangle"] == {
        "found": 0, "total": 0, "false_positives": 0, "median_seconds_to_first": None,
        "shrunk_to_minimal": None}
    text = out.getvalue()
    assert "note: tool 'detangle' skipped thread cases" in text
    assert "note: tool 'detangle' skipped mixed cases" in text


def test_skipped_rows_count_neither_as_found_nor_as_missed(
        skip_pkg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """frontrun measures the thread case and skips the mixed one; found/total is 1/1."""
    monkeypatch.setattr(_findings, "unavailable", lambda tool: None)
    fake = _RecordingIsolate()
    monkeypatch.setattr(_findings, "run_isolated", fake)
    document = run_findings([str(skip_pkg)], ["frontrun"], budget=1.0, seed=0, json_path=None,
                            out=io.StringIO(), err=io.StringIO())
    assert fake.calls == [("y01_lost_update", "frontrun", "buggy"),
                          ("y01_lost_update", "frontrun", "fixed")]
    summary = document["summary"]["frontrun"]
    assert tuple(summary) == SUMMARY_KEYS
    assert (summary["found"], summary["total"], summary["false_positives"]) == (1, 1, 0)
    skipped = [r for r in document["rows"] if is_skipped(r)]
    assert [r["case"] for r in skipped] == ["y03_mixed", "y03_mixed"]
    assert "a mixed case needs both" in skipped[0]["failure"]


def test_summarize_ignores_skipped_rows_even_when_detected_is_false() -> None:
    """A skipped Fixed row is no false positive and a skipped Buggy row no miss."""
    def row(case: str, variant: str, detected: bool, failure: str | None) -> dict[str, Any]:
        return {"case": case, "kind": "thread", "tool": "t", "variant": variant,
                "detected": detected, "seconds_to_first": 0.2 if detected else None,
                "failure": failure, "shrunk": None,
                "minimal": {"workers": 2, "ops_per_worker": 1}}

    rows = [row("a", "buggy", True, "boom"), row("a", "fixed", False, None),
            row("b", "buggy", False, "skipped: no model"),
            row("b", "fixed", False, "skipped: no model"),
            row("c", "buggy", False, "harness timeout")]
    summary = summarize(rows, ["t"])["t"]
    assert (summary["found"], summary["total"], summary["false_positives"]) == (1, 2, 0)
    lines = format_table(rows).splitlines()[2:]
    assert [line.split()[3] for line in lines] == ["found", "skipped", "missed"]
    assert lines[1].split()[3:5] == ["skipped", "skipped"]


def test_preemptions_count_switches_away_from_unfinished_workers() -> None:
    """A switch at a worker's last step is free; one away from a worker that runs again is not."""
    assert preemptions([]) == 0
    assert preemptions([0, 0, 1, 1]) == 0
    assert preemptions([0, 1, 0]) == 1
    assert preemptions([0, 0, 1, 1, 0, 1]) == 2


def test_scenarios_go_small_first_and_repeat_with_the_seed(skip_pkg: Path) -> None:
    """Shapes come in SHAPES order, without repeats within a shape, the same for a seed."""
    from jostle import load_cases

    (case,) = [c for c in load_cases(str(skip_pkg)) if c.id == "y01_lost_update"]
    ops = list(case.module.OPERATIONS)

    def first(n: int, seed: int) -> list[Any]:
        drawn = scenarios(random.Random(seed), ops)
        return [next(drawn) for _ in range(n)]

    got = first(60, 1)
    shapes = [(len(s.plan), len(s.plan[0])) for s in got]
    assert shapes[0] == SHAPES[0]
    assert shapes == sorted(shapes, key=SHAPES.index)  # never back to a smaller shape
    # 1 x 1 has only 2 distinct scenarios (incr or get), so it ends early.
    assert shapes.count((1, 1)) == 2
    assert shapes.count((2, 1)) == 3  # {incr, incr}, {incr, get}, {get, get}
    assert all(shapes.count(s) <= SHAPE_ROUNDS for s in SHAPES)
    assert [repr(s.plan) for s in got] == [repr(s.plan) for s in first(60, 1)]
    assert [op.name for op, _ in got[0].suffix] == ["get"]
    assert observations(ops) == got[0].suffix


@pytest.mark.slow
@pytest.mark.skipif(not HAS_DETANGLE, reason="detangle is not installed (the bench env has it)")
def test_detangle_adapter_finds_the_buggy_twin_and_passes_the_fixed_one(
        tmp_path: Path) -> None:
    """detangle finds the double session at 2 workers of 1 call and passes the locked twin."""
    from bench._detangle import measure_detangle
    from jostle import load_cases

    pkg = _package(tmp_path, "peertest_detangle_cases", {"y02_double_session": ASYNC_CASE})
    (case,) = load_cases(str(pkg))
    buggy = measure_detangle(case, "buggy", budget=2.0, seed=0, progress=Progress(None))
    assert buggy.detected and "sessions created" in (buggy.failure or "")
    assert buggy.shrunk is not None and (buggy.shrunk.workers, buggy.shrunk.ops) == (2, 1)
    assert buggy.executions > 0
    fixed = measure_detangle(case, "fixed", budget=0.2, seed=0, progress=Progress(None))
    assert not fixed.detected and fixed.executions > 0


@pytest.mark.slow
@pytest.mark.skipif(not HAS_FRONTRUN, reason="frontrun is not installed (the bench env has it)")
def test_frontrun_adapter_runs_in_a_child_and_skips_mixed(tmp_path: Path) -> None:
    """frontrun (in its own child process) finds the lost update, passes Fixed, skips mixed."""
    pkg = _package(tmp_path, "peertest_frontrun_cases",
                   {"y01_lost_update": THREAD_CASE, "y03_mixed": MIXED_CASE})
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "findings", "--cases", str(pkg), "--tool", "frontrun",
         "--budget", "1", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = {(r["case"], r["variant"]): r for r in json.loads(out.read_text())["rows"]}
    buggy = rows["y01_lost_update", "buggy"]
    assert buggy["detected"], buggy
    assert buggy["shrunk"]["workers"] == 2 and buggy["shrunk"]["preemptions"] >= 1
    assert not rows["y01_lost_update", "fixed"]["detected"]
    assert is_skipped(rows["y03_mixed", "buggy"]) and is_skipped(rows["y03_mixed", "fixed"])


@pytest.mark.slow
def test_watchdog_reports_and_ends_a_stuck_process() -> None:
    """An armed watchdog whose deadline passed calls back, then exits the process with 0."""
    code = ("import sys, threading, time; sys.path.insert(0, sys.argv[1]);"
            "from bench._peers import Watchdog;"
            "Watchdog().arm(time.monotonic(), lambda: print('expired', flush=True));"
            "threading.Event().wait()")
    proc = subprocess.run([sys.executable, "-c", code, str(REPO)], capture_output=True,
                          text=True, timeout=30, check=False)
    assert (proc.returncode, proc.stdout) == (0, "expired\n")
