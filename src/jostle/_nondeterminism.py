"""Uncontrolled nondeterminism in a controlled run, named in the report.

A controlled run replays exactly only if every choice that shapes it is the
scheduler's.  What jostle can make deterministic it does (the clocks are
virtual, ``_virtual_time``; the global ``random`` is seeded at the start of
each execution by the engine); what it cannot, it notes in the window, and
the notes become warnings on the execution:

* threads an operation starts itself (``Thread.start``): they run outside
  jostle's control;
* true randomness (``os.urandom``, which ``uuid.uuid4``, ``secrets`` and
  ``random.SystemRandom`` read);
* clocks jostle does not virtualise (``time.clock_gettime``).

Each note names the entity and the user's ``file:line``, once per window
and execution.  Sources no patch can see (``datetime.now()``, the iteration
order of a set of strings under hash randomisation) are caught by the replay
check instead: the final failing schedule is run again and any difference
is reported (``_controlled_search``).
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time

from . import _window as _win
from ._window import _site, _where

__all__ = ["FIXED_RANDOM_STATE", "clock_gettime", "clock_gettime_ns", "note", "thread_start",
           "thread_starts", "urandom"]

#: The state the global ``random`` generator is set to at the start of each
#: controlled execution, so what the user's code draws from it depends only
#: on the schedule (the engine restores the caller's state afterwards).
FIXED_RANDOM_STATE = random.Random(0).getstate()

_real_urandom = os.urandom
_real_clock_gettime = getattr(time, "clock_gettime", None)
_real_clock_gettime_ns = getattr(time, "clock_gettime_ns", None)


_STDLIB = os.path.dirname(os.__file__) + os.sep
_JOSTLE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_site() -> tuple[str, int]:
    """The innermost frame of the user's code (not jostle, not the standard
    library: ``uuid.uuid4`` is what the user called, ``os.urandom`` is not)."""
    f = sys._getframe(2)
    while f is not None:
        name = f.f_code.co_filename
        if not (name.startswith((_JOSTLE, "<frozen")) or
                (name.startswith(_STDLIB) and "-packages" not in name)):
            return (name, f.f_lineno)
        f = f.f_back  # type: ignore[assignment]
    return _site()


def note(what: str) -> None:
    """Record that the calling controlled entity did ``what`` (once per
    execution); nothing outside a window or outside an entity."""
    w = _win.current
    me = w.current() if w is not None else None
    if w is None or me is None:
        return
    text = f"uncontrolled nondeterminism: {me.name} {what} at {_where(_user_site())}"
    if text not in w.notes:
        w.notes.append(text)


def urandom(size: int) -> bytes:
    """``os.urandom``, noted when a controlled entity reads it."""
    note("read os.urandom (true randomness: uuid4, secrets, SystemRandom), so a replay "
         "of this schedule may differ")
    return _real_urandom(size)


def clock_gettime(clk_id: int) -> float:
    """``time.clock_gettime``, noted: jostle does not virtualise it."""
    note("read time.clock_gettime, which is not virtual (use time.monotonic)")
    assert _real_clock_gettime is not None
    value: float = _real_clock_gettime(clk_id)
    return value


def clock_gettime_ns(clk_id: int) -> int:
    """``time.clock_gettime_ns`` (see :func:`clock_gettime`)."""
    note("read time.clock_gettime_ns, which is not virtual (use time.monotonic_ns)")
    assert _real_clock_gettime_ns is not None
    value: int = _real_clock_gettime_ns(clk_id)
    return value

# -- threads started by a controlled entity ---------------------------------------------------
_real_thread_start = threading.Thread.start

#: While a runner collects them (``_misuse.collect_thread_starts``): a note
#: per thread a controlled entity started, across every execution.
thread_starts: list[str] | None = None


def thread_start(self: threading.Thread) -> None:
    """``Thread.start`` in a window: a thread started by a controlled
    entity runs outside jostle's control; say so, and let the start
    handshake (an ``Event`` the new thread sets) block for real."""
    w = _win.current
    me = w.current() if w is not None else None
    if w is None or me is None:
        _real_thread_start(self)
        return
    text = (f"uncontrolled nondeterminism: {me.name} started thread {self.name!r} "
            f"at {_where(_site())}: it ran outside jostle's control")
    w.notes.append(text)
    collected = thread_starts
    if collected is not None and text not in collected:
        collected.append(text)
    me.busy = True
    try:
        _real_thread_start(self)
    finally:
        me.busy = False


