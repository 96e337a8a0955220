"""An event loop whose every ordering decision is a scheduler choice.

The stock loop runs all ready callbacks of an iteration in FIFO order and
reads the wall clock for timers.  :class:`ControlledEventLoop` runs **one**
ready callback per iteration, chosen by the :class:`~jostle._control.Strategy`
(choice 0 is the callback the stock loop would run next, so a strategy that
always answers 0 reproduces the stock order exactly), and keeps **virtual
time**: timers never wait on the wall clock; when nothing is ready the clock
jumps to the earliest timer, and timers due at the same virtual time become
ready together, their order being one more choice.  At each resumption of a
task marked *injectable* the strategy may also inject a cancellation (a
client timeout or disconnect landing on that ``await``).  Every choice is
logged as a :class:`~jostle._control.Decision`, so a failing run replays and
shrinks like any other.  Prior art: detangle's simulation loop, Trio's
seedable scheduler (``trio._core._run``), and the field notes' prototype
(3 tasks x 5 awaits: 14,600-20,000 executions/s reusing the loop).

Why a ``SelectorEventLoop`` subclass rather than a ``BaseEventLoop`` one:
the selector loop brings the self-pipe (``call_soon_threadsafe`` from other
threads, signal wake-ups), real socket, pipe and subprocess transports and
``run_in_executor``; a ``BaseEventLoop`` subclass would have to re-implement
all of them, and user code that opens a socket would simply fail.  Only
``_run_once`` (one iteration), ``time`` and a few hooks are overridden; they
rely on the private ``_ready`` deque and ``_scheduled`` heap, whose shape is
the same from 3.10 to 3.13.  uvloop is not covered.

Two modes:

* **Standalone** (no controller): choices come straight from ``strategy``;
  the loop keeps its own virtual clock and decision log.  This is what
  :func:`run_controlled` uses for asyncio-only scenarios and tests.
* **Attached** (:meth:`ControlledEventLoop.attach`): the loop is one entity
  of a :class:`~jostle._control.Controller` (threads and process proxies are
  others).  Choices go through ``controller.pick`` into the global log,
  the loop thread calls ``controller.point`` between callbacks so other
  entities can take the baton, the controller's ``now`` is the only clock,
  and an idle loop *blocks* in the controller (with a virtual timeout at its
  earliest timer), so the controller's deadlock detection and clock jumps
  cover the loop too.  ``call_soon_threadsafe`` from a controlled thread
  wakes the blocked loop.

When nothing is ready and no timer is pending, a controlled run is stuck:
with nothing else that could wake it, that is an :class:`AsyncDeadlock`,
reported at once with every pending task's await stack (``cr_await``
chains; ``Task.get_stack()`` shows only the outermost frame).  Sources jostle
does not control -- sockets and pipes (polled with timeout 0 between
iterations, so they work, but nondeterministically) and ``run_in_executor``
jobs on real threads -- get a short wall-clock grace and then an
:class:`UncontrolledWait` naming them.  Outside a controlled run (plain
``run_forever``/``run_until_complete``) an idle loop waits in the selector
like the stock one, so it can serve other threads.

Task identities are normalised: tasks get indices in creation order within
a run (``task 0``, ``task 1``...), used as default task names, in labels and
in reports, because asyncio's ``Task-N`` counter is global and breaks replay
(field notes: 995 of 1,000 replays mismatched before normalising).

The eager task factory (3.12+) is supported: an eagerly started task runs
its first step inside the callback that created it, as on the stock loop,
so that step is not a separate choice and an injected cancellation cannot
land before the task's first suspension.  :attr:`ControlledEventLoop.eager_tasks`
tells whether it is set (reports should say so).

Decisions: ready-order choices and injections are both logged with kind
``pick`` (labels ``ready: task 0 | task 1 | timer ...`` and ``inject:cancel
task 1``), so ``_strategies.from_log`` turns a run's log into a replayable
schedule; standalone, a step counts the choices with two or more options,
attached it is the controller's step.  Known limits: ``call_soon_threadsafe``
from threads jostle does not control (executors, other libraries) and real
I/O make a run nondeterministic; ``loop.stop()`` takes effect after the
current callback, not after the current batch.

Integration points for the engine (``_engine.py`` wires them):

* **One loop, reused.**  Keep one :class:`ControlledEventLoop` on the
  loop's persistent thread instead of ``LoopThread``'s stock loop in
  controlled mode.  Build the resource with ``loop.run_until_complete(build())``
  (plain mode: virtual time, stock order); nothing is logged before a run.
* **One execution.**  ``run_controlled(worker_factories, strategy, loop=loop,
  inject=True, max_injections=..., max_steps=...)`` for an asyncio-only
  scenario; from the loop entity's thread in a mixed one, ``run_controlled(
  worker_factories, controller=c, entity=loop_entity, loop=loop)``.  Factory
  ``i`` becomes ``task i``.  It resets the loop, runs until every factory's
  task is done and no callback is ready or due (quiescence: check invariants
  after it), records a :class:`LoopRun`, then cancels and drains what the
  run left (tasks, timers, async generators) so the next run starts empty.
* **Where cancellations land.**  ``inject=True`` marks the factories' tasks;
  the engine may instead add the task running each operation to
  ``loop.injectable`` (a public set, emptied between runs) so an injected
  ``CancelledError`` lands inside an operation (recorded as cancelled) and
  never in the engine's own bookkeeping awaits.
* **Reports.**  ``LoopRun.stuck`` is a :class:`LoopStuck` (a ``Hang``):
  :class:`AsyncDeadlock`, :class:`LoopLivelock` or :class:`UncontrolledWait`,
  each with ``tasks`` (:class:`WaitingTask`: index, name, await stack, user
  frame) for ``StuckWorker``.  ``injections``/``injected`` say what was
  injected where; :attr:`~ControlledEventLoop.eager_tasks` goes on the report.
* **Mixed runs.**  Controlled threads post to the loop with
  ``call_soon_threadsafe`` while holding the baton (that wakes the loop
  entity).  A loop that must keep serving threads after its own tasks
  finish needs a factory that awaits a future the threads resolve, through
  ``call_soon_threadsafe``, when they are done; otherwise the loop entity
  finishes as soon as its tasks do.  Any virtual ``time.monotonic`` for
  threads should read ``controller.now``, the loop's clock when attached.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import heapq
import os
import selectors
import socket
import weakref
from collections import deque
from collections.abc import AsyncGenerator, Callable, Coroutine, Sequence
from contextvars import Context
from typing import TYPE_CHECKING, Any, TypeVar

from ._control import Aborted, Controller, Decision, Entity, Strategy
from ._loop_reports import (
    AsyncDeadlock as AsyncDeadlock,
    LoopLivelock as LoopLivelock,
    LoopRun as LoopRun,
    LoopStuck as LoopStuck,
    UncontrolledWait as UncontrolledWait,
    WaitingTask as WaitingTask,
)
from ._stacks import task_stack

__all__ = [
    "AsyncDeadlock",
    "ControlledEventLoop",
    "LoopLivelock",
    "LoopRun",
    "LoopStuck",
    "UncontrolledWait",
    "WaitingTask",
    "is_eager_factory",
    "run_controlled",
]

T = TypeVar("T")
if TYPE_CHECKING:
    from typing_extensions import TypeVarTuple, Unpack

    Ts = TypeVarTuple("Ts")
_Task = asyncio.Task
# Thresholds of the stock loop's purge of cancelled timers (base_events.py).
_MIN_SCHEDULED_TIMER_HANDLES = 100
_MIN_CANCELLED_TIMER_HANDLES_FRACTION = 0.5
_CLEANUP_STEPS = 10_000


# -- helpers -----------------------------------------------------------------
def _qualname(fn: Any) -> str:
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return str(name).replace(".<locals>", "")


def is_eager_factory(factory: object) -> bool:
    """Whether ``factory`` is asyncio's eager task factory (3.12+) or one
    made by ``asyncio.create_eager_task_factory``."""
    if factory is None:
        return False
    if factory is getattr(asyncio, "eager_task_factory", object()):
        return True
    return _qualname(factory).startswith("create_eager_task_factory")


class _LoopWait:
    """What an attached loop blocks on in the controller (its repr is what
    deadlock reports show: the tasks that wait, and where)."""

    __slots__ = ("loop",)

    def __init__(self, loop: ControlledEventLoop) -> None:
        self.loop = loop

    def __repr__(self) -> str:
        pending = self.loop.uncontrolled_sources()
        if pending:
            return f"<event loop waiting for {'; '.join(pending)}>"
        tasks = self.loop.waiting_tasks()
        if tasks:
            where = "; ".join(f"task {t.index} at {os.path.basename(t.where[0])}:{t.where[1]}"
                              if t.where else f"task {t.index}" for t in tasks)
            return f"<event loop whose tasks all wait: {where}>"
        return "<event loop waiting for a callback, a timer or call_soon_threadsafe>"


# -- the loop ----------------------------------------------------------------
class ControlledEventLoop(asyncio.SelectorEventLoop):
    """A selector event loop that runs one ready callback per iteration, in
    the order a strategy chooses, in virtual time.

    Args:
        strategy: answers ``pick(step, options, what)`` for ``what`` in
            ``"ready"`` (which ready callback runs; 0 = stock FIFO order) and
            ``"inject:cancel"`` (0 = no, 1 = cancel the task about to
            resume).  Ignored while attached (the controller's is used).
        max_steps: most callbacks one controlled run may run before it is
            reported as a livelock.
        uncontrolled_grace: wall-clock seconds an otherwise idle controlled
            run waits for I/O or executor jobs before reporting an
            :class:`UncontrolledWait`.

    Example:
        >>> loop = ControlledEventLoop()
        >>> async def nap() -> float:
        ...     await asyncio.sleep(10)
        ...     return asyncio.get_running_loop().time()
        >>> loop.run_until_complete(nap())
        10.0
        >>> loop.close()
    """

    # Private state of asyncio's loops that this class drives (same shape
    # on 3.10-3.13); declared here so the type checker knows it.
    _ready: deque[asyncio.Handle]
    _scheduled: list[asyncio.TimerHandle]
    _selector: selectors.BaseSelector
    _stopping: bool
    _timer_cancelled_count: int
    _ssock: socket.socket
    _asyncgens: weakref.WeakSet[AsyncGenerator[Any, Any]]

    def __init__(self, strategy: Strategy | None = None, *, max_steps: int = 100_000,
                 uncontrolled_grace: float = 1.0) -> None:
        super().__init__()
        self.strategy = strategy if strategy is not None else Strategy()
        self.max_steps = max_steps
        self.uncontrolled_grace = uncontrolled_grace
        #: Tasks at whose resumptions a cancellation may be injected.
        self.injectable: set[asyncio.Task[Any]] = set()
        #: Most injections per run (``None``: no bound).
        self.max_injections: int | None = None
        self.controller: Controller | None = None
        self.entity: Entity | None = None
        self.steps = 0
        self.injections = 0
        self.injected: list[str] = []
        self.decisions: list[Decision] = []
        self._now = 0.0
        self._step = 0
        self._batch = 0
        self._tasks: list[asyncio.Task[Any] | None] = []
        self._index: dict[asyncio.Task[Any], int] = {}
        self._labels: dict[asyncio.Task[Any], str] = {}
        self._watch: set[asyncio.Task[Any]] | None = None
        self._cleaning = False
        self._executor_jobs: list[tuple[asyncio.Future[Any], str]] = []
        self._wait_key = _LoopWait(self)
        self._log_start = 0
        self._eager = False
        #: While this returns true the run does not end at quiescence: the
        #: loop blocks in its controller for more work (the engine's main
        #: entity serves the loop until its thread and process workers are
        #: done, so their ``call_soon_threadsafe`` callbacks still run).
        self.keep_running: Callable[[], bool] | None = None
        #: Tasks whose next step resumes the user's code (the engine adds a
        #: task while it awaits an operation).  Attached, the loop's entity is
        #: *busy* (not traced) except while such a step or a plain callback
        #: runs, so the loop's own work and jostle's bookkeeping inside tasks
        #: are never scheduling points.
        self.in_user: set[asyncio.Task[Any]] = set()
        #: Whether ``in_user`` decides the entity's busy flag (the engine's
        #: runs); off, the entity is never busy (standalone and plain use).
        self.track_user = False

    # -- clock -------------------------------------------------------------
    def time(self) -> float:
        """Virtual time: the controller's clock when attached, else the loop's."""
        c = self.controller
        return self._now if c is None else c.now

    def _set_clock(self, now: float) -> None:
        """Move the clock to ``now`` keeping pending timers' delays."""
        delta = now - self.time()
        if delta:
            for h in self._scheduled:
                h._when += delta  # type: ignore[attr-defined]
        self._now = now

    # -- modes -------------------------------------------------------------
    def attach(self, controller: Controller, entity: Entity) -> None:
        """Make the loop entity ``entity`` of ``controller`` (see the module
        docstring).  The calling thread must hold ``entity``'s baton whenever
        the loop runs."""
        if self.is_running():
            raise RuntimeError("attach() was called on a running loop; attach it before "
                               "running it (run_controlled(controller=...) does)")
        self._set_clock(controller.now)
        self.controller, self.entity = controller, entity
        self._log_start = len(controller.log)

    def detach(self) -> None:
        """Back to standalone mode; the virtual clock carries on from the
        controller's."""
        c = self.controller
        if c is not None:
            self._now = c.now
            self.controller = None

    def reset(self) -> None:
        """Start a new run: task indices, steps, decisions and injections
        from zero, and the virtual clock too when standalone (attached, the
        controller's clock is the clock).  Called by :func:`run_controlled`."""
        if self.is_running():
            raise RuntimeError("reset() was called on a running loop; call it between runs")
        if self.controller is None:
            self._set_clock(0.0)
        else:
            self._log_start = len(self.controller.log)
        self.steps = self.injections = self._step = self._batch = 0
        self.injected = []
        self.decisions = []
        self._tasks = []
        self._index = {}
        self._labels = {}
        self.injectable = set()
        self.in_user = set()
        self._executor_jobs = []

    @property
    def eager_tasks(self) -> bool:
        """Whether the eager task factory (3.12+) is set on this loop."""
        return self._eager

    def set_task_factory(self, factory: Any) -> None:
        """As the stock method; also notes whether ``factory`` is eager."""
        super().set_task_factory(factory)
        self._eager = is_eager_factory(factory)

    # -- task identities -----------------------------------------------------
    def create_task(self, coro: Any, *, name: object = None,
                    **kwargs: Any) -> asyncio.Task[Any]:
        """``BaseEventLoop.create_task`` (``context`` and later keywords are
        passed on), recording the task's index in this run; an unnamed task
        is named ``task <index>``."""
        index = len(self._tasks)
        self._tasks.append(None)  # reserved now: eagerly started children come after
        if name is None:
            name = f"task {index}"
        if self._eager:
            # The stock method names a factory's task after the factory ran,
            # i.e. after an eager first step that may read the name.
            self._check_closed()  # type: ignore[attr-defined]
            factory: Callable[..., asyncio.Task[Any]] = self.get_task_factory()  # type: ignore[assignment]
            task = factory(self, coro, name=name, **kwargs)
        else:
            task = super().create_task(coro, name=name, **kwargs)
        self._tasks[index] = task
        self._index[task] = index
        self._labels[task] = f"task {index}"
        if self._watch is None and not index % 1024 and index:
            self._forget_done_tasks()  # a plain loop may live long: do not hoard tasks
        return task

    def _forget_done_tasks(self) -> None:
        for i, t in enumerate(self._tasks):
            if t is not None and t.done():
                self._tasks[i] = None
                del self._index[t]
                del self._labels[t]

    def task_index(self, task: asyncio.Task[Any]) -> int:
        """The normalised index of ``task`` in this run (tasks made without
        ``create_task`` get one when first seen)."""
        index = self._index.get(task)
        if index is None:
            index = self._index[task] = len(self._tasks)
            self._labels[task] = f"task {index}"
            self._tasks.append(task)
        return index

    def describe(self, handle: asyncio.Handle) -> str:
        """A normalised, address-free description of a ready callback:
        ``task 2`` for a step of task 2, else the callback's qualified name;
        ``timer `` in front for a timer."""
        cb = handle._callback  # type: ignore[attr-defined]
        owner = getattr(cb, "__self__", None)
        if isinstance(owner, _Task):
            text = self._labels.get(owner)
            if text is None:
                text = f"task {self.task_index(owner)}"
        else:
            text = _qualname(cb)
        return "timer " + text if type(handle) is asyncio.TimerHandle else text

    # -- uncontrolled sources --------------------------------------------------
    def call_soon_threadsafe(self, callback: Callable[[Unpack[Ts]], object],
                             *args: Unpack[Ts],
                             context: Context | None = None) -> asyncio.Handle:
        """As the stock method; also wakes the loop if it is blocked in its
        controller (the caller must hold the baton: a controlled thread)."""
        handle = super().call_soon_threadsafe(callback, *args, context=context)
        c = self.controller
        if c is not None:
            c.wake(self._wait_key)
        return handle

    def run_in_executor(self, executor: concurrent.futures.Executor | None,
                        func: Callable[[Unpack[Ts]], T], *args: Unpack[Ts]) -> asyncio.Future[T]:
        """As the stock method; the job is tracked as an uncontrolled source."""
        fut = super().run_in_executor(executor, func, *args)
        self._executor_jobs.append((fut, _qualname(func)))
        return fut

    def uncontrolled_sources(self) -> list[str]:
        """What the loop waits for that jostle does not control: file
        descriptors with a reader or writer, and unfinished executor jobs."""
        found: list[str] = []
        ssock = self._ssock.fileno() if self._ssock is not None else -1
        for key in list(self._selector.get_map().values()):
            if key.fd == ssock:
                continue
            reader, writer = key.data
            for kind, h in (("readable", reader), ("writable", writer)):
                if h is not None and not h._cancelled:
                    found.append(f"fd {key.fd} to become {kind} (for {self.describe(h)})")
        self._executor_jobs = [(f, n) for f, n in self._executor_jobs if not f.done()]
        found += [f"executor job {n}() on a thread jostle does not control"
                  for _, n in self._executor_jobs]
        return found

    def _poll(self, timeout: float | None) -> None:
        events = self._selector.select(timeout)
        if not events:
            return
        ssock = self._ssock.fileno()
        rest = [(k, m) for k, m in events if k.fd != ssock]
        if len(rest) != len(events):
            self._read_from_self()  # type: ignore[attr-defined]
        if rest:
            self._process_events(rest)  # type: ignore[attr-defined]

    # -- timers ----------------------------------------------------------------
    def _first_timer(self) -> asyncio.TimerHandle | None:
        sched = self._scheduled
        while sched and sched[0]._cancelled:
            h = heapq.heappop(sched)
            h._scheduled = False  # type: ignore[attr-defined]
            self._timer_cancelled_count -= 1
        return sched[0] if sched else None

    def _move_due_timers(self) -> None:
        sched = self._scheduled
        n = len(sched)
        if (n > _MIN_SCHEDULED_TIMER_HANDLES
                and self._timer_cancelled_count / n > _MIN_CANCELLED_TIMER_HANDLES_FRACTION):
            live = []
            for h in sched:
                if h._cancelled:
                    h._scheduled = False  # type: ignore[attr-defined]
                else:
                    live.append(h)
            heapq.heapify(live)
            self._scheduled = sched = live
            self._timer_cancelled_count = 0
        now = self.time()
        ready = self._ready
        while sched and sched[0]._when <= now:  # type: ignore[attr-defined]
            h = heapq.heappop(sched)
            h._scheduled = False  # type: ignore[attr-defined]
            if h._cancelled:
                self._timer_cancelled_count -= 1
            else:
                ready.append(h)

    def _refill(self) -> None:
        """What the stock loop does between two batches: poll I/O (only if a
        descriptor other than the self-pipe is registered) and move due timers."""
        fds = getattr(self._selector, "_fd_to_key", None)  # the selectors' private map:
        if len(fds if fds is not None else self._selector.get_map()) > 1:  # its len is cheap
            self._poll(0)
        if self._scheduled:
            self._move_due_timers()
        self._batch = len(self._ready)

    # -- choices -----------------------------------------------------------------
    def _choose(self, options: int, what: str, label: Callable[[], str]) -> int:
        c = self.controller
        if c is not None:
            assert self.entity is not None
            return c.pick(self.entity, options, what, label) % options
        self._step += 1
        choice = self.strategy.pick(self._step, options, what) % options
        if choice:
            self.decisions.append(Decision(self._step, "pick", 0, choice, label()))
        return choice

    def _ready_label(self) -> str:
        describe = self.describe
        return "ready: " + " | ".join([describe(h) for h in self._ready])

    def _maybe_inject(self, task: asyncio.Task[Any]) -> None:
        if task.done() or getattr(task, "_must_cancel", False):
            return
        if self.max_injections is not None and self.injections >= self.max_injections:
            return
        who = self._labels.get(task) or f"task {self.task_index(task)}"
        if self._choose(2, "inject:cancel", lambda: "inject:cancel " + who):
            _, where = task_stack(task)
            self.injected.append(f"{who} at {where[0]}:{where[1]}" if where else who)
            self.injections += 1
            task.cancel()

    # -- one iteration -------------------------------------------------------------
    def _run_once(self) -> None:
        """Run one ready callback (the stock method runs a whole batch)."""
        ready = self._ready
        if self._batch <= 0:
            self._refill()
        if ready:
            self._drop_cancelled()
        if not ready:
            self._idle()
            if not ready:
                return
            self._batch = len(ready)
        cleaning = self._cleaning
        if self.steps >= self.max_steps and self._watch is not None:
            if cleaning:
                self._stopping = True
                return
            raise self._stuck(LoopLivelock, f"the run went past max_steps={self.max_steps} "
                              "callbacks (a livelock, or a bound too low for the scenario):")
        n = len(ready)
        if n > 1 and not cleaning:
            i = self._choose(n, "ready", self._ready_label)
            handle = ready[i]
            del ready[i]
        else:
            i = 0
            handle = ready.popleft()
        if i < self._batch:
            self._batch -= 1
        owner = getattr(handle._callback, "__self__", None)  # type: ignore[attr-defined]
        task = owner if isinstance(owner, _Task) else None
        if task is not None and not cleaning and task in self.injectable:
            self._maybe_inject(task)
        self.steps += 1
        ent = self.entity
        if ent is not None and self.track_user:
            ent.busy = not cleaning and task is not None and task not in self.in_user
            handle._run()
            ent.busy = True
        else:
            handle._run()
        watch = self._watch
        if watch is not None:
            if task is not None and task in watch and task.done():
                watch.discard(task)
            if not watch:
                # The run ends at quiescence: its tasks are done and no callback
                # (a thread's post, a done-callback) is ready or due.
                if not ready and not cleaning:
                    self._refill()
                if cleaning or (not ready and not self._keep()):
                    self._stopping = True
                    return
        c = self.controller
        if c is not None and ready and not cleaning:
            entity = self.entity
            assert entity is not None
            if entity.aborted:
                raise Aborted(entity.name)
            c.point(entity, lambda: "event loop after " + self.describe(handle))

    def _drop_cancelled(self) -> None:
        ready = self._ready
        for h in ready:
            if h._cancelled:
                break
        else:
            return
        live: deque[asyncio.Handle] = deque()
        for pos, h in enumerate(ready):
            if not h._cancelled:
                live.append(h)
            elif pos < self._batch:
                self._batch -= 1
        ready.clear()
        ready.extend(live)

    def _idle(self) -> None:
        """Nothing is ready: jump the clock, block in the controller, or
        report why the run cannot go on."""
        if self._stopping:
            return
        if self._watch is not None and not self._watch and not self._keep():
            self._stopping = True  # the run's tasks are done
            return
        if self.controller is not None and not self._cleaning:
            self._block()
            return
        first = self._first_timer()
        if first is not None:
            self._now = max(self._now, first._when)  # type: ignore[attr-defined]
            self._move_due_timers()
            return
        if self._cleaning:
            self._stopping = True
            return
        if self._watch is None:  # a plain loop: wait for other threads, as stock
            self._poll(None)
            return
        pending = self.uncontrolled_sources()
        if pending:
            self._poll(self.uncontrolled_grace)
            if self._ready:
                return
            raise self._stuck(UncontrolledWait, "the event loop can only go on when something "
                              "jostle does not control happens:", tuple(pending))
        raise self._stuck(AsyncDeadlock, "asyncio deadlock: no callback is ready, no timer is "
                          "pending, and these tasks wait forever:")

    def _block(self) -> None:
        c, entity = self.controller, self.entity
        assert c is not None and entity is not None
        first = self._first_timer()
        timeout = None if first is None else max(first._when - c.now, 0.0)  # type: ignore[attr-defined]
        c.block(entity, self._wait_key, timeout=timeout, label="event loop idle")
        self._refill()

    def _stuck(self, cls: type[LoopStuck], headline: str,
               pending: tuple[str, ...] = ()) -> LoopStuck:
        return cls(headline, self.waiting_tasks(), pending)

    def waiting_tasks(self) -> tuple[WaitingTask, ...]:
        """Every unfinished task of this run, with its await stack."""
        out = []
        for i, t in enumerate(self._tasks):
            if t is not None and not t.done():
                stack, where = task_stack(t)
                out.append(WaitingTask(i, t.get_name(), stack, where))
        return tuple(out)

    def _keep(self) -> bool:
        keep = self.keep_running
        return keep is not None and not self._cleaning and keep()

    # -- runs -------------------------------------------------------------------
    def _run_watched(self, tasks: Sequence[asyncio.Task[Any]]) -> None:
        self._watch = {t for t in tasks if not t.done()}
        try:
            while self._watch or self._keep():  # user code may stop() the loop mid-run
                self.run_forever()
        finally:
            self._watch = None

    def cleanup(self) -> None:
        """Cancel what a run left behind, let it unwind (no choices, no
        injections, virtual time, at most 10,000 callbacks), and drop leftover
        callbacks and timers, so the next run starts empty.  Tasks that
        survive their cancellation are abandoned."""
        pending = [t for t in self._tasks if t is not None and not t.done()]
        for t in pending:
            t.cancel()
        for agen in list(self._asyncgens):  # else finalised by GC, in some later run
            self._asyncgens.discard(agen)
            pending.append(self.create_task(agen.aclose()))
        steps, max_steps = self.steps, self.max_steps
        self._cleaning = True
        self.max_steps = self.steps + _CLEANUP_STEPS
        self._watch = {t for t in pending if not t.done()}
        try:
            if self._watch:
                self.run_forever()  # once: it stops when idle or past the bound
        finally:
            self._watch = None
            self._cleaning = False
            self.steps, self.max_steps = steps, max_steps
        for left in self._tasks:
            if left is not None and left.done() and not left.cancelled():
                left.exception()  # retrieved: no "exception was never retrieved" log
        for h in self._ready:
            h.cancel()
        self._ready.clear()
        for th in self._scheduled:
            th._scheduled = False  # type: ignore[attr-defined]
            th.cancel()
        self._scheduled.clear()
        self._timer_cancelled_count = 0
        self._batch = 0
        self._tasks = []
        self._index = {}
        self._labels = {}
        self.injectable = set()


def run_controlled(coro_factories: Sequence[Callable[[], Coroutine[Any, Any, Any]]],
                   strategy: Strategy | None = None, *,
                   controller: Controller | None = None, entity: Entity | None = None,
                   loop: ControlledEventLoop | None = None, inject: bool = False,
                   max_injections: int | None = None,
                   max_steps: int = 100_000, holding: bool = False,
                   keep_running: Callable[[], bool] | None = None) -> LoopRun:
    """Run coroutines as tasks ``task 0``, ``task 1``... on a controlled loop,
    until they are done and no callback is ready or due.

    Tasks they leave behind (a sleeper, a server) do not keep the run going;
    they are cancelled afterwards, as are pending timers.  A background task
    that never stops being ready (``while True: await asyncio.sleep(0)``)
    makes the run a :class:`LoopLivelock` at ``max_steps``.

    Args:
        coro_factories: each returns a coroutine; called in order, once.
        strategy: the choices (standalone); ``None`` with a controller means
            the controller's, and otherwise the stock order.
        controller: run attached, as ``entity`` (added as ``event loop`` if
            not given) of this controller, on the calling thread: the call
            starts the controller if nobody did, waits for the baton, and
            finishes the entity at the end.
        entity: the loop's entity in ``controller``.
        loop: a loop to reuse (much faster than a new one per run); ``None``
            makes one and closes it.
        inject: the strategy may inject a cancellation at each resumption of
            these tasks.
        max_injections: most injections in the run.
        max_steps: most callbacks before the run is reported as a livelock.
        holding: attached, the calling thread already holds ``entity``'s
            baton and keeps the entity afterwards (it neither waits for the
            baton nor finishes the entity): the engine's ``main`` entity
            runs the loop this way between its other work.
        keep_running: attached, the run does not end at quiescence while
            this returns true (see :attr:`ControlledEventLoop.keep_running`).

    Returns:
        The run's record; a deadlock, livelock or uncontrolled wait is in
        ``stuck``, not raised.

    Raises:
        ValueError: both ``strategy`` and a ``controller`` with another
            strategy were given.
        Aborted: attached, the controller aborted the run before the loop
            got the baton.

    Example:
        >>> async def hello() -> str:
        ...     await asyncio.sleep(5)
        ...     return "hi"
        >>> run = run_controlled([hello, hello])
        >>> run.results, run.virtual_time
        (('hi', 'hi'), 5.0)
    """
    if controller is not None and strategy is not None and strategy is not controller.strategy:
        raise ValueError(
            f"run_controlled got strategy={strategy!r} and a controller whose strategy is "
            f"{controller.strategy!r}; attached, the loop takes its choices from the "
            "controller: pass strategy=None")
    own = loop is None
    lp = ControlledEventLoop() if loop is None else loop
    saved = lp.strategy, lp.max_steps, lp.max_injections, lp.keep_running
    lp.strategy = strategy if strategy is not None else Strategy()
    lp.max_steps = max_steps
    lp.max_injections = max_injections
    lp.keep_running = keep_running if controller is not None else None
    aborted = False
    try:
        if controller is not None:
            if entity is None:
                entity = controller.add("event loop")
            if not holding:
                if controller.holder is None:
                    controller.start()
                controller.enter(entity)
            lp.attach(controller, entity)
        lp.reset()
        tasks = [lp.create_task(f()) for f in coro_factories]
        if inject:
            lp.injectable.update(tasks)
        stuck: LoopStuck | None = None
        try:
            lp._run_watched(tasks)
        except LoopStuck as exc:
            stuck = exc
        except Aborted:
            aborted = True
            assert controller is not None
            cls = LoopLivelock if controller.livelock else AsyncDeadlock
            stuck = lp._stuck(cls, f"the controller aborted the run ({cls.__name__}); "
                              "the loop's tasks:")
        run = _record(lp, tasks, stuck, controller, entity)
    finally:
        lp.detach()
        lp.cleanup()  # before finish(): cleanup runs user code, so it needs the baton
        lp.strategy, lp.max_steps, lp.max_injections, lp.keep_running = saved
        if own:
            lp.close()
    if controller is not None and entity is not None and not aborted and not holding:
        controller.finish(entity)
    return run


def _record(lp: ControlledEventLoop, tasks: list[asyncio.Task[Any]], stuck: LoopStuck | None,
            controller: Controller | None, entity: Entity | None) -> LoopRun:
    results: list[object] = []
    exceptions: list[BaseException | None] = []
    for t in tasks:
        value: object = None
        error: BaseException | None = None
        if t.done():
            try:
                value = t.result()
            except BaseException as exc:  # recorded, not handled
                error = exc
        results.append(value)
        exceptions.append(error)
    if controller is not None and entity is not None:
        decisions = tuple(d for d in controller.log[lp._log_start:] if d.source == entity.id)
    else:
        decisions = tuple(lp.decisions)
    return LoopRun(tuple(results), tuple(exceptions), tuple(t.done() for t in tasks),
                   decisions, lp.injections, tuple(lp.injected), lp.time(), lp.steps, stuck)
