"""The virtual clock a controlled entity sees.

During a controlled run ``time.sleep``, ``time.monotonic``,
``time.perf_counter``, ``time.time`` (and their ``_ns`` forms and the
standard library's aliases) are replaced (``_patching``) by the functions
here.  A controlled entity sees ``MONOTONIC_BASE`` (or ``EPOCH_BASE``) plus
the controller's virtual time, so results that depend on clock readings
replay exactly, and a sleep is a timed block that lets others run; the clock
jumps forward only when nobody can run.  Every other thread keeps the real
clock, as does standard-library code that waits for real I/O (processes,
sockets, the event loop's own bookkeeping: a frozen clock would make their
polling loops spin for ever).  Clocks read through C (``datetime.now()``)
stay real (``_nondeterminism`` and the replay check catch what they do).
"""

from __future__ import annotations

import os
import sys
import threading

from . import _window as _win
from ._window import (
    _get_ident,
    _real_monotonic,
    _real_monotonic_ns,
    _real_perf_counter,
    _real_perf_counter_ns,
    _real_sleep,
    _real_time,
    _real_time_ns,
    _site,
    _where,
)

__all__ = ["EPOCH_BASE", "MONOTONIC_BASE", "monotonic", "monotonic_ns", "perf_counter",
           "perf_counter_ns", "sleep", "time_", "time_ns"]

#: that depend on clock readings replay exactly.
MONOTONIC_BASE = 1_000.0
#: ``time.time()`` seen by a controlled entity: 2023-11-14T22:13:20Z plus the
#: virtual time.
EPOCH_BASE = 1_700_000_000.0


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
    w = _win.current
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
    w = _win.current
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


