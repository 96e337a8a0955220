"""Runs one scenario against a fresh resource and records its history.

The engine owns the workers: a pool of persistent threads, one event loop in
a thread of its own, and a pool of persistent process workers.  For each
execution it

1. builds the resource on the loop thread (so asyncio primitives bind to it),
2. runs the sequential prefix as worker 0,
3. hands every parallel worker its steps, holds them all at a start gate,
   asks the scheduler to prepare, opens the gate, and waits for them under a
   watchdog deadline,
4. runs the suffix, the invariants and the teardown,

and returns an :class:`Execution`: the history plus everything that went
wrong outside the operations (stuck workers with their stacks, crashed
process workers, failing invariants, a failing teardown).  Judging it is the
checker's job, not the engine's.

The scheduler is asked at every scheduling point (see ``_scheduler``); the
engine itself never decides an interleaving.  Stuck workers are never
waited on forever: a stuck thread is abandoned and replaced, a stuck task is
cancelled (and its loop replaced if the loop itself is blocked), a stuck
process is killed and replaced.
"""

from __future__ import annotations

import _thread
import asyncio
import atexit
import concurrent.futures
import os
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from ._calls import (
    CallLedger,
    append_call,
    build,
    call_on_loop,
    call_sync,
    default_teardown,
    maybe_await,
    on_loop,
    raised,
)
from ._controlled_loop import ControlledEventLoop
from ._controlled_run import ControlledExecution
from ._driver import Driver, DriverLost, Session
from ._errors import SpecError
from ._execution import Execution, StuckWorker
from ._history import (
    OpRecord,
    Outcome,
    Phase,
    WorkerKind,
    now,
)
from ._loop import LoopThread
from ._misuse import process_handle
from ._processes import ProcessJob, ProcessPool, ProcessWorker
from ._scenario import Scenario, Step
from ._scheduler import ControlledScheduler, Point, Scheduler, StressScheduler, WorkerInfo
from ._spec import Operation, Spec
from ._stacks import blocked_at, task_stack, thread_stack
from ._threads import PoolThread, ThreadPool, in_worker
from ._tracing import DEFAULT_MODEL, Model

# Captured at import: controlled runs patch _thread.allocate_lock.
_allocate_lock = _thread.allocate_lock

__all__ = ["Engine", "execute", "get_engine", "resolve_ops"]

DEFAULT_TIMEOUT = 2.0
# concurrent.futures.TimeoutError is the builtin only from 3.11 on.
_TIMEOUTS = (TimeoutError, concurrent.futures.TimeoutError)


class _Gate:
    """Start gate: workers arrive, then all are released at once.

    Built on raw ``_thread`` locks so controlled mode's cooperative
    ``threading`` replacements never touch it.
    """

    def __init__(self, expected: int) -> None:
        self._lock = _allocate_lock()
        self._arrived = 0
        self._expected = expected
        self._all = _allocate_lock()
        self._open = _allocate_lock()
        self._open.acquire()
        if expected:
            self._all.acquire()

    def arrive(self) -> None:
        with self._lock:
            self._arrived += 1
            if self._arrived == self._expected:
                self._all.release()

    def wait_arrived(self, timeout: float) -> bool:
        if not self._expected:
            return True
        if self._all.acquire(timeout=max(timeout, 0.0)):
            self._all.release()
            return True
        return False

    def wait_open(self) -> None:
        self._open.acquire()
        self._open.release()

    def open(self) -> None:
        if self._open.locked():
            self._open.release()


_running = threading.local()


class Engine:
    """Owns the worker pools and runs scenarios.

    Args:
        timeout: default watchdog deadline per execution, in seconds.
        start_method: ``forkserver`` (default on Linux) or ``spawn`` for
            process workers.
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT,
                 start_method: str | None = None) -> None:
        self.timeout = timeout
        self.threads = ThreadPool()
        self._start_method = start_method
        self._loop: LoopThread | None = None
        self._driver: Driver | None = None
        self._procs: ProcessPool | None = None
        self._lock = _allocate_lock()
        self.executions = 0

    @property
    def loop(self) -> LoopThread:
        """The live event-loop thread (a new one if the last was abandoned)."""
        if self._loop is None or self._loop.abandoned:
            self._loop = LoopThread()
        return self._loop

    @property
    def driver(self) -> Driver:
        """The controlled-run machinery (driver thread, pinned thread pool)."""
        if self._driver is None:
            self._driver = Driver()
        return self._driver

    @property
    def driver_loop(self) -> ControlledEventLoop:
        """The controlled event loop of the current driver thread."""
        return self.driver.loop

    def controlled_session(self, *, model: Model = DEFAULT_MODEL) -> Session:
        """A session of controlled executions, to open on the calling thread
        (see ``_driver``): ``with engine.controlled_session() as s:
        s.call(lambda: engine.execute(...))``."""
        return Session(self.driver, model=model)

    @property
    def processes(self) -> ProcessPool:
        """The process-worker pool, started on first use."""
        if self._procs is None:
            self._procs = ProcessPool(start_method=self._start_method)
        return self._procs

    def close(self) -> None:
        """Stop every worker this engine started."""
        self.threads.close()
        if self._loop is not None:
            self._loop.close()
        self._loop = None
        if self._driver is not None:
            self._driver.close()
            self._driver = None
        if self._procs is not None:
            self._procs.close()
            self._procs = None

    # ------------------------------------------------------------------
    def execute(
        self,
        spec: Spec,
        scenario: Scenario,
        *,
        scheduler: Scheduler | None = None,
        timeout: float | None = None,
    ) -> Execution:
        """Run ``scenario`` once against a fresh resource.

        Raises:
            SpecError: the factory failed, the scenario names an unknown
                operation or puts one on a kind it cannot run on, or jostle
                is already running an execution on this thread.
            SpecTypeError: an operation or the resource cannot be sent to a
                process worker.
        """
        sched = scheduler or StressScheduler()
        limit = self.timeout if timeout is None else timeout
        if (isinstance(sched, ControlledScheduler) and self.driver.on_driver()
                and self.driver.session is not None and self.driver.session.current is None):
            return self._controlled(spec, scenario, sched, limit)  # inside a session's call
        if getattr(_running, "active", False) or in_worker():
            raise SpecError(
                "a jostle execution was started from inside another one (an operation, "
                f"model or invariant called jostle.run/execute{_user_site()}): the outer "
                "run's workers, loop and scheduler are busy running it. Fix: run jostle "
                "tests side by side, not nested; to test code that itself uses jostle, "
                "call it from a test of its own")
        _running.active = True
        try:
            if isinstance(sched, ControlledScheduler):
                with self.controlled_session(model=sched.model) as session:
                    try:
                        return session.call(
                            partial(self._controlled, spec, scenario, sched, limit))
                    except DriverLost as lost:
                        return lost.execution  # type: ignore[no-any-return]
            with self._lock:
                self.executions += 1
            return _Run(self, spec, scenario, sched, limit).run()
        finally:
            _running.active = False

    def _controlled(self, spec: Spec, scenario: Scenario, sched: ControlledScheduler,
                    timeout: float) -> Execution:
        """One controlled execution, on the driver thread of the open session."""
        session = self.driver.session
        if session is None:
            raise SpecError("internal: a controlled execution needs an open session")
        if session.model != sched.model:
            raise SpecError(
                f"this controlled session traces the {session.model!r} preemption model, but "
                f"the scheduler asks for {sched.model!r}; open a session per model")
        ops = resolve_ops(spec, scenario)
        with self._lock:
            self.executions += 1
        return ControlledExecution(self, session, spec, scenario, ops, sched, timeout).run()


def resolve_ops(spec: Spec, scenario: Scenario) -> dict[int, tuple[Step, Operation]]:
    """The scenario's steps, by index, with their operations.

    Raises:
        SpecError: a step names an operation the spec does not define, or
            puts one on a worker kind it cannot run on.
    """
    out = {}
    for index, worker, phase, step in scenario.indexed():
        try:
            op = spec.op(step.op)
        except SpecError:
            raise SpecError(
                f"the scenario's step {index} calls {step.op!r}, which spec "
                f"{spec.name!r} does not define; operations: "
                f"{', '.join(o.name for o in spec.operations)}"
            ) from None
        if phase == "parallel":
            kind = scenario.workers[worker - 1].kind
            if kind not in op.kinds:
                fix = (f"put it on a {'task' if op.is_async else sorted(op.kinds)[0]!r} "
                       "worker (WorkerPlan(kind, ...))")
                raise SpecError(
                    f"the scenario puts operation {op.name!r} on a {kind} worker (worker "
                    f"{worker}), but it can run on {sorted(op.kinds)} only"
                    + ("; an async def runs as a task on jostle's event loop, never on a "
                       "thread or process" if op.is_async else "")
                    + f". Fix: {fix}, or widen jostle.operation({op.name}, kinds=...)"
                    + (" with a synchronous wrapper" if op.is_async else "")
                )
        out[index] = (step, op)
    return out


class _Run(CallLedger):
    """The state of one execution (kept out of Engine so runs never share it)."""

    def __init__(self, engine: Engine, spec: Spec, scenario: Scenario,
                 scheduler: Scheduler, timeout: float) -> None:
        self.engine = engine
        self.spec = spec
        self.scenario = scenario
        self.sched = scheduler
        self.timeout = timeout
        super().__init__()
        self.tasks: dict[int, asyncio.Task[Any]] = {}

    @property
    def aloop(self) -> LoopThread:
        """The loop this run's async work goes to."""
        return self.engine.loop

    def run(self) -> Execution:
        ops = resolve_ops(self.spec, self.scenario)
        resource = self._build_resource()
        try:
            ok = self._sequential("prefix", ops, resource)
            if ok:
                ok = self._parallel(ops, resource)
            self.after_parallel(ok, ops, resource)
        finally:
            self._teardown(resource)
        return self._execution(resource)

    def after_parallel(self, ok: bool, ops: dict[int, tuple[Step, Operation]],
                       resource: object) -> None:
        """The suffix and the invariants, if everything before went well."""
        if ok:
            ok = self._sequential("suffix", ops, resource)
        if ok:
            self._invariants(resource)

    def _execution(self, resource: object) -> Execution:
        return self._execution_of(self.scenario, self.sched.describe(), self.timeout,
                                  type(resource).__name__)

    def _build_resource(self) -> object:
        loop = self.aloop
        try:
            resource = loop.call(build(self.spec.factory), self.timeout)
        except TimeoutError:
            raise SpecError(
                f"the resource factory {self.spec.name} did not return within "
                f"{self.timeout} s; a factory must build the resource without waiting "
                "for anything that only the operations provide"
            ) from None
        except Exception as exc:
            raise SpecError(
                f"the resource factory {self.spec.name} raised {type(exc).__name__}: {exc}; "
                "jostle calls it with no arguments, on its event-loop thread, once per "
                "execution. Fix: make the factory succeed when called alone (its "
                "traceback is chained below), or wrap it in a function that takes no "
                "arguments") from exc
        if resource is None:
            raise SpecError(
                f"the resource factory {self.spec.name} returned None, so every operation "
                "would receive None as its resource. Fix: return the shared resource the "
                "operations receive as their first argument (a class, or a function ending "
                "in `return resource`)"
            )
        return resource

    # -- sequential parts ----------------------------------------------
    def _sequential(self, phase: Phase, ops: dict[int, tuple[Step, Operation]],
                    resource: object) -> bool:
        loop = self.aloop
        for index, _w, ph, _s in self.scenario.indexed():
            if ph != phase:
                continue
            step, op = ops[index]
            kind: WorkerKind = "task" if on_loop(op) else "thread"
            invoke = now()
            self._start(0, (index, step, op, kind, phase, invoke))
            outcome: Outcome | None
            if kind == "task":
                fut = loop.submit(self._seq_task(op, resource, step.args))
                try:
                    outcome = fut.result(self.timeout)
                except _TIMEOUTS:
                    outcome = None
                    self._stuck_task(0, fut)
            else:
                box: list[Outcome] = []
                (pt,) = self.engine.threads.acquire(1)
                pt.submit(partial(append_call, box, op, resource, step.args))
                if pt.wait(self.timeout):
                    outcome = box[0]
                    self.engine.threads.release([pt])
                else:
                    outcome = None
                    self._stuck_thread(0, pt)
            if outcome is None:
                return False
            self._finish(0, OpRecord(index, 0, kind, phase, op.name, step.args, invoke, now(),
                                     outcome))
        return True

    async def _seq_task(self, op: Operation, resource: object, args: tuple[Any, ...]) -> Outcome:
        me = asyncio.current_task()
        if me is not None:
            self.tasks[0] = me
        return await call_on_loop(op, resource, args)

    # -- the parallel part ---------------------------------------------
    def _parallel(self, ops: dict[int, tuple[Step, Operation]], resource: object) -> bool:
        plans = self.scenario.workers
        if not plans:
            return True
        steps: dict[int, list[tuple[int, Step, Operation]]] = {
            w: [] for w in range(1, len(plans) + 1)}
        for index, worker, phase, _s in self.scenario.indexed():
            if phase == "parallel":
                step, op = ops[index]
                steps[worker].append((index, step, op))
        by_kind: dict[WorkerKind, list[int]] = {"thread": [], "task": [], "process": []}
        for w, plan in enumerate(plans, start=1):
            by_kind[plan.kind].append(w)
        infos = tuple(WorkerInfo(w, p.kind, len(p.steps)) for w, p in enumerate(plans, start=1))
        deadline = time.monotonic() + self.timeout
        gate = _Gate(len(by_kind["thread"]) + len(by_kind["task"]))
        aevent = asyncio.Event()

        # Processes first: submitting pickles the job, the step most likely to
        # fail on misuse, before any thread is waiting at the gate.
        procs: list[tuple[int, ProcessWorker]] = []
        if by_kind["process"]:
            handle = process_handle(self.spec, resource, by_kind["process"][0])
            pool = self.engine.processes
            workers = pool.acquire(len(by_kind["process"]))
            try:
                for w, pw in zip(by_kind["process"], workers, strict=True):
                    pw.submit(ProcessJob(
                        job_id=self.engine.executions, worker=w, phase="parallel",
                        handle=handle,
                        steps=tuple((i, op.name, op.fn, s.args) for i, s, op in steps[w]),
                        pause_at_points=self.sched.remote_points, wait_for_go=True,
                    ))
                    procs.append((w, pw))
                # Attach before any thread waits at the gate: an attach error
                # (a SpecError with the worker's traceback) then leaves
                # nothing half-started.
                # A worker that dies or stalls here is reported by collect().
                for _w, pw in procs:
                    pw.wait_ready(max(deadline - time.monotonic(), 0.0))
            except BaseException:
                for pw in workers:
                    pool.discard(pw)
                raise
        self.sched.begin(infos)
        threads = self.engine.threads.acquire(len(by_kind["thread"]))
        for w, pt in zip(by_kind["thread"], threads, strict=True):
            pt.submit(partial(self._thread_worker, w, steps[w], resource, gate))
        loop = self.aloop
        futures = {
            w: loop.submit(self._task_worker(w, steps[w], resource, gate, aevent))
            for w in by_kind["task"]
        }
        gate.wait_arrived(deadline - time.monotonic())
        self.sched.before_release()
        gate.open()
        loop.loop.call_soon_threadsafe(aevent.set)
        for _w, pw in procs:
            if pw.alive:
                pw.go()
        try:
            self._wait_parallel(threads, by_kind["thread"], futures, procs, deadline)
        finally:
            self.sched.end()
        return not self.stuck

    def _thread_worker(self, w: int, steps: list[tuple[int, Step, Operation]],
                       resource: object, gate: _Gate | None) -> None:
        sched = self.sched
        if gate is not None:  # stress: wait for everyone; controlled: the baton decides
            gate.arrive()
            gate.wait_open()
        sched.thread_point(w, Point.START)
        for index, step, op in steps:
            sched.thread_point(w, Point.INVOKE)
            invoke = now()
            self._start(w, (index, step, op, "thread", "parallel", invoke))
            outcome = call_sync(op, resource, step.args)
            self._finish(w, OpRecord(index, w, "thread", "parallel", op.name, step.args,
                                     invoke, now(), outcome))
            sched.thread_point(w, Point.RETURN)
        sched.thread_point(w, Point.END)

    async def _task_worker(self, w: int, steps: list[tuple[int, Step, Operation]],
                           resource: object, gate: _Gate | None,
                           aevent: asyncio.Event | None) -> None:
        me = asyncio.current_task()
        assert me is not None
        self.tasks[w] = me
        sched = self.sched
        if gate is not None and aevent is not None:
            gate.arrive()
            await aevent.wait()
        await sched.task_point(w, Point.START)
        for index, step, op in steps:
            await sched.task_point(w, Point.INVOKE)
            invoke = now()
            self._start(w, (index, step, op, "task", "parallel", invoke))
            outcome = await call_on_loop(op, resource, step.args)
            self._finish(w, OpRecord(index, w, "task", "parallel", op.name, step.args,
                                     invoke, now(), outcome))
            if w in self.dead:
                raise asyncio.CancelledError  # the watchdog gave up on this worker
            await sched.task_point(w, Point.RETURN)
        await sched.task_point(w, Point.END)

    def _wait_parallel(self, threads: list[PoolThread], thread_ids: list[int],
                       futures: dict[int, Any], procs: list[tuple[int, ProcessWorker]],
                       deadline: float) -> None:
        done_threads = []
        for w, pt in zip(thread_ids, threads, strict=True):
            if pt.wait(deadline - time.monotonic()):
                done_threads.append(pt)
            else:
                self._stuck_thread(w, pt)
        self.engine.threads.release(done_threads)
        for w, fut in futures.items():
            try:
                fut.result(max(deadline - time.monotonic(), 0.0))
            except _TIMEOUTS:
                self._stuck_task(w, fut)
            except asyncio.CancelledError:
                pass
        pool = self.engine.processes if procs else None
        for w, pw in procs:
            records = pw.collect(max(deadline - time.monotonic(), 0.0))
            if records is None:
                self._stuck_process(w, pw)
                continue
            for r in records:
                self.rec.add(r)
            assert pool is not None
            if not pw.alive:
                self.crashed.append(w)
                self.exit_statuses.append((w, pw.exitcode))
                pool.discard(pw)
            else:
                pool.release([pw])

    # -- stuck workers -------------------------------------------------
    def _stuck_thread(self, w: int, pt: PoolThread) -> None:
        stack, where = thread_stack(pt.ident)
        self.engine.threads.abandon(pt)
        self.stuck.append(StuckWorker(w, "thread", self._pending(w, "hung"), stack, where))

    def _stuck_task(self, w: int, fut: Any) -> None:
        loop = self.aloop
        task = self.tasks.get(w)
        if task is not None:
            stack, where = task_stack(task)
        else:
            stack, where = "(task never started)", None
        op = self._pending(w, "hung")
        if not loop.responsive(0.2):
            # The loop thread itself is blocked: show that and replace the loop.
            lstack, lwhere = thread_stack(loop.ident)
            stack = f"event loop thread blocked:\n{lstack}\n{stack}"
            where = lwhere or where
            loop.abandoned = True
        else:
            fut.cancel()
        self.stuck.append(StuckWorker(w, "task", op, stack, where))

    def _stuck_process(self, w: int, pw: ProcessWorker) -> None:
        stack = pw.dump_stacks()
        self.engine.processes.discard(pw)
        self.stuck.append(StuckWorker(w, "process", self._pending(w, "hung"),
                                      stack, blocked_at(stack)))

    # -- after the run -------------------------------------------------
    def _invariants(self, resource: object) -> None:
        loop = self.aloop
        checks: list[Callable[[object], object]] = list(self.spec.invariants)
        if self.spec.model_invariants is not None:
            history, check = self.rec.history(), self.spec.model_invariants
            checks.append(lambda res: check(res, history))
        for inv in checks:
            try:
                loop.call(maybe_await(inv, resource), self.timeout)
            except TimeoutError:
                stack, where = thread_stack(loop.ident)
                loop.abandoned = not loop.responsive(0.2)
                self.stuck.append(StuckWorker(
                    0, "task", f"invariant {getattr(inv, '__name__', inv)}", stack, where))
                return
            except KeyboardInterrupt:
                raise  # Ctrl-C while the test waits: an interrupt, not a finding
            except BaseException as exc:  # reported by the checker
                self.errors.append(("invariant", raised(exc)))

    def _teardown(self, resource: object) -> None:
        teardown = self.spec.teardown or default_teardown
        loop = self.aloop
        if loop.abandoned:
            return
        try:
            loop.call(maybe_await(teardown, resource), self.timeout)
        except TimeoutError:
            if not self.stuck:
                stack, where = thread_stack(loop.ident)
                self.stuck.append(StuckWorker(0, "task", "teardown", stack, where))
            loop.abandoned = not loop.responsive(0.2)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            if not self.stuck:  # after a hang, a failing teardown is expected noise
                self.errors.append(("teardown", raised(exc)))


def _user_site() -> str:
    """`` at file:line``: the innermost caller outside jostle, for messages."""
    import traceback

    here = os.path.dirname(os.path.abspath(__file__))
    for frame in reversed(traceback.extract_stack()[:-1]):
        if not os.path.abspath(frame.filename).startswith(here + os.sep):
            return f" at {frame.filename}:{frame.lineno}"
    return ""


_engine: Engine | None = None
_engine_lock = _allocate_lock()


def get_engine() -> Engine:
    """The process-wide engine, created on first use and closed at exit."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = Engine()
            atexit.register(_engine.close)
        return _engine


def execute(
    spec: Spec,
    scenario: Scenario,
    *,
    scheduler: Scheduler | None = None,
    timeout: float | None = None,
) -> Execution:
    """Run ``scenario`` once against a fresh resource built by ``spec``.

    This runs; it does not judge.  Pass the result to :func:`jostle.judge`
    (or use :func:`jostle.replay`, which does both and raises).

    Args:
        spec: the resource and its operations.
        scenario: what to run (see :class:`jostle.Scenario`).
        scheduler: who decides the interleaving (default: a fresh
            :class:`jostle.StressScheduler`).
        timeout: watchdog deadline in seconds (default 2).

    Returns:
        The :class:`jostle.Execution`.

    Example:
        >>> import jostle
        >>> from hypothesis import strategies as st
        >>> def add(s, x): s.add(x)
        >>> class Model:
        ...     def __init__(self): self.s = set()
        ...     def add(self, x): self.s.add(x)
        >>> spec = jostle.spec(set, jostle.operation(add, st.integers()), model=Model)
        >>> run = jostle.execute(spec, jostle.Scenario(workers=(
        ...     jostle.WorkerPlan("thread", (jostle.Step("add", (1,)),)),)))
        >>> [r.call_repr() for r in run.history.ops]
        ['add(1)']
    """
    return get_engine().execute(spec, scenario, scheduler=scheduler, timeout=timeout)
