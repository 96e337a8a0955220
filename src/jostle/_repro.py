"""``repro.py``: a standalone script that fails the way a finding did.

The script uses only jostle's public API and the user's own module.  It
finds the spec the way a person would: it imports the test's module (by its
import name, with the ``sys.path`` entries the run had inside the project,
falling back to the file's path), takes the test by its attribute name, and
asks :func:`jostle.spec_of` for the spec the test was made from.  Paths are
relative to the script's own folder, so a failure folder copied out of CI
into another clone replays there.

A controlled finding replays exactly: the script runs the minimal scenario
under the recorded schedule once.  A stress finding cannot be replayed
exactly (the operating system chose the interleaving), so the script reruns
the scenario up to ``RUNS`` times (its first argument) and says so.  Either
way it exits with the failure (status 1) if it reproduces and with status 0
and a line saying it did not, which is what a fixed bug looks like.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._errors import SpecTypeError
from ._spec import Spec

__all__ = ["STRESS_RUNS", "repro_script", "spec_of"]

STRESS_RUNS = 2000


def spec_of(test: Callable[..., Any]) -> Spec:
    """The spec a :func:`jostle.concurrent_test` test was made from.

    Args:
        test: a test returned by :func:`jostle.concurrent_test` (possibly
            marked with ``@pytest.mark.jostle(...)``).

    Returns:
        Its :class:`jostle.Spec`.

    Raises:
        SpecTypeError: ``test`` was not made by ``concurrent_test``.

    Example:
        >>> import jostle
        >>> from hypothesis import strategies as st
        >>> def add(s, x): s.add(x)
        >>> spec = jostle.spec(set, jostle.operation(add, st.integers()), model=None)
        >>> jostle.spec_of(jostle.concurrent_test(spec)) is spec
        True
    """
    spec = getattr(test, "_jostle_spec", None)
    if not isinstance(spec, Spec):
        raise SpecTypeError(
            f"jostle.spec_of(): expected a test made by jostle.concurrent_test but got "
            f"{test!r} (type={type(test).__name__}); pass the test_* object itself")
    return spec


def _schedule_code(record: dict[str, Any]) -> str:
    sched = record.get("schedule") or {"switches": [], "picks": []}
    switches = tuple(tuple(p) for p in sched["switches"])
    picks = tuple(tuple(p) for p in sched["picks"])
    return f"jostle.Preemptions(switches={switches!r}, picks={picks!r})"


def repro_script(record: dict[str, Any], folder: Path, root: str) -> str:
    """The text of ``repro.py`` for one failure record (see the module docstring)."""
    test = record["test"]
    options = test.get("options", {})
    controlled = record["mode"] == "controlled"
    to_root = os.path.relpath(os.path.abspath(root), os.path.abspath(folder)).replace(os.sep, "/")
    scenario = record["scenario"]
    if "pickle" in scenario:
        scenario_code = ("pickle.loads(base64.b64decode(\n    "
                         f"{scenario['pickle']!r}))\n# as code (for reading):\n# "
                         + scenario["code"].replace("\n", "\n# "))
    else:
        scenario_code = scenario["code"]
    timeout = options.get("timeout")
    timeout_arg = f", timeout={timeout!r}" if isinstance(timeout, (int, float)) else ""
    summary = "\n".join(f"    {line}" for line in record["summary"])
    model = record.get("preemption_model") or "gil"
    if controlled:
        how = ("Controlled run: the scenario replays exactly under the recorded schedule,\n"
               "so one run shows the failure.")
        inject, kill = bool(options.get("inject")), bool(options.get("kill"))
        if inject or kill:
            call = (f"jostle.replay(spec, SCENARIO, scheduler=lambda: jostle.ControlledScheduler(\n"
                    f"        SCHEDULE, model={model!r}, inject={inject!r}, kill={kill!r})"
                    f"{timeout_arg})")
        else:
            call = (f"jostle.replay(spec, SCENARIO, schedule=SCHEDULE, "
                    f"preemption_model={model!r}{timeout_arg})")
        runs_line = "RUNS = 1"
        schedule_line = f"SCHEDULE = {_schedule_code(record)}"
    else:
        reproduced = record.get("reproduces")
        seen = (f" (when found it failed {reproduced['failed']} of {reproduced['runs']} "
                "re-runs)" if isinstance(reproduced, dict) else "")
        how = ("Stress run: the operating system chose the interleaving, so it cannot be\n"
               f"replayed exactly{seen}.  This reruns the scenario up to RUNS times\n"
               "(the first argument, default " + str(STRESS_RUNS) + ") and stops at the "
               "first failure.")
        interval = options.get("switch_interval", 1e-6)
        call = (f"jostle.replay(spec, SCENARIO, runs=RUNS, scheduler=lambda: "
                f"jostle.StressScheduler(switch_interval={interval!r}){timeout_arg})")
        runs_line = f"RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else {STRESS_RUNS}"
        schedule_line = ""
    imports = "import base64\nimport pickle\n" if "pickle" in scenario else ""
    return f'''#!/usr/bin/env python3
"""Reproduce jostle failure {record["id"]}: {record["failure"]} in {record["test_id"]}.

{summary}

{how}
Run it from anywhere: python {folder.name}/repro.py (or: jostle replay {record["id"]}).
It exits with the failure (status 1) if it reproduces, and with status 0 if not.
Written by jostle {record["versions"]["jostle"]}; first seen {record.get("first_seen", "?")}.
"""

from __future__ import annotations

{imports}import importlib
import importlib.util
import pathlib
import sys

import jostle

HERE = pathlib.Path(__file__).resolve().parent
ROOT = (HERE / {to_root!r}).resolve()
SYS_PATH = {test.get("sys_path", [])!r}
MODULE = {test["module"]!r}
FILE = {test["file"]!r}
TEST = {test["attr"]!r}
{runs_line}

SCENARIO = {scenario_code}
{schedule_line}


def load_spec() -> jostle.Spec:
    """Import the test's module as the run did and take the spec from its test."""
    for entry in reversed(SYS_PATH):
        path = str(ROOT / entry)
        if path not in sys.path:
            sys.path.insert(0, path)
    try:
        module = importlib.import_module(MODULE)
    except ModuleNotFoundError as exc:
        if exc.name is None or not MODULE.startswith(exc.name):
            raise
        where = importlib.util.spec_from_file_location(MODULE, ROOT / FILE)
        if where is None or where.loader is None:
            raise
        module = importlib.util.module_from_spec(where)
        sys.modules[MODULE] = module
        where.loader.exec_module(module)
    return jostle.spec_of(getattr(module, TEST))


def main() -> int:
    spec = load_spec()
    print(f"jostle repro {record["id"]}: {{TEST}} from {{MODULE}}, up to {{RUNS}} run(s)",
          flush=True)
    {call}
    print(f"did not reproduce in {{RUNS}} run(s): the failure is gone (or, for a stress "
          "finding, did not show this time)")
    return 0


if __name__ == "__main__":  # process workers start with forkserver: keep the guard
    sys.exit(main())
'''
