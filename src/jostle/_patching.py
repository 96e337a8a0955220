"""The patching window: what a controlled session replaces, and how.

:func:`patched` swaps ``threading``'s blocking primitives, ``time``'s
clocks and sleep, ``fcntl``'s file locks and ``Thread.start`` for jostle's
(``_cooperative``, ``_virtual_time``, ``_nondeterminism``), including copies
of them in the user's modules (``from threading import Lock``), and restores
everything when it closes.  Only one window can be open at a time.
"""

from __future__ import annotations

import _thread
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

try:
    import fcntl as _fcntl
except ImportError:  # not POSIX
    _fcntl = None  # type: ignore[assignment]

from . import _window as _win
from ._control import Controller, Entity
from ._cooperative import (
    Barrier,
    BoundedSemaphore,
    Condition,
    Event,
    Lock,
    RLock,
    Semaphore,
    _real_flock,
    _real_lockf,
    flock,
    lockf,
)
from ._errors import JostleError
from ._nondeterminism import (
    _real_clock_gettime,
    _real_clock_gettime_ns,
    _real_urandom,
    clock_gettime,
    clock_gettime_ns,
    thread_start,
    urandom,
)
from ._virtual_time import (
    monotonic,
    monotonic_ns,
    perf_counter,
    perf_counter_ns,
    sleep,
    time_,
    time_ns,
)
from ._window import Window, _real_allocate_lock, _real_threading

__all__ = ["patched"]

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
_scan_cache: dict[str, tuple[ModuleType, tuple[str, ...], tuple[tuple[Any, str], ...]]] = {}
_with_aliases: list[tuple[ModuleType, tuple[str, ...], tuple[tuple[Any, str], ...]]] = []
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


# The real lock types: an instance made before the window (a module-level
# ``_lock = threading.Lock()`` at import) cannot be intercepted, so where one
# is held in a module global or a class attribute, a cooperative lock stands
# in for it while the window is open.
_REAL_LOCK_TYPES: dict[type, Callable[[], Any]] = {
    type(_real_allocate_lock()): lambda: Lock(),
    type(_real_threading["RLock"]()): lambda: RLock(),
}


def _lock_holders(mod: ModuleType) -> tuple[tuple[Any, str], ...]:
    """``(owner, attribute)`` of every real lock a user module holds in a
    global or in an attribute of a class it defines."""
    found: list[tuple[Any, str]] = []
    for k, v in vars(mod).items():
        if type(v) in _REAL_LOCK_TYPES:
            found.append((mod, k))
        elif isinstance(v, type) and v.__module__ == mod.__name__:
            found += [(v, ck) for ck, cv in vars(v).items() if type(cv) in _REAL_LOCK_TYPES]
    return tuple(found)


def _free(lock: Any) -> bool:
    """Whether nobody holds ``lock`` (C RLocks have no ``locked()`` before 3.13,
    and one the calling thread holds would let it in again)."""
    is_owned = getattr(lock, "_is_owned", None)
    if is_owned is not None and is_owned():
        return False
    if lock.acquire(False):
        lock.release()
        return True
    return False


def _user_aliases() -> list[tuple[Any, str, Any]]:
    """``(owner, attribute, replacement)`` for each copy of a replaced
    object in a user module (``from threading import Lock``), and for each
    real lock it holds at module or class level (made at import, before any
    window).  Modules are scanned once, when ``sys.modules`` has grown since
    the last window."""
    global _scanned_count
    modules = sys.modules
    if len(modules) != _scanned_count:
        for name, mod in list(modules.items()):
            cached = _scan_cache.get(name)
            if (cached is not None and cached[0] is mod) or not isinstance(mod, ModuleType):
                continue
            names: tuple[str, ...] = ()
            holders: tuple[tuple[Any, str], ...] = ()
            if _user_module(name, mod):
                try:
                    names = tuple(k for k, v in vars(mod).items() if id(v) in _BY_REAL)
                    holders = _lock_holders(mod)
                except Exception:  # an exotic module object: leave it alone
                    names, holders = (), ()
            _scan_cache[name] = (mod, names, holders)
        _with_aliases[:] = [(m, n, h) for m, n, h in _scan_cache.values() if n or h]
        _scanned_count = len(modules)
    out: list[tuple[Any, str, Any]] = []
    for mod, names, holders in _with_aliases:
        for attr in names:
            value = mod.__dict__.get(attr)
            replacement = _BY_REAL.get(id(value))
            if replacement is not None and value is not replacement:
                out.append((mod, attr, replacement))
        for owner, attr in holders:
            value = vars(owner).get(attr)
            make = _REAL_LOCK_TYPES.get(type(value))
            # A lock someone holds right now keeps its state: leave it real.
            if make is not None and _free(value):
                out.append((owner, attr, make()))
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
    copies of any of these in user modules (``from threading import
    Lock``); and real ``Lock``/``RLock`` instances a user module holds in a
    global or a class attribute (made at import, before any window: their
    methods cannot be intercepted, so a cooperative lock stands in for each
    while the window is open; one held at that moment stays real).
    Everything is restored on exit, exceptions included.

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
    if _win.current is not None:
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
        put(threading.Thread, "start", thread_start)
        put(os, "urandom", urandom)
        random_mod = sys.modules.get("random")
        if random_mod is not None and getattr(random_mod, "_urandom", None) is _real_urandom:
            put(random_mod, "_urandom", urandom)  # SystemRandom's copy
        if _real_clock_gettime is not None and _real_clock_gettime_ns is not None:
            put(time, "clock_gettime", clock_gettime)
            put(time, "clock_gettime_ns", clock_gettime_ns)
        if _fcntl is not None:
            put(_fcntl, "flock", flock)
            put(_fcntl, "lockf", lockf)
        _win.current = window
        yield window
    finally:
        _win.current = None
        for obj, attr, value in reversed(undo):
            setattr(obj, attr, value)


