"""Leaks: what an example left behind that its resource should have disposed of.

After each Hypothesis example jostle compares what is alive in the process
with what was alive before it, and reports what the example created and did
not dispose of, with where each thing was created:

* **threads** still running (``threading.enumerate``);
* **tasks** still pending on jostle's event loop (stress mode: the
  controlled loop cancels what each of its runs leaves behind by design);
* **coroutines** never awaited (Python's own "coroutine ... was never
  awaited" warning, caught while the example runs);
* **processes**: child processes started during the example, still running
  or never waited for;
* **fds**: open file descriptors (``/proc/self/fd``, which also says what
  each one points at);
* **shm**: POSIX shared-memory segments this process created and did not
  unlink (``/dev/shm``).

**Per example, not per execution.**  An example runs its scenario many times
(stress ``repeats``, controlled ``schedules``), thousands of executions a
second; a leak repeats in every execution that leaks, so one pair of
snapshots around the whole example finds it at a fraction of the cost
(``python -m bench._leak_cost`` measures a clean check of every kind;
the ``/dev/shm`` listing is reused while the directory's stat is unchanged,
the descriptors are listed afresh each time; one small stress execution
costs ~250 us).  :func:`jostle.replay`
checks around each run, so a repro shows the leak of that run alone.

**Where it was created.**  While a check is open, the constructors of what
can leak record the frames that called them (``_leak_sites``).  The
failure's origin, which Hypothesis uses to tell bugs apart, never depends
on tracking that may be off: it is the creation site where one is always
recorded, else the code of the thread's target or of the coroutine.

**Not jostle's.**  What belongs to jostle (``_owned``: its threads, loops,
process workers, the ``multiprocessing`` singletons it relies on) and what
was created through jostle's or ``multiprocessing``'s plumbing is never
reported.

**Grace.**  A thread or process that is just finishing, or a task that is
due to finish at the loop's next iteration, is not a leak: before
reporting, jostle gives candidates a short grace (joining, yielding to the
loop, a garbage collection for descriptors held by unreachable objects).
The clean case pays none of it.

After reporting, jostle disposes of what it safely can so later examples
start clean: leaked tasks are cancelled, leaked child processes killed,
leaked segments unlinked.  Threads cannot be killed and descriptors belong
to objects that may still use them; those are left alone.

Prior art: Python's ``ResourceWarning`` (an unclosed file or a child still
running, when its object is freed) and the "never awaited" warning catch
some of these one object at a time, and only once the object is freed;
asyncio's debug mode records coroutine origins with the same
``sys.set_coroutine_origin_tracking_depth``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import _leak_sites as sites_
from ._errors import SpecError, SpecTypeError
from ._leak_sites import DEPTH, Site, Sites, code_site, fd_target, patches, short, tracking_here
from ._owned import jostle_coro, jostle_fds, jostle_pids, jostle_thread, stress_loop

__all__ = ["LEAK_KINDS", "Leak", "LeakCheck", "leak_kinds", "leaks_text"]

LEAK_KINDS: tuple[str, ...] = ("threads", "tasks", "coroutines", "processes", "fds", "shm")

#: Seconds of grace, in total, for candidate leaks to go away by themselves.
GRACE = 0.05

_JOSTLE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB_DIR = os.path.dirname(os.__file__) + os.sep
_HAS_PROC = os.path.isdir("/proc/self/fd")
# Taken at import: while a check is open, these record their callers.
_open = open
_dup = os.dup
_SHM_DIR = "/dev/shm"


def leak_kinds(value: object, *, where: str = "concurrent_test(leaks=...)") -> frozenset[str]:
    """The leak kinds to check, from ``True`` (all), ``False`` (none), a
    collection of kind names, or a string: ``"all"``, ``"none"``, names
    separated by commas, or ``"-fds"`` (all but those named).

    Raises:
        SpecTypeError: not a bool, a string or a collection of strings.
        SpecError: an unknown kind name.
    """
    if value is True or value is None:
        return frozenset(LEAK_KINDS)
    if value is False:
        return frozenset()
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("all", "true", "yes", "on", "1"):
            return frozenset(LEAK_KINDS)
        if text in ("none", "false", "no", "off", "0", ""):
            return frozenset()
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if all(p.startswith("-") for p in parts):
            return frozenset(LEAK_KINDS) - _names([p[1:] for p in parts], value, where)
        return _names(parts, value, where)
    if isinstance(value, Iterable):
        items = list(value)
        if all(isinstance(i, str) for i in items):
            return _names([i.strip().lower() for i in items], value, where)
    raise SpecTypeError(
        f"{where}: expected True, False, a collection of leak kinds or a string such as "
        f"'threads,fds' or '-fds', but got {value!r} (type={type(value).__name__}); "
        f"the kinds are {', '.join(LEAK_KINDS)}")


def leaks_text(kinds: frozenset[str]) -> str:
    """The canonical string for a set of kinds (``all``, ``none``, or names
    in :data:`LEAK_KINDS` order): what options and reports store."""
    if kinds == frozenset(LEAK_KINDS):
        return "all"
    return ",".join(k for k in LEAK_KINDS if k in kinds) or "none"


def _names(parts: list[str], raw: object, where: str) -> frozenset[str]:
    bad = [p for p in parts if p not in LEAK_KINDS]
    if bad:
        raise SpecError(
            f"{where}: unknown leak kind {bad[0]!r} in {raw!r}; choose from "
            f"{', '.join(LEAK_KINDS)} (or True for all, False for none, '-fds' for all but fds)")
    return frozenset(parts)


@dataclass(frozen=True, slots=True)
class Leak:
    """One thing an example left behind.

    Attributes:
        kind: one of :data:`LEAK_KINDS`.
        what: one line naming it (``thread 'poller' (target Poller.run)``).
        created: where it was created, innermost frame last, as
            ``(file, line, function)``; empty when unknown.
        detail: what it is doing or pointing at now.
        origin: the stable ``(file, line)`` that identifies this leak (its
            creation site when always recorded, else the code it runs).
        count: how many such things leaked (grouped by kind, origin, what).
    """

    kind: str
    what: str
    created: Site = ()
    detail: str = ""
    origin: tuple[str, int] | None = None
    count: int = 1


_FIX = {
    "threads": "stop and join it in the resource's teardown (close() or aclose(), or "
               "spec(teardown=...))",
    "tasks": "await or cancel it in an async teardown (aclose() or spec(teardown=...))",
    "coroutines": "await it (or close() it if it is not meant to run)",
    "processes": "wait for it in the teardown (Popen.wait(), Process.join())",
    "fds": "close it in the teardown, or open it in a `with` block",
    "shm": "unlink it in the teardown (SharedMemory.unlink(), or close() the owning "
           "jostle.SharedMemoryHandle)",
}


def describe(leaks: list[Leak]) -> tuple[str, str]:
    """``(summary, detail)`` of a leak finding."""
    by_kind: dict[str, int] = {}
    for leak in leaks:
        by_kind[leak.kind] = by_kind.get(leak.kind, 0) + leak.count
    counts = ", ".join(f"{n} {kind if n > 1 else kind.rstrip('s')}"
                       for kind, n in by_kind.items())
    first = leaks[0]
    more = "" if len(leaks) == 1 else f" (and {len(leaks) - 1} more)"
    summary = f"left behind after the example: {counts}; {first.what}{more}"
    blocks = []
    for leak in leaks:
        lines = [leak.what + (f"  (x{leak.count})" if leak.count > 1 else "")]
        if leak.created:
            lines.append("  created at (most recent call last):")
            lines += [f"    {os.path.relpath(f) if f.startswith(os.getcwd()) else f}:{n} in {fn}"
                      for f, n, fn in leak.created]
        else:
            lines.append("  created at: not recorded (made outside Python code, or before "
                         "origin tracking started)")
        if leak.detail:
            lines += ["  " + line for line in leak.detail.rstrip().splitlines()]
        lines.append(f"  fix: {_FIX[leak.kind]}")
        blocks.append("\n".join(lines))
    blocks.append("jostle checks for leaks after each example; to stop checking a kind, "
                  "pass concurrent_test(..., leaks='-" + first.kind + "') (or set "
                  "JOSTLE_LEAKS=-" + first.kind + "); leaks=False turns the check off")
    return summary, "\n\n".join(blocks)


# -- snapshots -----------------------------------------------------------------------------

def _proc_state(pid: int) -> str | None:
    """The process's state letter (``Z``: a zombie), or ``None`` if gone."""
    try:
        with _open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].split()[0].decode()


def _cmdline(pid: int) -> str:
    try:
        with _open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return "?"


def _lowest_free() -> int:
    """The lowest free descriptor number (the one the next open gets)."""
    try:
        probe = _dup(0)
    except OSError:
        return -1
    os.close(probe)
    return probe


def _fds() -> set[int]:
    """The open descriptors, without the one the listing itself used (the
    lowest free one, which a probe finds first).

    Listed afresh before and after every example (~15 us): a cheaper test of
    "nothing changed", such as the lowest free number staying put, is fooled
    by a process start between examples (pipes opened, some closed again),
    which then reads as the next example's leak.
    """
    probe = _lowest_free()
    try:
        listed = {int(n) for n in os.listdir("/proc/self/fd")}
    except OSError:
        return set()
    listed.discard(probe)
    return listed


# /dev/shm's listing, and the directory's (mtime, size) then: on tmpfs a
# directory's size grows with each entry, and any change touches the mtime,
# so an unchanged stat means an unchanged listing (a stat is ~2 us, a
# listing ~5 us).
_shm_cache: tuple[tuple[int, int], frozenset[str]] = ((-1, -1), frozenset())


def _shm_stamp() -> tuple[int, int]:
    try:
        st = os.stat(_SHM_DIR)
    except OSError:
        return (-1, -1)
    return (st.st_mtime_ns, st.st_size)


def _shm() -> set[str]:
    global _shm_cache
    stamp = _shm_stamp()
    if stamp == _shm_cache[0] and stamp != (-1, -1):
        return set(_shm_cache[1])
    try:
        names = set(os.listdir(_SHM_DIR))
    except OSError:
        return set()
    _shm_cache = (stamp, frozenset(names))
    return names


def _mapped(names: set[str]) -> set[str]:
    try:
        with _open("/proc/self/maps", "rb") as f:
            maps = f.read().decode("utf-8", "replace")
    except OSError:
        return set()
    return {n for n in names if f"{_SHM_DIR}/{n}" in maps}


def _pending_tasks(loop: asyncio.AbstractEventLoop) -> set[asyncio.Task[Any]]:
    if loop.is_closed():
        return set()
    try:
        return {t for t in asyncio.all_tasks(loop) if not t.done()}
    except RuntimeError:
        return set()


@dataclass
class _Snapshot:
    threads: set[threading.Thread] = field(default_factory=set)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    fds: set[int] = field(default_factory=set)
    shm: set[str] = field(default_factory=set)


class LeakCheck:
    """Snapshot what is alive now; on exit (without an exception), say what
    the block left behind in :attr:`leaks`.

    Only one check is open at a time in a process; an inner one does nothing.

    Args:
        kinds: which of :data:`LEAK_KINDS` to check.
    """

    def __init__(self, kinds: Iterable[str]) -> None:
        self.kinds = frozenset(kinds)
        self.leaks: list[Leak] = []
        self._before = _Snapshot()
        self._undo: list[tuple[Any, str, Any]] = []
        self._active = False
        self._origins: list[Callable[[], None]] = []

    def __enter__(self) -> LeakCheck:
        if not self.kinds or sites_.current is not None:
            return self
        self._active = True
        sites_.current = Sites()
        k = self.kinds
        b = self._before
        if "threads" in k:
            b.threads = set(threading.enumerate())
        if "tasks" in k:
            lt = stress_loop()
            if lt is not None:
                b.tasks = _pending_tasks(lt.loop)
        if "fds" in k and _HAS_PROC:
            b.fds = _fds()
        if "shm" in k:
            b.shm = _shm()
        for obj, attr, value in patches():
            self._undo.append((obj, attr, getattr(obj, attr)))
            setattr(obj, attr, value)
        if sites_.track_origins and k & {"tasks", "coroutines"}:
            self._track(sites_.ORIGIN_DEPTH)
        return self

    def _track(self, depth: int) -> None:
        """Coroutine origins on the threads that create the user's coroutines:
        the caller's, and jostle's loop thread (the setting is per thread)."""
        saved = sys.get_coroutine_origin_tracking_depth()
        sys.set_coroutine_origin_tracking_depth(depth)
        self._origins.append(lambda: sys.set_coroutine_origin_tracking_depth(saved))
        lt = stress_loop()
        if lt is not None:
            loop = lt.loop
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(sys.set_coroutine_origin_tracking_depth, depth)

            def reset() -> None:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(sys.set_coroutine_origin_tracking_depth, 0)
            self._origins.append(reset)

    def on_this_thread(self) -> contextlib.AbstractContextManager[None]:
        """Track coroutine origins on the calling thread (the controlled
        driver) for the length of the block, if this check tracks them."""
        if not (self._active and sites_.track_origins and self.kinds & {"tasks", "coroutines"}):
            return contextlib.nullcontext()
        return tracking_here()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._active:
            return
        sites = sites_.current
        try:
            if exc_type is None and sites is not None:
                self.leaks = self._diff(sites)
        finally:
            for obj, attr, value in reversed(self._undo):
                setattr(obj, attr, value)
            self._undo.clear()
            while self._origins:
                self._origins.pop()()
            sites_.current = None
            self._active = False
        if any(leak.kind in ("tasks", "coroutines") for leak in self.leaks):
            sites_.track_origins = True

    # -- the diff --------------------------------------------------------------------------
    def _diff(self, sites: Sites) -> list[Leak]:
        k, b = self.kinds, self._before
        deadline = time.monotonic() + GRACE
        found: list[Leak] = []
        if "coroutines" in k:
            found += [_unawaited(u) for u in sites.coroutines]
        if "threads" in k:
            found += self._threads(b, sites, deadline)
        if "tasks" in k:
            found += self._tasks(b, deadline)
        if "processes" in k and _HAS_PROC:
            found += self._processes(b, sites, deadline)
        if "fds" in k and _HAS_PROC:
            found += self._fds(b, sites)
        if "shm" in k:
            found += self._shm(b, sites)
        return _grouped(found)

    def _threads(self, b: _Snapshot, sites: Sites, deadline: float) -> list[Leak]:
        new = [t for t in threading.enumerate()
               if t not in b.threads and t.is_alive()
               and not isinstance(t, threading._DummyThread)
               and not jostle_thread(t)]
        for t in new:
            t.join(max(deadline - time.monotonic(), 0.0))
        out = []
        frames = sys._current_frames()
        for t in new:
            if not t.is_alive():
                continue
            site, owner = sites.threads.get(t, ((), ""))
            if owner == "jostle":
                continue
            target = getattr(t, "_target", None)
            tname = getattr(target, "__qualname__", None) or type(t).__qualname__ + ".run"
            where = code_site(target) or code_site(type(t).run)
            now = _now_at(frames.get(t.ident) if t.ident is not None else None)
            detail = f"target {tname} defined at {short(where)}"
            if now:
                detail += f"\nnow at {now}"
            origin = (site[-1][0], site[-1][1]) if site else where
            daemon = ", daemon" if t.daemon else ""
            out.append(Leak("threads", f"thread {t.name!r} ({tname}{daemon}) still running",
                            site, detail, origin))
        return out

    def _tasks(self, b: _Snapshot, deadline: float) -> list[Leak]:
        lt = stress_loop()
        if lt is None:
            return []
        loop = lt.loop

        def candidates() -> list[asyncio.Task[Any]]:
            return [t for t in _pending_tasks(loop) - b.tasks
                    if not jostle_coro(t.get_coro())]

        new = candidates()
        if new:
            with contextlib.suppress(Exception):
                lt.call(_yield(3), max(deadline - time.monotonic(), 0.01))
            new = candidates()
        out = []
        for t in new:
            coro: Any = t.get_coro()
            code = getattr(coro, "cr_code", None)
            where = (code.co_filename, code.co_firstlineno) if code is not None else None
            origin_frames = getattr(coro, "cr_origin", None) or ()
            created: Site = tuple((f, n, fn) for f, n, fn in reversed(origin_frames)
                                  if not f.startswith((_JOSTLE_DIR, _STDLIB_DIR)))[-DEPTH:]
            from ._stacks import task_stack

            _, waiting = task_stack(t)
            name = getattr(coro, "__qualname__", "?")
            detail = f"coroutine {name} defined at {short(where)}"
            if waiting:
                detail += f"\nwaiting at {short(waiting)}"
            out.append(Leak("tasks", f"task {t.get_name()!r} ({name}) still pending", created,
                            detail, where))
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(t.cancel)
        return out

    def _processes(self, b: _Snapshot, sites: Sites, deadline: float) -> list[Leak]:
        own = jostle_pids()
        new = [p for p, (_, owner) in sites.pids.items() if owner != "jostle" and p not in own]
        alive = [p for p in new if _proc_state(p) not in (None, "Z")]
        if alive:
            _wait_exit(alive, deadline)
        out = []
        for pid in new:
            state = _proc_state(pid)
            if state is None:
                continue
            site = sites.pids[pid][0]
            how = "exited but was never waited for (a zombie)" if state == "Z" else "still running"
            cmd = _cmdline(pid) if state != "Z" else ""
            out.append(Leak("processes", f"child process {pid} {how}", site,
                            f"command line: {cmd}" if cmd else "",
                            (site[-1][0], site[-1][1]) if site else None))
            if state != "Z":
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        return out

    def _fds(self, b: _Snapshot, sites: Sites) -> list[Leak]:
        def candidates() -> list[int]:
            fresh = _fds() - b.fds
            if not fresh:
                return []
            out = []
            for fd in sorted(fresh - jostle_fds()):
                target = fd_target(fd)
                if not target:
                    continue  # closed meanwhile (the listing's own fd)
                rec = sites.fds.get(fd)
                if rec is not None and rec[2] == target and rec[1]:
                    continue  # jostle's, or multiprocessing's plumbing
                out.append(fd)
            return out

        new = candidates()
        if new:
            gc.collect()  # files held only by unreachable objects close now
            new = candidates()
        out = []
        for fd in new:
            target = fd_target(fd)
            rec = sites.fds.get(fd)
            site = rec[0] if rec is not None and rec[2] == target else ()
            out.append(Leak("fds", f"file descriptor {fd} still open ({_kind_of(target)})", site,
                            f"points at {target}",
                            (site[-1][0], site[-1][1]) if site else None))
        return out

    def _shm(self, b: _Snapshot, sites: Sites) -> list[Leak]:
        new = _shm() - b.shm
        if not new:
            return []
        ours = {n for n in new if n in sites.shm} | _mapped(new)
        out = []
        for name in sorted(ours):
            site = sites.shm.get(name, ())
            try:
                size = os.stat(os.path.join(_SHM_DIR, name)).st_size
            except OSError:
                continue
            out.append(Leak("shm", f"shared-memory segment {name!r} ({size} bytes) never "
                                   "unlinked", site, f"{_SHM_DIR}/{name}",
                            (site[-1][0], site[-1][1]) if site else None))
            _unlink_shm(name)
        return out


async def _yield(times: int) -> None:
    for _ in range(times):
        await asyncio.sleep(0)


def _wait_exit(pids: list[int], deadline: float) -> None:
    """Wait until each process exits or the deadline passes (pidfds where
    the system has them: no polling)."""
    import select

    pidfd_open = getattr(os, "pidfd_open", None)
    for pid in pids:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if pidfd_open is None:
            return
        try:
            fd = pidfd_open(pid)
        except OSError:
            continue
        try:
            select.select([fd], [], [], left)
        finally:
            os.close(fd)


def _now_at(frame: Any) -> str:
    from ._stacks import _is_user_file

    while frame is not None:
        if _is_user_file(frame.f_code.co_filename):
            return f"{short((frame.f_code.co_filename, frame.f_lineno))} in {frame.f_code.co_name}"
        frame = frame.f_back
    return ""


def _kind_of(target: str) -> str:
    if target.startswith("socket:"):
        return "a socket"
    if target.startswith("pipe:"):
        return "a pipe"
    if target.startswith("anon_inode:"):
        return target.split(":", 1)[1].strip("[]") or "an anonymous inode"
    if target.startswith(_SHM_DIR + "/"):
        return "shared memory"
    return "a file"


def _unlink_shm(name: str) -> None:
    try:
        os.unlink(os.path.join(_SHM_DIR, name))
    except OSError:
        return
    with contextlib.suppress(Exception):
        from multiprocessing import resource_tracker

        resource_tracker.unregister("/" + name, "shared_memory")


def _unawaited(u: sites_.Unawaited) -> Leak:
    detail = f"coroutine function defined at {short(u.where)}"
    if u.dropped:
        detail += f"\ndropped (garbage collected) at {short(u.dropped[-1][:2])}"
    return Leak("coroutines", f"coroutine {u.name!r} was never awaited", u.created, detail,
                u.where)


def _grouped(leaks: list[Leak]) -> list[Leak]:
    """Identical leaks (kind, origin, what without numbers) as one, counted."""
    out: dict[tuple[Any, ...], Leak] = {}
    for leak in leaks:
        key = (leak.kind, leak.origin, leak.created, _shape(leak.what))
        seen = out.get(key)
        out[key] = leak if seen is None else Leak(
            seen.kind, seen.what, seen.created, seen.detail, seen.origin, seen.count + 1)
    order = {k: i for i, k in enumerate(LEAK_KINDS)}
    return sorted(out.values(), key=lambda x: (order[x.kind], str(x.origin), x.what))


def _shape(text: str) -> str:
    return "".join("#" if c.isdigit() else c for c in text)
