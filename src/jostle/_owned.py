"""What belongs to jostle itself, so a leak check never reports it.

jostle's own threads (pool, loop, driver and controlled threads: their
targets live in jostle) and the default-executor threads of its loops, its
event loops' descriptors (selector, self-pipe), its process workers (pids
and descriptors, including those multiprocessing keeps for their
finalizers), and the process-wide singletons it starts or relies on: the
``multiprocessing`` forkserver and resource tracker, and the shared
manager behind :class:`jostle.ManagerHandle`.

Read from the live objects at the moment of the check, so what jostle
replaced during an example (a loop abandoned after a hang, a process worker
killed and restarted) is counted as its own too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from typing import Any

__all__ = ["jostle_coro", "jostle_fds", "jostle_loops", "jostle_pids", "jostle_thread",
           "stress_loop"]

_JOSTLE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def stress_loop() -> Any:
    """The process-wide engine's live stress loop thread, if any."""
    from . import _engine

    engine = _engine._engine
    lt = engine._loop if engine is not None else None
    if lt is None or lt.abandoned or lt.loop.is_closed():
        return None
    return lt


def _loop_fds(loop: object) -> set[int]:
    out: set[int] = set()
    for attr in ("_selector", "_ssock", "_csock"):
        obj = getattr(loop, attr, None)
        with contextlib.suppress(Exception):
            if obj is not None:
                out.add(obj.fileno())
    return out


def jostle_loops() -> list[asyncio.AbstractEventLoop]:
    from . import _engine

    engine = _engine._engine
    out: list[asyncio.AbstractEventLoop] = []
    if engine is None:
        return out
    if engine._loop is not None:
        out.append(engine._loop.loop)
    driver = engine._driver
    thread = driver._thread if driver is not None else None
    if thread is not None and thread.loop is not None:
        out.append(thread.loop)
    return out


def _processes() -> list[Any]:
    from . import _engine

    engine = _engine._engine
    if engine is None or engine._procs is None:
        return []
    return list(engine._procs._workers)


def _singletons() -> tuple[set[int], set[int]]:
    """multiprocessing's forkserver and resource tracker, jostle's shared manager."""
    pids: set[int] = set()
    fds: set[int] = set()
    mods = sys.modules
    fs = getattr(mods.get("multiprocessing.forkserver"), "_forkserver", None)
    if fs is not None:
        pid = getattr(fs, "_forkserver_pid", None)
        if pid:
            pids.add(pid)
        fd = getattr(fs, "_forkserver_alive_fd", None)
        if isinstance(fd, int):
            fds.add(fd)
    rt = getattr(mods.get("multiprocessing.resource_tracker"), "_resource_tracker", None)
    if rt is not None:
        if getattr(rt, "_pid", None):
            pids.add(rt._pid)
        if isinstance(getattr(rt, "_fd", None), int):
            fds.add(rt._fd)
    from . import _handles

    manager = _handles._manager
    proc = getattr(manager, "_process", None)
    if proc is not None:
        with contextlib.suppress(Exception):
            pids.add(proc.pid)
            fds.add(proc.sentinel)
    return pids, fds


def jostle_fds() -> set[int]:
    out: set[int] = set()
    for loop in jostle_loops():
        out |= _loop_fds(loop)
    for pw in _processes():
        with contextlib.suppress(Exception):
            out.add(pw._conn.fileno())
        with contextlib.suppress(Exception):
            out.add(pw._selector.fileno())
        with contextlib.suppress(Exception):
            out.add(pw._process.sentinel)
        # multiprocessing's Popen keeps its pipe ends for its finalizer
        args = getattr(getattr(getattr(pw._process, "_popen", None), "finalizer", None),
                       "_args", None) or ()
        for arg in args if isinstance(args, tuple) else ():
            out.update(a for a in (arg if isinstance(arg, tuple) else (arg,))
                       if isinstance(a, int))
        if isinstance(getattr(pw, "_dump_fd", None), int):
            out.add(pw._dump_fd)
    out |= _singletons()[1]
    return out


def _own_thread(t: threading.Thread, executors: set[int]) -> bool:
    target = getattr(t, "_target", None)
    module = getattr(target, "__module__", "") or ""
    return module.startswith("jostle.") or t.ident in executors


def _executor_threads() -> set[int]:
    """Threads of jostle's loops' default executors (``run_in_executor(None,
    ...)`` starts them on first use; they live as long as the loop)."""
    out: set[int] = set()
    for loop in jostle_loops():
        ex = getattr(loop, "_default_executor", None)
        for t in getattr(ex, "_threads", ()) or ():
            if t.ident is not None:
                out.add(t.ident)
    return out



def jostle_coro(coro: object) -> bool:
    code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
    return code is not None and code.co_filename.startswith(_JOSTLE_DIR)


def jostle_pids() -> set[int]:
    """Child processes of jostle's: process workers (a ``spawn`` pool's are
    children), the forkserver, the resource tracker, the shared manager."""
    return _singletons()[0] | {pw.pid for pw in _processes()}


def jostle_thread(t: threading.Thread) -> bool:
    """Whether ``t`` is one of jostle's threads."""
    return _own_thread(t, _executor_threads())
