"""The baton: one entity runs at a time, and a strategy says who runs next.

Controlled mode runs a scenario's workers one at a time.  Every *entity*
(a worker thread, the event loop's thread, a proxy thread standing for a
process worker) is a real thread in the controller process, parked on a
lock of its own while it does not hold the baton.  At each scheduling point
the holder asks the :class:`Strategy` who runs next and, if it is someone
else, hands the baton over directly (release the other's lock, wait on its
own): one context switch per handoff, and no controller thread in the loop.
Direct handoff is what makes a controlled execution cheap (field notes: a
handoff costs 6-9 us pinned, 22 us unpinned).

Blocking becomes a scheduling event: a cooperative primitive that cannot
proceed calls :meth:`Controller.block`, which marks the entity blocked on a
*resource* (any hashable object: a lock, a condition, a queue) and passes
the baton on.  Releasing the resource calls :meth:`Controller.wake`.  When
nobody can run:

* if some blocked entity waits with a timeout, the virtual clock jumps to
  the earliest deadline and that entity wakes (so timeouts cost no wall
  time and fall in a deterministic order);
* otherwise it is a **deadlock**: reported at once with the wait-for graph,
  and every blocked entity is woken with :class:`Aborted` so its thread
  unwinds and can be reused.

Every decision is appended to one global log, whatever kind of entity took
it, so a mixed run of threads, tasks and processes replays from one list.

**Steps count choices, not points.**  A scheduling point where only the
holder can run (a sequential prefix, the last worker left) is not a
decision: it advances :attr:`Controller.points` (progress, livelock bound)
but not :attr:`Controller.step`, and the strategy is not asked.  A schedule's
step numbers therefore name real decisions only: a prefix that grows or
shrinks does not shift the parallel part's steps, and PCT spreads its
change points over decisions, not over every traced call.

All synchronisation here uses raw ``_thread`` locks, allocated through a
reference taken at import: controlled runs replace ``threading``'s primitives
and ``_thread.allocate_lock`` with cooperative ones, and the baton itself must
never be caught by that (a Controller may be built inside a patching window).

The baton holder is the only thread that drives the controller, with one
exception: a wall-clock watchdog on another thread may :meth:`Controller.abort`
a run whose holder is stuck in code jostle does not control.  Moving the baton
and aborting are therefore serialised by a raw mutex; the no-switch path of
:meth:`Controller.point` takes no lock.
"""

from __future__ import annotations

import _thread
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

__all__ = [
    "Aborted",
    "Controller",
    "Decision",
    "Entity",
    "EntityState",
    "Strategy",
    "UNBOUNDED",
]

_allocate_lock = _thread.allocate_lock

#: A budget of points without end (see :meth:`Controller.budget`).
UNBOUNDED = 2**31 - 1
# Seconds abort() waits for the mutex before it goes on without it.
_ABORT_WAIT = 1.0


class Aborted(BaseException):
    """Raised inside an entity the controller gave up on (deadlock, step
    limit, watchdog): it unwinds the worker's stack so its thread can be
    reused.  A ``BaseException`` so user ``except Exception`` blocks do not
    swallow it."""


class EntityState(str, Enum):
    """Where an entity is."""

    RUNNABLE = "runnable"
    BLOCKED = "blocked"
    DONE = "done"


@dataclass(eq=False)
class Entity:
    """One schedulable thing: a worker thread, the loop, a process proxy.

    Attributes:
        id: stable index, used in decisions and reports (in an engine run:
            0 for ``main``, the worker's number for a worker).
        name: ``worker 1 (thread)``, ``event loop``, ``worker 3 (process)``.
        state: runnable, blocked or done.
        blocked_on: the resource it waits for, when blocked.
        deadline: virtual time at which a timed wait gives up, or ``None``.
        timed_out: set when the virtual clock woke it rather than a release.
        busy: inside a controller call (:meth:`Controller.point`, ``block``,
            ``pick``, ``finish``): code it runs there (a strategy written in
            a test file, the log's records) is not the entity's own, and a
            tracer must not turn it into scheduling points.
    """

    id: int
    name: str
    state: EntityState = EntityState.RUNNABLE
    blocked_on: Hashable | None = None
    deadline: float | None = None
    timed_out: bool = False
    aborted: bool = False
    busy: bool = False
    external: bool = False
    #: The controller the entity belongs to (the tracer's hooks and the
    #: cooperative primitives reach it from here).
    ctl: Controller = field(default=None, repr=False)  # type: ignore[assignment]  # add() sets it
    #: The label of the point the entity is at (its next step starts there),
    #: kept only for strategies that ask (``Strategy.wants_labels``).
    at: str = ""
    _park: _thread.LockType = field(default_factory=_allocate_lock, repr=False)

    def __post_init__(self) -> None:
        self._park.acquire()


@dataclass(frozen=True, slots=True)
class Decision:
    """One entry of the global decision log.

    Attributes:
        step: the scheduling point's number (counts every point).
        kind: ``start`` (who runs first), ``switch`` (the baton moved at a
            preemption point), ``block``
            (moved because the holder blocked), ``finish``, ``timeout``
            (a timed wait timed out: by default when nobody else could
            run; a non-default one was chosen early, and replays like a
            switch), ``pick`` (the loop chose which ready callback runs) or
            ``inject`` (a cancellation).
        source: entity id that held the baton.
        target: entity id that got it (for ``pick``: the index chosen).
        label: where the point was (``file:line`` or a primitive's name).
        default: the choice was the default one (the lowest-id runnable
            entity after a block or finish, or the only one: a forced
            handoff keeps the step of the decision before it), so replaying
            needs no entry.
    """

    step: int
    kind: Literal["start", "switch", "block", "finish", "timeout", "pick", "inject"]
    source: int
    target: int
    label: str = ""
    default: bool = False


class Strategy:
    """Decides who runs at each scheduling point.

    Subclasses override :meth:`next` (and :meth:`pick` for choices that are
    not between entities, such as the order of ready asyncio callbacks).
    Strategies must be deterministic functions of their own data and the
    arguments: that is what makes a run replay exactly.
    """

    name = "first"
    #: Whether the controller must keep :attr:`Entity.at` (where each
    #: entity's next step starts) up to date for this strategy; it costs a
    #: label at every point, so only strategies that read it ask.
    wants_labels = False

    def next(self, step: int, current: Entity | None, runnable: Sequence[Entity],
             *, preemptible: bool) -> Entity:
        """The entity to run after point ``step``.

        Args:
            step: the point's number.
            current: the holder, or ``None`` if it just blocked or finished.
            runnable: every runnable entity, in id order (never empty).
            preemptible: false when the holder must keep running if it can
                (a point that is not a preemption point in this model).
        """
        if current is not None and current.state is EntityState.RUNNABLE:
            return current
        return runnable[0]

    def pick(self, step: int, options: int, what: str) -> int:
        """Choose one of ``options`` alternatives (0 = the default one)."""
        return 0

    def keeps_until(self, step: int) -> int:
        """A promise made right after :meth:`next` kept the holder at
        ``step``: at every step before the returned one, ``next`` would keep
        it too, as long as the set of runnable entities does not change.

        The controller then passes those points without asking (and a
        process worker runs through them without a round trip).  The base
        class promises nothing (``step + 1``); a subclass must keep its
        promise exactly, or replays diverge.
        """
        return step + 1


class Deadlock(Exception):
    """Internal: no entity can run and none waits with a timeout."""


class Controller:
    """Passes the baton among entities under a strategy.

    Args:
        strategy: who runs next.
        max_steps: a bound on scheduling points per execution; beyond it the
            run is aborted as a livelock (a spin loop waiting for a switch
            that the strategy never makes).
    """

    def __init__(self, strategy: Strategy, *, max_steps: int = 100_000) -> None:
        self.strategy = strategy
        self.max_steps = max_steps
        self.entities: list[Entity] = []
        # How many entities are runnable and blocked (every state change goes
        # through _set): the no-choice path of point() and wake() is O(1).
        self._n_runnable = 0
        self._n_blocked = 0
        self._n_timed = 0  # blocked entities with a deadline
        # The strategy's promise (Strategy.keeps_until) for the current holder
        # and runnable set; any change of either voids it.
        self._keep_until = 0
        self.log: list[Decision] = []
        #: Decisions so far: points, blocks, finishes and picks where the
        #: strategy had two or more options.
        self.step = 0
        #: Every scheduling point so far, decision or not (progress for the
        #: watchdog, and the livelock bound).
        self.points = 0
        self.now = 0.0  # virtual clock, seconds
        self.holder: Entity | None = None
        self.deadlock: list[Entity] | None = None
        self.livelock = False
        self._done = _allocate_lock()
        self._done.acquire()
        self._finished = False
        # Serialises moving the baton with abort() from a watchdog thread.
        self._mutex = _allocate_lock()
        #: Called with (entity, resource) to describe a wait-for edge in reports.
        self.describe_owner: Callable[[Hashable], Entity | None] = lambda r: None
        #: Called with the blocked entities when a deadlock is detected, on the
        #: detecting thread, before anyone is woken with :class:`Aborted`: the
        #: only moment the wait-for state (owners, stacks) is still intact.
        self.on_deadlock: Callable[[list[Entity]], None] | None = None
        #: Called with each entity that finishes, after it is marked done and
        #: before the baton moves on (a join: wake whoever waits for it).
        self.on_finish: Callable[[Entity], None] | None = None

    # -- set-up ----------------------------------------------------------
    def add(self, name: str, *, state: EntityState = EntityState.RUNNABLE) -> Entity:
        """Register a new entity; it starts parked (runnable unless ``state``
        says otherwise: a placeholder that keeps ids aligned is ``DONE``)."""
        e = Entity(len(self.entities), name, state=EntityState.DONE, ctl=self)
        self.entities.append(e)
        self._set(e, state)
        return e

    def _set(self, e: Entity, state: EntityState) -> None:
        old = e.state
        if old is EntityState.RUNNABLE:
            self._n_runnable -= 1
        elif old is EntityState.BLOCKED:
            self._n_blocked -= 1
        if state is EntityState.RUNNABLE:
            self._n_runnable += 1
        elif state is EntityState.BLOCKED:
            self._n_blocked += 1
        e.state = state
        self._keep_until = 0

    def start(self) -> None:
        """Give the baton to the strategy's first choice, from a thread that
        is not an entity (one that is holds it already: :meth:`hold`)."""
        runnable = self._runnable()
        if len(runnable) > 1:  # decision 0: who runs first
            first = self.strategy.next(0, None, runnable, preemptible=True)
            self.log.append(Decision(0, "start", first.id, first.id, "",
                                     default=first is runnable[0]))
        else:
            first = runnable[0]
        with self._mutex:
            self.holder = first
            first._park.release()

    def hold(self, me: Entity) -> None:
        """``me``, running on the calling thread, holds the baton from now on
        without parking (the first entity of a run, started by its driver)."""
        with self._mutex:
            self.holder = me

    def wait(self, timeout: float | None) -> bool:
        """Wait (controller thread) until every entity is done or the run
        was aborted; ``False`` if ``timeout`` passed first (a wall-clock
        watchdog for uncontrolled blocking)."""
        ok = self._done.acquire(timeout=-1 if timeout is None else timeout)
        if ok:
            self._done.release()
        return ok

    # -- called by the baton holder ----------------------------------------
    def enter(self, me: Entity) -> None:
        """Park the calling thread until ``me`` holds the baton."""
        me._park.acquire()
        if me.aborted:
            raise Aborted(me.name)

    def point(self, me: Entity, label: str | Callable[[], str] = "", *,
              preemptible: bool = True) -> None:
        """A scheduling point in ``me``: the strategy may switch to another.

        ``label`` (where the point is) may be a zero-argument callable: it is
        called only if the point is logged.

        Raises:
            Aborted: the run was aborted (step limit, deadlock, watchdog).
        """
        if me.aborted:
            raise Aborted(me.name)
        self.points += 1
        if self.points > self.max_steps:
            self.livelock = True
            self._abort_all()
            raise Aborted(me.name)
        if not preemptible or self._n_runnable + (1 if self._n_timed else 0) < 2:
            return  # no choice: not a decision
        step = self.step = self.step + 1
        if step < self._keep_until:
            return  # the strategy promised to keep the holder here
        candidates = self._candidates()
        was, me.busy = me.busy, True
        try:
            if self.strategy.wants_labels:
                me.at = label if isinstance(label, str) else label()
            nxt = self.strategy.next(step, me, candidates, preemptible=True)
            if nxt is me:
                self._keep_until = self.strategy.keeps_until(step)
            else:
                self._keep_until = 0
                text = label if isinstance(label, str) else label()
                if nxt.state is EntityState.BLOCKED:
                    self._fire(nxt, me, text)
                else:
                    self.log.append(Decision(self.step, "switch", me.id, nxt.id, text))
                self._handoff(me, nxt)
        finally:
            me.busy = was

    def advance(self, me: Entity, points: int) -> None:
        """``me`` (a process worker's proxy) passed ``points`` points without
        asking, within the budget :meth:`budget` gave it: count them as if
        each had been a point where the strategy kept it."""
        if points > 0:
            self.points += points
            if self._n_runnable >= 2:
                self.step += points

    def budget(self, me: Entity) -> int:
        """How many points the holder ``me`` may pass without asking: none
        is a decision while it is the only runnable entity; otherwise as many
        as the strategy promised to keep it for."""
        if self._n_runnable < 2:
            return UNBOUNDED
        return max(self._keep_until - self.step - 1, 0)

    def pick(self, me: Entity, options: int, what: str,
             label: str | Callable[[], str] = "") -> int:
        """A choice that is not a switch (e.g. which ready callback runs);
        ``label`` may be a callable, called only if the choice is logged."""
        self.points += 1
        if options < 2:
            return 0
        was, me.busy = me.busy, True
        try:
            self.step += 1
            choice = self.strategy.pick(self.step, options, what)
            if choice:
                text = label if isinstance(label, str) else label()
                self.log.append(Decision(self.step, "pick", me.id, choice, text or what))
            return choice
        finally:
            me.busy = was

    def block(self, me: Entity, on: Hashable, *, timeout: float | None = None,
              label: str = "") -> bool:
        """``me`` waits for ``on``; pass the baton on.  Returns ``True`` when
        woken by :meth:`wake`, ``False`` when the virtual timeout expired.

        Raises:
            Aborted: the run was aborted (deadlock) while waiting.
        """
        if me.aborted:
            raise Aborted(me.name)
        was, me.busy = me.busy, True
        try:
            self._set(me, EntityState.BLOCKED)
            me.blocked_on = on
            me.deadline = None if timeout is None else self.now + max(timeout, 0.0)
            if me.deadline is not None:
                self._n_timed += 1
            me.timed_out = False
            if self.strategy.wants_labels:
                me.at = label
            self.points += 1
            nxt = self._next_after(me, "block", label)
            if nxt is None:
                me._park.acquire()  # woken and chosen later
                if me.aborted:
                    raise Aborted(me.name)
            elif nxt is not me:
                self._handoff(me, nxt)
            return not me.timed_out
        finally:
            me.busy = was

    def wake(self, on: Hashable, *, count: int | None = None) -> int:
        """Make up to ``count`` (all if ``None``) entities blocked on ``on``
        runnable, in id order; returns how many were woken.  The caller keeps
        the baton."""
        woken = 0
        if not self._n_blocked:
            return 0
        for e in self.entities:
            if e.state is EntityState.BLOCKED and e.blocked_on == on:
                self._set(e, EntityState.RUNNABLE)
                if e.deadline is not None:
                    self._n_timed -= 1
                e.blocked_on, e.deadline = None, None
                woken += 1
                if count is not None and woken >= count:
                    break
        return woken

    def finish(self, me: Entity) -> None:
        """``me`` is done; pass the baton on (or end the run).  After an
        abort it only marks ``me`` done: nobody holds the baton any more."""
        self._set(me, EntityState.DONE)
        if me.aborted:
            return
        was, me.busy = me.busy, True
        try:
            self.points += 1
            if self.on_finish is not None:
                self.on_finish(me)
            if all(e.state is EntityState.DONE for e in self.entities):
                self._end()
                return
            try:
                nxt = self._next_after(me, "finish", "")
            except Aborted:
                return
            if nxt is None:
                return  # the next external entity to move takes the baton
            with self._mutex:
                # The watchdog aborted the run meanwhile.  ``me`` is done, so
                # the abort did not mark it: ``nxt`` tells, and the abort has
                # released its park already (a second release would fail, or
                # let two entities run at once).
                if me.aborted or nxt.aborted:
                    return
                self.holder = nxt
                nxt._park.release()
        finally:
            me.busy = was

    def block_external(self, me: Entity, label: str = "") -> None:
        """``me`` is blocked outside jostle's control (a process waiting on an
        OS lock that another process holds): pass the baton on *without*
        parking, and call :meth:`external_ready` when it moves again.

        Where such waits happen the run is no longer fully deterministic: when
        the wait ends depends on the operating system.  Deadlock detection
        treats these entities as able to move by themselves.
        """
        was, me.busy = me.busy, True  # the strategy's code is not the entity's
        try:
            with self._mutex:
                if me.aborted:
                    raise Aborted(me.name)
                self._set(me, EntityState.BLOCKED)
                me.blocked_on, me.external = ("external", me.id), True
                self.points += 1
                runnable = self._runnable()
                if runnable:
                    nxt = self._choose_among(runnable, "block", me, label)
                    self.holder = nxt
                    nxt._park.release()
                else:
                    self.holder = None
        finally:
            me.busy = was

    def external_ready(self, me: Entity) -> None:
        """``me``'s external wait ended: it is runnable again and continues
        once it holds the baton (at once if nobody holds it)."""
        was, me.busy = me.busy, True
        try:
            with self._mutex:
                if me.aborted:
                    raise Aborted(me.name)
                self._set(me, EntityState.RUNNABLE)
                me.blocked_on, me.external = None, False
                if self.holder is None:
                    self.holder = me
                    return
            me._park.acquire()
            if me.aborted:
                raise Aborted(me.name)
        finally:
            me.busy = was

    def abort(self) -> None:
        """Abort the run from outside (the wall-clock watchdog's thread):
        every entity but the holder is woken with :class:`Aborted`, the
        holder gets it at its next call, and :meth:`wait` returns."""
        self._abort_all()

    def sleep(self, me: Entity, seconds: float, label: str = "") -> None:
        """Cooperative sleep: a timed block on nothing, in virtual time."""
        self.block(me, ("sleep", me.id), timeout=seconds, label=label)

    # -- internals -----------------------------------------------------------
    def _runnable(self) -> list[Entity]:
        return [e for e in self.entities if e.state is EntityState.RUNNABLE]

    def _next_after(self, me: Entity, kind: Literal["block", "finish"],
                    label: str) -> Entity | None:
        runnable = self._runnable()
        if not runnable:
            with self._mutex:
                runnable = self._runnable()  # an external wait may just have ended
                if not runnable and any(e.external for e in self.entities):
                    # Nobody can run now, but an entity blocked outside jostle's
                    # control (an OS lock another process holds) will move by
                    # itself: it takes the baton when it does.
                    self.holder = None
                    return None
        if not runnable:
            timed = [e for e in self.entities
                     if e.state is EntityState.BLOCKED and e.deadline is not None]
            if not timed:
                self.deadlock = [e for e in self.entities if e.state is EntityState.BLOCKED]
                if self.on_deadlock is not None:
                    try:
                        self.on_deadlock(list(self.deadlock))
                    except Exception:  # a report hook must never wedge the baton
                        pass
                self._abort_all()
                if me.state is EntityState.BLOCKED:
                    raise Aborted(me.name)
                raise Aborted("deadlock")
            first = min(timed, key=lambda e: (e.deadline, e.id))
            self._fire(first, me, label, default=True)
            return first
        return self._choose_among(runnable, kind, me, label)

    def _candidates(self) -> list[Entity]:
        """Who may run next: the runnable entities in id order, then the timed
        waiter whose deadline comes first (choosing it fires its timeout now:
        a timeout is a scheduling choice, not a wall-clock event)."""
        out = [e for e in self.entities if e.state is EntityState.RUNNABLE]
        if self._n_timed:
            timed = [e for e in self.entities if e.state is EntityState.BLOCKED
                     and e.deadline is not None and not e.external]
            if timed:
                out.append(min(timed, key=lambda e: (e.deadline, e.id)))
        return out

    def _fire(self, e: Entity, me: Entity, label: str, *, default: bool = False) -> None:
        """``e``'s timed wait times out now: the virtual clock moves on to its
        deadline and it is runnable again."""
        assert e.deadline is not None
        self.now = max(self.now, e.deadline)
        self._set(e, EntityState.RUNNABLE)
        self._n_timed -= 1
        e.blocked_on, e.deadline = None, None
        e.timed_out = True
        self.log.append(Decision(self.step, "timeout", me.id, e.id, label, default=default))

    def _choose_among(self, runnable: list[Entity], kind: Literal["block", "finish"],
                      me: Entity, label: str) -> Entity:
        """Who runs after ``me`` blocked or finished: a decision only when
        there are two or more candidates.  A forced handoff is logged too, as
        a default entry under the last decision's step (a report shows who
        blocked; a replay needs nothing from it)."""
        if self._n_timed:
            runnable = self._candidates()
        if len(runnable) < 2:
            self.log.append(Decision(self.step, kind, me.id, runnable[0].id, label, default=True))
            return runnable[0]
        self.step += 1
        nxt = self.strategy.next(self.step, None, runnable, preemptible=True)
        if nxt.state is EntityState.BLOCKED:
            self._fire(nxt, me, label)
        else:
            self.log.append(Decision(self.step, kind, me.id, nxt.id, label,
                                     default=nxt is runnable[0]))
        return nxt

    def _handoff(self, me: Entity, nxt: Entity) -> None:
        with self._mutex:
            if me.aborted:  # the watchdog aborted the run meanwhile
                raise Aborted(me.name)
            self.holder = nxt
            self._keep_until = 0
            nxt._park.release()
        me._park.acquire()
        if me.aborted:
            raise Aborted(me.name)

    def _abort_all(self) -> None:
        # From the watchdog, the mutex may be held by a thread stuck for good
        # (a bug that wedged it inside a controller call): then abort without
        # it rather than wait for ever.
        locked = self._mutex.acquire(True, _ABORT_WAIT)
        try:
            for e in self.entities:
                # Each parked entity is released exactly once: a second
                # release would let two entities run at once.
                if e.state is not EntityState.DONE and not e.aborted:
                    e.aborted = True
                    if e is not self.holder:
                        try:
                            e._park.release()
                        except RuntimeError:  # not parked after all
                            pass
            self._end_locked()
        finally:
            if locked:
                self._mutex.release()

    def _end(self) -> None:
        with self._mutex:
            self._end_locked()

    def _end_locked(self) -> None:
        if not self._finished:
            self._finished = True
            self._done.release()
