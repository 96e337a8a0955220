"""One controlled execution: every worker of every kind under one baton.

The engine hands a controlled run here.  Entities, in id order: one proxy per
process worker, one for the event loop (its tasks are sub-choices of the
loop), then one per thread worker.  The thread machinery
(``_controlled_threads.run_threads``) opens the patching window in which
``threading``'s primitives are cooperative; the resource is built and the
sequential prefix run *inside* that window (its ``setup`` hook), so the locks
the resource creates are controlled ones.  The loop thread runs the controlled
loop attached to the controller, and proxy threads stand for the processes.

What the run did that is not an operation's outcome (a deadlock with its
wait-for cycle, a livelock, blocking outside jostle's control, lock-order
inversions) goes into the :class:`~jostle._engine.Execution` for the checker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from ._control import Aborted, Controller
from ._controlled_loop import LoopRun, run_controlled
from ._controlled_processes import ProxyResult, run_proxy
from ._controlled_threads import run_threads
from ._cooperative import ThreadMap
from ._errors import SpecError
from ._handles import handle_for
from ._processes import ProcessJob, ProcessWorker
from ._scenario import Step
from ._scheduler import ControlledScheduler
from ._spec import Operation
from ._threads import PoolThread

if TYPE_CHECKING:
    from ._engine import _Run

__all__ = ["run_controlled_execution"]


class _StopBeforeParallel(Exception):
    """The prefix hung: nothing parallel runs."""


def run_controlled_execution(run: _Run, ops: dict[int, tuple[Step, Operation]]) -> object:
    """Build the resource, run prefix, parallel part (controlled), suffix and
    invariants; tear down.  Returns the resource (for the Execution)."""
    from ._engine import StuckWorker  # the engine imports this module lazily

    sched = run.sched
    assert isinstance(sched, ControlledScheduler)
    eng = run.engine
    plans = run.scenario.workers
    steps: dict[int, list[tuple[int, Step, Operation]]] = {w: [] for w in range(1, len(plans) + 1)}
    for index, worker, phase, _s in run.scenario.indexed():
        if phase == "parallel":
            step, op = ops[index]
            steps[worker].append((index, step, op))
    kinds = {w: p.kind for w, p in enumerate(plans, start=1)}
    thread_ws = [w for w, k in kinds.items() if k == "thread"]
    task_ws = [w for w, k in kinds.items() if k == "task"]
    proc_ws = [w for w, k in kinds.items() if k == "process"]

    ctl = Controller(sched.strategy, max_steps=sched.max_steps)
    tmap = ThreadMap()
    proc_entities = {w: ctl.add(f"worker {w} (process)") for w in proc_ws}
    loop_entity = ctl.add("event loop") if task_ws else None
    # Threads must exist before the patching window opens (Thread uses Event).
    lt = run.aloop
    warm = eng.threads.acquire(len(thread_ws) + len(proc_ws) + 1)
    eng.threads.release(warm)
    proxy_threads: list[PoolThread] = eng.threads.acquire(len(proc_ws))
    # Process plumbing waits on the real clock (multiprocessing loops on
    # time.monotonic), so it stays out of the patching window: workers are
    # taken here, and the proxies that wait for them are not bound to their
    # entities in the thread map (they see real time and real locks).
    proc_workers = eng.processes.acquire(len(proc_ws)) if proc_ws else []
    box: dict[str, Any] = {}
    proxies: dict[int, tuple[ProcessWorker, ProxyResult]] = {}
    started: list[PoolThread] = []  # proxy threads that got a job

    def setup() -> None:
        resource = run._build_resource()
        box["resource"] = resource
        if not run._sequential("prefix", ops, resource):
            raise _StopBeforeParallel
        if proc_ws:
            handle = (run.spec.handle(resource) if run.spec.handle is not None
                      else handle_for(resource))
            for w, pw in zip(proc_ws, proc_workers, strict=True):
                pw.submit(ProcessJob(
                    job_id=eng.executions, worker=w, phase="parallel", handle=handle,
                    steps=tuple((i, op.name, op.fn, s.args) for i, s, op in steps[w]),
                    pause_at_points=True, wait_for_go=True,
                    line_points=sched.process_lines))
                proxies[w] = (pw, ProxyResult())
            for (w, (pw, result)), pt in zip(proxies.items(), proxy_threads, strict=True):
                pt.submit(partial(_proxy_job, ctl, proc_entities[w], pw, result,
                                  run.timeout, sched.watchdog * 4, sched.kill))
                started.append(pt)
        if task_ws:
            assert loop_entity is not None
            factories = [partial(run._task_worker, w, steps[w], resource, None, None)
                         for w in task_ws]
            box["loop"] = lt.run_job(partial(_loop_job, tmap, ctl, loop_entity, lt.loop,
                                             factories, sched.inject))

    thread_jobs: list[Callable[[], None]] = [
        partial(_thread_job, run, w, steps[w], box) for w in thread_ws]
    outcome = None
    try:
        outcome = run_threads(
            thread_jobs, sched.strategy, model=sched.model, pool=eng.threads,
            timeout=run.timeout, max_steps=sched.max_steps, watchdog=sched.watchdog,
            names=[f"worker {w} (thread)" for w in thread_ws], controller=ctl,
            threads=tmap, setup=setup)
    except _StopBeforeParallel:
        pass
    except BaseException:
        # Misuse found while setting up (say, an operation that cannot be
        # pickled): nothing ran in the processes; give them back clean.
        for pw in proc_workers:
            if pw.busy:
                eng.processes.discard(pw)
        eng.processes.release([pw for pw in proc_workers if pw.alive and not pw.busy])
        raise
    finally:
        for pt in started:
            if not pt.wait(run.timeout):
                eng.threads.abandon(pt)
        eng.threads.release(proxy_threads)
    resource = box.get("resource")
    if resource is None:
        return None
    for pw, result in proxies.values():
        if result.error is not None:
            eng.processes.discard(pw)
            run._teardown(resource)
            raise result.error
    loop_run: LoopRun | None = None
    if "loop" in box:
        try:
            loop_run = box["loop"].result(run.timeout)
        except Exception:  # the loop thread never came back
            lt.abandoned = True
    for w, (pw, result) in proxies.items():
        for r in result.records:
            run.rec.add(r)
        if result.died:
            run.crashed.append(w)
            eng.processes.discard(pw)
        elif result.stalled or not pw.alive:
            stack = pw.dump_stacks()
            eng.processes.discard(pw)
            run.stuck.append(StuckWorker(w, "process", None, stack, None))
        else:
            eng.processes.release([pw])
    warnings: list[str] = []
    ok = outcome is not None and outcome.failure is None
    if outcome is not None:
        reason = "deadlock" if outcome.deadlock else "hung"
        if outcome.failure is not None:
            run.extra["hang_reason"] = outcome.failure
        if outcome.deadlock is not None:
            run.extra["deadlock"] = outcome.deadlock.cycle
            for name, stack in outcome.deadlock.stacks:
                w = _worker_of(name)
                run.stuck.append(StuckWorker(w, kinds.get(w, "thread"), None, stack, None))
        elif outcome.uncontrolled is not None:
            u = outcome.uncontrolled
            w = _worker_of(u.entity)
            run.stuck.append(StuckWorker(w, kinds.get(w, "thread"), None, u.stack, u.where))
        elif outcome.failure is not None:
            run.stuck.append(StuckWorker(0, "thread", None, outcome.failure, None))
        for inv in outcome.inversions:
            warnings.append(f"lock-order inversion: {inv}")
        run.extra["decisions"] = outcome.decisions
        run.extra["entities"] = tuple(e.name for e in ctl.entities)
        for w in list(run.inflight):
            op_text = run._pending(w, reason)
            for i, s in enumerate(run.stuck):
                if s.worker == w and s.op is None:
                    run.stuck[i] = StuckWorker(s.worker, s.kind, op_text, s.stack, s.where)
    if loop_run is not None and loop_run.stuck is not None and ok:
        ok = False
        run.extra["hang_reason"] = str(loop_run.stuck).splitlines()[0]
        for t in loop_run.stuck.tasks:
            run.stuck.append(StuckWorker(0, "task", t.name, t.stack, t.where))
    run.extra["warnings"] = tuple(warnings)
    try:
        run.after_parallel(ok and not run.stuck, ops, resource)
    finally:
        run._teardown(resource)
    return resource


def _worker_of(name: str) -> int:
    """``worker 3 (thread)`` -> 3; anything else (the loop) -> 0."""
    parts = name.split()
    if len(parts) >= 2 and parts[0] == "worker" and parts[1].isdigit():
        return int(parts[1])
    return 0


def _thread_job(run: _Run, w: int, steps: list[tuple[int, Step, Operation]],
                box: dict[str, Any]) -> None:
    run._thread_worker(w, steps, box["resource"], None)


def _proxy_job(ctl: Controller, entity: Any, pw: ProcessWorker, result: ProxyResult,
               ready_timeout: float, stall: float, kill: bool) -> None:
    try:
        ready = pw.wait_ready(ready_timeout)
    except SpecError as exc:  # load or attach failed in the worker: a misuse
        result.error = exc
        ready = False
    if not ready:
        # Never attached: take part only to leave the schedule consistent.
        result.died = not pw.alive
        result.stalled = pw.alive
        try:
            ctl.enter(entity)
            ctl.finish(entity)
        except Aborted:
            pass
        return
    run_proxy(ctl, entity, pw, result, stall_timeout=stall, allow_kill=kill)


def _loop_job(tmap: ThreadMap, ctl: Controller, entity: Any, loop: Any,
              factories: Sequence[Callable[[], Any]], inject: bool) -> LoopRun:
    tmap.bind(entity)
    try:
        return run_controlled(factories, controller=ctl, entity=entity, loop=loop,
                              inject=inject)
    finally:
        tmap.unbind()
