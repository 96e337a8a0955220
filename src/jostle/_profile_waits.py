"""Where profiling workers wait: timed stand-ins for blocking primitives.

While a profile's instrumented runs are going, the public constructors of
the blocking primitives -- ``threading.Lock``, ``RLock``, ``Condition``,
``Semaphore``, ``BoundedSemaphore``, ``Event``; ``queue.Queue``,
``LifoQueue``, ``PriorityQueue``; ``asyncio.Lock``, ``Condition``,
``Semaphore``, ``BoundedSemaphore``, ``Event``, ``Queue``, ``LifoQueue``,
``PriorityQueue``; and ``fcntl.flock`` -- are replaced by versions that
time every wait that actually blocks and record two places: the line of the
user's code that waited and the line that created the primitive.  An
acquisition that does not block costs one extra non-blocking attempt and a
counter increment; only a blocked one reads the clock and walks the stack.

Only primitives created *directly by the user's code* are replaced: the
constructor looks at its caller, and a caller in the standard library, in
jostle or in the test harness (Hypothesis, pytest, xdist) gets the real
primitive.  So a ``queue.Queue`` the user makes is timed as a queue, but the
lock and conditions inside it are not timed a second time, and jostle's own
plumbing (thread pool, loop, futures) is never caught.

This is the sampling-free cousin of what ``perf lock`` and Go's
``runtime.SetBlockProfileRate(1)`` report (blocked time per call site), and
of ``lockstat``'s split between where a lock was taken and where it was
created.  It is *not* ``jostle._cooperative``: that module makes primitives
cooperative for controlled runs; this one only times real blocking.

Limits, said in the report: a primitive created before profiling started
(at import, as a module-level lock) or bound by name before it (``from
threading import Lock``) is not replaced; ``multiprocessing`` locks and
C-level waits are not seen; ``isinstance(x, queue.Queue)`` checks made while
instrumentation is on see the replacement class.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import os
import queue
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import CodeType, FrameType
from typing import Any

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "WaitKey",
    "WaitTotals",
    "current_kind",
    "instrumented",
    "worker_kind",
]

_now = time.monotonic_ns

#: The worker kind that is running (set by the profiling workers; a wait on
#: some other thread is recorded as "other").
current_kind: contextvars.ContextVar[str] = contextvars.ContextVar(
    "jostle_profile_kind", default="other")

# (primitive, created_at, waited_at, kind)
WaitKey = tuple[str, str, str, str]
# WaitKey -> [waits, total_ns, max_ns]
WaitTotals = dict[WaitKey, list[int]]

_JOSTLE_DIR = os.path.dirname(os.path.abspath(__file__))
_STDLIB = os.path.abspath(sysconfig.get_paths()["stdlib"])
_HARNESS = ("hypothesis", "_pytest", "pytest", "pluggy", "xdist", "execnet", "_hypothesis_")
_user_code: dict[CodeType, bool] = {}


def _is_user(code: CodeType) -> bool:
    known = _user_code.get(code)
    if known is None:
        path = os.path.abspath(code.co_filename)
        parts = path.split(os.sep)
        site = "site-packages" in parts or "dist-packages" in parts
        known = not (
            code.co_filename.startswith("<")
            or path.startswith(_JOSTLE_DIR)
            or (path.startswith(_STDLIB) and not site)
            or (site and any(p in _HARNESS for p in parts))
        )
        _user_code[code] = known
    return known


def _where(frame: FrameType) -> str:
    filename = frame.f_code.co_filename
    try:
        rel = os.path.relpath(filename)
    except ValueError:  # another drive (Windows)
        rel = filename
    shown = rel if not rel.startswith("..") else os.path.basename(filename)
    return f"{shown}:{frame.f_lineno}"


def _user_caller(depth: int) -> FrameType | None:
    """The caller ``depth`` frames up if it is user code, else ``None``."""
    try:
        frame = sys._getframe(depth + 1)
    except ValueError:
        return None
    return frame if _is_user(frame.f_code) else None


def _waiter() -> str:
    """The innermost user frame of the calling stack (who waited)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and not _is_user(frame.f_code):
        frame = frame.f_back
    return _where(frame) if frame is not None else "(no user frame)"


class _Recorder:
    """The waits and acquisitions of the primitives made while it is on."""

    def __init__(self) -> None:
        self.waits: list[tuple[str, str, str, str, int]] = []  # list.append is atomic
        self.made: list[Any] = []

    def wait(self, primitive: str, created_at: str, waited_ns: int) -> None:
        self.waits.append((primitive, created_at, _waiter(), current_kind.get(), waited_ns))

    def totals(self) -> tuple[WaitTotals, dict[tuple[str, str], int]]:
        """Waits by (primitive, created, waited, kind); acquisitions by site."""
        waits: WaitTotals = {}
        for primitive, created, waited, kind, ns in self.waits:
            row = waits.setdefault((primitive, created, waited, kind), [0, 0, 0])
            row[0] += 1
            row[1] += ns
            row[2] = max(row[2], ns)
        acquired: dict[tuple[str, str], int] = {}
        for prim in self.made:
            key = (prim._jostle_name, prim._jostle_site)
            acquired[key] = acquired.get(key, 0) + prim._jostle_acquired()
        return waits, acquired


_active: _Recorder | None = None


def _blocked(primitive: str, created_at: str, start: int) -> None:
    """Record a wait on ``primitive`` that began at ``start`` (ns), if still on."""
    rec = _active
    if rec is not None:
        rec.wait(primitive, created_at, _now() - start)


def _site(depth: int) -> str | None:
    """Where a primitive is being created, if by user code and while on."""
    if _active is None:
        return None
    frame = _user_caller(depth + 1)
    return _where(frame) if frame is not None else None


def _register(prim: Any, name: str, site: str) -> None:
    prim._jostle_name = name
    prim._jostle_site = site
    rec = _active
    if rec is not None:
        rec.made.append(prim)


# -- threading -------------------------------------------------------------

_RealLock = threading.Lock
_RealRLock = threading.RLock
_RealCondition = threading.Condition
_RealSemaphore = threading.Semaphore
_RealBoundedSemaphore = threading.BoundedSemaphore
_RealEvent = threading.Event


class _TimedLock:
    """A ``threading.Lock`` or ``RLock`` whose blocked acquisitions are timed."""

    __slots__ = ("_count", "_jostle_name", "_jostle_site", "_lock")

    def __init__(self, lock: Any, name: str, site: str) -> None:
        self._lock = lock
        self._count = 0  # only changed while holding the lock
        _register(self, name, site)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        lock = self._lock
        if lock.acquire(False):
            self._count += 1
            return True
        if not blocking:
            return False
        start = _now()
        got: bool = lock.acquire(True, timeout)
        if got:
            self._count += 1
        _blocked(self._jostle_name, self._jostle_site, start)
        return got

    def __enter__(self) -> bool:
        if self._lock.acquire(False):  # the common case, without a second call
            self._count += 1
            return True
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return bool(self._lock.locked())

    def _jostle_acquired(self) -> int:
        return self._count

    def __getattr__(self, name: str) -> Any:  # _is_owned, _release_save, _at_fork_reinit
        return getattr(self._lock, name)

    def __repr__(self) -> str:
        return f"<timed {self._lock!r} made at {self._jostle_site}>"


def _lock_factory() -> Any:
    site = _site(1)
    return _RealLock() if site is None else _TimedLock(_RealLock(), "threading.Lock", site)


def _rlock_factory(*args: Any, **kwargs: Any) -> Any:
    site = _site(1)
    if site is None:
        return _RealRLock(*args, **kwargs)
    return _TimedLock(_RealRLock(*args, **kwargs), "threading.RLock", site)


def _real_if_not_user(cls: type, base: type, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
    """``base(*args)`` when the caller is not user code (then ``__init__`` of
    ``cls`` is skipped, as Python skips it for a foreign instance)."""
    site = _site(2)
    if site is None:
        return base(*args, **kwargs)
    obj: Any = object.__new__(cls)
    obj._jostle_new_site = site
    return obj


class _TimedCondition(_RealCondition):
    """``threading.Condition``: timed entry (when contended) and waits."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _real_if_not_user(cls, _RealCondition, args, kwargs)

    def __init__(self, lock: Any = None) -> None:
        super().__init__(lock)
        _register(self, "threading.Condition", self._jostle_new_site)  # type: ignore[attr-defined]
        self._acquired = 0
        self._inner_acquire = self.acquire
        if not isinstance(lock, _TimedLock):  # a timed lock times its own entries
            self.acquire = self._timed_acquire  # type: ignore[method-assign]

    def _timed_acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        inner = self._inner_acquire
        if inner(False):
            self._acquired += 1
            return True
        if not blocking:
            return False
        start = _now()
        got = bool(inner(True, timeout))
        if got:
            self._acquired += 1
        _blocked("threading.Condition", self._jostle_site, start)  # type: ignore[attr-defined]
        return got

    def __enter__(self) -> bool:
        return bool(self.acquire())

    def wait(self, timeout: float | None = None) -> bool:
        start = _now()
        try:
            return super().wait(timeout)
        finally:
            _blocked("threading.Condition.wait", self._jostle_site, start)  # type: ignore[attr-defined]

    def _jostle_acquired(self) -> int:
        return self._acquired


class _TimedSemaphore(_RealSemaphore):
    """``threading.Semaphore``: timed blocked acquisitions."""

    _jostle_kind = "threading.Semaphore"

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        base = _RealBoundedSemaphore if cls is _TimedBoundedSemaphore else _RealSemaphore
        return _real_if_not_user(cls, base, args, kwargs)

    def __init__(self, value: int = 1) -> None:
        # Not super(): BoundedSemaphore.__init__ calls the module's (patched)
        # Semaphore.__init__, which would come back here.
        _RealSemaphore.__init__(self, value)
        self._counter = itertools.count()
        _register(self, self._jostle_kind, self._jostle_new_site)  # type: ignore[attr-defined]

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if super().acquire(False):
            next(self._counter)
            return True
        if not blocking:
            return False
        start = _now()
        got = super().acquire(True, timeout)
        if got:
            next(self._counter)
        _blocked(self._jostle_kind, self._jostle_site, start)  # type: ignore[attr-defined]
        return got

    __enter__ = acquire

    def _jostle_acquired(self) -> int:
        return next(self._counter)  # the count of earlier calls (reading it once, at the end)


class _TimedBoundedSemaphore(_TimedSemaphore, _RealBoundedSemaphore):
    """``threading.BoundedSemaphore``: timed blocked acquisitions."""

    _jostle_kind = "threading.BoundedSemaphore"

    def __init__(self, value: int = 1) -> None:
        _TimedSemaphore.__init__(self, value)
        self._initial_value = value  # all that BoundedSemaphore.__init__ adds (3.10-3.13)


class _TimedEvent(_RealEvent):
    """``threading.Event``: timed waits on an event not yet set."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _real_if_not_user(cls, _RealEvent, args, kwargs)

    def __init__(self) -> None:
        super().__init__()
        self._waits = 0
        _register(self, "threading.Event", self._jostle_new_site)  # type: ignore[attr-defined]

    def wait(self, timeout: float | None = None) -> bool:
        if self.is_set():
            return True
        start = _now()
        try:
            return super().wait(timeout)
        finally:
            _blocked("threading.Event.wait", self._jostle_site, start)  # type: ignore[attr-defined]

    def _jostle_acquired(self) -> int:
        return 0  # an event is waited for, not acquired


# -- queue -----------------------------------------------------------------


def _timed_queue(base: type[queue.Queue[Any]], name: str) -> type[queue.Queue[Any]]:
    class TimedQueue(base):  # type: ignore[valid-type,misc]
        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            return _real_if_not_user(cls, base, args, kwargs)

        def __init__(self, maxsize: int = 0) -> None:
            super().__init__(maxsize)
            self._gets = itertools.count()
            _register(self, name, self._jostle_new_site)

        def get(self, block: bool = True, timeout: float | None = None) -> Any:
            next(self._gets)
            if not block:
                return super().get(False)
            try:
                return super().get(False)
            except queue.Empty:
                pass
            start = _now()
            try:
                return super().get(True, timeout)
            finally:
                _blocked(f"{name}.get", self._jostle_site, start)

        def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
            if not block or not self.maxsize:
                super().put(item, block, timeout)
                return
            try:
                super().put(item, False)
                return
            except queue.Full:
                pass
            start = _now()
            try:
                super().put(item, True, timeout)
            finally:
                _blocked(f"{name}.put", self._jostle_site, start)

        def _jostle_acquired(self) -> int:
            return next(self._gets)

    TimedQueue.__name__ = TimedQueue.__qualname__ = f"Timed{base.__name__}"
    return TimedQueue


# -- asyncio ---------------------------------------------------------------

_RealALock = asyncio.Lock
_RealACondition = asyncio.Condition
_RealASemaphore = asyncio.Semaphore
_RealABoundedSemaphore = asyncio.BoundedSemaphore
_RealAEvent = asyncio.Event


class _TimedALock(_RealALock):
    """``asyncio.Lock``: timed acquisitions that have to wait."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _real_if_not_user(cls, _RealALock, args, kwargs)

    def __init__(self) -> None:
        super().__init__()
        self._acquired = 0
        _register(self, "asyncio.Lock", self._jostle_new_site)  # type: ignore[attr-defined]

    async def acquire(self) -> Any:
        self._acquired += 1  # the loop's thread only
        if not self.locked():
            return await super().acquire()
        start = _now()
        try:
            return await super().acquire()
        finally:
            _blocked("asyncio.Lock", self._jostle_site, start)  # type: ignore[attr-defined]

    def _jostle_acquired(self) -> int:
        return self._acquired


class _TimedACondition(_RealACondition):
    """``asyncio.Condition``: timed contended entry and waits."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _real_if_not_user(cls, _RealACondition, args, kwargs)

    def __init__(self, lock: Any = None) -> None:
        super().__init__(lock)
        self._acquired = 0
        self._inner_acquire = self.acquire
        self.acquire = self._timed_acquire  # type: ignore[method-assign,assignment]
        _register(self, "asyncio.Condition", self._jostle_new_site)  # type: ignore[attr-defined]

    async def _timed_acquire(self) -> bool:
        self._acquired += 1
        if not self.locked():
            return bool(await self._inner_acquire())
        start = _now()
        try:
            return bool(await self._inner_acquire())
        finally:
            _blocked("asyncio.Condition", self._jostle_site, start)  # type: ignore[attr-defined]

    async def wait(self) -> Any:
        start = _now()
        try:
            return await super().wait()
        finally:
            _blocked("asyncio.Condition.wait", self._jostle_site, start)  # type: ignore[attr-defined]

    def _jostle_acquired(self) -> int:
        return self._acquired


def _timed_asemaphore(base: type[asyncio.Semaphore], name: str) -> type[asyncio.Semaphore]:
    class TimedSemaphore(base):  # type: ignore[valid-type,misc]
        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            return _real_if_not_user(cls, base, args, kwargs)

        def __init__(self, value: int = 1) -> None:
            super().__init__(value)
            self._acquired = 0
            _register(self, name, self._jostle_new_site)

        async def acquire(self) -> bool:
            self._acquired += 1
            if not self.locked():
                return bool(await super().acquire())
            start = _now()
            try:
                return bool(await super().acquire())
            finally:
                _blocked(name, self._jostle_site, start)

        def _jostle_acquired(self) -> int:
            return self._acquired

    TimedSemaphore.__name__ = TimedSemaphore.__qualname__ = f"Timed{base.__name__}"
    return TimedSemaphore


class _TimedAEvent(_RealAEvent):
    """``asyncio.Event``: timed waits on an event not yet set."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _real_if_not_user(cls, _RealAEvent, args, kwargs)

    def __init__(self) -> None:
        super().__init__()
        _register(self, "asyncio.Event", self._jostle_new_site)  # type: ignore[attr-defined]

    async def wait(self) -> Any:
        if self.is_set():
            return True
        start = _now()
        try:
            return await super().wait()
        finally:
            _blocked("asyncio.Event.wait", self._jostle_site, start)  # type: ignore[attr-defined]

    def _jostle_acquired(self) -> int:
        return 0


def _timed_aqueue(base: type[asyncio.Queue[Any]], name: str) -> type[asyncio.Queue[Any]]:
    class TimedQueue(base):  # type: ignore[valid-type,misc]
        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            return _real_if_not_user(cls, base, args, kwargs)

        def __init__(self, maxsize: int = 0) -> None:
            super().__init__(maxsize)
            self._gets = 0
            _register(self, name, self._jostle_new_site)

        async def get(self) -> Any:
            self._gets += 1
            if not self.empty():
                return await super().get()
            start = _now()
            try:
                return await super().get()
            finally:
                _blocked(f"{name}.get", self._jostle_site, start)

        async def put(self, item: Any) -> None:
            if not self.full():
                await super().put(item)
                return
            start = _now()
            try:
                await super().put(item)
            finally:
                _blocked(f"{name}.put", self._jostle_site, start)

        def _jostle_acquired(self) -> int:
            return self._gets

    TimedQueue.__name__ = TimedQueue.__qualname__ = f"Timed{base.__name__}"
    return TimedQueue


# -- fcntl -----------------------------------------------------------------

_real_flock = fcntl.flock if fcntl is not None else None


class _FlockSite:
    """Acquisition counts of ``fcntl.flock`` by the line that called it."""

    def __init__(self, site: str) -> None:
        self._jostle_name = "fcntl.flock"
        self._jostle_site = site
        self._counter = itertools.count()

    def _jostle_acquired(self) -> int:
        return next(self._counter)


_flock_sites: dict[str, _FlockSite] = {}


def _timed_flock(fd: Any, operation: int) -> None:
    assert fcntl is not None and _real_flock is not None
    rec = _active
    if rec is None or operation & (fcntl.LOCK_NB | fcntl.LOCK_UN):
        return _real_flock(fd, operation)
    frame = _user_caller(1)
    if frame is None:
        return _real_flock(fd, operation)
    site = _where(frame)
    counter = _flock_sites.get(site)
    if counter is None:
        counter = _flock_sites[site] = _FlockSite(site)
        rec.made.append(counter)
    next(counter._counter)
    try:
        return _real_flock(fd, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        pass
    start = _now()
    try:
        return _real_flock(fd, operation)
    finally:
        rec.waits.append(("fcntl.flock", "(a file lock)", site, current_kind.get(),
                          _now() - start))


# -- switching it on and off -----------------------------------------------


def _patches() -> list[tuple[Any, str, Any]]:
    out: list[tuple[Any, str, Any]] = [
        (threading, "Lock", _lock_factory),
        (threading, "RLock", _rlock_factory),
        (threading, "Condition", _TimedCondition),
        (threading, "Semaphore", _TimedSemaphore),
        (threading, "BoundedSemaphore", _TimedBoundedSemaphore),
        (threading, "Event", _TimedEvent),
        (asyncio, "Lock", _TimedALock),
        (asyncio, "Condition", _TimedACondition),
        (asyncio, "Semaphore", _TIMED["asyncio.Semaphore"]),
        (asyncio, "BoundedSemaphore", _TIMED["asyncio.BoundedSemaphore"]),
        (asyncio, "Event", _TimedAEvent),
    ]
    for name in ("Queue", "LifoQueue", "PriorityQueue"):
        out.append((queue, name, _TIMED[f"queue.{name}"]))
        out.append((asyncio, name, _TIMED[f"asyncio.{name}"]))
    if fcntl is not None:
        out.append((fcntl, "flock", _timed_flock))
    return out


_TIMED: dict[str, Any] = {
    "asyncio.Semaphore": _timed_asemaphore(_RealASemaphore, "asyncio.Semaphore"),
    "asyncio.BoundedSemaphore": _timed_asemaphore(_RealABoundedSemaphore,
                                                  "asyncio.BoundedSemaphore"),
    **{f"queue.{n}": _timed_queue(getattr(queue, n), f"queue.{n}")
       for n in ("Queue", "LifoQueue", "PriorityQueue")},
    **{f"asyncio.{n}": _timed_aqueue(getattr(asyncio, n), f"asyncio.{n}")
       for n in ("Queue", "LifoQueue", "PriorityQueue")},
}

_switch = _RealLock()


@contextmanager
def instrumented() -> Iterator[Callable[[], tuple[WaitTotals, dict[tuple[str, str], int]]]]:
    """Time waits on primitives the user's code creates inside the block.

    Yields a function returning the totals so far: waits by ``(primitive,
    created_at, waited_at, kind)`` as ``[count, total_ns, max_ns]``, and
    acquisitions by ``(primitive, created_at)``.

    Raises:
        RuntimeError: instrumentation is already on (profiles do not nest).
    """
    global _active
    with _switch:
        if _active is not None:
            raise RuntimeError("jostle: wait instrumentation is already on")
        rec = _active = _Recorder()
        saved = [(mod, name, getattr(mod, name)) for mod, name, _ in _patches()]
        for mod, name, value in _patches():
            setattr(mod, name, value)
    try:
        yield rec.totals
    finally:
        with _switch:
            for mod, name, value in saved:
                setattr(mod, name, value)
            _active = None
            _flock_sites.clear()


@contextmanager
def worker_kind(kind: str) -> Iterator[None]:
    """Attribute waits in this context to workers of ``kind``."""
    token = current_kind.set(kind)
    try:
        yield
    finally:
        current_kind.reset(token)
