"""Cooperative blocking primitives for controlled threads.

A controlled run lets one worker thread hold the baton at a time
(``_control``).  A worker that blocks *for real* while holding it stops the
whole run, so during a run ``threading``'s blocking primitives are replaced
(``_patching``) by the ones here: a worker that cannot proceed calls
:meth:`Controller.block` and the baton moves on; a release calls
:meth:`Controller.wake`; a timeout is a deadline on the controller's virtual
clock (``_virtual_time``), which jumps forward only when nobody can run.
Timeouts therefore cost no wall time and expire in a deterministic order.
This is the design of Loom's and Shuttle's modelled primitives and of
frontrun's cooperative locks; the field notes measured that cooperative
``Lock``/``RLock``/``allocate_lock`` and ``time.sleep`` are enough for
``Condition``, ``Event`` and ``queue.Queue`` (500 random schedules, 0 errors)
once ``time.monotonic`` and its module aliases are virtual too.

**Dual mode.**  Every primitive here keeps its state in a real raw lock (the
*bit*) plus plain attributes.  A thread that is a controlled entity blocks
cooperatively; any other thread (pytest's, Hypothesis's, the controller, the
asyncio loop when it is not an entity) gets exactly the real behaviour, so a
window never breaks the rest of the process, and objects created inside a
window keep working after it closes.  Condition, Semaphore, Event and Barrier
are built on the cooperative Lock the way the standard library builds them
on ``_thread`` locks, so they inherit both modes.

**OS-level locks.**  ``fcntl.flock``/``lockf`` are replaced too: a file lock
held elsewhere is waited for outside the schedule, so its holder can run.

**What stays uncontrolled** (the no-progress watchdog reports it as
*uncontrolled blocking at file:line*):

* blocking in C: ``queue.SimpleQueue.get``, ``Thread.join``, real I/O,
  ``select``, ``subprocess`` pipes;
* primitives created before the window by code jostle did not patch
  (a real ``threading.Lock()`` built at import time, or by a resource
  built before the window): their methods cannot be intercepted, so a
  worker that blocks on one held by another worker blocks for real;
* threads an operation starts itself (``_nondeterminism`` notes them).

A primitive shared between a controlled worker and an uncontrolled thread
*while the run is on* is outside the model: both sides work, but a wakeup
that crosses the boundary goes through the controller from a foreign thread.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from itertools import islice
from types import TracebackType
from typing import Any

from . import _window as _win
from ._control import Entity
from ._virtual_time import monotonic
from ._window import Window, _get_ident, _me, _name, _real_allocate_lock, _site, _where

__all__ = [
    "Barrier",
    "BoundedSemaphore",
    "Condition",
    "Event",
    "Lock",
    "RLock",
    "Semaphore",
    "flock",
    "lockf",
]


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
    #: Whether a deadlock report can name an owner (``Window.owner_of``).
    _has_owner = True

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
        w = _win.current
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
            me.ctl.point(me, self._lbl_acquire)
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
        w = _win.current
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
            me.ctl.point(me, self._lbl_release)

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
    _has_owner = False

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
                ent.ctl.point(ent, self._block._lbl_acquire)
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
            me.ctl.point(me, self._lbl_wait)
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
            me.ctl.point(me, self._lbl_notify)
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
    w = _win.current
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
    w = _win.current
    me = w.current() if w is not None else None
    assert _real_lockf is not None
    if me is None or cmd & _fcntl.LOCK_NB or cmd == _fcntl.LOCK_UN:
        return _real_lockf(fd, cmd, len, start, whence)
    return _os_lock_wait(me, f"lockf@{_where(_site())}",
                         lambda: _real_lockf(fd, cmd | _fcntl.LOCK_NB, len, start, whence),
                         lambda: _real_lockf(fd, cmd, len, start, whence))


