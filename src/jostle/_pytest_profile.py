"""``pytest --jostle-perf``: profile jostle tests' specs instead of testing them.

The plugin (``_pytest_plugin``) calls these functions from its hooks; the
options form a group of their own.  With ``--jostle-perf``, each selected
test made by :func:`jostle.concurrent_test` runs :func:`jostle.profile` on
its spec instead of its test, writes the report page under
``--jostle-perf-report`` (one folder per test) and passes; the tables are
printed in the terminal summary.  Other tests run as usual (select the
jostle ones with ``-m jostle``).  Profiling measures the machine, so run it
without ``-n``: the report says so when pytest-xdist workers ran beside it.
(``--jostle-profile`` is taken: it picks the Hypothesis settings profile.)

It imports nothing heavy until a profile runs.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

__all__ = ["add_options", "check_options", "profile_item", "summary"]

_SECTION = "jostle perf"


def add_options(parser: pytest.Parser) -> None:
    """The ``jostle perf`` option group."""
    group = parser.getgroup("jostle-perf", "jostle perf (performance under concurrency)")
    group.addoption("--jostle-perf", action="store_true", default=False,
                    help="profile each selected jostle test's spec instead of testing it")
    group.addoption("--jostle-perf-budget", type=float, default=10.0, metavar="SECONDS",
                    help="seconds of measured runs per test (default 10)")
    group.addoption("--jostle-perf-max-workers", type=int, default=4, metavar="N",
                    help="profile 1, 2, 4 ... up to N workers of each kind (default 4)")
    group.addoption("--jostle-perf-report", default=os.path.join(".jostle", "profile"),
                    metavar="DIR", help="where the report pages go (default .jostle/profile/)")


def check_options(config: pytest.Config) -> None:
    """Refuse bad values before any test runs.

    Raises:
        pytest.UsageError: naming the flag and the fix.
    """
    if not config.getoption("jostle_perf"):
        return
    budget = config.getoption("jostle_perf_budget")
    if not budget > 0:
        raise pytest.UsageError(
            f"--jostle-perf-budget={budget!r} must be more than 0 seconds; give the "
            "seconds each test's profile may take, e.g. --jostle-perf-budget=10")
    workers = config.getoption("jostle_perf_max_workers")
    if workers < 1:
        raise pytest.UsageError(
            f"--jostle-perf-max-workers={workers!r} must be at least 1; "
            "e.g. --jostle-perf-max-workers=4")


def profile_item(pyfuncitem: pytest.Function) -> bool | None:
    """Profile a jostle test's spec in place of its body (``None``: not one)."""
    config = pyfuncitem.config
    spec = getattr(pyfuncitem.obj, "_jostle_spec", None)
    if spec is None:
        return None
    from ._profile import ProfileOptions, run_profile
    from ._profile_report import report_dir, write_profile_report

    kinds = getattr(pyfuncitem.obj, "_jostle_options", {}).get("kinds")
    where = {"budget": "--jostle-perf-budget", "max_workers": "--jostle-perf-max-workers",
             "kinds": f"concurrent_test(kinds=...) of {pyfuncitem.nodeid}",
             **{name: f"the profile's default {name}" for name in ("repeats", "waits", "seed",
                                                                     "timeout")}}
    result = run_profile(spec, ProfileOptions(
        budget=config.getoption("jostle_perf_budget"),
        max_workers=config.getoption("jostle_perf_max_workers"),
        kinds=tuple(kinds) if kinds is not None else None), where=where)
    page = write_profile_report(
        result, report_dir(config.getoption("jostle_perf_report"), pyfuncitem.nodeid))
    pyfuncitem.add_report_section("call", _SECTION, f"{result.table()}\n\nreport: {page}")
    return True


def summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print each profiled test's table (from xdist workers too)."""
    if not config.getoption("jostle_perf"):
        return
    for report in terminalreporter.stats.get("passed", []):
        for name, content in getattr(report, "sections", []):
            if _SECTION in name:
                terminalreporter.write_sep("-", f"jostle perf: {report.nodeid}")
                terminalreporter.write_line(content)
