"""A pool of persistent threads that run thread workers.

Starting and joining a thread costs 40-77 us on this kind of machine (field
notes), more than a whole small execution, so threads are started once and
reused.  Hand-offs use raw ``_thread`` locks, not ``threading`` primitives:
controlled mode replaces ``threading``'s blocking primitives with cooperative
ones, and the pool's own plumbing must not be caught by that.

A thread that does not finish its job in time (a deadlock in the user's
resource) cannot be killed in Python.  The pool *abandons* it: it is a
daemon, it is never handed out again, and a fresh thread takes its place.
"""

from __future__ import annotations

import _thread
import threading
from collections.abc import Callable

# Captured at import: controlled runs patch _thread.allocate_lock.
_allocate_lock = _thread.allocate_lock

__all__ = ["PoolThread", "ThreadPool", "in_worker", "mark_worker"]

_local = threading.local()


def mark_worker() -> None:
    """Mark the calling thread as one of jostle's workers (pool thread, loop
    thread, a process worker's main thread)."""
    _local.worker = True


def in_worker() -> bool:
    """Whether the calling thread runs user code on jostle's behalf."""
    return getattr(_local, "worker", False)


class PoolThread:
    """One persistent worker thread; runs one job at a time."""

    def __init__(self, number: int) -> None:
        self._go = _allocate_lock()
        self._go.acquire()
        self._done = _allocate_lock()
        self._done.acquire()
        self._job: Callable[[], None] | None = None
        self._stop = False
        self.abandoned = False
        self.busy = False
        #: An exception that escaped a job (a bug in jostle, not in user code:
        #: jobs catch the user's exceptions themselves).
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._main, name=f"jostle-worker-{number}", daemon=True
        )
        self.thread.start()

    @property
    def ident(self) -> int | None:
        """The OS-level thread identifier (for stack dumps)."""
        return self.thread.ident

    def _main(self) -> None:
        mark_worker()
        while True:
            self._go.acquire()
            if self._stop:
                return
            job, self._job = self._job, None
            try:
                if job is not None:
                    job()
            except BaseException as exc:  # kept for the engine; the thread lives on
                self.error = exc
            finally:
                self._done.release()

    def submit(self, job: Callable[[], None]) -> None:
        """Start ``job`` on this thread; it must catch its own exceptions."""
        self.busy = True
        self._job = job
        self._go.release()

    def wait(self, timeout: float | None) -> bool:
        """Wait until the job finished; ``False`` if ``timeout`` passed first."""
        done = self._done.acquire(timeout=-1 if timeout is None else max(timeout, 0.0))
        if done:
            self.busy = False
        return done

    def stop(self) -> None:
        """Ask an idle thread to exit."""
        self._stop = True
        self._go.release()


class ThreadPool:
    """Hands out idle persistent threads and replaces abandoned ones."""

    def __init__(self) -> None:
        self._idle: list[PoolThread] = []
        self._count = 0
        self._lock = _allocate_lock()
        self.abandoned = 0

    def acquire(self, n: int) -> list[PoolThread]:
        """``n`` idle threads, starting new ones only when needed."""
        with self._lock:
            out = self._idle[:n]
            del self._idle[:n]
            numbers = range(self._count + 1, self._count + 1 + n - len(out))
            self._count += len(numbers)
        out.extend(PoolThread(i) for i in numbers)  # started outside the lock
        return out

    def release(self, threads: list[PoolThread]) -> None:
        """Give finished threads back (abandoned ones are dropped)."""
        with self._lock:
            self._idle.extend(t for t in threads if not t.abandoned and not t.busy)

    def abandon(self, thread: PoolThread) -> None:
        """Never reuse ``thread`` (it is stuck in user code)."""
        thread.abandoned = True
        self.abandoned += 1

    def close(self) -> None:
        """Stop every idle thread (stuck ones are daemons and die with the process)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for t in idle:
            t.stop()
        for t in idle:
            t.thread.join(timeout=1.0)
