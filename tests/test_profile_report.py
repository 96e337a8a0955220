"""The profile's table and report page, `jostle profile` and `pytest --jostle-perf`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import jostle
from jostle import _profile_report
from jostle._cli import main

WAIT = jostle.WaitSite("threading.Lock", "store.py:10", "store.py:20", "thread", 40, 0.3, 0.02)


def synthetic() -> jostle.Profile:
    """Threads that stop scaling after 2 workers; tasks that do not scale."""
    runs = []
    for kind, rates in (("thread", {1: 1000, 2: 1900, 4: 2000}), ("task", {1: 800, 2: 800})):
        for n, rate in rates.items():
            for repeat in range(4):
                for instrumented in (False, True) if repeat else (False,):
                    calls = rate + repeat
                    runs.append(jostle.ProfileRun(
                        kind=kind, workers=n, worker_kinds=(kind,) * n, repeat=repeat,
                        warmup=repeat == 0, instrumented=instrumented, seconds=1.0,
                        calls={"get": calls}, raised={"get": {"KeyError": 3}},
                        latency={"get": ((1000, calls - 10), (100_000, 10))},
                        waits=(WAIT,) if instrumented and kind == "thread" else (),
                        acquired={("threading.Lock", "store.py:10"): calls}))
    return jostle.Profile(
        spec_name="Store", runs=tuple(runs), operations={"thread": ("get",), "task": ("get",)},
        run_seconds=1.0, budget=30.0, repeats=3, seed=0,
        harness_ns={"thread": 800.0, "task": 9000.0},
        environment={"python": "CPython 3.11.7", "cpus": "2"}, notes=("a note",))


def test_table_reads_at_a_glance() -> None:
    """The table leads with where scaling stops, then figures, waits, overhead."""
    text = synthetic().table()
    for line in ("jostle profile: Store",
                 "thread: peak 2k calls/s at 4 worker(s); stops scaling after 2 workers",
                 "task: peak 802 calls/s at 1 worker(s); does not scale",
                 "thread  1k [1k-1k]            1.9k [1.9k-1.9k]      2k [2k-2k]",
                 "task    1        1.01us / 1.01us / 101us",
                 "threading.Lock              store.py:20                     store.py:10",
                 "get raised KeyError 105 time(s)",
                 "harness: 800ns a call on a thread, 9us a call on a task"):
        assert line in text, line


def test_rates_round_into_the_next_unit() -> None:
    """999,707 calls/s reads 1M, not 1e+03k."""
    assert [_profile_report._rate(x) for x in (999_707, 999.6, 1_234_567, 12.3)] == [
        "1M", "1k", "1.23M", "12.3"]


def test_figures_are_medians_over_measured_uninstrumented_runs() -> None:
    """Warm-ups and instrumented runs stay out of throughput and latency."""
    profile = synthetic()
    assert profile.throughput("thread", 2).median == 1902  # repeats 1..3: 1901, 1902, 1903
    assert profile.throughput("thread", 2).n == 3
    assert profile.calls("thread", 1, "get") == 1001 + 1002 + 1003
    assert profile.scaling_limit("thread") == 2
    assert profile.scaling_limit("task") == 1
    assert profile.instrumentation_cost("thread", 1) == 0
    assert profile.waits() == (jostle.WaitSite("threading.Lock", "store.py:10", "store.py:20",
                                               "thread", 360, pytest.approx(2.7), 0.02),)
    assert profile.acquisitions("threading.Lock", "store.py:10") == sum(
        r.calls["get"] for r in profile.runs if r.instrumented)


@pytest.mark.slow
def test_report_page_has_the_plots(tmp_path: Path) -> None:
    """With matplotlib: scaling, latency and waits plots beside the page."""
    pytest.importorskip("matplotlib")
    page = jostle.write_profile_report(synthetic(), tmp_path)
    for name in ("scaling.png", "latency.png", "waits.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
        assert name in page.read_text(encoding="utf-8")
    data = json.loads((tmp_path / "profile.json").read_text(encoding="utf-8"))
    assert len(data["runs"]) == len(synthetic().runs)
    assert "stops scaling after 2 workers" in page.read_text(encoding="utf-8")


def test_report_page_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without matplotlib the page has the tables and says how to get plots."""
    monkeypatch.setattr(_profile_report, "_pyplot", lambda: None)
    page = jostle.write_profile_report(synthetic(), tmp_path)
    text = page.read_text(encoding="utf-8")
    assert "pip install &#x27;jostle[profile]&#x27;" in text
    assert "<table>" in text and not list(tmp_path.glob("*.png"))


def test_index_links_each_page_with_its_headline(tmp_path: Path) -> None:
    """With several tests profiled, one index page says where each stops scaling."""
    page = tmp_path / "a" / "index.html"
    index = _profile_report.write_index(tmp_path, [("fuzz/a.py::test_a", page, synthetic())])
    text = index.read_text(encoding="utf-8")
    assert "href='a/index.html'" in text and "fuzz/a.py::test_a" in text
    assert "stops scaling after 2 workers" in text


MODULE = '''
from hypothesis import strategies as st
import jostle

class Box:
    def __init__(self):
        self.items = {}

def put(box, key):
    box.items[key] = True

def get(box, key):
    return box.items.get(key, False)

class Model:
    def __init__(self):
        self.items = {}
    def put(self, key):
        self.items[key] = True
    def get(self, key):
        return self.items.get(key, False)

KEYS = st.integers(0, 3)
test_box = jostle.concurrent_test(jostle.spec(Box, jostle.operation(put, KEYS),
                                              jostle.operation(get, KEYS), model=Model))
'''


@pytest.mark.slow
def test_cli_profiles_each_test_and_writes_its_page(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`jostle profile FILE` prints the table and writes the report."""
    path = tmp_path / "box_campaign.py"
    path.write_text(MODULE, encoding="utf-8")
    out = tmp_path / "report"
    code = main(["profile", str(path), "--budget", "0.3", "--max-workers", "2", "--repeats",
                 "1", "--report", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "jostle profile: Box" in printed and "Where workers waited" in printed
    pages = list(out.glob("*/index.html"))
    assert len(pages) == 1 and pages[0].parent.name.endswith("box_campaign-test_box")


@pytest.mark.parametrize(("args", "message"), [
    (["--budget", "0"], "--budget must be more than 0"),
    (["--kinds", "process"], "kind 'process' from --kinds cannot be profiled"),
    (["--max-workers", "0"], "--max-workers must be at least 1"),
    (["-k", "nothing-matches"], "no jostle tests found"),
    (["-k", "("], "must be a regular expression"),
])
def test_cli_misuse_exits_2_naming_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            args: list[str], message: str) -> None:
    """Bad flags end with status 2 and a message naming the flag."""
    path = tmp_path / "box_campaign2.py"
    path.write_text(MODULE, encoding="utf-8")
    assert main(["profile", str(path), *args, "--report", str(tmp_path / "r")]) == 2
    captured = capsys.readouterr()
    assert message in (captured.out + captured.err).replace("max_workers=0 from ", "")


@pytest.mark.slow
def test_pytest_option_profiles_instead_of_testing(tmp_path: Path) -> None:
    """`pytest --jostle-perf` runs the profile and prints its table."""
    (tmp_path / "test_box.py").write_text(MODULE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS"))}
    base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
            "test_box.py", "--jostle-perf", "--jostle-perf-max-workers=2"]
    done = subprocess.run([*base, "--jostle-perf-budget=1"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "jostle perf: test_box.py::test_box" in done.stdout
    assert "Throughput, calls/s" in done.stdout
    assert list((tmp_path / ".jostle" / "profile").glob("*/index.html"))
    bad = subprocess.run([*base, "--jostle-perf-budget=0"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 4 and "--jostle-perf-budget=0.0 must be more than 0" in bad.stderr


def test_pytest_option_group_is_documented() -> None:
    """The option group documents itself in `pytest --help`'s terms."""
    source = textwrap.dedent(Path(_profile_report.__file__).with_name(
        "_pytest_profile.py").read_text(encoding="utf-8"))
    assert 'getgroup("jostle-perf"' in source
