"""Wait instrumentation: user-made primitives are timed where they block.

Blocking is produced without waiting on the clock: a primitive that cannot
be taken is asked for with a zero timeout, which takes the blocking path and
returns at once; asyncio waits are ordered by the loop itself.
"""

from __future__ import annotations

import asyncio
import inspect
import queue
import threading

import pytest

from jostle import _profile_waits as waits
from jostle._profile_waits import instrumented, worker_kind


def _line(offset: int = 0) -> str:
    """``file:line`` of the caller's line plus ``offset``, as the recorder prints it."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return f"tests/test_profile_waits.py:{frame.f_back.f_lineno + offset}"


def test_user_made_primitives_are_replaced_and_stdlib_ones_are_not() -> None:
    """A queue made here is timed; the lock inside it (made by queue.py) is not."""
    with instrumented():
        q = queue.Queue()
        lock = threading.Lock()
        assert type(q).__name__ == "TimedQueue"
        assert isinstance(lock, waits._TimedLock)
        assert not isinstance(q.mutex, waits._TimedLock)
        assert type(q.not_empty) is waits._RealCondition
    assert threading.Lock is waits._RealLock and queue.Queue is not type(q)
    assert not isinstance(threading.Lock(), waits._TimedLock)


def test_a_blocked_acquire_is_recorded_with_where_it_waited_and_was_made() -> None:
    """The wait site names the waiting line and the creating line."""
    with instrumented() as totals:
        lock = threading.Lock(); made = _line()  # noqa: E702
        with lock:
            assert not lock.acquire(True, 0); waited = _line()  # noqa: E702
        assert lock.acquire(False)
        lock.release()
        found, acquired = totals()
    assert list(found) == [("threading.Lock", made, waited, "other")]
    assert found[("threading.Lock", made, waited, "other")][0] == 1
    assert acquired == {("threading.Lock", made): 2}


def test_conditions_semaphores_events_and_queues_time_their_waits() -> None:
    """Every blocking primitive records a wait when it has to block."""
    with instrumented() as totals, worker_kind("thread"):
        cond = threading.Condition()
        with cond:
            cond.wait(0)
        sem = threading.BoundedSemaphore(1)
        sem.acquire()
        assert not sem.acquire(True, 0)
        event = threading.Event()
        event.wait(0)
        q = queue.Queue(maxsize=1)
        with pytest.raises(queue.Empty):
            q.get(True, 0)
        q.put(1)
        with pytest.raises(queue.Full):
            q.put(2, True, 0)
        found, _ = totals()
    kinds = sorted({(key[0], key[3]) for key in found})
    assert kinds == [("queue.Queue.get", "thread"), ("queue.Queue.put", "thread"),
                     ("threading.BoundedSemaphore", "thread"),
                     ("threading.Condition.wait", "thread"),
                     ("threading.Event.wait", "thread")]


def test_asyncio_waits_are_recorded_for_the_waiting_task() -> None:
    """A task queued behind an asyncio.Lock holder records its wait."""
    async def main() -> None:
        lock = asyncio.Lock()
        q: asyncio.Queue[int] = asyncio.Queue()

        async def second() -> None:
            with worker_kind("task"):
                async with lock:
                    pass
                await q.get()

        async with lock:
            task = asyncio.ensure_future(second())
            await asyncio.sleep(0)  # the loop runs it up to the lock
        await asyncio.sleep(0)
        q.put_nowait(1)
        await task

    with instrumented() as totals:
        asyncio.run(main())
        found, acquired = totals()
    assert sorted((k[0], k[3]) for k in found) == [("asyncio.Lock", "task"),
                                                   ("asyncio.Queue.get", "task")]
    assert sum(acquired.values()) == 3  # two lock acquisitions, one get


def test_a_blocked_flock_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """flock tries without blocking first; only a refused try is timed."""
    fcntl = pytest.importorskip("fcntl")
    calls: list[int] = []

    def fake_flock(fd: int, operation: int) -> None:
        calls.append(operation)
        if operation & fcntl.LOCK_NB:
            raise BlockingIOError

    monkeypatch.setattr(waits, "_real_flock", fake_flock)
    with instrumented() as totals:
        fcntl.flock(0, fcntl.LOCK_EX); waited = _line()  # noqa: E702
        fcntl.flock(0, fcntl.LOCK_UN)
        found, acquired = totals()
    assert calls == [fcntl.LOCK_EX | fcntl.LOCK_NB, fcntl.LOCK_EX, fcntl.LOCK_UN]
    assert list(found) == [("fcntl.flock", "(a file lock)", waited, "other")]
    assert acquired == {("fcntl.flock", waited): 1}


def test_instrumentation_does_not_nest() -> None:
    """Profiles do not nest: a second switch-on is refused and the first undone."""
    with instrumented(), pytest.raises(RuntimeError, match="already on"), instrumented():
        pass
    assert threading.Condition is waits._RealCondition


def test_more_primitives_and_no_double_count() -> None:
    """RLock, Semaphore and asyncio's Condition, Semaphore and Event are timed;
    a Condition over a timed lock is timed once, as the lock."""
    async def main() -> None:
        cond = asyncio.Condition()
        sem = asyncio.Semaphore(0)
        event = asyncio.Event()

        async def waiter() -> None:
            async with cond:
                await cond.wait()
            await sem.acquire()
            await event.wait()

        task = asyncio.ensure_future(waiter())
        await asyncio.sleep(0)
        async with cond:
            cond.notify_all()
        await asyncio.sleep(0)
        sem.release()
        await asyncio.sleep(0)
        event.set()
        await task

    with instrumented() as totals:
        rlock = threading.RLock(); made = _line()  # noqa: E702
        with rlock, rlock:
            pass
        sem = threading.Semaphore(0)
        assert not sem.acquire(True, 0)
        lock = threading.Lock()
        cond = threading.Condition(lock)
        with lock:
            assert not cond.acquire(True, 0)
        asyncio.run(main())
        found, acquired = totals()
    assert sorted({k[0] for k in found}) == [
        "asyncio.Condition.wait", "asyncio.Event.wait", "asyncio.Semaphore",
        "threading.Lock", "threading.Semaphore"]
    assert acquired[("threading.RLock", made)] == 2

