"""Helpers shared by the case modules.  Nothing here is part of any bug.

Based on bugzoo's ``cases/_support.py`` (shared/bugzoo), trimmed to what the
SCTBench ports use:

* ``Op``           -- the operation descriptor every case lists in ``OPERATIONS``.
* ``CANCELLED``    -- what an async op returns when its own task was cancelled
                      (the format's marker; jostle and the naive tool read it
                      from this module).  No port here cancels itself, so
                      bugzoo's ``cancel_after`` is left out.
* ``Interleaving`` -- a deterministic line-level scheduler for ``self_check()``:
                      real threads run one at a time and are switched at chosen
                      source lines.
* ``run_async``    -- ``asyncio.run`` with an overall timeout, for asyncio
                      self-checks.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import linecache
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

CANCELLED = "<cancelled>"


@dataclass(frozen=True)
class Op:
    """One operation of a case: ``fn(resource, *args)``.

    ``args`` holds one tuple of candidate values per positional argument (the
    argument's whole domain, kept small on purpose).  ``where`` is only set in
    "mixed" cases.  ``observer`` marks read-only operations a harness may call
    at quiescence to observe the final state.
    """

    fn: Callable[..., Any]
    args: tuple[tuple[Any, ...], ...] = ()
    doc: str = ""
    where: str | None = None
    observer: bool = False

    @property
    def name(self) -> str:
        """The operation's name: its function's name, as ``Model`` spells it."""
        return self.fn.__name__

    @property
    def is_async(self) -> bool:
        """Whether the operation is a coroutine function."""
        return inspect.iscoroutinefunction(self.fn)

    def arg_combos(self) -> list[tuple[Any, ...]]:
        """Every combination of candidate arguments."""
        return list(itertools.product(*self.args))


# --------------------------------------------------------------------------
# Deterministic line-level scheduler (used only by self_check functions)
# --------------------------------------------------------------------------

Marker = str | tuple[str, int] | None


class Outcome:
    """What the threads of one ``Interleaving.run`` did."""

    def __init__(self, results: dict[str, Any], errors: dict[str, BaseException],
                 hung: list[str]) -> None:
        self.results, self.errors, self.hung = results, errors, hung

    def __repr__(self) -> str:
        errs = {k: f"{type(e).__name__}: {e}" for k, e in self.errors.items()}
        return f"Outcome(results={self.results}, errors={errs}, hung={self.hung})"


class _State:
    def __init__(self, name: str) -> None:
        self.name = name
        self.status = "running"          # running | parked | done
        self.why: str | None = None      # inactive | marker
        self.line = ""
        self.last = time.monotonic()


class Interleaving:
    """Run named threads one at a time, switching at source-line markers.

    ``run(threads, schedule)`` starts every thread of ``threads`` (name ->
    callable).  A thread only executes traced lines (lines of ``files``, by
    default the calling case module) while it is the *active* thread.  Each
    schedule step ``(name, marker)`` makes ``name`` active until it is about
    to execute a line containing ``marker`` (``(text, n)``: the n-th such line
    of this step), finishes, or makes no traced progress for
    ``blocked_after`` seconds (blocked on a lock, a queue, I/O...).  After the
    last step every thread runs freely; threads still alive after
    ``join_timeout`` are reported as hung (they are daemons and are left
    behind).
    """

    def __init__(self, *files: str, blocked_after: float = 0.2,
                 arrive_timeout: float = 3.0) -> None:
        if not files:
            files = (sys._getframe(1).f_code.co_filename,)
        self._files = {os.path.realpath(f) for f in files}
        self._fcache: dict[str, bool] = {}
        self._blocked_after = blocked_after
        self._arrive_timeout = arrive_timeout
        self._cv = threading.Condition(threading.Lock())
        self._states: dict[str, _State] = {}
        self._managed: frozenset[str] = frozenset()
        self._active: str | None = None
        self._marker: tuple[str, int] | None = None
        self._hits = 0
        self._free = True
        self._pid = os.getpid()

    # -- tracing -----------------------------------------------------------
    def _traced(self, filename: str) -> bool:
        hit = self._fcache.get(filename)
        if hit is None:
            hit = self._fcache[filename] = os.path.realpath(filename) in self._files
        return hit

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        if self._free or os.getpid() != self._pid:
            return None
        if threading.current_thread().name not in self._managed:
            return None
        if not self._traced(frame.f_code.co_filename):
            return None
        return self._local

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line" and not self._free and os.getpid() == self._pid:
            self._on_line(threading.current_thread().name, frame)
        return self._local

    def _match(self, line: str) -> bool:
        if self._marker is None:
            return False
        text, nth = self._marker
        if text in line:
            self._hits += 1
            return self._hits >= nth
        return False

    def _on_line(self, name: str, frame: FrameType) -> None:
        line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
        with self._cv:
            st = self._states.get(name)
            if st is None:
                st = self._states[name] = _State(name)
            st.line, st.last = line, time.monotonic()
            if self._free:
                return
            if self._active == name:
                if self._match(line):
                    self._park(st, "marker")
                return
            self._park(st, "inactive")

    def _park(self, st: _State, why: str) -> None:
        st.status, st.why = "parked", why
        if why == "marker":
            self._active = None
        self._cv.notify_all()
        while not self._free:
            if self._active == st.name:
                if st.why == "inactive" and self._match(st.line):
                    st.why, self._active = "marker", None
                    self._cv.notify_all()
                    continue
                break
            self._cv.wait()
        st.status, st.why, st.last = "running", None, time.monotonic()

    # -- control -----------------------------------------------------------
    def _step(self, name: str, marker: Marker) -> None:
        if isinstance(marker, str):
            marker = (marker, 1)
        with self._cv:
            deadline = time.monotonic() + self._arrive_timeout
            while name not in self._states:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"thread {name!r} never reached traced code")
                self._cv.wait(left)
            st = self._states[name]
            if st.status == "done":
                return
            self._active, self._marker, self._hits = name, marker, 0
            start = time.monotonic()
            self._cv.notify_all()
            while st.status != "done" and self._active == name:
                idle = time.monotonic() - max(st.last, start)
                if st.status == "running" and idle > self._blocked_after:
                    break          # blocked outside traced code
                self._cv.wait(0.01)
            self._active, self._marker = None, None

    def run(self, threads: dict[str, Callable[[], Any]],
            schedule: Sequence[tuple[str, Marker]],
            join_timeout: float = 2.0) -> Outcome:
        """Run ``threads`` under ``schedule``; see the class docstring."""
        self._managed = frozenset(threads) | frozenset(n for n, _ in schedule)
        self._states, self._free = {}, False
        results: dict[str, Any] = {}
        errors: dict[str, BaseException] = {}

        def body(name: str, fn: Callable[[], Any]) -> None:
            sys.settrace(self._global)
            try:
                results[name] = fn()
            except BaseException as exc:     # reported, not swallowed
                errors[name] = exc
            finally:
                sys.settrace(None)
                with self._cv:
                    self._states.setdefault(name, _State(name)).status = "done"
                    self._cv.notify_all()

        handles = []
        threading.settrace(self._global)
        try:
            for name, fn in threads.items():
                t = threading.Thread(target=body, args=(name, fn), name=name,
                                     daemon=True)
                handles.append(t)
                t.start()
            for name, marker in schedule:
                self._step(name, marker)
        finally:
            threading.settrace(None)     # type: ignore[arg-type]
            with self._cv:
                self._free = True
                self._cv.notify_all()
        deadline = time.monotonic() + join_timeout
        for t in handles:
            t.join(max(0.0, deadline - time.monotonic()))
        return Outcome(results, errors, [t.name for t in handles if t.is_alive()])


def run_async(coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
    """asyncio.run with an overall timeout (self-checks must never hang)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))
