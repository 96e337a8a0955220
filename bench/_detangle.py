"""The ``detangle`` tool: detangle's simulated event loop, driven generically.

detangle (https://github.com/louistarwars/Detangle) runs one ``async def
main()`` on its deterministic loop many times, each run under another
schedule of the ready tasks (its default ``auto`` portfolio of FIFO, PCT and
random walks, 200 runs), and shrinks a failing schedule.  This adapter
writes one ``main()`` per scenario ``_peers`` draws and calls
``detangle.explore(main, database=False)`` in rounds (``max_duration`` the
budget left, a seed derived from ``--seed``), until the budget is spent or
detangle raises ``BugFound``:

* ``main()`` builds the case's Buggy or Fixed resource inside the loop,
  ``asyncio.gather``-s one coroutine per worker, awaits the resource's
  teardown, and judges the run with ``_judge``; a problem is raised as an
  ``AssertionError``, which detangle reports and shrinks;
* a failure detangle finds by itself also counts: a deadlock (nothing can
  run, so the run can never end: a hang), an exception in a task nobody
  awaited, a step limit.

Only ``asyncio`` cases are measured.  detangle simulates threads by
running ``to_thread`` jobs on the loop thread, one job at a time, so a thread
race cannot happen there and a blocking lock would stop the loop; it has no
process model.  ``thread``, ``process`` and ``mixed`` cases are skipped.

Its linearizability checker wants a model written against its own API, so
the runs are checked with jostle's public checker instead, as every tool's
runs are.  ``shrunk.preemptions`` is detangle's count of deviations from
asyncio's FIFO order in the shrunk schedule.  ``executions`` counts every
run of ``main()``, the shrinker's replays included.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from jostle import Case

from ._judge import (
    Call,
    Run,
    acall,
    async_teardown,
    build,
    cancelled_marker,
    invariant_errors,
    judge,
    plan_workers,
    record,
)
from ._measure import Measurement, Progress, Shrunk, Variant, derive_seed, short
from ._peers import SLACK_SECONDS, Clock, Scenario, Watchdog, scenarios

__all__ = ["SKIPPED_KINDS", "measure_detangle"]

_NO_THREADS = ("detangle simulates asyncio only: threads are run one job at a time on "
               "the loop thread")
#: Kinds detangle cannot express, with the reason given in the skipped rows.
SKIPPED_KINDS = {
    "thread": _NO_THREADS,
    "process": "detangle simulates asyncio only: it has no process model",
    "mixed": _NO_THREADS,
}


def _main(case: Case, variant: Variant, scenario: Scenario, clock: Clock,
          problems: list[str]) -> Callable[[], Coroutine[Any, Any, None]]:
    factory: Callable[[], Any] = case.module.Buggy if variant == "buggy" else case.module.Fixed
    marker = cancelled_marker(case.module)
    suffix_index = sum(map(len, scenario.plan))

    async def main() -> None:
        clock.started()
        resource = await build(factory)
        run = Run()

        async def worker(w: int, base: int, steps: list[Call]) -> None:
            for j, (op, args) in enumerate(steps):
                invoke = time.monotonic_ns()
                outcome = await acall(op.fn, resource, args, marker)
                run.records.append(record(base + j, w, "task", op.name, args, invoke, outcome))

        await asyncio.gather(*(worker(w, base, steps)
                               for w, base, steps in plan_workers(scenario.plan)))
        for j, (op, args) in enumerate(scenario.suffix):
            invoke = time.monotonic_ns()
            outcome = await acall(op.fn, resource, args, marker)
            run.records.append(record(suffix_index + j, 0, "task", op.name, args, invoke,
                                      outcome, phase="suffix"))
        run.errors = invariant_errors(case.module, resource) + await async_teardown(resource)
        problem = judge(case, run)
        if problem is not None:
            if not problems:
                problems.append(problem)
                clock.failed(short(problem))
            raise AssertionError(problem)

    return main


def _own_failure(failure: Any) -> str:
    if failure.kind == "deadlock":
        return "hang: detangle found a deadlock: " + short(failure.message)
    return f"detangle: {failure.kind}: {short(failure.headline())}"


def measure_detangle(case: Case, variant: Variant, *, budget: float, seed: int,
                     progress: Progress) -> Measurement:
    """Explore scenarios of asyncio ``case``'s ``variant`` with detangle for ``budget`` s.

    Args:
        case: an ``asyncio`` case from ``jostle.load_cases``.
        variant: ``buggy`` or ``fixed``.
        budget: seconds; no round starts after it is spent, and a round gets
            what is left as detangle's ``max_duration``.
        seed: the ``--seed`` value.
        progress: where the first failure is reported as soon as it is seen.

    Returns:
        The measurement; ``executions`` counts runs of ``main()``.
    """
    import detangle

    if case.kind in SKIPPED_KINDS:
        raise ValueError(f"detangle cannot run {case.kind} case {case.id}: "
                         f"{SKIPPED_KINDS[case.kind]}")
    watchdog = Watchdog()
    rng = random.Random(derive_seed("detangle", seed, case.id, variant))
    drawn = scenarios(rng, list(case.module.OPERATIONS))
    clock = Clock(progress, "detangle")
    deadline = clock.start + budget
    watchdog.arm(deadline + SLACK_SECONDS, lambda: progress.done(clock.so_far()))
    round_no = 0
    try:
        while (left := deadline - time.monotonic()) > 0:
            scenario = next(drawn)
            problems: list[str] = []
            first_run = clock.executions
            try:
                detangle.explore(_main(case, variant, scenario, clock, problems), database=False,
                                 seed=derive_seed("detangle-round", seed, case.id, variant,
                                                  round_no),
                                 max_duration=left, name=f"{case.id}[{variant}]")
            except detangle.BugFound as bug:
                report = bug.report
                if problems:
                    failure = problems[0]
                else:
                    failure = _own_failure(report.failure)
                    clock.failed(short(failure), at=clock.ended_at(first_run + report.runs - 1))
                first = progress.first_seen
                assert first is not None
                workers, ops = scenario.size
                return Measurement(
                    detected=True, seconds_to_first=first["seconds_to_first"],
                    executions=clock.executions, failure=short(failure),
                    shrunk=Shrunk(workers=workers, ops=ops, preemptions=report.deviations))
            round_no += 1
    finally:
        watchdog.disarm()
    return Measurement(detected=False, seconds_to_first=None, executions=clock.executions,
                       failure=None, shrunk=None)
