"""The ``naive`` tool: what a user writes today without jostle.

Issue 4 defines it: hammer the resource with random plans of 2-4 workers and
1-200 operations each, and judge each run by invariant, unexpected
exception, hang and linearizability.  The *driving* is deliberately what a
careful user would write by hand, with no scheduling control and no
shrinking:

* ``thread`` cases: plain threads released together by a ``Barrier``, with
  ``sys.setswitchinterval(1e-6)`` while they run (pytest-run-parallel does
  the same);
* ``asyncio`` cases: one ``asyncio.run`` per run, building the resource
  inside the loop and ``asyncio.gather``-ing one coroutine per worker;
* ``process`` cases: a ``ProcessPoolExecutor`` (forkserver: fork with live
  threads is unsafe and deprecated on 3.12+), created once per measurement;
  the resource is pickled to the workers (the format's resources pickle to
  handles);
* ``mixed`` cases: an event loop running in a thread of its own, plain
  threads as workers; ``where="loop"`` operations are sent to the loop with
  ``asyncio.run_coroutine_threadsafe``, ``where="thread"`` ones are called
  directly.

Operations and arguments are drawn uniformly from the case's
``OPERATIONS`` and argument domains with ``random.Random(seed)``.  An async
operation returning the case package's ``CANCELLED`` marker is an unknown
outcome (it may or may not have taken effect).

The *judging* (``_judge``, shared with the peer adapters) reuses jostle's
public linearizability checker (``jostle.check_linearizability`` on
``jostle.OpRecord`` histories built here): that is the fair part, a user
would reuse a checker too.  A search that hits ``MAX_CHECK_STEPS`` is
undecided and not counted as a failure.  A hang is a run still going
after ``HANG_TIMEOUT`` seconds: longer than jostle's 2 s watchdog, because a
fixed twin may legitimately spend 200 x 20 ms in queue ``get()`` timeouts.
A run is started only while the budget lasts, and its verdict counts even if
it ends after the deadline.

The counterexample a naive run reports is the whole failing plan, so the
``shrunk`` field holds that plan's size (nothing is shrunk).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from types import TracebackType
from typing import Any

from jostle import Case, OpRecord, Raised, Returned, Unknown

from ._judge import (
    HANG_TIMEOUT,
    MAX_CHECK_STEPS,
    Call,
    Plan,
    Run,
    acall,
    async_teardown,
    build,
    call,
    cancelled_marker,
    invariant_errors,
    judge,
    plan_workers,
    record,
    sync_teardown,
)
from ._measure import Measurement, Progress, Shrunk, Variant, derive_seed, short

__all__ = ["HANG_TIMEOUT", "MAX_CHECK_STEPS", "measure_naive", "random_plan"]

MIN_WORKERS, MAX_WORKERS = 2, 4
MIN_OPS, MAX_OPS = 1, 200
SWITCH_INTERVAL = 1e-6


def random_plan(rng: random.Random, operations: Sequence[Any]) -> Plan:
    """2-4 workers of 1-200 calls, operations and arguments drawn uniformly."""
    return [
        [(op, tuple(rng.choice(tuple(domain)) for domain in op.args))
         for op in (rng.choice(operations) for _ in range(rng.randint(MIN_OPS, MAX_OPS)))]
        for _ in range(rng.randint(MIN_WORKERS, MAX_WORKERS))
    ]


class _Driver:
    """Runs plans against fresh resources of one variant of one case."""

    kind: Any = "thread"

    def __init__(self, case: Case, variant: Variant) -> None:
        self.module = case.module
        self.factory: Callable[[], Any] = (case.module.Buggy if variant == "buggy"
                                           else case.module.Fixed)
        self.marker = cancelled_marker(case.module)

    def __enter__(self) -> _Driver:
        return self

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def run(self, plan: Plan) -> Run:
        """Run ``plan`` once against a fresh resource."""
        raise NotImplementedError

    def _threads(self, resource: object, plan: Plan,
                 run_call: Callable[[Any, tuple[Any, ...]], Returned | Raised | Unknown],
                 kind_of: Callable[[Any], Any]) -> Run:
        """Run each worker of ``plan`` on a plain thread, released together."""
        out = Run()
        barrier = threading.Barrier(len(plan))

        def worker(w: int, base: int, steps: list[Call]) -> None:
            barrier.wait()
            for j, (op, args) in enumerate(steps):
                invoke = time.monotonic_ns()
                outcome = run_call(op, args)
                out.records.append(record(base + j, w, kind_of(op), op.name, args, invoke,
                                          outcome))

        threads = [threading.Thread(target=worker, args=(w, base, steps), daemon=True,
                                    name=f"naive-worker-{w}")
                   for w, base, steps in plan_workers(plan)]
        saved = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            for t in threads:
                t.start()
            deadline = time.monotonic() + HANG_TIMEOUT
            for t in threads:
                t.join(max(deadline - time.monotonic(), 0.0))
        finally:
            sys.setswitchinterval(saved)
        out.hung = sum(t.is_alive() for t in threads)
        return out


class _ThreadDriver(_Driver):
    kind = "thread"

    def run(self, plan: Plan) -> Run:
        resource = self.factory()
        out = self._threads(resource, plan,
                            lambda op, args: call(op.fn, resource, args, self.marker),
                            lambda op: "thread")
        if not out.hung:
            out.errors = invariant_errors(self.module, resource) + sync_teardown(resource)
        return out


class _AsyncioDriver(_Driver):
    kind = "task"

    async def _main(self, plan: Plan) -> Run:
        resource = await build(self.factory)
        out = Run()
        finished = [False] * len(plan)

        async def worker(w: int, base: int, steps: list[Call]) -> None:
            for j, (op, args) in enumerate(steps):
                invoke = time.monotonic_ns()
                outcome = await acall(op.fn, resource, args, self.marker)
                out.records.append(record(base + j, w, "task", op.name, args, invoke, outcome))
            finished[w - 1] = True

        try:
            await asyncio.wait_for(
                asyncio.gather(*(worker(w, base, steps) for w, base, steps
                                 in plan_workers(plan))),
                HANG_TIMEOUT)
        except asyncio.TimeoutError:
            out.hung = finished.count(False)
            return out
        out.errors = invariant_errors(self.module, resource) + await async_teardown(resource)
        return out

    def run(self, plan: Plan) -> Run:
        box: list[Run] = []
        # asyncio.run in a thread of its own, so a loop blocked by sync code
        # (which wait_for cannot interrupt) still ends as a hang.
        thread = threading.Thread(target=lambda: box.append(asyncio.run(self._main(plan))),
                                  daemon=True, name="naive-loop")
        thread.start()
        thread.join(HANG_TIMEOUT + 1.0)
        if thread.is_alive():
            return Run(hung=len(plan))
        if not box:
            raise RuntimeError("the naive asyncio run ended without a result (see stderr)")
        return box[0]


def _portable(outcome: Returned | Raised | Unknown) -> Returned | Raised | Unknown:
    """``outcome``, with a stand-in for an exception that cannot be pickled."""
    if isinstance(outcome, Raised):
        try:
            pickle.dumps(outcome.exception)
        except Exception:  # unpicklable exceptions come back as a stand-in
            stand_in = RuntimeError(f"{type(outcome.exception).__name__}: {outcome.exception}")
            stand_in.__jostle_type_name__ = type(outcome.exception).__qualname__  # type: ignore[attr-defined]
            return Raised(stand_in, outcome.traceback)
    return outcome


def _process_worker(resource: object, steps: list[tuple[Callable[..., Any], str, tuple[Any, ...]]],
                    worker: int, base: int, marker: object) -> list[OpRecord]:
    """Runs in a pool process: one worker's calls, with their timestamps."""
    records = []
    for j, (fn, name, args) in enumerate(steps):
        invoke = time.monotonic_ns()
        outcome = _portable(call(fn, resource, args, marker))
        records.append(record(base + j, worker, "process", name, args, invoke, outcome))
    return records


class _ProcessDriver(_Driver):
    kind = "process"

    def __enter__(self) -> _ProcessDriver:
        self.pool = ProcessPoolExecutor(max_workers=MAX_WORKERS,
                                        mp_context=multiprocessing.get_context("forkserver"))
        return self

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        for child in multiprocessing.active_children():  # hung workers
            child.kill()

    def run(self, plan: Plan) -> Run:
        resource = self.factory()
        futures = [
            self.pool.submit(_process_worker, resource,
                             [(op.fn, op.name, args) for op, args in steps], w, base,
                             self.marker)
            for w, base, steps in plan_workers(plan)
        ]
        done, pending = wait(futures, timeout=HANG_TIMEOUT, return_when=FIRST_EXCEPTION)
        if pending and not any(f.exception() for f in done):
            return Run(hung=len(pending))
        out = Run()
        for f in futures:
            out.records.extend(f.result())  # a broken pool raises: a harness error
        out.errors = invariant_errors(self.module, resource) + sync_teardown(resource)
        return out


class _MixedDriver(_Driver):
    kind = "mixed"

    def __enter__(self) -> _MixedDriver:
        self.loop = asyncio.new_event_loop()
        self.loop_thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                            name="naive-loop")
        self.loop_thread.start()
        return self

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.loop_thread.join(1.0)
        if not self.loop_thread.is_alive():
            self.loop.close()

    @staticmethod
    def _on_loop(op: Any) -> bool:
        return bool(op.is_async) or op.where == "loop"

    def _call(self, resource: object, op: Any,
              args: tuple[Any, ...]) -> Returned | Raised | Unknown:
        if self._on_loop(op):
            future = asyncio.run_coroutine_threadsafe(
                acall(op.fn, resource, args, self.marker), self.loop)
            return future.result()
        return call(op.fn, resource, args, self.marker)

    def run(self, plan: Plan) -> Run:
        resource = asyncio.run_coroutine_threadsafe(build(self.factory),
                                                    self.loop).result(HANG_TIMEOUT)
        out = self._threads(resource, plan, lambda op, args: self._call(resource, op, args),
                            lambda op: "task" if self._on_loop(op) else "thread")
        if not out.hung:
            teardown = asyncio.run_coroutine_threadsafe(async_teardown(resource), self.loop)
            out.errors = (invariant_errors(self.module, resource)
                          + teardown.result(HANG_TIMEOUT))
        return out


_DRIVERS: dict[str, type[_Driver]] = {
    "thread": _ThreadDriver,
    "asyncio": _AsyncioDriver,
    "process": _ProcessDriver,
    "mixed": _MixedDriver,
}



def measure_naive(case: Case, variant: Variant, *, budget: float, seed: int,
                  progress: Progress) -> Measurement:
    """Hammer ``case``'s ``variant`` with random plans for ``budget`` seconds.

    Args:
        case: from ``jostle.load_cases``.
        variant: ``buggy`` or ``fixed``.
        budget: seconds; no run starts after it is spent.
        seed: the ``--seed`` value.
        progress: where the failure is reported as soon as it is seen.

    Returns:
        The measurement; ``executions`` counts runs.
    """
    rng = random.Random(derive_seed("naive", seed, case.id, variant))
    operations = list(case.module.OPERATIONS)
    start = time.monotonic()
    runs = 0
    with _DRIVERS[case.kind](case, variant) as driver:
        while time.monotonic() - start < budget:
            plan = random_plan(rng, operations)
            runs += 1
            problem = judge(case, driver.run(plan))
            if problem is not None:
                seconds = time.monotonic() - start
                failure = short(problem)
                progress.first(seconds, runs, failure)
                return Measurement(
                    detected=True, seconds_to_first=seconds, executions=runs, failure=failure,
                    shrunk=Shrunk(workers=len(plan), ops=max(map(len, plan)), preemptions=None),
                )
    return Measurement(detected=False, seconds_to_first=None, executions=runs, failure=None,
                       shrunk=None)
