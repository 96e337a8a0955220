"""Uncontrolled nondeterminism in a controlled run, named in the report.

A controlled run replays exactly only if every choice that shapes it is the
scheduler's.  What jostle can make deterministic it does (the clocks are
virtual, ``_virtual_time``; the global ``random`` is seeded at the start of
each execution by the engine); what it cannot, it notes in the window, and
the notes become warnings on the execution:

* threads an operation starts itself (``Thread.start``): they run outside
  jostle's control;
"""

from __future__ import annotations

import threading

from . import _window as _win
from ._window import _site, _where

__all__ = ["thread_start"]

# -- threads started by a controlled entity ---------------------------------------------------
_real_thread_start = threading.Thread.start


def thread_start(self: threading.Thread) -> None:
    """``Thread.start`` in a window: a thread started by a controlled
    entity runs outside jostle's control; say so, and let the start
    handshake (an ``Event`` the new thread sets) block for real."""
    w = _win.current
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


