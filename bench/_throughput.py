"""``python -m bench throughput``: executions per second, side by side.

What is measured, all in one process and one run, so the numbers share a
machine and its load:

* ``controlled`` and ``uncontrolled``: executions of a fixed scenario of
  each workload in ``_workloads`` (2 threads x 5 ops, 3 tasks x 5 awaits,
  2 processes x 5 ops), under ``ControlledScheduler(Preemptions())`` (no
  forced switch: the cost of control itself) and under the default
  ``StressScheduler``, each run the way ``concurrent_test`` runs it:
  controlled executions one after another in one controlled session (the
  patching window, the tracer and the handoff to jostle's driver thread are
  paid once per Hypothesis example, for all of its schedules), stress
  executions one ``jostle.execute`` call each.  Executions only: judging
  them is not included.
* ``hypothesis_empty_rate``: examples per second of Hypothesis's own empty
  ``@given(st.integers())`` test, the ceiling for anything run under it.
* ``jostle_examples_per_s``: examples per second of
  ``jostle.concurrent_test(spec, mode="controlled", schedules=1)`` on the
  threads workload's spec (scenarios drawn by Hypothesis, each run once under
  control and judged).  Examples are counted by wrapping the test's
  ``hypothesis.inner_test``, Hypothesis's documented hook.

Each measurement first warms up (pools started, imports done), then runs
``repetitions`` times for ``seconds`` of wall time each; the reported rate is
the median.  A Hypothesis run is stopped at its time by raising a
``BaseException`` from the test body, which Hypothesis lets through.

JSON (``--json FILE``), every value a rate per second::

    {"controlled": {"threads_2x5": ..., "asyncio_3x5": ..., "processes_2x5": ...},
     "uncontrolled": {same keys},
     "hypothesis_empty_rate": ..., "jostle_examples_per_s": ...}
"""

from __future__ import annotations

import functools
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, settings, strategies as st

import jostle
from jostle._engine import get_engine

from ._table import grid
from ._workloads import WORKLOADS, scenario, workload

__all__ = ["KEYS", "MODES", "format_throughput", "measure_rate", "run_throughput"]

#: The scheduler families, as the JSON names them.
MODES = ("controlled", "uncontrolled")
#: Top-level keys of the JSON, in order.
KEYS = (*MODES, "hypothesis_empty_rate", "jostle_examples_per_s")


class _TimeUp(BaseException):
    """Ends a Hypothesis run at its time; Hypothesis does not catch it."""


def measure_rate(batch: Callable[[float], int], *, seconds: float, repetitions: int,
                 warmup: float) -> float:
    """The median rate of ``batch`` over ``repetitions`` runs.

    Args:
        batch: runs until the given ``time.perf_counter()`` deadline and
            returns how many units (executions, examples) it completed.
        seconds: wall time of each repetition.
        repetitions: repetitions after the warm-up.
        warmup: seconds of a first run that is not counted.

    Returns:
        Units per second, the median over the repetitions.
    """
    if warmup > 0:
        batch(time.perf_counter() + warmup)
    rates = []
    for _ in range(repetitions):
        start = time.perf_counter()
        done = batch(start + seconds)
        rates.append(done / (time.perf_counter() - start))
    return statistics.median(rates)


def _executions(name: str, mode: str) -> Callable[[float], int]:
    spec, sc = workload(name), scenario(name)

    def runs(deadline: float) -> int:
        n = 0
        while time.perf_counter() < deadline:
            scheduler = (jostle.ControlledScheduler(jostle.Preemptions())
                         if mode == "controlled" else None)
            jostle.execute(spec, sc, scheduler=scheduler)
            n += 1
        return n

    def batch(deadline: float) -> int:
        if mode != "controlled":
            return runs(deadline)
        with get_engine().controlled_session() as session:
            return session.call(functools.partial(runs, deadline))

    return batch


def _settings() -> settings:
    return settings(max_examples=10**9, database=None, deadline=None, derandomize=True,
                    phases=[Phase.generate], suppress_health_check=list(HealthCheck),
                    verbosity=Verbosity.quiet, print_blob=False)


def _run_until(test: Any, deadline: float) -> int:
    """Run a Hypothesis test until ``deadline``; the number of examples run."""
    inner = test.hypothesis.inner_test
    count = 0

    @functools.wraps(inner)
    def counted(*args: Any, **kwargs: Any) -> None:
        nonlocal count
        # At least one example always runs: Hypothesis's own start-up can
        # outlast a very short measurement.
        if count and time.perf_counter() >= deadline:
            raise _TimeUp
        inner(*args, **kwargs)
        count += 1

    test.hypothesis.inner_test = counted
    try:
        test()
    except _TimeUp:
        pass
    finally:
        test.hypothesis.inner_test = inner
    return count


def _hypothesis_empty(deadline: float) -> int:
    @_settings()
    @given(st.integers())
    def test_empty(x: int) -> None:
        pass

    return _run_until(test_empty, deadline)


def _jostle_examples(deadline: float) -> int:
    test = jostle.concurrent_test(workload("threads_2x5"), mode="controlled", schedules=1,
                                  settings=_settings())
    return _run_until(test, deadline)


def run_throughput(*, seconds: float = 1.0, repetitions: int = 5, warmup: float = 0.5,
                   json_path: str | None = None) -> dict[str, Any]:
    """Measure every rate, print the table, and write the JSON if asked.

    Args:
        seconds: wall time of each repetition.
        repetitions: repetitions per rate (the median is reported).
        warmup: seconds of uncounted warm-up per rate.
        json_path: where to write the JSON, or ``None``.

    Returns:
        The JSON object (see the module docstring).
    """
    rate = functools.partial(measure_rate, seconds=seconds, repetitions=repetitions,
                             warmup=warmup)
    result: dict[str, Any] = {
        mode: {name: rate(_executions(name, mode)) for name in WORKLOADS} for mode in MODES
    }
    result["hypothesis_empty_rate"] = rate(_hypothesis_empty)
    result["jostle_examples_per_s"] = rate(_jostle_examples)
    print(format_throughput(result, seconds=seconds, repetitions=repetitions))
    if json_path is not None:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return result


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "-"


def format_throughput(result: dict[str, Any], *, seconds: float, repetitions: int) -> str:
    """The rates as a table, with controlled/uncontrolled and jostle/Hypothesis ratios."""
    lines = [(name, f"{result['controlled'][name]:,.1f}", f"{result['uncontrolled'][name]:,.1f}",
              _ratio(result["controlled"][name], result["uncontrolled"][name]))
             for name in WORKLOADS]
    hyp, jos = result["hypothesis_empty_rate"], result["jostle_examples_per_s"]
    return (f"executions/s (median of {repetitions} x {seconds:g} s)\n"
            + grid(("workload", "controlled", "uncontrolled", "controlled/uncontrolled"), lines)
            + "\n\nexamples/s\n"
            + grid(("test", "examples/s", "/ hypothesis empty"),
                   [("hypothesis empty @given(st.integers())", f"{hyp:,.1f}", "1.000"),
                    ("jostle controlled, schedules=1", f"{jos:,.1f}", _ratio(jos, hyp))]))
