"""The small resources ``python -m bench throughput`` runs, one spec per worker kind.

Each is deliberately cheap, so the numbers measure jostle's cost per
execution, not the resource's:

* ``threads_2x5``: a counter guarded by a ``threading.Lock``, 2 thread
  workers of 5 ``incr`` each.
* ``asyncio_3x5``: a counter whose ``incr`` awaits ``asyncio.sleep(0)``
  between its read and its write (guarded by an ``asyncio.Lock``), 3 task
  workers of 5 each.
* ``processes_2x5``: a counter in shared memory, locked with ``lockf`` on a
  file each side opens once, shared with process workers through a handle
  (``__jostle_handle__``), 2 process workers of 5 each.  (A counter kept in
  a file opened, locked and rewritten by every ``incr`` costs about 100 us
  of system calls an operation: the resource's cost, not jostle's.)

Operations and handles live at module level so they pickle by reference into
process workers.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import tempfile
import threading

import jostle
from jostle._history import WorkerKind

__all__ = ["OPS_PER_WORKER", "WORKLOADS", "scenario", "workload"]

#: Operations per worker in every workload.
OPS_PER_WORKER = 5

#: Workload name -> (worker kind, workers).
WORKLOADS: dict[str, tuple[WorkerKind, int]] = {
    "threads_2x5": ("thread", 2),
    "asyncio_3x5": ("task", 3),
    "processes_2x5": ("process", 2),
}


class LockedCounter:
    """A counter whose ``incr`` holds a ``threading.Lock``."""

    def __init__(self) -> None:
        self.n = 0
        self._lock = threading.Lock()

    def incr(self) -> int:
        """Add one; return the new value."""
        with self._lock:
            self.n += 1
            return self.n


class AsyncCounter:
    """A counter whose ``incr`` awaits between its read and its write."""

    def __init__(self) -> None:
        self.n = 0
        self._lock: asyncio.Lock | None = None

    async def incr(self) -> int:
        """Add one across an ``await``; return the new value."""
        if self._lock is None:  # made lazily: it must belong to the running loop
            self._lock = asyncio.Lock()
        async with self._lock:
            value = self.n + 1
            await asyncio.sleep(0)
            self.n = value
            return value


class FileCounter:
    """A counter in a file, locked with ``flock``; process workers attach to it."""

    def __init__(self, path: str | None = None) -> None:
        self.owner = path is None
        if path is None:
            fd, path = tempfile.mkstemp(prefix="jostle-bench-", suffix=".txt")
            os.write(fd, b"0")
            os.close(fd)
        self.path = path

    def __jostle_handle__(self) -> FileCounterHandle:
        return FileCounterHandle(self.path)

    def incr(self) -> int:
        """Add one under an exclusive ``flock``; return the new value."""
        with open(self.path, "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            value = int(f.read() or 0) + 1
            f.seek(0)
            f.write(str(value))
            f.truncate()
        return value

    def close(self) -> None:
        """Remove the file if this object created it."""
        if self.owner:
            os.unlink(self.path)


class FileCounterHandle:
    """What a process worker receives: the file's path."""

    def __init__(self, path: str) -> None:
        self.path = path

    def attach(self) -> FileCounter:
        """The counter, opened in the worker."""
        return FileCounter(self.path)


class ShmCounter:
    """A counter in shared memory, locked with ``lockf`` on a lock file that
    each process opens once; process workers attach to it."""

    def __init__(self, shm: jostle.SharedMemoryHandle | None = None,
                 lock_path: str | None = None) -> None:
        self.owner = shm is None
        self.shm = shm if shm is not None else jostle.SharedMemoryHandle(8)
        if lock_path is None:
            fd, lock_path = tempfile.mkstemp(prefix="jostle-bench-", suffix=".lock")
            os.close(fd)
        self.lock_path = lock_path
        self._fd = os.open(lock_path, os.O_RDWR)

    def __jostle_handle__(self) -> ShmCounterHandle:
        return ShmCounterHandle(self.shm, self.lock_path)

    def incr(self) -> int:
        """Add one under an exclusive ``lockf``; return the new value."""
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            buf = self.shm.buf
            value = int.from_bytes(buf[:8], "little") + 1
            buf[:8] = value.to_bytes(8, "little")
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)
        return value

    def close(self) -> None:
        """Close this side; the creator also removes the segment and the file."""
        os.close(self._fd)
        self.shm.close()
        if self.owner:
            os.unlink(self.lock_path)


class ShmCounterHandle:
    """What a process worker receives: the segment (by name) and the lock file."""

    def __init__(self, shm: jostle.SharedMemoryHandle, lock_path: str) -> None:
        self.shm = shm
        self.lock_path = lock_path

    def attach(self) -> ShmCounter:
        """The counter, attached in the worker."""
        return ShmCounter(self.shm, self.lock_path)

    def detach(self, counter: ShmCounter) -> None:
        """Close the worker's side after the job."""
        counter.close()


class CounterModel:
    """The sequential model of every counter here."""

    def __init__(self) -> None:
        self.n = 0

    def incr(self) -> int:
        """Add one; return the new value."""
        self.n += 1
        return self.n


def incr(counter: LockedCounter | FileCounter | ShmCounter) -> int:
    """The ``incr`` operation for threads and processes."""
    return counter.incr()


async def incr_async(counter: AsyncCounter) -> int:
    """The ``incr`` operation for tasks."""
    return await counter.incr()


def _close(counter: FileCounter | ShmCounter) -> None:
    counter.close()


def workload(name: str) -> jostle.Spec:
    """The spec of workload ``name`` (a key of :data:`WORKLOADS`)."""
    kind, _ = WORKLOADS[name]
    if kind == "thread":
        return jostle.spec(LockedCounter, jostle.operation(incr), model=CounterModel,
                           name="locked_counter")
    if kind == "task":
        return jostle.spec(AsyncCounter, jostle.operation(incr_async, name="incr"),
                           model=CounterModel, name="async_counter")
    return jostle.spec(ShmCounter, jostle.operation(incr, kinds=("process",)),
                       model=CounterModel, name="shm_counter", teardown=_close)


def scenario(name: str) -> jostle.Scenario:
    """The fixed scenario of workload ``name``: its workers, each with 5 ``incr``."""
    kind, workers = WORKLOADS[name]
    steps = tuple(jostle.Step("incr") for _ in range(OPS_PER_WORKER))
    return jostle.Scenario(workers=tuple(jostle.WorkerPlan(kind, steps) for _ in range(workers)))
