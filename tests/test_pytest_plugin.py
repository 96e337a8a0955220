"""The pytest plugin end to end (pytester, in subprocesses): settings and their
sources, markers, xdist and --count reporting one failure once, the terminal
summary, and pytest-timeout as a backstop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _campaign_support import BUGGY, FIXED

pytest_plugins = ["pytester"]

HANG = '''
import threading
import jostle

class Stuck:
    def __init__(self):
        self.never = threading.Event()

    def wait(self):
        self.never.wait()   # nobody sets it: a hang

def wait(stuck):
    return stuck.wait()

test_hang = jostle.concurrent_test(
    jostle.spec(Stuck, jostle.operation(wait), model=None), kinds=("thread",), max_workers=1,
    max_ops=1, max_prefix=0, max_suffix=0, repeats=1, timeout=0.3)
'''


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JOSTLE_PROFILE", "JOSTLE_MODE", "JOSTLE_SEED", "JOSTLE_BUDGET",
                 "JOSTLE_DATABASE", "JOSTLE_DIR", "JOSTLE_MAX_EXAMPLES",
                 "HYPOTHESIS_STORAGE_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)


def _folders(root: Path) -> list[Path]:
    failures = root / ".jostle" / "failures"
    return sorted(failures.iterdir()) if failures.is_dir() else []


MARKED = FIXED + '''
import pytest
test_stress = pytest.mark.jostle(mode="stress", max_examples=3)(
    jostle.concurrent_test(jostle.spec(Counter, jostle.operation(incr), model=Model),
                           mode="controlled", kinds=("thread",)))
test_bad = pytest.mark.jostle(mode="fast")(
    jostle.concurrent_test(jostle.spec(Counter, jostle.operation(incr), model=Model)))
'''


@pytest.mark.slow
def test_header_summary_and_markers(pytester: pytest.Pytester,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """ini < env < command line < marker; the header says where each value came
    from; a marker beats the test's own arguments; a bad marker names itself
    and its test; the summary has a row per jostle test."""
    pytester.makepyfile(test_campaign=MARKED)
    pytester.makeini("[pytest]\njostle_mode = stress\njostle_seed = 3\n")
    monkeypatch.setenv("JOSTLE_SEED", "5")
    monkeypatch.setenv("JOSTLE_PROFILE", "default")
    result = pytester.runpytest_subprocess("--jostle-max-examples", "5", "-p",
                                           "no:cacheprovider")
    result.stdout.fnmatch_lines([
        "jostle: *, profile default (env JOSTLE_PROFILE), seed 5 (env JOSTLE_SEED), "
        "one round per test",
        "jostle database: .hypothesis*examples; failures in *",
        "jostle settings: mode='stress' (ini jostle_mode in *tox.ini), max_examples=5 "
        "(command line --jostle-max-examples)",
    ])
    result.stdout.fnmatch_lines([
        "*mode='fast'*@pytest.mark.jostle(mode=...) on test_campaign.py::test_bad*",
    ])
    result.stdout.fnmatch_lines([
        "*- jostle -*",
        "test_campaign.py::test_counter *1  controlled  gil *0",
        "test_campaign.py::test_stress *1  stress *0",
    ])
    result.assert_outcomes(passed=2, failed=1)


def test_bad_setting_is_a_usage_error_naming_the_flag(pytester: pytest.Pytester) -> None:
    """A bad command-line value stops the run with the flag and the fix."""
    pytester.makepyfile(test_campaign=FIXED)
    result = pytester.runpytest_subprocess("--jostle-mode", "fast")
    result.stderr.fnmatch_lines(["*mode='fast'*command line --jostle-mode*expected one of "
                                 "'stress', 'controlled'*fix*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


@pytest.mark.slow
def test_xdist_and_count_report_one_failure_once(pytester: pytest.Pytester) -> None:
    """-n 2 --count 3 over one planted bug: one failure, the rest skipped as
    repeats of it, one failure folder, and the summary names it."""
    pytester.makepyfile(test_campaign=BUGGY)
    result = pytester.runpytest_subprocess("-n", "2", "--count", "3", "-p",
                                           "no:cacheprovider", "-rs")
    result.assert_outcomes(failed=1, skipped=2)
    folders = _folders(pytester.path)
    assert len(folders) == 1
    fid = folders[0].name
    result.stdout.fnmatch_lines([
        f"*jostle: failure {fid} saved in *(repro.py, report.html)*jostle replay {fid}*",
    ])
    result.stdout.fnmatch_lines([f"test_campaign.py::test_counter * {fid}"])
    report = json.loads((folders[0] / "report.json").read_text())
    assert report["status"] == "final" and report["mode"] == "controlled"
    assert report["test_id"] == "test_campaign.py::test_counter"
    assert {p.name for p in folders[0].iterdir()} >= {"repro.py", "report.json",
                                                      "timeline.svg", "report.html"}
    assert not (pytester.path / ".jostle" / "runs").exists()  # run state cleaned up


@pytest.mark.slow
def test_pytest_timeout_is_a_backstop(pytester: pytest.Pytester) -> None:
    """With pytest-timeout's thread method armed, jostle's watchdog reports the
    hang first and Hypothesis saves it to the database."""
    pytester.makepyfile(test_hang=HANG)
    result = pytester.runpytest_subprocess("--timeout", "20", "--timeout-method", "thread",
                                           "--jostle-profile", "ci", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["E   jostle._errors.Hang: *",
                                 "*1. hang: 1 worker(s) still running after 0.3 s*"])
    result.stdout.no_fnmatch_line("*Timeout*")
    result.assert_outcomes(failed=1)
    examples = pytester.path / ".hypothesis" / "examples"
    assert examples.is_dir() and any(examples.rglob("*"))
    assert len(_folders(pytester.path)) == 1
