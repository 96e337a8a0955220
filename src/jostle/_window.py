"""The patching window's state: which threads are controlled, who holds
which cooperative lock, the lock-order graph, and where things happened.

A controlled session opens one window (``_patching.patched``) for as long as
it runs executions; :data:`current` is that window, read by every
cooperative primitive (``_cooperative``), the virtual clock
(``_virtual_time``) and the nondeterminism notes (``_nondeterminism``) to
decide whether the calling thread is a controlled entity (cooperative
behaviour) or not (the real one).

The real functions the window replaces are taken here, at import, before any
window exists, so jostle's own plumbing can always reach them.

**Reports.**  Each primitive remembers the ``file:line`` that created it and
each owner the ``file:line`` where it acquired, so a deadlock is described as
a wait-for cycle (``_deadlocks``).  The window also keeps a lockdep-style
order graph (Linux lockdep, Java's lock-order checkers): an edge "held A
while acquiring B" per pair, first occurrence only, and
:meth:`Window.inversions` reports pairs taken in both orders, even when the
run did not deadlock.
"""

from __future__ import annotations

import _thread
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from ._control import Controller, Entity

if TYPE_CHECKING:
    from ._cooperative import Lock

__all__ = ["Inversion", "ThreadMap", "Window", "current", "current_window"]

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
        # The thread-to-entity lookup, without a call per lookup when the map
        # is a ThreadMap (every cooperative operation asks).
        self._by_ident = entity_of.by_ident if isinstance(entity_of, ThreadMap) else None
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
        by_ident = self._by_ident
        me = by_ident.get(_get_ident()) if by_ident is not None else self.entity_of()
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
        if getattr(resource, "_has_owner", False):
            owner: Entity | None = getattr(resource, "_owner", None)
            return owner
        return None



#: The open window, if any (one at a time: windows do not nest).
current: Window | None = None


def current_window() -> Window | None:
    """The open patching window, if any."""
    return current


def _me() -> tuple[Window, Entity] | tuple[None, None]:
    w = current
    if w is not None:
        me = w.current()
        if me is not None:
            return w, me
    return None, None


# -- where was I called from -------------------------------------------------------
_skip_cache: dict[str, bool] = {}


def _site() -> tuple[str, int]:
    """``(file, line)`` of the first caller outside jostle and the standard
    library's threading/queue plumbing (every acquire asks: no call per
    frame)."""
    f: FrameType | None = sys._getframe(1)
    cache = _skip_cache
    while f is not None:
        filename = f.f_code.co_filename
        skip = cache.get(filename)
        if skip is None:
            skip = cache[filename] = (filename.startswith(_JOSTLE_DIR)
                                      or filename in _PLUMBING_FILES)
        if not skip:
            return (filename, f.f_lineno)
        f = f.f_back
    return ("?", 0)




def _name(kind: str, site: tuple[str, int]) -> str:
    """``Lock@ledger.py:12``; the n-th primitive of a kind created at the
    same line in a window gets ``#n`` (n >= 2), so a report can tell apart
    the locks of objects built by the same constructor."""
    name = f"{kind}@{_where(site)}"
    w = current
    if w is not None:
        n = w.names.get(name, 0) + 1
        w.names[name] = n
        if n > 1:
            name = f"{name}#{n}"
    return name
