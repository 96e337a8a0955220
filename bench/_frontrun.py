"""The ``frontrun`` tool: frontrun's DPOR exploration, driven generically.

frontrun (https://github.com/lucaswiman/frontrun) explores the interleavings
of a fixed list of workers over a fresh shared state: DPOR over bytecode,
with cooperative locks, preemption bound 2, 5 s per run, its documented
defaults.  This adapter gives it the scenarios ``_peers`` draws, in rounds
(one ``frontrun.explore`` call per scenario, ``total_timeout`` the budget
left), and judges every execution with ``_judge`` from frontrun's
``invariant`` callback:

* ``setup`` builds the case's Buggy or Fixed resource and empty per-worker
  call records (one list per worker, so the records are not shared state
  DPOR would explore);
* each worker makes its calls, recording every outcome; frontrun's own
  control exceptions (a lock-order deadlock it detected, an abort) are
  re-raised, everything else is an outcome to judge;
* ``invariant`` makes the scenario's observer calls (at quiescence, on the
  driver thread; an async observer is stepped to its end, which works for
  one that never waits on a future), then judges the run (exception, case
  invariant, teardown, linearizability) and returns ``False`` on the first
  problem, which makes frontrun stop and report that schedule.

A failure frontrun reports by itself also counts: a deadlock it detected (a
lock-order cycle), a crashed task.  A run frontrun gives up on (it timed out,
and the search ends *inconclusive*) is not counted: frontrun does not call it
a failure, and the cause is as often code it cannot schedule (a task a worker
spawned) as a real hang.  An undetected row then says, in ``failure``, how
many rounds ended inconclusive and why.

What it covers, as its documentation says ("explores one execution model
at a time"):

* ``thread`` cases: threads, sync DPOR;
* ``asyncio`` cases: tasks, async DPOR (``await frontrun.explore``); its
  ``setup`` runs inside the loop, so the resource is built there, as the
  case format asks; an async ``close()`` is not called (the invariant is
  synchronous);
* ``process`` cases: **threads stand in for processes** (the case
  format's own self-checks do the same: each call opens its own file
  description or connection).  frontrun's real process mode
  (``execution="process"``) only sees SQL and Redis conflicts, and needs
  its ``process`` extra; frontrun sees a file only where it is opened, and
  shared memory not at all;
* ``mixed`` cases are skipped: a mixed case needs threads and tasks at once.

frontrun refuses to run outside its ``frontrun`` command wrapper unless
``FRONTRUN_ACTIVE=1``, and locks created before its cooperative patching
stay real (the search then ends inconclusive).  So :func:`prepare` runs in
the child before the case modules are imported: it sets the variable, warms
what frontrun's pytest plugin warms, and calls
``frontrun._cooperative.patch_locks()`` as that plugin does.  ``executions``
counts every run frontrun made (``setup`` calls), replays of a failure
included.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from jostle import Case

from ._judge import (
    Call,
    Run,
    call,
    cancelled_marker,
    invariant_errors,
    judge,
    plan_workers,
    raised,
    record,
    returned,
    sync_teardown,
)
from ._measure import Measurement, Progress, Shrunk, Variant, derive_seed, short
from ._peers import SLACK_SECONDS, Clock, Scenario, Watchdog, preemptions, scenarios

__all__ = ["SKIPPED_KINDS", "STAND_IN_KINDS", "measure_frontrun", "prepare"]

#: Kinds frontrun cannot express, with the reason given in the skipped rows.
SKIPPED_KINDS = {
    "mixed": "frontrun explores threads or asyncio tasks, one model at a time; "
             "a mixed case needs both",
}
#: Kinds run with a stand-in, with the note printed once per run.
STAND_IN_KINDS = {
    "process": "frontrun ran process cases with threads standing in for processes "
               "(its process mode only sees SQL and Redis conflicts)",
}

_watchdog: Watchdog | None = None


def prepare() -> None:
    """Make frontrun runnable in this process; call before importing case code."""
    global _watchdog  # one per child process
    os.environ["FRONTRUN_ACTIVE"] = "1"
    _watchdog = Watchdog()  # before patching: it needs real locks
    import multiprocessing.resource_tracker  # noqa: F401  # its lock must stay real

    from frontrun._cooperative import patch_locks
    from frontrun._sql_cursor import _warm_sql_parsers

    _warm_sql_parsers()
    patch_locks()


def _take_watchdog() -> Watchdog:
    """The watchdog :func:`prepare` made (each serves one measurement), or a new one."""
    global _watchdog
    watchdog, _watchdog = _watchdog, None
    return watchdog or Watchdog()


def _is_frontrun_control(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("frontrun.")


#: One call as a worker writes it down: (index, name, args, invoke,
#: response, returned, value or exception).  Outcomes are made in the
#: invariant, so the workers run as little harness code as possible under
#: frontrun's tracing.
_Raw = tuple[int, str, tuple[Any, ...], int, int, bool, Any]


class _Trial:
    """The state frontrun hands to every worker and to the invariant."""

    __slots__ = ("calls", "resource")

    def __init__(self, resource: object, workers: int) -> None:
        self.resource = resource
        self.calls: list[list[_Raw]] = [[] for _ in range(workers)]


def _finish(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` to its end outside the loop's scheduling; it may only
    ``await asyncio.sleep(0)``-style bare yields.  For observer calls at
    quiescence, from frontrun's synchronous invariant."""
    try:
        while True:
            if coro.send(None) is not None:
                raise RuntimeError("an observer awaited a future at quiescence")
    except StopIteration as stop:
        return stop.value
    finally:
        coro.close()


class _Scenario:
    """One scenario as frontrun's ``setup``, ``workers`` and ``invariant``."""

    def __init__(self, case: Case, variant: Variant, scenario: Scenario, clock: Clock) -> None:
        self.case = case
        self.scenario = scenario
        self.clock = clock
        self.factory: Callable[[], Any] = (case.module.Buggy if variant == "buggy"
                                           else case.module.Fixed)
        self.marker = cancelled_marker(case.module)
        self.kind = "task" if case.kind == "asyncio" else "thread"
        self.problem: str | None = None

    def setup(self) -> _Trial:
        self.clock.started()
        return _Trial(self.factory(), len(self.scenario.plan))

    def _sync_worker(self, w: int, base: int, steps: list[Call]) -> Callable[[_Trial], None]:
        calls = [(base + j, op.fn, op.name, args) for j, (op, args) in enumerate(steps)]
        clock = time.monotonic_ns

        def worker(trial: _Trial) -> None:
            out, resource = trial.calls[w - 1], trial.resource
            for index, fn, name, args in calls:
                invoke = clock()
                try:
                    value = fn(resource, *args)
                except Exception as exc:  # an outcome to judge, unless it is frontrun's
                    if _is_frontrun_control(exc):
                        raise
                    out.append((index, name, args, invoke, clock(), False, exc))
                else:
                    out.append((index, name, args, invoke, clock(), True, value))

        return worker

    def _async_worker(self, w: int, base: int,
                      steps: list[Call]) -> Callable[[_Trial], Coroutine[Any, Any, None]]:
        calls = [(base + j, op.fn, op.name, args) for j, (op, args) in enumerate(steps)]
        clock = time.monotonic_ns

        async def worker(trial: _Trial) -> None:
            out, resource = trial.calls[w - 1], trial.resource
            for index, fn, name, args in calls:
                invoke = clock()
                try:
                    value = fn(resource, *args)
                    if inspect.isawaitable(value):
                        value = await value
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # an outcome to judge, unless it is frontrun's
                    if _is_frontrun_control(exc):
                        raise
                    out.append((index, name, args, invoke, clock(), False, exc))
                else:
                    out.append((index, name, args, invoke, clock(), True, value))

        return worker

    def workers(self) -> list[Callable[[_Trial], Any]]:
        """One worker function per worker of the plan."""
        make = self._async_worker if self.kind == "task" else self._sync_worker
        return [make(w, base, steps) for w, base, steps in plan_workers(self.scenario.plan)]

    def _run(self, trial: _Trial) -> Run:
        run = Run()
        for w, calls in enumerate(trial.calls, start=1):
            for index, name, args, invoke, response, ok, value in calls:
                outcome = returned(value, self.marker) if ok else raised(value)
                run.records.append(record(index, w, self.kind, name, args, invoke, outcome,
                                          response=response))
        index = sum(map(len, self.scenario.plan))
        for j, (op, args) in enumerate(self.scenario.suffix):
            invoke = time.monotonic_ns()
            if op.is_async:
                try:
                    outcome = returned(_finish(op.fn(trial.resource, *args)), self.marker)
                except Exception as exc:  # an outcome to judge
                    outcome = raised(exc)
            else:
                outcome = call(op.fn, trial.resource, args, self.marker)
            run.records.append(record(index + j, 0, self.kind, op.name, args, invoke, outcome,
                                      phase="suffix"))
        run.errors = invariant_errors(self.case.module, trial.resource)
        if self.kind != "task":
            run.errors += sync_teardown(trial.resource)
        return run

    def invariant(self, trial: _Trial) -> bool:
        """Judge the run; ``False`` (and the problem kept) if anything is wrong."""
        problem = judge(self.case, self._run(trial))
        if problem is None:
            return True
        if self.problem is None:
            self.problem = problem
            self.clock.failed(short(problem))
        return False


def _own_failure(result: Any) -> str | None:
    """A failure frontrun reported by itself (a deadlock, a crashed task), or ``None``."""
    if result.property_holds is False:
        return "frontrun: " + short(result.explanation or "failure")
    return None


def _explore(scenario: _Scenario, *, total_timeout: float) -> Any:
    import frontrun

    kwargs: dict[str, Any] = {"setup": scenario.setup, "workers": scenario.workers(),
                              "invariant": scenario.invariant, "total_timeout": total_timeout}
    if scenario.kind == "task":
        async def main() -> Any:
            return await frontrun.explore(**kwargs)

        return asyncio.run(main())
    return frontrun.explore(**kwargs)


def measure_frontrun(case: Case, variant: Variant, *, budget: float, seed: int,
                     progress: Progress) -> Measurement:
    """Explore scenarios of ``case``'s ``variant`` with frontrun for ``budget`` s.

    Args:
        case: from ``jostle.load_cases``; not a ``mixed`` one.
        variant: ``buggy`` or ``fixed``.
        budget: seconds; no round starts after it is spent, and a round gets
            what is left as frontrun's ``total_timeout``.
        seed: the ``--seed`` value.
        progress: where the first failure is reported as soon as it is seen.

    Returns:
        The measurement; ``executions`` counts frontrun's runs.
    """
    if case.kind in SKIPPED_KINDS:
        raise ValueError(f"frontrun cannot run {case.kind} case {case.id}: "
                         f"{SKIPPED_KINDS[case.kind]}")
    watchdog = _take_watchdog()
    rng = random.Random(derive_seed("frontrun", seed, case.id, variant))
    clock = Clock(progress, "frontrun")
    deadline = clock.start + budget
    watchdog.arm(deadline + SLACK_SECONDS, lambda: progress.done(clock.so_far()))
    rounds = 0
    inconclusive: list[str] = []
    drawn = scenarios(rng, list(case.module.OPERATIONS))
    try:
        while (left := deadline - time.monotonic()) > 0:
            scenario = _Scenario(case, variant, next(drawn), clock)
            first_run = clock.executions
            result = _explore(scenario, total_timeout=left)
            failure = scenario.problem
            if failure is None and (failure := _own_failure(result)) is not None:
                number = result.failures[0][0] if result.failures else result.num_explored
                clock.failed(short(failure), at=clock.ended_at(first_run + number - 1))
            if failure is not None:
                first = progress.first_seen
                assert first is not None
                workers, ops = scenario.scenario.size
                schedule = result.counterexample
                return Measurement(
                    detected=True, seconds_to_first=first["seconds_to_first"],
                    executions=clock.executions, failure=short(failure),
                    shrunk=Shrunk(workers=workers, ops=ops,
                                  preemptions=preemptions(schedule)
                                  if isinstance(schedule, list) else None))
            if result.property_holds is None:
                inconclusive.append(result.inconclusive_reason or "no reason given")
            rounds += 1
    finally:
        watchdog.disarm()
    note = (f"frontrun inconclusive in {len(inconclusive)} of {rounds} round(s): "
            f"{inconclusive[0]}" if inconclusive else None)
    return Measurement(detected=False, seconds_to_first=None, executions=clock.executions,
                       failure=None if note is None else short(note), shrunk=None)
