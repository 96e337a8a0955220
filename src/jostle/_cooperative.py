"""Cooperative blocking primitives, a virtual clock, and the patching window.

A controlled run lets one worker thread hold the baton at a time
(``_control``).  A worker that blocks *for real* while holding it stops the
whole run, so during a run ``threading``'s blocking primitives, ``time.sleep``
and the clocks are replaced by the ones here: a worker that cannot proceed
calls :meth:`Controller.block` and the baton moves on; a release calls
:meth:`Controller.wake`; a timeout is a deadline on the controller's virtual
clock, which jumps forward only when nobody can run.  Timeouts therefore cost
no wall time and expire in a deterministic order.  This is the design of
Loom's and Shuttle's modelled primitives and of frontrun's cooperative locks;
the field notes measured that cooperative ``Lock``/``RLock``/``allocate_lock``
and ``time.sleep`` are enough for ``Condition``, ``Event`` and ``queue.Queue``
(500 random schedules, 0 errors) once ``time.monotonic`` and its module
aliases are virtual too.

**Dual mode.**  Every primitive here keeps its state in a real raw lock (the
*bit*) plus plain attributes.  A thread that is a controlled entity blocks
cooperatively; any other thread (pytest's, Hypothesis's, the controller, the
asyncio loop when it is not an entity) gets exactly the real behaviour, so a
window never breaks the rest of the process, and objects created inside a
window keep working after it closes.  Condition, Semaphore, Event and Barrier
are built on the cooperative Lock the way the standard library builds them
on ``_thread`` locks, so they inherit both modes.

**Reports.**  Each primitive remembers the ``file:line`` that created it and
each owner the ``file:line`` where it acquired, so a deadlock is described as
a wait-for cycle (:func:`describe_wait_for`).  The window also keeps a
lockdep-style order graph (Linux lockdep, Java's lock-order checkers): an
edge "held A while acquiring B" per pair, first occurrence only, and
:meth:`Window.inversions` reports pairs taken in both orders, even when the
run did not deadlock.

**What stays uncontrolled** (the no-progress watchdog in
``_controlled_threads`` reports it as *uncontrolled blocking at file:line*):

* blocking in C: ``queue.SimpleQueue.get``, ``Thread.join``, real I/O,
  ``select``, ``subprocess`` pipes;
* primitives created before the window by code jostle did not patch
  (a real ``threading.Lock()`` built at import time, or by a resource
  built before the window): their methods cannot be intercepted, so a
  worker that blocks on one held by another worker blocks for real;
* threads an operation starts itself: they run freely and use the
  primitives in real mode; ``Thread.start`` is wrapped so the start
  handshake blocks for real and the run's notes name the thread and where
  it was started (a controlled worker that then waits cooperatively for such
  a thread can be reported as deadlocked if every other worker waits too);
* clocks read through C (``datetime.now()``), and virtual time is seen only
  by controlled entities: uncontrolled threads keep the real clock.

A primitive shared between a controlled worker and an uncontrolled thread
*while the run is on* is outside the model: both sides work, but a wakeup
that crosses the boundary goes through the controller from a foreign thread.
"""

from __future__ import annotations

import _thread
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from types import FrameType, ModuleType, TracebackType
from typing import Any

from ._control import Controller, Entity, EntityState
from ._errors import JostleError

__all__ = [
    "EPOCH_BASE",
    "MONOTONIC_BASE",
    "Barrier",
    "BoundedSemaphore",
    "Condition",
    "Event",
    "Inversion",
    "Lock",
    "RLock",
    "Semaphore",
    "ThreadMap",
    "Window",
    "current_window",
    "describe_wait_for",
    "monotonic",
    "patched",
    "perf_counter",
    "sleep",
    "time_",
]

#: ``time.monotonic()`` and ``time.perf_counter()`` seen by a controlled
#: entity: this base plus the controller's virtual time.  Fixed, so results
#: that depend on clock readings replay exactly.
MONOTONIC_BASE = 1_000.0
#: ``time.time()`` seen by a controlled entity: 2023-11-14T22:13:20Z plus the
#: virtual time.
EPOCH_BASE = 1_700_000_000.0

# The real functions, taken at import, before any window replaces them.
_real_allocate_lock = _thread.allocate_lock
_get_ident = _thread.get_ident
_real_sleep = time.sleep
_real_monotonic = time.monotonic
_real_monotonic_ns = time.monotonic_ns
_real_perf_counter = time.perf_counter
_real_perf_counter_ns = time.perf_counter_ns
_real_time = time.time
_real_time_ns = time.time_ns
_real_threading = {name: getattr(threading, name) for name in (
    "Lock", "_allocate_lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore",
    "Event", "Barrier", "_time")}

_JOSTLE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
# Frames skipped when naming where a primitive was created or acquired: the
# standard library's threading and queue code calls on the user's behalf.
_PLUMBING_FILES = frozenset({
    threading.Condition.wait.__code__.co_filename,
    queue.Queue.get.__code__.co_filename,
})


class ThreadMap:
    """Which controlled entity each thread runs: the ``entity_of`` callable
    that :func:`patched` and the tracer consult.

    A thread calls :meth:`bind` before it enters the controller and
    :meth:`unbind` when its job is over; calling the map returns the calling
    thread's entity, or ``None`` for a thread that is not controlled.
    """

    __slots__ = ("by_ident",)

    def __init__(self) -> None:
        self.by_ident: dict[int, Entity] = {}

    def bind(self, entity: Entity) -> None:
        """Make the calling thread run ``entity``."""
        self.by_ident[_get_ident()] = entity

    def unbind(self) -> None:
        """The calling thread no longer runs an entity."""
        self.by_ident.pop(_get_ident(), None)

    def ident_of(self, entity: Entity) -> int | None:
        """The thread identifier running ``entity`` (for stack dumps)."""
        for ident, e in self.by_ident.items():
            if e is entity:
                return ident
        return None

    def __call__(self) -> Entity | None:
        return self.by_ident.get(_get_ident())


@dataclass(frozen=True, slots=True)
class Inversion:
    """Two locks acquired in both orders during one run (ABBA).

    Attributes:
        first: the lock held in the first order seen (``Lock@ledger.py:12``).
        second: the lock acquired while holding ``first``.
        forward: who took ``second`` while holding ``first``, and where.
        backward: who took ``first`` while holding ``second``, and where.
    """

    first: str
    second: str
    forward: str
    backward: str

    def __str__(self) -> str:
        return (f"lock order inversion: {self.first} then {self.second} ({self.forward}), "
                f"but {self.second} then {self.first} ({self.backward})")


# Code here runs on controlled threads between scheduling points, so it
# calls no Python code outside jostle (no ``os.path``, no dataclass or
# namedtuple methods, which live in "<string>"): each would be a function
# entry, a point inside the primitive.
def _where(site: tuple[str, int]) -> str:
    return f"{site[0].rpartition(os.sep)[2]}:{site[1]}"


class Window:
    """The state of one patching window: who is controlled, who holds
    which lock, and the lock-order graph.  Made by :func:`patched`.

    Attributes:
        controller: the run's controller.
        entity_of: returns the calling thread's entity, or ``None``.
        held: each entity's held locks, in acquisition order.
    """

    def __init__(self, controller: Controller, entity_of: Callable[[], Entity | None]) -> None:
        self.controller = controller
        controller.describe_owner = self.owner_of
        self.entity_of = entity_of
        self.held: dict[Entity, list[tuple[Lock, tuple[str, int]]]] = {}
        #: Threads that are not entities but see the virtual clock (a set-up
        #: step that builds the resource before the run starts).
        self.clocked: set[int] = set()
        #: How many primitives got each name in this window.
        self.names: dict[str, int] = {}
        #: Uncontrolled nondeterminism seen in the window (threads started
        #: by a controlled entity).
        self.notes: list[str] = []
        self._edges: dict[tuple[Lock, Lock], tuple[Entity, tuple[str, int], tuple[str, int]]] = {}

    # -- the calling thread ----------------------------------------------------
    def current(self) -> Entity | None:
        """The calling thread's entity, unless it is not controlled or is
        inside a controller call (a strategy's own code using a lock)."""
        me = self.entity_of()
        if me is None or me.busy:
            return None
        return me

    def controls(self, entity: Entity) -> bool:
        """Whether ``entity`` belongs to this run's controller."""
        return entity.ctl is self.controller

    def attach(self, controller: Controller) -> None:
        """Make ``controller`` the window's run (one window serves the
        executions of a session one after another).  Ownership and the lock
        order graph start afresh."""
        self.controller = controller
        controller.describe_owner = self.owner_of
        self.held.clear()
        self.names.clear()
        self.notes = []
        self._edges.clear()

    # -- controller calls ------------------------------------------------------------------
    def point(self, me: Entity, label: str) -> None:
        """A scheduling point of ``me``."""
        self.controller.point(me, label)

    def block(self, me: Entity, on: Hashable, timeout: float | None, label: str) -> bool:
        """Block ``me`` on ``on``; ``False`` if the virtual timeout expired."""
        return self.controller.block(me, on, timeout=timeout, label=label)

    # -- ownership and lock order --------------------------------------------------
    def attempt(self, me: Entity, lock: Lock, site: tuple[str, int]) -> None:
        """``me`` is about to acquire ``lock``: record "held A while
        acquiring B" before it can block (as lockdep does), so a deadlocked
        run shows its inversion too."""
        held = self.held.get(me)
        if held:
            edges = self._edges
            for h_lock, h_site in held:
                key = (h_lock, lock)
                if key not in edges and h_lock is not lock:
                    edges[key] = (me, h_site, site)

    def acquired(self, me: Entity, lock: Lock, site: tuple[str, int]) -> None:
        held = self.held.get(me)
        if held is None:
            self.held[me] = [(lock, site)]
        else:
            held.append((lock, site))

    def released(self, owner: Entity, lock: Lock) -> None:
        held = self.held.get(owner)
        if held:
            for i in range(len(held) - 1, -1, -1):
                if held[i][0] is lock:
                    del held[i]
                    return

    def inversions(self) -> list[Inversion]:
        """Lock pairs acquired in both orders in this window, first seen first."""
        out: list[Inversion] = []
        seen: set[frozenset[int]] = set()
        for (a, b), (who, held_at, took_at) in self._edges.items():
            back = self._edges.get((b, a))
            pair = frozenset((id(a), id(b)))
            if back is None or pair in seen:
                continue
            seen.add(pair)
            bwho, bheld_at, btook_at = back
            out.append(Inversion(
                a.name, b.name,
                f"{who.name} took it at {_where(took_at)} holding the first "
                f"since {_where(held_at)}",
                f"{bwho.name} took it at {_where(btook_at)} holding the other "
                f"since {_where(bheld_at)}"))
        return out

    def owner_of(self, resource: Hashable) -> Entity | None:
        """The entity holding ``resource`` (a cooperative lock), if any."""
        if isinstance(resource, Lock) and not isinstance(resource, _Waiter):
            return resource._owner
        return None


_window: Window | None = None


def current_window() -> Window | None:
    """The open patching window, if any."""
    return _window


def _me() -> tuple[Window, Entity] | tuple[None, None]:
    w = _window
    if w is not None:
        me = w.current()
        if me is not None:
            return w, me
    return None, None


# -- where was I called from -------------------------------------------------------
_skip_cache: dict[str, bool] = {}


def _skipped(filename: str) -> bool:
    skip = _skip_cache.get(filename)
    if skip is None:
        skip = filename.startswith(_JOSTLE_DIR) or filename in _PLUMBING_FILES
        _skip_cache[filename] = skip
    return skip


def _site() -> tuple[str, int]:
    """``(file, line)`` of the first caller outside jostle and the standard
    library's threading/queue plumbing."""
    f: FrameType | None = sys._getframe(1)
    while f is not None and _skipped(f.f_code.co_filename):
        f = f.f_back
    if f is None:
        return ("?", 0)
    return (f.f_code.co_filename, f.f_lineno)


def _name(kind: str, site: tuple[str, int]) -> str:
    """``Lock@ledger.py:12``; the n-th primitive of a kind created at the
    same line in a window gets ``#n`` (n >= 2), so a report can tell apart
    the locks of objects built by the same constructor."""
    name = f"{kind}@{_where(site)}"
    w = _window
    if w is not None:
        n = w.names.get(name, 0) + 1
        w.names[name] = n
        if n > 1:
            name = f"{name}#{n}"
    return name


# -- Lock ----------------------------------------------------------------------------
class Lock:
    """A ``threading.Lock`` that blocks cooperatively in a controlled entity
    and really everywhere else.

    Acquiring and releasing are scheduling points.  A controlled entity that
    finds the lock held by another entity of the run blocks on it; one that
    finds it held by a thread outside the run (or by an abandoned earlier
    run) blocks for real, which the watchdog reports.
    """

    __slots__ = ("__weakref__", "_bit", "_lbl_acquire", "_lbl_release", "_owner",
                 "_owner_site", "_silent", "_track", "name", "site")

    def __init__(self, *, _kind: str = "Lock", _at: tuple[str, int] | None = None,
                 _track: bool = True, _silent: bool = False) -> None:
        self._bit = _real_allocate_lock()
        self._owner: Entity | None = None
        self._owner_site: tuple[str, int] | None = None
        self._track = _track
        self._silent = _silent
        self.site = _at if _at is not None else _site()
        if _track:
            self.name = _name(_kind, self.site)
            self._lbl_acquire = f"{self.name} acquire"
            self._lbl_release = f"{self.name} release"
        else:
            self.name = self._lbl_acquire = self._lbl_release = _kind

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the lock; see ``threading.Lock.acquire``."""
        w = _window
        if w is not None:
            me = w.current()
            if me is not None:
                return self._coop_acquire(w, me, blocking, timeout)
        return self._bit.acquire(blocking, timeout)

    def _coop_acquire(self, w: Window, me: Entity, blocking: bool, timeout: float) -> bool:
        if not blocking and timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking call")
        if timeout < 0 and timeout != -1:
            raise ValueError("timeout value must be positive")
        if not self._silent:
            w.point(me, self._lbl_acquire)
        site = None
        if self._track:
            site = _site()
            w.attempt(me, self, site)
        bit = self._bit
        if bit.acquire(False):
            self._took(w, me, site)
            return True
        if not blocking:
            return False
        ctl = w.controller
        deadline = None if timeout < 0 else ctl.now + timeout
        while True:
            owner = self._owner
            if owner is None or not w.controls(owner):
                # Held outside this run: only a real wait can end it.
                left = -1.0 if deadline is None else max(deadline - ctl.now, 0.0)
                if bit.acquire(True, left):
                    self._took(w, me, site)
                    return True
                return False
            left_v = None if deadline is None else deadline - ctl.now
            if left_v is not None and left_v <= 0:
                return False
            woken = w.block(me, self, left_v, self._lbl_acquire)
            # A release may have come just as the timeout fired: take it.
            if bit.acquire(False):
                self._took(w, me, site)
                return True
            if not woken:
                return False

    def _took(self, w: Window, me: Entity, site: tuple[str, int] | None) -> None:
        self._owner = me
        if site is not None:
            self._owner_site = site
            w.acquired(me, self, site)

    def release(self) -> None:
        """Release the lock (any thread may); see ``threading.Lock.release``."""
        w = _window
        if w is None:
            self._owner = None
            self._bit.release()
            return
        if not self._bit.locked():
            raise RuntimeError("release unlocked lock")
        me = w.current()
        owner = self._owner
        self._owner = None
        if owner is not None and self._track:
            w.released(owner, self)
        self._bit.release()
        if owner is not None or me is not None:
            w.controller.wake(self)
        if me is not None and not self._silent and not me.aborted:
            w.point(me, self._lbl_release)

    def locked(self) -> bool:
        """Whether the lock is held."""
        return self._bit.locked()

    def _is_owned(self) -> bool:
        # What Condition assumes of a plain lock: held by anyone.
        return self._bit.locked()

    acquire_lock = acquire
    release_lock = release
    locked_lock = locked

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def _at_fork_reinit(self) -> None:
        self._bit = _real_allocate_lock()
        self._owner = None

    def __repr__(self) -> str:
        state = "locked" if self._bit.locked() else "unlocked"
        return f"<{state} cooperative {self.name}>"


class _Waiter(Lock):
    """A condition variable's per-wait lock: no points, no ownership."""

    __slots__ = ("cond",)

    def __init__(self, cond: Condition) -> None:
        super().__init__(_kind=cond._lbl_wait, _at=cond.site, _track=False, _silent=True)
        self.cond = cond


class RLock:
    """A reentrant ``threading.RLock`` on top of the cooperative :class:`Lock`."""

    __slots__ = ("__weakref__", "_block", "_count", "_owner")

    def __init__(self, *, _kind: str = "RLock", _at: tuple[str, int] | None = None) -> None:
        self._block = Lock(_kind=_kind, _at=_at if _at is not None else _site())
        self._owner: int | None = None
        self._count = 0

    @property
    def name(self) -> str:
        """``RLock@file:line``."""
        return self._block.name

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire, or re-enter if the calling thread holds it."""
        me = _get_ident()
        if self._owner == me:
            self._count += 1
            w, ent = _me()
            if w is not None and ent is not None:
                w.point(ent, self._block._lbl_acquire)
            return True
        if not self._block.acquire(blocking, timeout):
            return False
        self._owner = me
        self._count = 1
        return True

    def release(self) -> None:
        """Release one level; raises ``RuntimeError`` if not held by the caller."""
        if self._owner != _get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if not self._count:
            self._owner = None
            self._block.release()

    def locked(self) -> bool:
        """Whether some thread holds it."""
        return self._block.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def _is_owned(self) -> bool:
        return self._owner == _get_ident()

    def _recursion_count(self) -> int:
        return self._count if self._owner == _get_ident() else 0

    def _release_save(self) -> tuple[int, int | None]:
        if self._count == 0:
            raise RuntimeError("cannot release un-acquired lock")
        state = (self._count, self._owner)
        self._count = 0
        self._owner = None
        self._block.release()
        return state

    def _acquire_restore(self, state: tuple[int, int | None]) -> None:
        self._block.acquire()
        self._count, self._owner = state

    def _at_fork_reinit(self) -> None:
        self._block._at_fork_reinit()
        self._owner = None
        self._count = 0

    def __repr__(self) -> str:
        state = "locked" if self._block.locked() else "unlocked"
        return f"<{state} cooperative {self.name} owner={self._owner} count={self._count}>"


class Condition:
    """``threading.Condition`` over any lock; waits are cooperative in a
    controlled entity (and ``wait(timeout)`` is virtual there).

    Same algorithm as the standard library's (a per-wait waiter lock that
    ``notify`` releases), with cooperative waiter locks.
    """

    def __init__(self, lock: Any = None, *, _kind: str = "Condition",
                 _at: tuple[str, int] | None = None) -> None:
        site = _at if _at is not None else _site()
        # Named after its lock when the lock is its own (made here, or by
        # Event, Semaphore and Barrier).
        own = lock is None or (_at is not None and isinstance(lock, (Lock, RLock)))
        if lock is None:
            lock = RLock(_kind=_kind, _at=site)
        self.name: str = lock.name if own else _name(_kind, site)
        self._lock = lock
        self.acquire = lock.acquire
        self.release = lock.release
        self._lock_release_save = getattr(lock, "_release_save", None)
        self._lock_acquire_restore = getattr(lock, "_acquire_restore", None)
        self._lock_is_owned = getattr(lock, "_is_owned", None)
        self._waiters: deque[_Waiter] = deque()
        self.site = site
        self._lbl_wait = f"{self.name} wait"
        self._lbl_notify = f"{self.name} notify"

    def __enter__(self) -> Any:
        return self._lock.__enter__()

    def __exit__(self, *args: Any) -> Any:
        return self._lock.__exit__(*args)

    def __repr__(self) -> str:
        return f"<cooperative Condition({self._lock}, {len(self._waiters)})>"

    def _release_save(self) -> Any:
        if self._lock_release_save is not None:
            return self._lock_release_save()
        self._lock.release()
        return None

    def _acquire_restore(self, state: Any) -> None:
        if self._lock_acquire_restore is not None:
            self._lock_acquire_restore(state)
        else:
            self._lock.acquire()

    def _is_owned(self) -> bool:
        if self._lock_is_owned is not None:
            return bool(self._lock_is_owned())
        if self._lock.acquire(False):
            self._lock.release()
            return False
        return True

    def _at_fork_reinit(self) -> None:
        self._lock._at_fork_reinit()
        self._waiters.clear()

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, wait for a notify or the (virtual) timeout,
        reacquire; ``False`` on timeout."""
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        w, me = _me()
        if w is not None and me is not None:
            w.point(me, self._lbl_wait)
        waiter = _Waiter(self)
        waiter.acquire()
        self._waiters.append(waiter)
        saved_state = self._release_save()
        gotit = False
        try:
            if timeout is None:
                waiter.acquire()
                gotit = True
            elif timeout > 0:
                gotit = waiter.acquire(True, timeout)
            else:
                gotit = waiter.acquire(False)
            return gotit
        finally:
            self._acquire_restore(saved_state)
            if not gotit:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass

    def wait_for(self, predicate: Callable[[], Any], timeout: float | None = None) -> Any:
        """Wait until ``predicate()`` is true or the (virtual) timeout passes."""
        endtime: float | None = None
        waittime = timeout
        result = predicate()
        while not result:
            if waittime is not None:
                if endtime is None:
                    endtime = monotonic() + waittime
                else:
                    waittime = endtime - monotonic()
                    if waittime <= 0:
                        break
            self.wait(waittime)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` waiters (FIFO)."""
        if not self._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        w, me = _me()
        if w is not None and me is not None:
            w.point(me, self._lbl_notify)
        waiters = self._waiters
        for waiter in list(islice(waiters, n)):
            waiter.release()
            try:
                waiters.remove(waiter)
            except ValueError:
                pass

    def notify_all(self) -> None:
        """Wake every waiter."""
        self.notify(len(self._waiters))


# Event, Semaphore and Barrier keep the standard library's methods (and
# isinstance checks against the real classes): only their condition
# variable is replaced, so they block cooperatively through it.

class Event(threading.Event):
    """``threading.Event`` on a cooperative condition."""

    def __init__(self) -> None:
        site = _site()
        self._cond = Condition(Lock(_kind="Event", _at=site), _kind="Event", _at=site)
        self._flag = False


class Semaphore(threading.Semaphore):
    """``threading.Semaphore`` on a cooperative condition."""

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        site = _site()
        self._cond = Condition(Lock(_kind="Semaphore", _at=site), _kind="Semaphore", _at=site)
        self._value = value


class BoundedSemaphore(threading.BoundedSemaphore):
    """``threading.BoundedSemaphore`` on a cooperative condition."""

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        site = _site()
        self._cond = Condition(Lock(_kind="BoundedSemaphore", _at=site),
                               _kind="BoundedSemaphore", _at=site)
        self._value = value
        self._initial_value = value


class Barrier(threading.Barrier):
    """``threading.Barrier`` on a cooperative condition."""

    def __init__(self, parties: int, action: Callable[[], None] | None = None,
                 timeout: float | None = None) -> None:
        if parties < 1:
            raise ValueError("parties must be >= 1")
        site = _site()
        self._cond = Condition(Lock(_kind="Barrier", _at=site), _kind="Barrier", _at=site)
        self._action = action
        self._timeout = timeout
        self._parties = parties
        self._state = 0
        self._count = 0


# -- time ----------------------------------------------------------------------------
# Standard-library code that waits for the real world (processes, sockets,
# selectors, the event loop's own bookkeeping) keeps the real clock and the
# real sleep even in a controlled entity: a timeout there measures real
# waiting, and a frozen virtual clock would make its polling loops spin
# forever (``multiprocessing.connection.wait(timeout=0)``).
_STDLIB_DIR = os.path.dirname(threading.__file__ or "") + os.sep
_REAL_TIME_CALLERS = tuple(_STDLIB_DIR + name for name in (
    "multiprocessing" + os.sep, "asyncio" + os.sep, "selectors.py", "subprocess.py",
    "socket.py", "ssl.py", "socketserver.py", "telnetlib.py"))
_real_time_caller: dict[str, bool] = {}


def _wants_real_time(depth: int) -> bool:
    filename = sys._getframe(depth).f_code.co_filename
    real = _real_time_caller.get(filename)
    if real is None:
        real = _real_time_caller[filename] = filename.startswith(_REAL_TIME_CALLERS)
    return real


def sleep(seconds: float) -> None:
    """``time.sleep``: virtual in a controlled entity (a timed block that
    lets others run), real elsewhere and when called by standard-library
    code that waits for real I/O."""
    w = _window
    if w is None or _wants_real_time(2):
        _real_sleep(seconds)
        return
    seconds = float(seconds)
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    me = w.current()
    if me is None:
        if w.clocked and _get_ident() in w.clocked:
            w.controller.now += seconds  # set-up: nobody else runs yet
        else:
            _real_sleep(seconds)
        return
    label = f"sleep@{_where(_site())}"
    if seconds == 0:
        w.point(me, label)
    else:
        w.block(me, ("sleep", me.id), seconds, label)


def _virtual_now() -> float | None:
    """The virtual time if the clock's caller should see it (called from
    the clock functions: the caller is two frames up), else ``None``."""
    w = _window
    if w is not None and (w.entity_of() is not None
                          or (w.clocked and _get_ident() in w.clocked)) \
            and not _wants_real_time(3):
        return w.controller.now
    return None


def monotonic() -> float:
    """``time.monotonic``: ``MONOTONIC_BASE`` + virtual time in a controlled
    entity, real elsewhere."""
    now = _virtual_now()
    return _real_monotonic() if now is None else MONOTONIC_BASE + now


def monotonic_ns() -> int:
    """``time.monotonic_ns`` (see :func:`monotonic`)."""
    now = _virtual_now()
    return _real_monotonic_ns() if now is None else round((MONOTONIC_BASE + now) * 1e9)


def perf_counter() -> float:
    """``time.perf_counter`` (see :func:`monotonic`)."""
    now = _virtual_now()
    return _real_perf_counter() if now is None else MONOTONIC_BASE + now


def perf_counter_ns() -> int:
    """``time.perf_counter_ns`` (see :func:`monotonic`)."""
    now = _virtual_now()
    return _real_perf_counter_ns() if now is None else round((MONOTONIC_BASE + now) * 1e9)


def time_() -> float:
    """``time.time``: ``EPOCH_BASE`` + virtual time in a controlled entity."""
    now = _virtual_now()
    return _real_time() if now is None else EPOCH_BASE + now


def time_ns() -> int:
    """``time.time_ns`` (see :func:`time_`)."""
    now = _virtual_now()
    return _real_time_ns() if now is None else int(EPOCH_BASE) * 10**9 + round(now * 1e9)


# -- OS-level locks ---------------------------------------------------------------------
# A file lock another process (or another controlled thread) holds would
# block a controlled thread in C, holding the baton: nobody else could run
# and release it.  In a window a blocking ``flock``/``lockf`` first tries
# without blocking; if the lock is taken, the entity passes the baton on and
# waits for real *outside* the schedule (``Controller.block_external``, as
# process proxies do for their OS-lock waits), then rejoins it.  When the
# wait ends depends on the operating system, so such a run is not fully
# deterministic; deadlock detection counts the waiter as able to move.
try:
    import fcntl as _fcntl
except ImportError:  # not POSIX
    _fcntl = None  # type: ignore[assignment]
_real_flock = getattr(_fcntl, "flock", None)
_real_lockf = getattr(_fcntl, "lockf", None)


def _os_lock_wait(me: Entity, label: str, try_once: Callable[[], object],
                  wait: Callable[[], object]) -> object:
    ctl = me.ctl
    assert ctl is not None
    ctl.point(me, label)
    try:
        return try_once()
    except (BlockingIOError, PermissionError):
        pass
    ctl.block_external(me, label)
    try:
        return wait()
    finally:
        ctl.external_ready(me)


def flock(fd: Any, operation: int) -> None:
    """``fcntl.flock``: in a controlled entity, a held lock is waited for
    outside the schedule, so its holder can run and release it."""
    w = _window
    me = w.current() if w is not None else None
    assert _real_flock is not None
    if me is None or operation & _fcntl.LOCK_NB or operation & _fcntl.LOCK_UN:
        return _real_flock(fd, operation)  # type: ignore[no-any-return]
    _os_lock_wait(me, f"flock@{_where(_site())}",
                  lambda: _real_flock(fd, operation | _fcntl.LOCK_NB),
                  lambda: _real_flock(fd, operation))
    return None


def lockf(fd: Any, cmd: int, len: int = 0, start: int = 0, whence: int = 0) -> Any:
    """``fcntl.lockf`` (see :func:`flock`)."""
    w = _window
    me = w.current() if w is not None else None
    assert _real_lockf is not None
    if me is None or cmd & _fcntl.LOCK_NB or cmd == _fcntl.LOCK_UN:
        return _real_lockf(fd, cmd, len, start, whence)
    return _os_lock_wait(me, f"lockf@{_where(_site())}",
                         lambda: _real_lockf(fd, cmd | _fcntl.LOCK_NB, len, start, whence),
                         lambda: _real_lockf(fd, cmd, len, start, whence))


# -- threads started by a controlled entity ---------------------------------------------------
_real_thread_start = threading.Thread.start


def _thread_start(self: threading.Thread) -> None:
    """``Thread.start`` in a window: a thread started by a controlled
    entity runs outside jostle's control; say so, and let the start
    handshake (an ``Event`` the new thread sets) block for real."""
    w = _window
    me = w.current() if w is not None else None
    if w is None or me is None:
        _real_thread_start(self)
        return
    w.notes.append(f"{me.name} started thread {self.name!r} at {_where(_site())}: "
                   f"it ran outside jostle's control")
    me.busy = True
    try:
        _real_thread_start(self)
    finally:
        me.busy = False


# -- the patching window ---------------------------------------------------------------
_REPLACE_THREADING: dict[str, Any] = {
    "Lock": Lock, "_allocate_lock": Lock, "RLock": RLock, "Condition": Condition,
    "Semaphore": Semaphore, "BoundedSemaphore": BoundedSemaphore, "Event": Event,
    "Barrier": Barrier, "_time": monotonic,
}
_REPLACE_TIME: dict[str, Any] = {
    "sleep": sleep, "monotonic": monotonic, "monotonic_ns": monotonic_ns,
    "perf_counter": perf_counter, "perf_counter_ns": perf_counter_ns,
    "time": time_, "time_ns": time_ns,
}
# Standard-library modules that copied a clock at import (grep for
# ``from time import`` in 3.10-3.13); patched only if already imported.
# (subprocess, socketserver and telnetlib copy one too, but they wait for
# real I/O and keep the real clock.)
_STDLIB_ALIASES: tuple[tuple[str, str], ...] = (
    ("queue", "time"), ("sched", "_time"), ("trace", "_time"), ("timeit", "default_timer"),
)
# Real object -> replacement, to find ``from threading import Lock`` and
# ``from time import sleep`` copies in user modules.
_BY_REAL: dict[int, Any] = {}
for _k, _v in _REPLACE_THREADING.items():
    _BY_REAL.setdefault(id(_real_threading[_k]), _v)
for _k, _v in _REPLACE_TIME.items():
    _BY_REAL[id(getattr(time, _k))] = _v
_BY_REAL[id(_real_allocate_lock)] = Lock
if _real_flock is not None and _real_lockf is not None:
    _BY_REAL[id(_real_flock)] = flock
    _BY_REAL[id(_real_lockf)] = lockf

_STDLIB_DIRS = tuple({os.path.dirname(os.__file__) + os.sep,
                      os.path.dirname(threading.__file__ or "") + os.sep})
_FRAMEWORKS = frozenset({"jostle", "hypothesis", "_hypothesis_pytestplugin", "_pytest", "pytest",
                         "pluggy", "coverage", "xdist", "execnet", "pytest_timeout"})
_scan_cache: dict[str, tuple[ModuleType, tuple[str, ...]]] = {}
_with_aliases: list[tuple[ModuleType, tuple[str, ...]]] = []
_scanned_count = 0


def _user_module(name: str, mod: ModuleType) -> bool:
    if name.partition(".")[0] in _FRAMEWORKS:
        return False
    path = getattr(mod, "__file__", None)
    if not isinstance(path, str):
        return False
    path = os.path.abspath(path)
    in_stdlib = path.startswith(_STDLIB_DIRS) and "-packages" not in path
    return not in_stdlib


def _user_aliases() -> list[tuple[ModuleType, str, Any]]:
    """``(module, attribute, replacement)`` for each copy of a replaced
    object in a user module (``from threading import Lock``).  Modules are
    scanned once, when ``sys.modules`` has grown since the last window."""
    global _scanned_count
    modules = sys.modules
    if len(modules) != _scanned_count:
        for name, mod in list(modules.items()):
            cached = _scan_cache.get(name)
            if (cached is not None and cached[0] is mod) or not isinstance(mod, ModuleType):
                continue
            names: tuple[str, ...] = ()
            if _user_module(name, mod):
                try:
                    names = tuple(k for k, v in vars(mod).items() if id(v) in _BY_REAL)
                except Exception:  # an exotic module object: leave it alone
                    names = ()
            _scan_cache[name] = (mod, names)
        _with_aliases[:] = [(m, n) for m, n in _scan_cache.values() if n]
        _scanned_count = len(modules)
    out = []
    for mod, names in _with_aliases:
        for attr in names:
            value = mod.__dict__.get(attr)
            replacement = _BY_REAL.get(id(value))
            if replacement is not None and value is not replacement:
                out.append((mod, attr, replacement))
    return out


@contextmanager
def patched(controller: Controller,
            entity_of: Callable[[], Entity | None]) -> Iterator[Window]:
    """Replace ``threading``'s blocking primitives, ``time.sleep`` and the
    clocks with cooperative ones for the duration of a controlled run.

    Replaced: ``fcntl.flock`` and ``fcntl.lockf`` (a held file lock is
    waited for outside the schedule); ``threading.Lock``, ``RLock``, ``_allocate_lock``,
    ``Condition``, ``Semaphore``, ``BoundedSemaphore``, ``Event``,
    ``Barrier``, ``_time``; ``_thread.allocate_lock`` (jostle's own plumbing
    took raw locks at import, so it is not caught); ``time.sleep``,
    ``monotonic``, ``perf_counter``, ``time`` and their ``_ns`` forms; the
    standard library's clock aliases (``queue.time``, ``sched._time``...);
    and copies of any of these in user modules (``from threading import
    Lock``).  Everything is restored on exit, exceptions included.

    Threads must be started before the window opens (``Thread`` uses
    ``Event``).  A thread a controlled entity starts inside the window runs
    uncontrolled and is noted in :attr:`Window.notes`.  Only one window can
    be open at a time.

    Args:
        controller: the run's controller.
        entity_of: returns the calling thread's entity, or ``None`` for a
            thread that is not controlled (it gets real behaviour).

    Raises:
        JostleError: a window is already open.
    """
    global _window
    if _window is not None:
        raise JostleError(
            "a controlled run is already patching threading in this process; controlled runs "
            "cannot nest or overlap: run them one after another")
    window = Window(controller, entity_of)
    undo: list[tuple[Any, str, Any]] = []

    def put(obj: Any, attr: str, value: Any) -> None:
        undo.append((obj, attr, getattr(obj, attr)))
        setattr(obj, attr, value)

    try:
        for attr, value in _REPLACE_THREADING.items():
            put(threading, attr, value)
        put(_thread, "allocate_lock", Lock)
        if hasattr(_thread, "allocate"):
            put(_thread, "allocate", Lock)
        for attr, value in _REPLACE_TIME.items():
            put(time, attr, value)
        for modname, attr in _STDLIB_ALIASES:
            mod = sys.modules.get(modname)
            if mod is not None:
                real = mod.__dict__.get(attr)
                replacement = _BY_REAL.get(id(real))
                if replacement is not None:
                    put(mod, attr, replacement)
        for mod, attr, replacement in _user_aliases():
            put(mod, attr, replacement)
        put(threading.Thread, "start", _thread_start)
        if _fcntl is not None:
            put(_fcntl, "flock", flock)
            put(_fcntl, "lockf", lockf)
        _window = window
        yield window
    finally:
        _window = None
        for obj, attr, value in reversed(undo):
            setattr(obj, attr, value)


# -- reports -----------------------------------------------------------------------------
def _waits_for(resource: Hashable) -> tuple[str, Entity | None]:
    if isinstance(resource, _Waiter):
        cond = resource.cond
        kind = cond.name.partition("@")[0]
        what = {"Event": "set", "Semaphore": "release", "BoundedSemaphore": "release",
                "Barrier": "the other parties"}.get(kind, "notify")
        return f"{what} of {cond.name}", None
    if isinstance(resource, Lock):
        return resource.name, resource._owner
    if isinstance(resource, tuple) and resource and resource[0] == "sleep":
        return "the end of a sleep", None
    return repr(resource), None


def _holds(window: Window | None, e: Entity) -> str:
    if window is None:
        return ""
    held = window.held.get(e) or []
    if not held:
        return ""
    return ", ".join(f"{lock.name} (since {_where(site)})" for lock, site in held)


def describe_wait_for(controller: Controller) -> str:
    """The wait-for graph of the blocked entities, cycle first.

    Example output::

        worker 1 holds Lock@ledger.py:12 (since ledger.py:40), waits for
        Lock@ledger.py:13 held by worker 2; worker 2 holds Lock@ledger.py:13
        (since ledger.py:40), waits for Lock@ledger.py:12 held by worker 1

    Call it while the run is still blocked and its window open (the
    controller's ``on_deadlock`` hook): once entities unwind they release
    what they held.
    """
    window = _window if _window is not None and _window.controller is controller else None
    blocked = [e for e in controller.entities if e.state is EntityState.BLOCKED]
    waits = {e: _waits_for(e.blocked_on) for e in blocked}

    def clause(e: Entity) -> str:
        what, owner = waits[e]
        holds = _holds(window, e)
        text = f"{e.name} holds {holds}, waits for {what}" if holds \
            else f"{e.name} waits for {what}"
        if owner is not None:
            done = " (finished)" if owner.state is EntityState.DONE else ""
            text += f" held by {owner.name}{done}"
        return text

    order: list[Entity] = []
    for start in blocked:
        path: list[Entity] = []
        e: Entity | None = start
        while e is not None and e in waits and e not in path:
            path.append(e)
            e = waits[e][1]
        if e is not None and e in path:
            cycle = path[path.index(e):]
            first = min(range(len(cycle)), key=lambda i: cycle[i].id)
            for c in cycle[first:] + cycle[:first]:
                if c not in order:
                    order.append(c)
    order += [e for e in blocked if e not in order]
    return "; ".join(clause(e) for e in order)
