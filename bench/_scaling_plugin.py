"""A pytest plugin for ``python -m bench scaling``, loaded with ``-p`` into
every pytest process of a measured campaign run (the xdist controller and
each worker).

Two environment variables, set by ``_scaling``, drive it:

* ``JOSTLE_BENCH_SCALING_DEADLINE``: a ``time.time()`` value; once it has
  passed, the session stops after the test that is running (``shouldstop``,
  which pytest and pytest-xdist honour), so a run lasts about as long as
  asked.
* ``JOSTLE_BENCH_SCALING_DIR``: a folder; at exit each process writes a file
  there with the executions its jostle engine made
  (``jostle._engine._engine.executions``, read, never written: jostle has no
  public counter yet) and the tests it ran.

It also loads a Hypothesis profile, the default one without a database, so
a repetition does not replay the failures an earlier one found.
"""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

DEADLINE_VAR = "JOSTLE_BENCH_SCALING_DEADLINE"
DIR_VAR = "JOSTLE_BENCH_SCALING_DIR"

_state: dict[str, object] = {"session": None, "tests": 0}


def pytest_configure(config: pytest.Config) -> None:
    """Load the database-less profile."""
    from hypothesis import settings

    # parent= the default profile: one registered without a parent inherits the
    # automatic "ci" profile when CI is set (derandomize=True).
    settings.register_profile("jostle-bench-scaling", parent=settings.get_profile("default"),
                              database=None)
    settings.load_profile("jostle-bench-scaling")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Keep the session, to stop it at the deadline."""
    _state["session"] = session


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    """Count the test; stop the session once the deadline has passed."""
    _state["tests"] = int(str(_state["tests"])) + 1
    deadline = os.environ.get(DEADLINE_VAR)
    session = _state["session"]
    if deadline and time.time() >= float(deadline) and isinstance(session, pytest.Session):
        session.shouldstop = "bench scaling: time is up"


def pytest_unconfigure(config: pytest.Config) -> None:
    """Write this process's executions and tests to the report folder."""
    folder = os.environ.get(DIR_VAR)
    if not folder:
        return
    engine_module = sys.modules.get("jostle._engine")
    engine = getattr(engine_module, "_engine", None)
    name = os.environ.get("PYTEST_XDIST_WORKER", "main")
    report = {"process": name, "pid": os.getpid(), "tests": _state["tests"],
              "executions": int(getattr(engine, "executions", 0))}
    with open(os.path.join(folder, f"{name}-{os.getpid()}.json"), "w", encoding="utf-8") as f:
        json.dump(report, f)
