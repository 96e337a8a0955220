"""Where controlled executions run, and who watches them.

A controlled execution is a handful of threads passing one baton
(``_control``).  What it costs is mostly the operating system waking those
threads, so everything here is about waking as few of them as possible,
as cheaply as possible:

* **One CPU.**  Every thread of a controlled run is pinned to the same CPU
  (the caller for the length of a session, the driver and the controlled
  pool threads for good).  Only one of them runs at a time anyway, and a
  handoff between two threads on one CPU is a direct switch: measured here,
  2 threads x 5 locked increments under control ran at 2,000-2,800
  executions/s unpinned and 5,600-5,800/s pinned (``run_threads`` alone).
  The CPU is chosen per process (its pid modulo the CPUs it may use), so
  pytest-xdist workers spread over the machine.  ``JOSTLE_PIN=0`` turns it
  off.
* **One driver.**  The whole execution (building the resource, the
  sequential prefix, the event loop, joining the workers, the suffix, the
  invariants, the teardown) runs on one persistent *driver* thread as the
  ``main`` entity, so an asyncio-only scenario involves no other thread at
  all, and a batch of executions (the schedules of one Hypothesis example)
  is handed over once.  Thread workers and process proxies run on a pool of
  persistent controlled threads that give themselves back to the pool when
  their job ends (no join round trip).
* **The caller watches.**  The thread that asked for the work (pytest's)
  waits with a poll timeout and checks the current execution's progress
  (:attr:`Controller.points`): a holder that makes no point for ``watchdog``
  seconds is blocked where jostle has no control (``SimpleQueue.get``, real
  I/O, a real lock made before the window), and a run over ``timeout``
  seconds is a hang; either way the caller aborts the run.  If the driver
  itself is the one stuck, the caller abandons it (a thread cannot be
  killed), builds the execution's report from what was recorded, and a
  fresh driver takes its place.

The caller also owns the session's process-wide state, so nothing is left
behind if the driver is lost: the patching window (``_cooperative``), the
tracer (``_tracing``), garbage collection switched off (finalizers would run
at points that depend on earlier allocations, and break replay), and its
own CPU pinning.
"""

from __future__ import annotations

import _thread
import gc
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ._control import Controller, Entity, EntityState, Strategy
from ._controlled_loop import ControlledEventLoop
from ._errors import JostleError
from ._patching import patched
from ._stacks import thread_stack
from ._threads import mark_worker
from ._tracing import Model, Tracer
from ._window import ThreadMap, Window, _real_monotonic as _wall

__all__ = [
    "ControlledPool",
    "ControlledThread",
    "Driver",
    "DriverLost",
    "Session",
    "Watch",
    "choose_cpu",
]

_allocate_lock = _thread.allocate_lock
_get_ident = _thread.get_ident
T = TypeVar("T")

#: Wall-clock seconds an aborted run may take to unwind before its driver is
#: given up for lost.
GRACE = 2.0


def choose_cpu() -> int | None:
    """The CPU this process pins its controlled runs to, or ``None`` (no
    affinity API, a single CPU, or ``JOSTLE_PIN=0``)."""
    if os.environ.get("JOSTLE_PIN", "1").strip() in ("0", "no", "false", "off"):
        return None
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except OSError:
        return None
    if len(cpus) < 2:
        return None
    return cpus[os.getpid() % len(cpus)]


def _pin(cpu: int | None) -> set[int] | None:
    """Pin the calling thread to ``cpu``; returns what to restore."""
    if cpu is None:
        return None
    try:
        saved = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpu})
    except OSError:
        return None
    return saved


def _unpin(saved: set[int] | None) -> None:
    if saved is not None:
        try:
            os.sched_setaffinity(0, saved)
        except OSError:
            pass


class ControlledThread:
    """A persistent thread for controlled runs: pinned at birth, one job at
    a time, and back in its pool as soon as a job has ended."""

    def __init__(self, pool: ControlledPool | None, number: int, cpu: int | None,
                 name: str) -> None:
        self._pool = pool
        self._go = _allocate_lock()
        self._go.acquire()
        self._job: Callable[[], None] | None = None
        self._on_done: Callable[[], None] | None = None
        self._stop = False
        #: A job was submitted and has not ended yet.
        self.busy = False
        self.cpu = cpu
        #: Set when the thread was given up for lost: it stops after its job.
        self.abandoned = False
        #: The driver's controlled event loop (a loop cannot outlive a thread
        #: stuck inside it).
        self.loop: ControlledEventLoop | None = None
        self.thread = threading.Thread(target=self._main, name=f"{name}-{number}", daemon=True)
        self.thread.start()

    @property
    def ident(self) -> int | None:
        """The thread's identifier (stack dumps)."""
        return self.thread.ident

    def _main(self) -> None:
        mark_worker()
        _pin(self.cpu)
        while True:
            self._go.acquire()
            if self._stop:
                return
            job, self._job = self._job, None
            done, self._on_done = self._on_done, None
            if job is not None:
                try:
                    job()
                except BaseException:  # jobs report their own errors; the thread lives on
                    pass
            # Idle before anyone hears the job is over: the next submit may
            # come at once.
            self.busy = False
            if done is not None:
                done()
            if self.abandoned:
                return
            if self._pool is not None:
                self._pool.give_back(self)

    def submit(self, job: Callable[[], None], *,
               on_done: Callable[[], None] | None = None) -> None:
        """Run ``job`` on this thread (it must report its own outcome), then
        ``on_done`` once the thread is idle again.

        Raises:
            JostleError: the thread is still running an earlier job.
        """
        if self.busy:
            raise JostleError("internal: a job was submitted to a controlled thread that is "
                              "still running its previous one")
        self.busy = True
        self._job = job
        self._on_done = on_done
        self._go.release()

    def stop(self) -> None:
        """Ask an idle thread to exit."""
        self._stop = True
        self._go.release()


class ControlledPool:
    """Idle :class:`ControlledThread`\\ s, all pinned to one CPU."""

    def __init__(self, cpu: int | None) -> None:
        self.cpu = cpu
        self._idle: list[ControlledThread] = []
        self._lock = _allocate_lock()
        self._count = 0

    def acquire(self) -> ControlledThread:
        """An idle thread, or a new one."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self._count += 1
            number = self._count
        return ControlledThread(self, number, self.cpu, "jostle-controlled")

    def give_back(self, t: ControlledThread) -> None:
        """Called by a thread whose job ended."""
        with self._lock:
            self._idle.append(t)

    def close(self) -> None:
        """Stop the idle threads (busy or stuck ones are daemons)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for t in idle:
            t.stop()
        for t in idle:
            t.thread.join(timeout=1.0)


class _Reportable(Protocol):
    def lost_execution(self, watch: Watch) -> Any:
        """The execution's report, built on the caller after the driver was lost."""


@dataclass(eq=False)
class Watch:
    """The execution the driver is running now, as the caller watches it.

    Attributes:
        ctl: its controller.
        started: wall-clock start.
        timeout: wall-clock seconds it may take.
        watchdog: wall-clock seconds the holder may go without a point.
        run: the execution object (builds the report if the driver is lost).
        uncontrolled: ``(entity name, where, stack, silent seconds)`` when
            the watchdog found the holder blocked outside jostle's control.
        timed_out: the run exceeded ``timeout``.
        stuck: the entity that was holding the baton when the caller
            aborted the run.
        aborted_at: when the caller aborted it (wall clock).
        plumbing: jostle is waiting on its own machinery (starting process
            workers): the no-progress watchdog does not apply.
    """

    ctl: Controller
    started: float
    timeout: float
    watchdog: float
    run: _Reportable | None = None
    uncontrolled: tuple[str, tuple[str, int] | None, str, float] | None = None
    timed_out: bool = False
    stuck: Entity | None = None
    aborted_at: float | None = None
    plumbing: bool = False


class DriverLost(JostleError):
    """The driver thread stopped responding while running an execution:
    ``execution`` is that execution's report, built from what it recorded."""

    def __init__(self, execution: Any) -> None:
        super().__init__("the controlled run's driver thread is stuck in code jostle does "
                         "not control; it was abandoned")
        self.execution = execution


class _Job(Generic[T]):
    __slots__ = ("done", "error", "fn", "value")

    def __init__(self, fn: Callable[[], T]) -> None:
        self.fn = fn
        self.done = _allocate_lock()
        self.done.acquire()
        self.value: T | None = None
        self.error: BaseException | None = None

    def __call__(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as exc:  # handed to the caller
            self.error = exc


class Driver:
    """The engine's controlled-run machinery: the driver thread, the pool of
    controlled threads, and the CPU they share."""

    def __init__(self) -> None:
        self.cpu = choose_cpu()
        self.pool = ControlledPool(self.cpu)
        self._thread: ControlledThread | None = None
        self._drivers = 0
        self.session: Session | None = None

    @property
    def thread(self) -> ControlledThread:
        """The live driver thread: a new one after a loss, or when the last
        one is still busy with a call its caller gave up on (an interrupt)."""
        t = self._thread
        if t is not None and t.busy and not self.on_driver():
            t.abandoned = True
        if self._thread is None or self._thread.abandoned:
            self._drivers += 1
            self._thread = ControlledThread(None, self._drivers, self.cpu, "jostle-driver")
        return self._thread

    @property
    def loop(self) -> ControlledEventLoop:
        """The controlled event loop the driver thread runs (one per driver)."""
        t = self.thread
        if t.loop is None:
            t.loop = ControlledEventLoop()
        return t.loop

    def on_driver(self) -> bool:
        """Whether the calling thread is the driver."""
        t = self._thread
        return t is not None and not t.abandoned and t.ident == _get_ident()

    def close(self) -> None:
        """Stop the driver and the idle pool threads."""
        t = self._thread
        if t is not None and not t.abandoned:
            t.stop()
            t.thread.join(timeout=1.0)
            if t.loop is not None and not t.thread.is_alive():
                t.loop.close()
        self._thread = None
        self.pool.close()


class Session:
    """A stretch of controlled executions: the patching window, the tracer,
    garbage collection off and the caller pinned, for as long as it is open.

    Open it on the thread that will wait for the work (the test's), then
    hand the work to the driver with :meth:`call`.

    Args:
        driver: the engine's :class:`Driver`.
        model: the preemption model the tracer reports points for.
    """

    def __init__(self, driver: Driver, *, model: Model) -> None:
        self.driver = driver
        self.model = model
        self.tmap = ThreadMap()
        self.window: Window | None = None
        self.tracer: Tracer | None = None
        self.current: Watch | None = None
        self._undo: list[Callable[[], None]] = []

    def __enter__(self) -> Session:
        if self.driver.session is not None:
            raise JostleError(
                "a controlled jostle run is already in progress in this process; controlled "
                "runs cannot nest or overlap: run them one after another")
        self.driver.session = self
        try:
            saved = _pin(self.driver.cpu)
            self._undo.append(lambda: _unpin(saved))
            # Each execution resets the global generator (replay); the
            # caller gets its own state back.
            random_state = random.getstate()
            self._undo.append(lambda: random.setstate(random_state))
            if gc.isenabled():
                gc.disable()
                self._undo.append(_enable_gc)
            placeholder = Controller(_NoStrategy())
            cm = patched(placeholder, self.tmap)
            self.window = cm.__enter__()

            def close_window() -> None:
                cm.__exit__(None, None, None)
            self._undo.append(close_window)
            self.tracer = Tracer(self.window, model=self.model)
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _close(self) -> None:
        while self._undo:
            self._undo.pop()()
        self.window = self.tracer = None
        self.driver.session = None

    def traced(self) -> Tracer:
        """The session's tracer, started on first use: an execution with
        thread or process workers needs scheduling points in the code its
        entities run; one of tasks only never does (on 3.12+ monitoring is
        process-wide, so not starting it saves every event of the run).

        Raises:
            SpecError: no ``sys.monitoring`` tool id is free.
        """
        tracer = self.tracer
        assert tracer is not None
        if not tracer.started:
            tracer.start()
            self._undo.append(tracer.stop)
        return tracer

    # -- on the driver ------------------------------------------------------
    def begin(self, watch: Watch) -> None:
        """The driver starts an execution under ``watch.ctl``."""
        assert self.window is not None
        self.window.attach(watch.ctl)
        self.current = watch

    def end(self) -> None:
        """The driver is done with the current execution."""
        self.current = None

    # -- on the caller --------------------------------------------------------
    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the driver thread and watch every execution it runs.

        Raises:
            DriverLost: the driver got stuck in an execution; the exception
                carries that execution's report.
            BaseException: whatever ``fn`` raised.
        """
        job: _Job[T] = _Job(fn)
        driver = self.driver.thread
        driver.submit(job, on_done=job.done.release)
        try:
            self._watch(job, driver)
        except BaseException:
            # Interrupted (Ctrl-C, a test timeout's exception) or lost: stop
            # the run, and never reuse a driver that did not come back.
            w = self.current
            if w is not None:
                w.ctl.abort()
            if not driver.abandoned and not job.done.acquire(True, GRACE):
                driver.abandoned = True
            raise
        # Raised here, not in _watch: the job is over and its thread idle, so
        # an error of the job's own (a misuse error) does not wait out the
        # grace of a lost driver and then give a healthy driver up.
        if job.error is not None:
            raise job.error
        return job.value  # type: ignore[return-value]

    def _watch(self, job: _Job[T], driver: ControlledThread) -> None:
        seen: Watch | None = None
        last_points = -1
        last_change = _wall()
        while True:
            w = self.current
            poll = 0.1 if w is None else min(max(w.watchdog / 5, 0.001), 0.1)
            if job.done.acquire(True, poll):
                break
            now = _wall()
            w = self.current
            if w is None:
                continue
            if w is not seen:
                seen, last_points, last_change = w, w.ctl.points, now
            if w.aborted_at is not None:
                if now - w.aborted_at > GRACE and self.current is w:
                    driver.abandoned = True
                    self.current = None
                    assert w.run is not None
                    raise DriverLost(w.run.lost_execution(w))
                continue
            ctl = w.ctl
            if ctl.points != last_points or w.plumbing:
                last_points, last_change = ctl.points, now
            elif now - last_change >= w.watchdog and not _waits_outside(ctl):
                holder = ctl.holder
                stack, where = thread_stack(self.tmap.ident_of(holder) if holder else None)
                w.uncontrolled = (holder.name if holder is not None else "?", where, stack,
                                  now - last_change)
                w.stuck = holder
                w.aborted_at = now
                ctl.abort()
                continue
            if now - w.started >= w.timeout and not w.plumbing:
                w.timed_out = True
                w.stuck = ctl.holder
                w.aborted_at = now
                ctl.abort()


def _enable_gc() -> None:
    gc.enable()


def _waits_outside(ctl: Controller) -> bool:
    """Nobody holds the baton because an entity waits on an OS lock another
    process holds: its proxy has its own stall timeout."""
    return ctl.holder is None and any(
        e.external and e.state is EntityState.BLOCKED for e in ctl.entities)


class _NoStrategy(Strategy):
    """The placeholder controller's strategy: a window opened before any
    execution has no run to decide for."""

    name = "none"

    def next(self, step: int, current: Entity | None, runnable: Any, *,
             preemptible: bool) -> Entity:
        raise JostleError("internal: the session's placeholder controller was asked to decide")
