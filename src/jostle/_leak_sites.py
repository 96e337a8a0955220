"""Where the things a leak check reports were created.

While a leak check is open (``_leaks``), the constructors of what can leak
record the frames that called them: ``Thread.__init__``,
``subprocess.Popen``, ``multiprocessing``'s ``Process.start``, ``open``,
``os.open``, ``os.pipe``, ``os.dup``, ``socket.socket`` and
``SharedMemory``, each a few microseconds on paths that are rare in a hot
loop.  A never-awaited coroutine is caught where Python would warn about it
(``warnings._warn_unawaited_coroutine``), and reported instead of warned.

A creation whose innermost frame outside the standard library is jostle's
is jostle's own; a descriptor opened by ``multiprocessing``'s machinery (a
manager proxy's per-thread connection, a process's sentinel pipe, the
forkserver, the resource tracker) is its plumbing, closed with the objects
it serves.  Neither is ever the user's leak.

Child processes are found from these records alone (``Popen``,
``Process.start``, ``os.fork``, ``os.posix_spawn``), so the clean case
reads nothing from ``/proc``; a child started from C code is not seen.

Coroutine origins (``sys.set_coroutine_origin_tracking_depth``, per
thread) cost about a microsecond per coroutine, which an await-heavy
execution pays many times over, so they are switched on only once a task or
coroutine leak has been seen in the process (:data:`track_origins`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEPTH", "ORIGIN_DEPTH", "Site", "Sites", "Unawaited", "code_site", "current",
           "fd_target", "patches", "record_fd", "short", "site", "track_origins", "tracking_here"]

#: Frames kept per creation site.
DEPTH = 4
#: Frames of coroutine origin tracked, once tracking is on.
ORIGIN_DEPTH = 8

_JOSTLE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB_DIR = os.path.dirname(os.__file__) + os.sep
_MP_DIR = os.path.dirname(os.path.abspath(multiprocessing.__file__ or "")) + os.sep
_MP_PLUMBING = frozenset(_MP_DIR + f for f in (
    "managers.py", "forkserver.py", "resource_tracker.py", "popen_fork.py",
    "popen_forkserver.py", "popen_spawn_posix.py", "util.py", "spawn.py"))

#: ``(file, line, function)`` frames, innermost last.
Site = tuple[tuple[str, int, str], ...]


def site(skip: int = 2) -> tuple[Site, str]:
    """The creating frames outside jostle and the standard library (innermost
    last, at most ``DEPTH``), and who created it: ``""`` (the user),
    ``"jostle"`` (the innermost frame outside the standard library is
    jostle's) or ``"multiprocessing"`` (its machinery, called by the user)."""
    f: Any = sys._getframe(skip)
    frames: list[tuple[str, int, str]] = []
    owner = ""
    while f is not None and len(frames) < DEPTH:
        name = f.f_code.co_filename
        if name.startswith(_JOSTLE_DIR):
            if not frames:
                owner = "jostle"
            break
        if name in _MP_PLUMBING and not frames and not owner:
            owner = "multiprocessing"
        if not (name.startswith((_STDLIB_DIR, "<")) and "-packages" not in name):
            frames.append((name, f.f_lineno, f.f_code.co_name))
        f = f.f_back
    frames.reverse()
    return tuple(frames), owner


def code_site(fn: object) -> tuple[str, int] | None:
    """``(file, first line)`` of a function's code, if it has one."""
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is None:
        return None
    return (code.co_filename, code.co_firstlineno)


@dataclass
class Sites:
    """What the recorders saw while a check was open."""

    threads: weakref.WeakKeyDictionary[threading.Thread, tuple[Site, str]] = field(
        default_factory=weakref.WeakKeyDictionary)
    pids: dict[int, tuple[Site, str]] = field(default_factory=dict)
    fds: dict[int, tuple[Site, str, str]] = field(default_factory=dict)
    shm: dict[str, Site] = field(default_factory=dict)
    coroutines: list[Unawaited] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Unawaited:
    """A coroutine Python was about to warn about: never awaited."""

    name: str
    created: Site
    dropped: Site
    where: tuple[str, int] | None


#: The recorders' sink while a check is open (``None``: record nothing).
current: Sites | None = None
#: Set once a task or coroutine leak was seen in this process: from then on
#: checks track coroutine origins (see the module docstring).
track_origins = False


def fd_target(fd: int) -> str:
    """What ``fd`` points at (a path, ``socket:[inode]``...), or ``""`` if closed."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""
    return target.removesuffix(" (deleted)")


def record_fd(fd: object) -> None:
    """Remember who created descriptor ``fd`` and what it pointed at then."""
    s = current
    if s is None or not isinstance(fd, int) or fd < 0:
        return
    frames, owner = site(3)
    s.fds[fd] = (frames, owner, fd_target(fd))


_patches: list[tuple[Any, str, Any]] | None = None


def patches() -> list[tuple[Any, str, Any]]:
    """``(object, attribute, replacement)`` for every recorder (made once)."""
    global _patches
    if _patches is None:
        _patches = _make_patches()
    return _patches


def _make_patches() -> list[tuple[Any, str, Any]]:
    import io

    out: list[tuple[Any, str, Any]] = []
    real_init = threading.Thread.__init__

    def thread_init(self: threading.Thread, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        s = current
        if s is not None:
            s.threads[self] = site()
    out.append((threading.Thread, "__init__", thread_init))

    real_popen = subprocess.Popen.__init__

    def popen_init(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        real_popen(self, *args, **kwargs)
        s = current
        if s is not None and getattr(self, "pid", None):
            s.pids[self.pid] = site()
    out.append((subprocess.Popen, "__init__", popen_init))

    from multiprocessing import process as mp_process

    real_start = mp_process.BaseProcess.start

    def process_start(self: Any) -> None:
        real_start(self)
        s = current
        if s is not None and self.pid:
            s.pids[self.pid] = site()
    out.append((mp_process.BaseProcess, "start", process_start))

    real_fork = getattr(os, "fork", None)
    if real_fork is not None:
        def fork() -> int:
            pid: int = real_fork()
            s = current
            if pid and s is not None:
                s.pids[pid] = site()
            return pid
        out.append((os, "fork", fork))
    real_spawn = getattr(os, "posix_spawn", None)
    if real_spawn is not None:
        def posix_spawn(*args: Any, **kwargs: Any) -> int:
            pid: int = real_spawn(*args, **kwargs)
            s = current
            if s is not None:
                s.pids[pid] = site()
            return pid
        out.append((os, "posix_spawn", posix_spawn))

    real_open = io.open

    def open_(*args: Any, **kwargs: Any) -> Any:
        f = real_open(*args, **kwargs)
        if current is not None:
            with contextlib.suppress(Exception):
                record_fd(f.fileno())
        return f
    out.append((io, "open", open_))
    import builtins
    out.append((builtins, "open", open_))

    real_os_open = os.open

    def os_open(*args: Any, **kwargs: Any) -> int:
        fd = real_os_open(*args, **kwargs)
        record_fd(fd)
        return fd
    out.append((os, "open", os_open))

    real_pipe, real_dup = os.pipe, os.dup

    def os_pipe() -> tuple[int, int]:
        r, w = real_pipe()
        record_fd(r)
        record_fd(w)
        return r, w
    out.append((os, "pipe", os_pipe))

    def os_dup(fd: int) -> int:
        new = real_dup(fd)
        record_fd(new)
        return new
    out.append((os, "dup", os_dup))

    real_socket = socket.socket.__init__

    def socket_init(self: socket.socket, *args: Any, **kwargs: Any) -> None:
        real_socket(self, *args, **kwargs)
        if current is not None:
            with contextlib.suppress(Exception):
                record_fd(self.fileno())
    out.append((socket.socket, "__init__", socket_init))

    from multiprocessing import shared_memory

    real_shm = shared_memory.SharedMemory.__init__

    def shm_init(self: Any, name: str | None = None, create: bool = False, size: int = 0,
                 **kwargs: Any) -> None:
        real_shm(self, name, create, size, **kwargs)
        s = current
        if s is not None and create:
            s.shm[self.name.lstrip("/")] = site()[0]
    out.append((shared_memory.SharedMemory, "__init__", shm_init))

    real_warn = getattr(warnings, "_warn_unawaited_coroutine", None)
    if real_warn is not None:
        def unawaited(coro: Any) -> None:
            s = current
            if s is None:
                real_warn(coro)
                return
            s.coroutines.append(_unawaited(coro))
        out.append((warnings, "_warn_unawaited_coroutine", unawaited))
    return out


def _unawaited(coro: Any) -> Unawaited:
    code = getattr(coro, "cr_code", None)
    name = str(getattr(coro, "__qualname__", None) or getattr(code, "co_name", "?"))
    origin = getattr(coro, "cr_origin", None) or ()
    created: Site = tuple((f, n, fn) for f, n, fn in reversed(origin)
                          if not f.startswith(_JOSTLE_DIR))[-DEPTH:]
    dropped, _ = site(3)
    where = (code.co_filename, code.co_firstlineno) if code is not None else None
    return Unawaited(name, created, dropped, where)


def short(where: tuple[Any, ...] | None) -> str:
    """``path:line``, the path relative to the current folder when inside it."""
    if where is None:
        return "?"
    path = str(where[0])
    with contextlib.suppress(ValueError):
        rel = os.path.relpath(path)
        if not rel.startswith(".."):
            path = rel
    return f"{path}:{where[1]}"


@contextlib.contextmanager
def tracking_here(depth: int = ORIGIN_DEPTH) -> Iterator[None]:
    """Track coroutine origins on the calling thread for the block."""
    saved = sys.get_coroutine_origin_tracking_depth()
    sys.set_coroutine_origin_tracking_depth(depth)
    try:
        yield
    finally:
        sys.set_coroutine_origin_tracking_depth(saved)
