"""One controlled execution: every phase and every worker under one baton.

The execution runs on the driver thread (``_driver``) as the entity
``main`` (id 0), the way a real program's main thread would: it builds the
resource, runs the sequential prefix, starts the parallel workers, runs the
event loop for the task workers (tasks are sub-choices of ``main``), joins
the thread and process workers, then runs the suffix, the invariants and the
teardown.  Worker ``w`` of the scenario is entity ``w``, so a schedule's
"switch to entity 2" means worker 2; task workers are placeholders (never
runnable) that keep the numbering.

Because the sequential parts run under the same controller, everything is
on the virtual clock: a ``get(timeout=0.02)`` on an empty queue in the
suffix times out at once in virtual time instead of waiting 20 ms, and an
operation that blocks for ever there is a deadlock reported at once.  Steps
count decisions only (``_control``), so whatever the prefix does, the
parallel part's decisions are numbered from 1.

Entities are *busy* (not traced, primitives in real mode) whenever they run
jostle's own bookkeeping, and not busy only while the user's code runs: the
records, timestamps and checks between two operations are never scheduling
points, so they cost nothing and never appear in a schedule.

What the run did that is not an operation's outcome (a deadlock with its
wait-for cycle, a livelock, blocking outside jostle's control, lock-order
inversions) goes into the :class:`~jostle._engine.Execution` for the checker.
"""

from __future__ import annotations

import _thread
import asyncio
import asyncio.events as asyncio_events
import inspect
import random
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from ._calls import CallLedger, awaitable, default_teardown, not_awaited, on_loop, raised
from ._control import Aborted, Controller, Entity, EntityState
from ._controlled_loop import ControlledEventLoop, LoopRun, LoopStuck, run_controlled
from ._controlled_processes import ProxyResult, run_proxy
from ._controlled_threads import DeadlockReport
from ._deadlocks import describe_wait_for
from ._driver import Session, Watch
from ._errors import SpecError
from ._execution import Execution, StuckWorker
from ._history import (
    OpRecord,
    Outcome,
    Phase,
    Raised,
    Returned,
    Unknown,
    WorkerKind,
    now,
    outcome_of,
)
from ._misuse import process_handle
from ._nondeterminism import FIXED_RANDOM_STATE
from ._processes import ProcessJob, ProcessWorker
from ._scenario import Scenario, Step
from ._scheduler import ControlledScheduler
from ._spec import Operation, Spec
from ._stacks import thread_stack
from ._window import _real_monotonic as _wall

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["ControlledExecution"]

_allocate_lock = _thread.allocate_lock
T = TypeVar("T")

#: A controlled run may take this many times its ``timeout`` of wall time.
WALL_FACTOR = 10


class _Join:
    """What ``main`` waits for when it has no tasks to run (its repr is what a
    deadlock report shows)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<main waiting for the workers to finish>"


_JOIN = _Join()


def _uses_loop(spec: Spec) -> bool:
    """Whether the resource must be built inside the running event loop: the
    spec has async work (the bugzoo format builds asyncio resources from a
    coroutine, so ``asyncio.get_running_loop()`` works in their constructor)."""
    return (inspect.iscoroutinefunction(spec.factory)
            or any(op.is_async or "task" in op.kinds for op in spec.operations))


class ControlledExecution(CallLedger):
    """One execution of ``scenario`` under ``sched``, run on the driver.

    Args:
        engine: owns the process pool and the driver.
        session: the open controlled session (window, tracer).
        spec: what is run.
        scenario: the operations and workers.
        ops: the scenario's steps resolved to operations, by index.
        sched: the controlled scheduler (strategy, model, bounds).
        timeout: wall-clock seconds the whole execution may take.
    """

    def __init__(self, engine: Engine, session: Session, spec: Spec, scenario: Scenario,
                 ops: dict[int, tuple[Step, Operation]], sched: ControlledScheduler,
                 timeout: float) -> None:
        self.engine = engine
        self.session = session
        self.spec = spec
        self.scenario = scenario
        self.ops = ops
        self.sched = sched
        self.timeout = timeout
        super().__init__()
        self.hang_reason: str | None = None
        self.deadlock: DeadlockReport | None = None
        self.resource: object = None
        self.ctl = Controller(sched.strategy, max_steps=sched.max_steps)
        self.main = self.ctl.add("main")
        self.ctl.on_deadlock = self._on_deadlock
        # A run that keeps making points is not hung (the step bound catches
        # a livelock, the watchdog a holder that stops making points): the
        # wall-clock deadline is only a backstop, generous so that a loaded
        # machine never turns a slow run into a hang.
        self.watch = Watch(self.ctl, _wall(), timeout * WALL_FACTOR, sched.watchdog, run=self)
        self.workers: dict[int, Entity] = {}
        # The scenario's steps by phase and worker, resolved once.
        self.phases: dict[Phase, list[tuple[int, Step, Operation]]] = {
            "prefix": [], "suffix": []}
        self.steps: dict[int, list[tuple[int, Step, Operation]]] = {
            w: [] for w in range(1, len(scenario.workers) + 1)}
        for index, worker, phase, _s in scenario.indexed():
            step, op = ops[index]
            (self.steps[worker] if phase == "parallel" else self.phases[phase]).append(
                (index, step, op))
        self.loop: ControlledEventLoop = engine.driver_loop
        self._join_key: object = _JOIN
        self._proxies: dict[int, tuple[ProcessWorker, ProxyResult]] = {}
        self._loop_runs: list[LoopRun] = []

    # -- user code as ``me`` ----------------------------------------------------------
    @staticmethod
    def _user(me: Entity, fn: Callable[..., Any], *args: Any) -> Any:
        """Call user code as ``me``: the only stretch where ``me`` is not busy."""
        me.busy = False
        try:
            return fn(*args)
        finally:
            me.busy = True

    def _call(self, me: Entity, op: Operation, resource: object, args: tuple[Any, ...]
              ) -> Outcome:

        try:
            value = self._user(me, op.fn, resource, *args)
        except Aborted:
            raise  # the controller gave up on this worker: unwind, do not record
        except BaseException as exc:  # every exception is a result to judge
            return raised(exc)
        if awaitable(value):
            return not_awaited(op, value)
        return outcome_of(value)

    def _on_loop(self, factories: Sequence[Callable[[], Coroutine[Any, Any, Any]]], *,
                 inject: bool = False, keep_running: Callable[[], bool] | None = None
                 ) -> LoopRun:
        """Run coroutines as tasks on the loop, as ``main`` (attached)."""
        me, loop = self.main, self.loop
        loop.track_user = True
        try:
            run = run_controlled(factories, controller=self.ctl, entity=me, loop=loop,
                                 inject=inject, holding=True, keep_running=keep_running,
                                 max_steps=self.sched.max_steps)
        finally:
            loop.track_user = False
            me.busy = True
        self._loop_runs.append(run)
        if me.aborted:
            raise Aborted(me.name)
        return run

    async def _await_user(self, me: Entity, fn: Callable[..., Any], *args: Any) -> object:
        """Await the user's ``fn(*args)`` in a task as ``me``; the task's steps
        are the user's (traced) until it returns."""
        task = asyncio.current_task()
        in_user = self.loop.in_user
        if task is not None:
            in_user.add(task)
        me.busy = False
        try:
            value = fn(*args)
            me.busy = True
            if awaitable(value):
                me.busy = False
                value = await value
            return value
        finally:
            if task is not None:
                in_user.discard(task)
            me.busy = True

    async def _call_async(self, me: Entity, op: Operation, resource: object,
                          args: tuple[Any, ...]) -> Outcome:

        try:
            value = await self._await_user(me, op.fn, resource, *args)
            return outcome_of(value)
        except asyncio.CancelledError:
            return Unknown("cancelled")
        except Aborted:
            raise
        except BaseException as exc:  # every exception is a result to judge
            return raised(exc)

    # -- the run ------------------------------------------------------------------
    def run(self) -> Execution:
        """Run every phase on the calling (driver) thread; return the record.

        Raises:
            SpecError, SpecTypeError: misuse found while running (a factory
                that fails, an operation that cannot go to a process).
        """
        session, main = self.session, self.main
        session.begin(self.watch)
        session.tmap.bind(main)
        self.ctl.hold(main)
        # What the user's code draws from the global generator depends on the
        # schedule alone (the session restores the caller's state).
        random.setstate(FIXED_RANDOM_STATE)
        main.busy = True
        try:
            try:
                self._build()
                ok = self._sequential("prefix")
                if ok:
                    ok = self._parallel()
                if ok:
                    ok = self._sequential("suffix")
                if ok:
                    self._invariants()
            except Aborted:
                pass  # why is in the controller and the watch
            finally:
                self._teardown()
            if not main.aborted:
                self.ctl.finish(main)
        finally:
            session.tmap.unbind()
            session.end()
        return self._execution()

    def _build(self) -> None:

        factory = self.spec.factory
        name = self.spec.name
        try:
            if _uses_loop(self.spec) and not inspect.iscoroutinefunction(factory):
                # Inside the running loop (get_running_loop() works, asyncio
                # primitives bind to it) without running it: callbacks or
                # tasks the constructor schedules run in the parallel part.
                resource = _in_running_loop(self.loop, self._user, self.main, factory)
                if inspect.isawaitable(resource):
                    run = self._on_loop([partial(_awaited, resource)])
                    if run.exceptions[0] is not None:
                        raise run.exceptions[0]
                    resource = run.results[0]
            elif _uses_loop(self.spec):
                run = self._on_loop([partial(self._await_user, self.main, factory)])
                if run.stuck is not None:
                    raise SpecError(
                        f"the resource factory {name} never returned ({run.stuck.headline}); "
                        "a factory must build the resource without waiting for anything "
                        "that only the operations provide")
                if run.exceptions[0] is not None:
                    raise run.exceptions[0]
                resource = run.results[0]
            else:
                resource = self._user(self.main, factory)
                if inspect.isawaitable(resource):
                    run = self._on_loop([partial(_awaited, resource)])
                    if run.exceptions[0] is not None:
                        raise run.exceptions[0]
                    resource = run.results[0]
        except (SpecError, Aborted):
            raise
        except Exception as exc:
            raise SpecError(
                f"the resource factory {name} raised {type(exc).__name__}: {exc}; "
                "jostle calls it with no arguments, once per execution. Fix: make the "
                "factory succeed when called alone (its traceback is chained below), or "
                "wrap it in a function that takes no arguments") from exc
        if resource is None:
            raise SpecError(
                f"the resource factory {name} returned None, so every operation would "
                "receive None as its resource. Fix: return the shared resource the "
                "operations receive as their first argument (a class, or a function ending "
                "in `return resource`)")
        self.resource = resource

    def _sequential(self, phase: Phase) -> bool:

        me, resource = self.main, self.resource
        for index, step, op in self.phases[phase]:
            kind: WorkerKind = "task" if on_loop(op) else "thread"
            invoke = now()
            self._start(0, (index, step, op, kind, phase, invoke))
            outcome: Outcome
            if kind == "task":
                run = self._on_loop([partial(self._call_async, me, op, resource, step.args)])
                if run.stuck is not None:
                    op_text = self._pending(0, "hung")
                    self._stuck_tasks(run.stuck, 0, op_text)
                    return False
                result = run.results[0]
                assert isinstance(result, (Returned, Raised, Unknown))
                outcome = result
            else:
                outcome = self._call(me, op, resource, step.args)
            self._finish(0, OpRecord(index, 0, kind, phase, op.name, step.args, invoke, now(),
                                     outcome))
        return True

    def _stuck_tasks(self, stuck: LoopStuck, worker: int, op_text: str | None) -> None:

        self.hang_reason = str(stuck).splitlines()[0]
        for t in stuck.tasks:
            self.stuck.append(StuckWorker(worker, "task", op_text or t.name, t.stack, t.where))

    # -- the parallel part ---------------------------------------------------------
    def _parallel(self) -> bool:
        plans = self.scenario.workers
        if not plans:
            return True
        ctl, main, steps = self.ctl, self.main, self.steps
        kinds = {w: p.kind for w, p in enumerate(plans, start=1)}
        task_ws = [w for w, k in kinds.items() if k == "task"]
        proc_ws = [w for w, k in kinds.items() if k == "process"]
        if proc_ws:
            self._start_processes(proc_ws, steps)
        for w, kind in kinds.items():
            state = EntityState.DONE if kind == "task" else EntityState.RUNNABLE
            self.workers[w] = ctl.add(f"worker {w} ({kind})", state=state)
        self._join_key = self.loop._wait_key if task_ws else _JOIN
        ctl.on_finish = self._on_finish
        pool = self.session.driver.pool
        for w, kind in kinds.items():
            if kind == "thread":
                pool.acquire().submit(partial(self._thread_job, self.workers[w], w, steps[w]))
            elif kind == "process":
                pw, result = self._proxies[w]
                pool.acquire().submit(partial(self._proxy_job, self.workers[w], pw, result))
        ok = True
        if task_ws:
            # main is traced only here: running the user's tasks beside thread
            # or process workers, the only time another entity can preempt
            # it (alone, a point is never a decision; tasks are its own picks).
            tracer = self.session.traced() if len(task_ws) < len(kinds) else None
            if tracer is not None:
                tracer.thread_begin()
            try:
                ctl.point(main, "start")
                factories = [partial(self._task_worker, w, steps[w]) for w in task_ws]
                run = self._on_loop(factories, inject=self.sched.inject,
                                    keep_running=self._workers_running)
            finally:
                if tracer is not None:
                    tracer.thread_end()
            if run.stuck is not None:
                self._stuck_tasks(run.stuck, 0, None)
                ok = False
        elif self._workers_running():
            ctl.block(main, _JOIN, label="main joins the workers")
        ctl.on_finish = None
        return self._collect_processes() and ok

    def _workers_running(self) -> bool:
        return any(e.state is not EntityState.DONE for e in self.workers.values())

    def _on_finish(self, entity: Entity) -> None:
        if entity is not self.main and not self._workers_running():
            self.ctl.wake(self._join_key)

    def _thread_job(self, me: Entity, w: int, steps: list[tuple[int, Step, Operation]]) -> None:
        session, ctl = self.session, self.ctl
        tracer = session.traced()
        session.tmap.bind(me)
        tracer.thread_begin()
        try:
            try:
                ctl.enter(me)
                me.busy = True
                resource = self.resource
                for index, step, op in steps:
                    invoke = now()
                    self._start(w, (index, step, op, "thread", "parallel", invoke))
                    outcome = self._call(me, op, resource, step.args)
                    self._finish(w, OpRecord(index, w, "thread", "parallel", op.name, step.args,
                                             invoke, now(), outcome))
            except Aborted:
                pass
            finally:
                tracer.thread_end()
                session.tmap.unbind()
            if not me.aborted:
                ctl.finish(me)
        except Aborted:
            pass
        finally:
            me.busy = False

    async def _task_worker(self, w: int, steps: list[tuple[int, Step, Operation]]) -> None:
        """One task worker: its operations in order, each awaited as the
        user's code (one coroutine frame of jostle's per task)."""
        me, resource = self.main, self.resource
        task = asyncio.current_task()
        in_user = self.loop.in_user
        for index, step, op in steps:
            invoke = now()
            self._start(w, (index, step, op, "task", "parallel", invoke))
            outcome: Outcome
            in_user.add(task)  # type: ignore[arg-type]
            me.busy = False
            try:
                value = op.fn(resource, *step.args)
                if op.is_async:
                    value = await value
                else:
                    me.busy = True
                    if awaitable(value):
                        me.busy = False
                        value = await value
                me.busy = True
                outcome = outcome_of(value)
            except asyncio.CancelledError:
                outcome = Unknown("cancelled")
            except Aborted:
                raise
            except BaseException as exc:  # every exception is a result to judge
                me.busy = True
                outcome = raised(exc)
            finally:
                in_user.discard(task)
                me.busy = True
            self._finish(w, OpRecord(index, w, "task", "parallel", op.name, step.args,
                                     invoke, now(), outcome))

    # -- processes -----------------------------------------------------------------
    def _start_processes(self, proc_ws: list[int],
                         steps: dict[int, list[tuple[int, Step, Operation]]]) -> None:
        """Take process workers and submit their jobs (jostle's plumbing: the
        watchdog is paused, and the clock restarts when it is done)."""
        eng, resource = self.engine, self.resource
        handle = process_handle(self.spec, resource, proc_ws[0])
        self.watch.plumbing = True
        workers: list[ProcessWorker] = []
        try:
            workers = eng.processes.acquire(len(proc_ws))
            for w, pw in zip(proc_ws, workers, strict=True):
                pw.submit(ProcessJob(
                    job_id=eng.executions, worker=w, phase="parallel", handle=handle,
                    steps=tuple((i, op.name, op.fn, s.args) for i, s, op in steps[w]),
                    pause_at_points=True, wait_for_go=False,
                    line_points=self.sched.process_lines, cpu=self.session.driver.cpu,
                    batch=True))
                self._proxies[w] = (pw, ProxyResult())
        except BaseException:
            # Misuse found while submitting (an operation that cannot be
            # pickled, say): nothing ran; give the workers back clean.
            for pw in workers:
                if pw.busy:
                    eng.processes.discard(pw)
            eng.processes.release([pw for pw in workers if pw.alive and not pw.busy])
            self._proxies.clear()
            raise
        finally:
            self.watch.plumbing = False
            self.watch.started = _wall()

    def _proxy_job(self, me: Entity, pw: ProcessWorker, result: ProxyResult) -> None:
        ctl = self.ctl
        try:
            ready = pw.wait_ready(self.timeout)
        except SpecError as exc:  # load or attach failed in the worker: a misuse
            result.error = exc
            ready = False
        try:
            if not ready:
                # Never attached: take part only to leave the schedule consistent.
                result.died = not pw.alive
                result.stalled = pw.alive and result.error is None
                ctl.enter(me)
                ctl.finish(me)
                return
            run_proxy(ctl, me, pw, result, stall_timeout=self.sched.watchdog * 4,
                      allow_kill=self.sched.kill)
        except Aborted:
            pass

    def _collect_processes(self) -> bool:

        eng = self.engine
        ok = True
        for _pw, result in self._proxies.values():
            if result.error is not None:
                for other, _r in self._proxies.values():
                    eng.processes.discard(other)
                self._proxies.clear()
                raise result.error
        for w, (pw, result) in self._proxies.items():
            for r in result.records:
                self.rec.add(r)
            if result.died:
                self.crashed.append(w)
                self.exit_statuses.append((w, pw.exitcode))
                eng.processes.discard(pw)
            elif result.stalled or not pw.alive:
                stack = pw.dump_stacks()
                eng.processes.discard(pw)
                self.stuck.append(StuckWorker(w, "process", self._pending(w, "hung"), stack,
                                              None))
                ok = False
            else:
                eng.processes.release([pw])
        self._proxies.clear()
        return ok

    # -- after the parallel part -----------------------------------------------------
    def _invariants(self) -> None:

        checks: list[Callable[[object], object]] = list(self.spec.invariants)
        if self.spec.model_invariants is not None:
            history, check = self.rec.history(), self.spec.model_invariants
            checks.append(lambda res: check(res, history))
        for inv in checks:
            try:
                value = self._user(self.main, inv, self.resource)
                if awaitable(value):
                    run = self._on_loop([partial(_awaited, value)])
                    if run.stuck is not None:
                        self._stuck_tasks(run.stuck, 0, f"invariant {_name(inv)}")
                        return
                    if run.exceptions[0] is not None:
                        raise run.exceptions[0]
            except (Aborted, KeyboardInterrupt):
                raise  # Ctrl-C is an interrupt, not the invariant failing
            except BaseException as exc:  # reported by the checker
                self.errors.append(("invariant", raised(exc)))

    def _teardown(self) -> None:
        """Release the resource.  After an abort ``main`` no longer holds a
        baton: the teardown then runs uncontrolled (real locks, real time)."""

        if self.resource is None:
            return
        teardown = self.spec.teardown or default_teardown
        me = self.main
        if me.aborted:
            self.session.tmap.unbind()
        try:
            value = self._user(me, teardown, self.resource)
            if awaitable(value):
                if me.aborted:
                    self.loop.run_until_complete(_awaited(value))
                else:
                    run = self._on_loop([partial(_awaited, value)])
                    if run.exceptions[0] is not None:
                        raise run.exceptions[0]
        except Aborted:
            pass
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            if not self.stuck and self.deadlock is None and not me.aborted:
                self.errors.append(("teardown", raised(exc)))

    # -- what went wrong -------------------------------------------------------------
    def _on_deadlock(self, blocked: list[Entity]) -> None:
        """On the detecting thread, before anyone unwinds: the wait-for cycle
        and every blocked entity's stack."""
        tmap = self.session.tmap
        stacks = []
        for e in blocked:
            if e is self.main and e.blocked_on is self.loop._wait_key:
                # main waits inside the loop: what waits is its tasks.
                for t in self.loop.waiting_tasks():
                    stacks.append((self._task_name(t.index), t.stack))
                continue
            stack, _ = thread_stack(tmap.ident_of(e))
            stacks.append((e.name, stack))
        self.deadlock = DeadlockReport(describe_wait_for(self.ctl),
                                       tuple(e.name for e in blocked), tuple(stacks))

    def _task_name(self, index: int) -> str:
        """``worker 2 (task)`` for the loop's task ``index`` in the parallel
        part (the task workers are its first tasks, in worker order)."""
        task_ws = [w for w, p in enumerate(self.scenario.workers, start=1) if p.kind == "task"]
        if self.workers and index < len(task_ws):
            return f"worker {task_ws[index]} (task)"
        return f"main (task {index})"

    def _execution(self) -> Execution:

        ctl, w = self.ctl, self.watch
        extra: dict[str, Any] = {}
        reason = "hung"
        if self.deadlock is not None:
            reason = "deadlock"
            extra["deadlock"] = self.deadlock.cycle
            for name, stack in self.deadlock.stacks:
                wid = _worker_of(name)
                kind = self.scenario.workers[wid - 1].kind if wid else "thread"
                self.stuck.append(StuckWorker(wid, kind, None, stack, None))
        elif w.uncontrolled is not None:
            name, where, stack, silent = w.uncontrolled
            at = f"{where[0]}:{where[1]}" if where else "an unknown place"
            self.hang_reason = (f"uncontrolled blocking at {at} in {name} (no scheduling point "
                                f"for {silent * 1000:.0f} ms: blocked in code jostle does not "
                                "control)")
            wid = _worker_of(name)
            kind = self.scenario.workers[wid - 1].kind if wid else "thread"
            self.stuck.append(StuckWorker(wid, kind, None, stack, where))
        elif ctl.livelock:
            self.hang_reason = f"livelock: no progress after {ctl.points} scheduling points"
            self.stuck.append(StuckWorker(0, "thread", None, self.hang_reason, None))
        elif w.timed_out:
            self.hang_reason = "the controlled run exceeded its wall-clock timeout"
            stack, where = thread_stack(self.session.tmap.ident_of(w.stuck)
                                        if w.stuck is not None else None)
            self.stuck.append(StuckWorker(_worker_of(w.stuck.name) if w.stuck else 0,
                                          "thread", None, stack, where))
        if self.stuck:
            for wid in list(self.inflight):
                op_text = self._pending(wid, reason)
                for i, s in enumerate(self.stuck):
                    if s.worker == wid and s.op is None:
                        self.stuck[i] = StuckWorker(s.worker, s.kind, op_text, s.stack, s.where)
        window = self.session.window
        warnings = tuple(f"lock-order inversion: {inv}" for inv in window.inversions()) \
            if window is not None else ()
        notes = tuple(window.notes) if window is not None else ()
        return self._execution_of(
            self.scenario, self.sched.describe(), self.timeout,
            type(self.resource).__name__ if self.resource is not None else "",
            decisions=tuple(ctl.log),
            entities=tuple(e.name for e in ctl.entities),
            hang_reason=self.hang_reason,
            warnings=warnings + notes,
            controlled=True,
            steps=ctl.step,
            **extra,
        )

    def lost_execution(self, watch: Watch) -> Execution:
        """The report of this execution when its driver was lost (called on
        the caller): what was recorded, with the stuck holder's stack."""
        return self._execution()


def _in_running_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` with ``loop`` as the running loop of the calling thread."""
    saved = asyncio_events._get_running_loop()
    asyncio_events._set_running_loop(loop)
    try:
        return fn(*args)
    finally:
        asyncio_events._set_running_loop(saved)


def _worker_of(name: str) -> int:
    """``worker 3 (thread)`` -> 3; anything else (``main``) -> 0."""
    parts = name.split()
    if len(parts) >= 2 and parts[0] == "worker" and parts[1].isdigit():
        return int(parts[1])
    return 0


def _name(fn: object) -> str:
    return str(getattr(fn, "__name__", fn))


async def _awaited(value: Any) -> object:
    return await value
