"""Describing a deadlock: the wait-for graph of the blocked entities.

When no entity can run and none waits with a timeout, the controller calls
its ``on_deadlock`` hook before anyone unwinds; that is when
:func:`describe_wait_for` can still read who holds what (the window's
ownership records) and who waits for what (each blocked entity's resource).
"""

from __future__ import annotations

from collections.abc import Hashable

from . import _window as _win
from ._control import Controller, Entity, EntityState
from ._cooperative import Lock, _Waiter
from ._window import Window, _where

__all__ = ["describe_wait_for"]


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
    w = _win.current
    window = w if w is not None and w.controller is controller else None
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

