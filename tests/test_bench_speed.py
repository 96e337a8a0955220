"""``python -m bench throughput``, ``checker`` and ``scaling`` keep the interfaces issue 4 fixes."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# bench/ sits at the repo root, next to src/; `pytest` (unlike `python -m
# pytest`) does not put the root on sys.path.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import jostle  # noqa: E402
from bench._checker import CASE_KEYS, SUMMARY_KEYS, check_case, run_checker  # noqa: E402
from bench._histories import MapModel, RegisterModel, by_key, generate  # noqa: E402
from bench._throughput import measure_rate  # noqa: E402
from bench._workloads import WORKLOADS  # noqa: E402


def _bench(*args: str, out: Path) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-m", "bench", *args, "--quick", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    data: dict[str, object] = json.loads(out.read_text(encoding="utf-8"))
    return data


@pytest.mark.slow
def test_throughput_json_has_exactly_the_issue_keys(tmp_path: Path) -> None:
    """The throughput JSON has the issue's keys, each a positive rate."""
    data = _bench("throughput", out=tmp_path / "t.json")
    assert list(data) == ["controlled", "uncontrolled", "hypothesis_empty_rate",
                          "jostle_examples_per_s"]
    for mode in ("controlled", "uncontrolled"):
        rates = data[mode]
        assert isinstance(rates, dict)
        assert list(rates) == ["threads_2x5", "asyncio_3x5", "processes_2x5"]
        assert all(isinstance(v, float) and v > 0 for v in rates.values())
    for key in ("hypothesis_empty_rate", "jostle_examples_per_s"):
        value = data[key]
        assert isinstance(value, float) and value > 0


@pytest.mark.slow
def test_checker_json_has_its_documented_keys(tmp_path: Path) -> None:
    """The checker JSON has cases with every documented key and a consistent summary."""
    data = _bench("checker", out=tmp_path / "c.json")
    assert list(data) == ["settings", "cases", "summary"]
    cases, summary = data["cases"], data["summary"]
    assert isinstance(cases, list) and isinstance(summary, dict)
    assert [tuple(c) for c in cases] == [CASE_KEYS] * 2
    assert [(c["ops"], c["workers"], c["partitioned"]) for c in cases] == [(100, 2, True),
                                                                          (100, 2, False)]
    assert all(c["ok"] is True and c["timed_out"] is False for c in cases)
    assert all(isinstance(c["seconds"], float) and isinstance(c["peak_bytes"], int)
               for c in cases)
    assert tuple(summary) == SUMMARY_KEYS
    assert (summary["cases"], summary["ok"], summary["timed_out"]) == (2, 2, 0)


@pytest.mark.parametrize("partitioned", [True, False])
def test_generated_history_is_linearizable(partitioned: bool) -> None:
    """A generated history of overlapping operations has a witness."""
    history = generate(200, 4, partitioned=partitioned, seed=7)
    assert len(history.ops) == 200
    assert len({r.index for r in history.ops}) == 200
    res = jostle.check_linearizability(history, MapModel if partitioned else RegisterModel,
                                       partition=by_key if partitioned else None)
    assert res.ok


def test_generated_history_overlaps_and_is_deterministic() -> None:
    """Equal seeds give equal histories, in which workers' operations overlap."""
    a = generate(100, 3, partitioned=False, seed=1)
    assert a == generate(100, 3, partitioned=False, seed=1)
    ops = a.ops
    assert any(x.worker != y.worker and x.invoke < y.invoke < (x.response or 0)
               for x, y in itertools.pairwise(ops))


def test_check_case_reports_a_linearizable_case() -> None:
    """One in-process checker case is linearizable, not timed out, with a peak."""
    row = check_case(100, 8, False)
    assert (row.ok, row.timed_out, row.limit, row.skipped) == (True, False, None, False)
    assert row.peak_bytes is not None and row.steps is not None


def test_checker_counts_max_steps_as_a_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    """A case stopped by max_steps is counted as a timeout, and skipped cases are counted."""
    result = run_checker(sizes=(100, 1_000), workers=(4,), max_ops=100, max_steps=5,
                         isolate=False)
    assert result["summary"]["timed_out"] == 2
    assert result["summary"]["skipped"] == 2
    assert [c["limit"] for c in result["cases"]] == ["max_steps", "max_steps", None, None]
    assert "TIMEOUT (max_steps)" in capsys.readouterr().out


def test_measure_rate_leaves_the_warmup_out() -> None:
    """The warm-up's units never count towards the reported rate."""
    counts = iter([10**9, 0, 0, 0])
    calls: list[float] = []

    def batch(deadline: float) -> int:
        calls.append(deadline)
        return next(counts)

    assert measure_rate(batch, seconds=0.0, repetitions=3, warmup=1.0) == 0.0
    assert len(calls) == 4


def test_workloads_are_the_issue_keys() -> None:
    """The throughput workloads are exactly the issue's three keys."""
    assert list(WORKLOADS) == ["threads_2x5", "asyncio_3x5", "processes_2x5"]


CAMPAIGN = '''
"""A tiny campaign: a locked counter, a few examples per test."""
import threading

from hypothesis import settings

import jostle


class Counter:
    def __init__(self):
        self.n = 0
        self._lock = threading.Lock()

    def incr(self):
        with self._lock:
            self.n += 1
            return self.n


class Model:
    def __init__(self):
        self.n = 0

    def incr(self):
        self.n += 1
        return self.n


def incr(c):
    return c.incr()


test_counter = jostle.concurrent_test(
    jostle.spec(Counter, jostle.operation(incr), model=Model, name="tiny_counter"),
    repeats=1, max_workers=2, max_ops=2, settings=settings(max_examples=3))
'''


@pytest.mark.slow
def test_scaling_json_has_both_modes_and_their_ratio(tmp_path: Path) -> None:
    """`bench scaling` on a tiny campaign reports executions/s for -n 0 and -n auto."""
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    (campaigns / "campaign_tiny.py").write_text(textwrap.dedent(CAMPAIGN))
    (campaigns / "helpers.py").write_text("X = 1\n")  # no tests: not a campaign file
    out = tmp_path / "scaling.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "scaling", "--quick", "--campaigns", str(campaigns),
         "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONWARNINGS": "error"})
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert list(data) == ["settings", "modes", "ratio"]
    assert list(data["modes"]) == ["0", "auto"]
    assert data["settings"]["campaigns"][0].endswith("campaign_tiny.py")
    assert len(data["settings"]["campaigns"]) == 1
    for mode, result in data["modes"].items():
        (run,) = result["runs"]
        assert set(run) == {"executions", "seconds", "executions_per_s", "workers", "tests"}
        assert run["executions"] > 0 and run["tests"] > 0
        assert result["executions_per_s"] == run["executions_per_s"] > 0
        assert run["workers"] >= 1
        if mode == "0":
            assert run["workers"] == 1
    assert data["ratio"] == pytest.approx(
        data["modes"]["auto"]["executions_per_s"] / data["modes"]["0"]["executions_per_s"],
        abs=1e-3)
