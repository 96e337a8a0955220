"""Running thread workers under the baton.

:func:`run_threads` is the thread half of controlled mode: each job (one
per thread worker, built by the engine) runs on a persistent pool thread as
a :class:`~jostle._control.Entity` of one :class:`~jostle._control.Controller`,
inside a patching window (``_cooperative``: blocking is cooperative, time
is virtual) and with the tracer reporting scheduling points from the code
it runs (``_tracing``).  One thread runs at a time, and the strategy decides
at every point who runs next, so the same strategy data gives the same
decision log and the same results, every time (a test runs it 1000 times).

What can go wrong, and what the returned :class:`ControlledRun` says:

* **deadlock**: nobody can run and nobody waits with a timeout.  The
  controller notices at once; the report gives the wait-for cycle (who holds
  what, since where; who waits for what) and each blocked worker's stack,
  captured before anyone unwinds.
* **livelock**: more than ``max_steps`` points (a spin loop that the
  strategy never preempts).
* **uncontrolled blocking**: the baton holder made no scheduling point for
  ``watchdog`` seconds of wall time while the run was not over: it is
  blocked where jostle has no control (``queue.SimpleQueue.get``, a real lock
  created before the window and held by another worker, I/O).  The report
  names the innermost user frame ("uncontrolled blocking at file:line") and
  the stack; the run is aborted and the stuck thread abandoned (a thread
  cannot be killed), so the next run gets a fresh one.  Long pure-C
  computations (no Python call for the whole period) are reported the same
  way: raise ``watchdog`` for those.
* **timeout**: the whole run took longer than ``timeout`` seconds of wall
  time although it kept making points.

Everything else (results, exceptions from operations, the history) is the
jobs' own business: the engine's jobs record them.
"""

from __future__ import annotations

import gc
from _thread import get_ident
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from ._control import Aborted, Controller, Decision, Entity, Strategy
from ._deadlocks import describe_wait_for
from ._errors import SpecError
from ._patching import patched
from ._stacks import thread_stack
from ._threads import PoolThread, ThreadPool
from ._tracing import DEFAULT_MODEL, Model, Tracer, check_model
from ._window import Inversion, ThreadMap, Window, _real_monotonic as _wall

__all__ = [
    "DEFAULT_WATCHDOG",
    "ControlledRun",
    "DeadlockReport",
    "UncontrolledBlocking",
    "run_threads",
]

#: Wall-clock seconds without a scheduling point before the baton holder is
#: reported as blocked in code jostle does not control.
DEFAULT_WATCHDOG = 0.5
# How long a released or aborted pool thread may take to come back.
_GRACE = 2.0


@dataclass(frozen=True, slots=True)
class DeadlockReport:
    """Every worker blocked, none with a timeout.

    Attributes:
        cycle: the wait-for graph, cycle first (``worker 1 holds Lock@a.py:3
            (since a.py:9), waits for Lock@a.py:4 held by worker 2; ...``).
        blocked: the names of the blocked entities.
        stacks: ``(name, formatted stack)`` of each blocked entity.
    """

    cycle: str
    blocked: tuple[str, ...]
    stacks: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        return f"deadlock: {self.cycle}"


@dataclass(frozen=True, slots=True)
class UncontrolledBlocking:
    """The baton holder stopped making scheduling points.

    Attributes:
        entity: its name.
        where: the innermost frame of user code ``(file, line)``, if any.
        stack: its formatted stack.
        silent_for: wall-clock seconds without a point when it was reported.
    """

    entity: str
    where: tuple[str, int] | None
    stack: str
    silent_for: float

    def __str__(self) -> str:
        at = f"{self.where[0]}:{self.where[1]}" if self.where else "an unknown place"
        return (f"uncontrolled blocking at {at} in {self.entity} (no scheduling point for "
                f"{self.silent_for * 1000:.0f} ms: blocked in code jostle does not control)")


@dataclass(frozen=True, slots=True)
class ControlledRun:
    """What one controlled run of thread workers did.

    Attributes:
        model: the preemption model (``gil`` or ``opcode``).
        decisions: the controller's decision log (replays the run).
        steps: scheduling points passed.
        preemptions: decisions that switched away from a runnable holder.
        virtual_time: the virtual clock at the end, seconds.
        deadlock: the deadlock, if the run ended in one.
        livelock: the step limit was reached.
        uncontrolled: the holder blocked outside jostle's control.
        timed_out: the run exceeded its wall-clock ``timeout``.
        inversions: lock pairs taken in both orders (lockdep).
        errors: ``(entity name, exception)`` that escaped a job (the
            engine's jobs catch the user's exceptions themselves).
        abandoned: pool threads that did not come back and were abandoned.
        notes: uncontrolled nondeterminism seen (a thread an operation
            started, which ran outside jostle's control).
    """

    model: Model
    decisions: tuple[Decision, ...]
    steps: int
    preemptions: int
    virtual_time: float
    deadlock: DeadlockReport | None = None
    livelock: bool = False
    uncontrolled: UncontrolledBlocking | None = None
    timed_out: bool = False
    inversions: tuple[Inversion, ...] = ()
    errors: tuple[tuple[str, BaseException], ...] = ()
    abandoned: int = 0
    notes: tuple[str, ...] = ()

    @property
    def failure(self) -> str | None:
        """One line saying why the run did not complete normally, or ``None``."""
        if self.deadlock is not None:
            return str(self.deadlock)
        if self.uncontrolled is not None:
            return str(self.uncontrolled)
        if self.livelock:
            return f"livelock: no progress after {self.steps} scheduling points"
        if self.timed_out:
            return "the controlled run exceeded its wall-clock timeout"
        if self.errors:
            name, exc = self.errors[0]
            return f"{name} crashed: {type(exc).__name__}: {exc}"
        return None


@dataclass
class _State:
    deadlock: DeadlockReport | None = None
    uncontrolled: UncontrolledBlocking | None = None
    stuck: Entity | None = None
    timed_out: bool = False
    errors: list[tuple[str, BaseException]] = field(default_factory=list)


def run_threads(
    jobs: Sequence[Callable[[], None]],
    strategy: Strategy,
    *,
    model: Model = DEFAULT_MODEL,
    pool: ThreadPool,
    timeout: float,
    max_steps: int = 100_000,
    watchdog: float = DEFAULT_WATCHDOG,
    names: Sequence[str] | None = None,
    controller: Controller | None = None,
    threads: ThreadMap | None = None,
    user_code: Callable[[str], bool] | None = None,
    setup: Callable[[], None] | None = None,
) -> ControlledRun:
    """Run one job per thread worker under the baton and report what happened.

    Each job runs on a pool thread as one entity; it should run that
    worker's operations and record their outcomes itself, catching the
    user's exceptions.  Threads are taken from ``pool`` before the patching
    window opens (``Thread`` uses ``Event``) and given back afterwards;
    threads that never come back are abandoned.

    Other kinds of entity (the event loop, process proxies) share the run by
    passing ``controller``: build it, ``add`` their entities, run them on
    threads of your own that call ``threads.bind(entity)`` and then
    ``controller.enter(entity)`` ... ``controller.finish(entity)``, and pass
    the same ``threads`` map.  ``run_threads`` adds its own entities after
    yours and starts the controller unless it was started already.

    Args:
        jobs: one callable per thread worker.
        strategy: who runs at each point (must be ``controller.strategy``
            when a controller is given).
        model: ``"gil"`` (CPython's real switch points) or ``"opcode"``.
        pool: where the threads come from.
        timeout: wall-clock seconds for the whole run.
        max_steps: scheduling points before the run counts as a livelock.
        watchdog: wall-clock seconds without a point before the holder is
            reported as blocked outside jostle's control.
        names: entity names (default ``worker 1``, ``worker 2``...).
        controller: an existing controller to add the jobs to.
        threads: the thread-to-entity map shared with other entities.
        user_code: which files are the code under test (opcode points).
        setup: called on the calling thread inside the patching window
            before any job runs, seeing the virtual clock: build the
            resource there, so the locks it creates are cooperative (a lock
            created before the window is a real one, and contention on it is
            reported as uncontrolled blocking).  If it raises, nothing runs
            and the exception propagates.

    Returns:
        A :class:`ControlledRun`.

    Raises:
        SpecError: a bad argument, or no ``sys.monitoring`` tool id is free.

    Example:
        >>> from jostle._control import Strategy
        >>> from jostle._threads import ThreadPool
        >>> hits = []
        >>> run = run_threads([lambda: hits.append(1), lambda: hits.append(2)],
        ...                   Strategy(), pool=ThreadPool(), timeout=5.0)
        >>> hits, run.failure
        ([1, 2], None)
    """
    if names is not None and len(names) != len(jobs):
        raise SpecError(f"Expected one name per job but got names={list(names)!r} for "
                        f"{len(jobs)} jobs; pass as many names as jobs, or none")
    if controller is not None and controller.strategy is not strategy:
        raise SpecError(f"strategy={strategy!r} is not the strategy of the controller passed "
                        f"as controller= ({controller.strategy!r}); pass controller.strategy")
    if watchdog <= 0 or timeout <= 0:
        raise SpecError(f"Expected positive seconds but got watchdog={watchdog!r}, "
                        f"timeout={timeout!r}")
    check_model(model)
    ctl = controller if controller is not None else Controller(strategy, max_steps=max_steps)
    tmap = threads if threads is not None else ThreadMap()
    entities = [ctl.add(names[i] if names is not None else f"worker {i + 1}")
                for i in range(len(jobs))]
    if not ctl.entities:
        return ControlledRun(model, (), 0, 0, 0.0)
    state = _State()
    pts = pool.acquire(len(jobs))
    submitted = False
    # Garbage collection would run finalizers at points that depend on
    # allocations made before the run: off, so runs replay exactly.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with patched(ctl, tmap) as window, Tracer(window, model=model,
                                                  user_code=user_code) as tracer:
            if setup is not None:
                window.clocked.add(get_ident())
                try:
                    setup()
                finally:
                    window.clocked.clear()
            ctl.on_deadlock = partial(_on_deadlock, state, ctl, tmap, ctl.on_deadlock)
            for pt, me, job in zip(pts, entities, jobs, strict=True):
                pt.submit(partial(_job, ctl, window, tracer, tmap, me, job, state))
            submitted = True
            try:
                if ctl.holder is None and ctl.entities:
                    ctl.start()
                _supervise(ctl, state, tmap, watchdog=watchdog, timeout=timeout)
            except BaseException:
                ctl.abort()
                raise
            finally:
                abandoned = _collect(pool, pts, entities, state)
            inversions = tuple(window.inversions())
            notes = tuple(window.notes)
    finally:
        if not submitted:  # set-up failed, or no tool id: nothing ran
            pool.release(pts)
        if gc_was_enabled:
            gc.enable()
    log = tuple(ctl.log)
    return ControlledRun(
        model=model,
        decisions=log,
        steps=ctl.step,
        preemptions=sum(1 for d in log if d.kind == "switch"),
        virtual_time=ctl.now,
        deadlock=state.deadlock,
        livelock=ctl.livelock,
        uncontrolled=state.uncontrolled,
        timed_out=state.timed_out,
        inversions=inversions,
        errors=tuple(state.errors),
        abandoned=abandoned,
        notes=notes,
    )


def _job(ctl: Controller, window: Window, tracer: Tracer, tmap: ThreadMap, me: Entity,
         job: Callable[[], None], state: _State) -> None:
    tmap.bind(me)
    tracer.thread_begin()
    try:
        try:
            ctl.enter(me)
            job()
        except Aborted:
            pass
        except BaseException as exc:  # a bug in the job itself: reported, the run goes on
            state.errors.append((me.name, exc))
        try:
            ctl.finish(me)
        except Aborted:
            pass
    finally:
        tracer.thread_end()
        tmap.unbind()


def _supervise(ctl: Controller, state: _State, tmap: ThreadMap, *, watchdog: float,
               timeout: float) -> None:
    """Wait for the run on the calling thread, watching for a holder that
    stopped making points (wall clock: this thread is not controlled)."""
    start = last_change = _wall()
    last_step = ctl.step
    poll = min(max(watchdog / 5, 0.001), 0.1)
    while not ctl.wait(poll):
        now = _wall()
        if ctl.step != last_step:
            last_step, last_change = ctl.step, now
        elif now - last_change >= watchdog:
            holder = ctl.holder
            ident = tmap.ident_of(holder) if holder is not None else None
            stack, where = thread_stack(ident)
            state.stuck = holder
            state.uncontrolled = UncontrolledBlocking(
                holder.name if holder is not None else "?", where, stack, now - last_change)
            ctl.abort()
            return
        if now - start >= timeout:
            state.stuck = ctl.holder
            state.timed_out = True
            ctl.abort()
            return


def _collect(pool: ThreadPool, pts: list[PoolThread], entities: list[Entity],
             state: _State) -> int:
    """Take the threads back; abandon the stuck one and any that do not return."""
    back: list[PoolThread] = []
    abandoned = 0
    deadline = _wall() + _GRACE
    for pt, me in zip(pts, entities, strict=True):
        if me is state.stuck or not pt.wait(max(deadline - _wall(), 0.0)):
            pool.abandon(pt)
            abandoned += 1
        else:
            back.append(pt)
    pool.release(back)
    return abandoned


def _on_deadlock(state: _State, ctl: Controller, tmap: ThreadMap,
                 chained: Callable[[list[Entity]], None] | None,
                 blocked: list[Entity]) -> None:
    stacks = []
    for e in blocked:
        stack, _ = thread_stack(tmap.ident_of(e))
        stacks.append((e.name, stack))
    state.deadlock = DeadlockReport(describe_wait_for(ctl), tuple(e.name for e in blocked),
                                    tuple(stacks))
    if chained is not None:
        chained(blocked)
